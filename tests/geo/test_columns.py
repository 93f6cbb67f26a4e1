"""geo.columns: ids and common column names of real map data."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from geo.columns import layer_for_kind, recognise_columns
from geo.validate import validate_layer


def _boxes(n: int, **columns: list) -> gpd.GeoDataFrame:
    geoms = [shapely.box(120.6 + i * 0.001, 31.3, 120.6005 + i * 0.001, 31.3005) for i in range(n)]
    return gpd.GeoDataFrame(columns, geometry=geoms, crs=4326)


@pytest.mark.parametrize("column", ["id", "FID", "osm_id"])
def test_a_unique_id_column_becomes_the_id(column: str) -> None:
    out, notes = recognise_columns(_boxes(3, **{column: [7, 8, 9], "other": ["a", "b", "c"]}), kind="buildings")
    assert out["building_id"].tolist() == [7, 8, 9]
    assert [n.problem for n in notes] == [f"no building_id column: used the unique column {column!r} as building_id"]


def test_the_canonical_id_wins_and_a_repeated_id_falls_back_to_the_feature_id() -> None:
    given = _boxes(2, building_id=["B1", "B2"], id=[1, 2])
    out, notes = recognise_columns(given, kind="buildings")
    assert out["building_id"].tolist() == ["B1", "B2"] and notes == []
    out, notes = recognise_columns(_boxes(3, id=[0, 0, 1], fid=[1, None, 2]), kind="buildings")
    assert out["building_id"].tolist() == ["1", "2", "3"]
    (note,) = notes
    assert note.severity == "warning" and "column(s) 'id', 'fid' are not unique: used the feature id" in note.problem


@pytest.mark.parametrize("kind, idc", [("streets", "street_id"), ("compounds", "compound_id"),
                                       ("service_points", "point_id"), ("communities", "community_id")])
def test_every_layer_gets_an_id(kind: str, idc: str) -> None:
    out, _ = recognise_columns(_boxes(2, name=["甲", "乙"]), kind=kind)
    assert out[idc].tolist() == ["1", "2"]


def test_common_column_names_are_understood() -> None:
    out, notes = recognise_columns(_boxes(2, **{"building:levels": [3, 5], "height": [9.0, 15.0]}),
                                   kind="buildings")
    assert out["floors"].tolist() == [3, 5] and out["height_m"].tolist() == [9.0, 15.0]
    assert "'building:levels' as floors, 'height' as height_m" in notes[0].problem
    # an explicit --field target is left alone; other aliases still apply
    out, _ = recognise_columns(_boxes(1, Floor=[2], floors=[4]), kind="buildings", mapped={"x": "floors"})
    assert out["floors"].tolist() == [4] and "Floor" in out.columns
    lines = gpd.GeoDataFrame({"street_id": ["S1", "S2"], "kind": ["major_road", "footway"]}, crs=4326,
                             geometry=[shapely.LineString([(120.6, 31.3), (120.61, 31.3)])] * 2)
    out, _ = recognise_columns(lines, kind="streets")
    layer, report = validate_layer(out, kind="streets")
    assert layer["road_class"].tolist() == ["major", "path"] and not report.warnings


def test_layer_named_after_the_kind() -> None:
    assert layer_for_kind(["buildings", "landuse", "roads", "pois"], "streets") == "roads"
    assert layer_for_kind(["Buildings", "x"], "buildings") == "Buildings"
    assert layer_for_kind(["楼栋", "服务点"], "service_points") == "服务点"
    assert layer_for_kind(["a", "b"], "compounds") is None
