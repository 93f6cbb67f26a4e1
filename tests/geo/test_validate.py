"""The validation catalogue: one case per problem, checked by code, feature id and fix."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo.errors import LayerError, ValidationFailed
from geo.validate import Issue, ValidationReport, validate_layer, validate_workspace

LON, LAT = 121.48, 31.23  # the Bund, Shanghai
D = 0.0003  # ~30 m


def square(i: int = 0, *, lon: float = LON, lat: float = LAT) -> shapely.Polygon:
    return shapely.box(lon + i * 2 * D, lat, lon + i * 2 * D + D, lat + D)


def bow_tie() -> shapely.Polygon:
    return shapely.Polygon([(LON, LAT), (LON + D, LAT + D), (LON + D, LAT), (LON, LAT + D)])


def with_nan() -> shapely.Polygon:
    with np.errstate(invalid="ignore"):
        return shapely.Polygon([(LON, LAT), (np.nan, LAT + D), (LON + D, LAT)])


def layer(geoms: list[Any], *, kind: str = "buildings", crs: Any = 4326, **columns: Any) -> gpd.GeoDataFrame:
    idc = {"buildings": "building_id", "streets": "street_id", "communities": "community_id",
           "compounds": "compound_id", "service_points": "point_id"}[kind]
    data = {idc: [f"{kind[0].upper()}{i + 1}" for i in range(len(geoms))], **columns}
    return gpd.GeoDataFrame(data, geometry=geoms, crs=crs)


@dataclass
class Case:
    id: str
    make: Callable[[], gpd.GeoDataFrame]
    code: str
    feature: str | None
    severity: str
    fix: str  # a piece of the fix text that must be named
    kind: str = "buildings"
    options: dict[str, Any] = field(default_factory=dict)


CATALOGUE = [
    Case("empty polygon", lambda: layer([square(0), shapely.Polygon()]), "empty_geometry", "B2", "error",
         "draw its outline"),
    Case("null geometry", lambda: layer([None, square(1)]), "empty_geometry", "B1", "error", "remove the feature"),
    Case("bow-tie repaired", lambda: layer([square(0), bow_tie()]), "invalid_geometry", "B2", "repaired",
         "repaired with make_valid"),
    Case("bow-tie rejected", lambda: layer([bow_tie()]), "invalid_geometry", "B1", "error", "Fix geometries",
         options={"repair": False}),
    Case("collapsed ring", lambda: layer([shapely.Polygon([(LON, LAT), (LON + D, LAT), (LON + 2 * D, LAT)])]),
         "invalid_geometry", "B1", "error", "left no area"),
    Case("NaN coordinate", lambda: layer([square(0), with_nan()]), "absurd_coordinates", "B2", "error",
         "broken vertices"),
    Case("points in a polygon layer", lambda: layer([square(0), shapely.Point(LON, LAT)]), "wrong_geometry_type", "B2",
         "error", "service_points"),
    Case("line in a polygon layer", lambda: layer([shapely.LineString([(LON, LAT), (LON + D, LAT)])]),
         "wrong_geometry_type", "B1", "error", "draw the footprints"),
    Case("polygon in a street layer", lambda: layer([square(0)], kind="streets"), "wrong_geometry_type", "S1", "error",
         "Polygons to Lines", kind="streets"),
    Case("collection with a polygon", lambda: layer([shapely.GeometryCollection([square(0), shapely.Point(LON, LAT)])]),
         "wrong_geometry_type", "B1", "repaired", "kept its Polygon parts"),
    Case("metres labelled as degrees", lambda: layer([shapely.box(350_000, 3_456_000, 350_030, 3_456_030)]),
         "absurd_coordinates", "B1", "error", "--crs EPSG:32651"),
    Case("degrees labelled as metres", lambda: layer([square(0)], crs=32651), "absurd_coordinates", None, "error",
         "--crs EPSG:4326"),
    Case("no CRS", lambda: layer([square(0)], crs=None), "missing_crs", None, "error", "--crs EPSG:4326"),
    Case("outside China", lambda: layer([square(0, lon=-73.98, lat=40.75)]), "outside_china", "B1", "warning",
         "lon/lat order"),
    Case("empty layer", lambda: layer([]), "empty_layer", None, "error", "at least one feature"),
    Case("duplicate id", lambda: layer([square(0), square(1), square(2)]).assign(building_id=["A", "A", "B"]),
         "duplicate_id", "A", "error", "make building_id unique"),
    Case("null id", lambda: layer([square(0), square(1)]).assign(building_id=["A", None]), "missing_id", "row2",
         "error", "unique building_id"),
    Case("missing id column", lambda: layer([square(0)]).drop(columns="building_id").assign(编号=["1"]),
         "missing_required_column", None, "error", "--field buildings:<column>=building_id"),
    Case("households 2.5", lambda: layer([square(0), square(1)], households=[120.0, 2.5]), "non_integer_households", "B2",
         "error", "whole number"),
    Case("households abc", lambda: layer([square(0), square(1)], households=["abc", "12"]), "non_integer_households",
         "B1", "error", "whole number"),
    Case("negative households", lambda: layer([square(0)], households=[-3]), "negative_households", "B1", "error",
         "zero or more"),
    Case("300 floors", lambda: layer([square(0), square(1)], floors=[6, 300]), "absurd_floors", "B2", "error",
         "max_building_floors"),
    Case("negative floors", lambda: layer([square(0)], floors=[-1]), "absurd_floors", "B1", "error", "leave it empty"),
    Case("5 km tall", lambda: layer([square(0)], height_m=[5000.0]), "absurd_height", "B1", "error",
         "max_building_height_m"),
    Case("unknown use", lambda: layer([square(0), square(1)], use=["residential", "hotel"]), "unknown_building_use",
         "B2", "warning", "treated as 'residential'"),
    Case("unknown road class", lambda: layer([shapely.LineString([(LON, LAT), (LON + D, LAT)])], kind="streets",
                                             road_class=["highway"]),
         "unknown_road_class", "S1", "warning", "treated as 'minor'", kind="streets"),
    Case("multi-part street", lambda: layer([shapely.MultiLineString([[(LON, LAT), (LON + D, LAT)],
                                                                      [(LON, LAT + D), (LON + D, LAT + D)]])],
                                            kind="streets"),
         "multipart_exploded", "S1", "repaired", "ids suffixed", kind="streets"),
]


@pytest.mark.parametrize("case", CATALOGUE, ids=[c.id for c in CATALOGUE])
def test_catalogue(case: Case) -> None:
    _, report = validate_layer(case.make(), kind=case.kind, **case.options)
    found = [i for i in report.issues if i.code == case.code]
    assert [(i.feature_id, i.severity) for i in found] == [(case.feature, case.severity)], report.issues
    assert case.fix in found[0].fix
    assert report.ok == (case.severity != "error")


@pytest.mark.parametrize("case", [c for c in CATALOGUE if c.severity == "error"],
                         ids=[c.id for c in CATALOGUE if c.severity == "error"])
def test_errors_block_with_a_message_naming_the_feature(case: Case) -> None:
    _, report = validate_layer(case.make(), kind=case.kind, **case.options)
    where = case.kind if case.feature is None else f"{case.kind} #{case.feature}"
    with pytest.raises(ValidationFailed, match=f"blocking problem.*{where}: .*{_re(case.fix)}") as caught:
        report.raise_for_errors()
    assert caught.value.report is report


def _re(text: str) -> str:
    return re.escape(text)


@pytest.mark.parametrize("geom", [square(0), shapely.MultiPolygon([square(0), square(1)])], ids=["Polygon", "MultiPolygon"])
def test_clean_polygons_pass_without_issues(geom: shapely.Geometry) -> None:
    out, report = validate_layer(layer([geom]), kind="buildings")
    assert report.issues == ()
    assert out.geometry.iloc[0].equals(geom)


def test_wrong_type_message_names_both_types() -> None:
    multi = shapely.MultiLineString([[(LON, LAT), (LON + D, LAT)], [(LON, LAT + D), (LON + D, LAT + D)]])
    _, report = validate_layer(layer([multi]), kind="buildings")
    assert [i.problem for i in report.errors] == ["MultiLineString in a Polygon or MultiPolygon layer"]


def test_declared_crs_fills_a_missing_one() -> None:
    out, report = validate_layer(layer([square(0)], crs=None), kind="buildings", declared_crs="EPSG:4326")
    assert report.ok and out.crs.to_epsg() == 4326


def test_repair_keeps_the_polygonal_part_with_the_area() -> None:
    out, _ = validate_layer(layer([bow_tie()]), kind="buildings")
    fixed = out.geometry.iloc[0]
    assert fixed.is_valid and fixed.geom_type == "MultiPolygon"
    assert fixed.area == pytest.approx(D * D / 2)


def test_repair_merges_overlapping_parts_instead_of_cutting_them() -> None:
    a, b = square(0), shapely.box(LON + D / 2, LAT, LON + 1.5 * D, LAT + D)
    out, report = validate_layer(layer([shapely.MultiPolygon([a, b])]), kind="buildings")
    assert [i.code for i in report.repaired] == ["invalid_geometry"]
    assert out.geometry.iloc[0].area == pytest.approx(a.union(b).area)


def test_issue_reads_as_one_line() -> None:
    issue = Issue("buildings", "B17", "invalid_geometry", "invalid geometry (Self-intersection[1 2])",
                  "repaired with make_valid", "repaired")
    assert str(issue) == "buildings #B17: invalid geometry (Self-intersection[1 2]): repaired with make_valid"
    with pytest.raises(ValueError, match="severity must be one of"):
        Issue("buildings", "B1", "x", "p", "f", "fatal")


def test_report_summary_records_and_ok() -> None:
    _, report = validate_layer(layer([square(0), bow_tie(), shapely.Point(LON, LAT), shapely.Polygon()]),
                               kind="buildings")
    assert report.summary() == {"invalid_geometry": 1, "wrong_geometry_type": 1, "empty_geometry": 1}
    assert not report.ok and {i.code for i in report.errors} == {"wrong_geometry_type", "empty_geometry"}
    records = report.to_records()
    assert records[0].keys() == {"layer", "feature_id", "code", "problem", "fix", "severity"}
    assert sorted(r["feature_id"] for r in records) == ["B2", "B3", "B4"]
    assert ValidationReport().ok


def test_duplicate_ids_are_all_listed_with_counts() -> None:
    gdf = layer([square(i) for i in range(6)]).assign(building_id=["A", "A", "A", "B", "B", "C"])
    _, report = validate_layer(gdf, kind="buildings")
    dups = {i.feature_id: i.problem for i in report.issues if i.code == "duplicate_id"}
    assert dups.keys() == {"A", "B"}
    assert "used by 3 features" in dups["A"] and "used by 2 features" in dups["B"]


def test_missing_column_message_lists_the_columns_found() -> None:
    gdf = layer([square(0)]).drop(columns="building_id").assign(编号=["1"], 户数=[3])
    _, report = validate_layer(gdf, kind="buildings")
    (issue,) = report.errors
    assert "'building_id' is missing (columns found: 编号, 户数)" in issue.problem
    assert "field_map" not in issue.fix and "--field buildings:<column>=building_id" in issue.fix


def test_layer_is_normalised_to_the_canonical_schema() -> None:
    utm = gpd.GeoSeries([square(0), square(1)], crs=4326).to_crs(32651)
    gdf = gpd.GeoDataFrame({"building_id": [7.0, 8.0], "floors": ["6", None], "households": [120.0, None],
                            "use": ["住宅", None], "remark": ["keep me", "x"]}, geometry=utm.values, crs=32651)
    out, report = validate_layer(gdf, kind="buildings")
    assert report.issues == ()
    assert out.crs.to_epsg() == 4326
    assert list(out.columns) == ["building_id", "name", "use", "floors", "height_m", "households",
                                 "households_estimated", "compound_id", "community_id", "remark", "geometry"]
    assert out["building_id"].tolist() == ["7", "8"]
    assert out["use"].tolist() == ["residential", "residential"]
    assert str(out["floors"].dtype) == "Int64" and out["floors"].tolist() == [6, pd.NA]
    assert str(out["households"].dtype) == "Int64" and out["households"].iloc[0] == 120
    assert out["name"].isna().all() and str(out["households_estimated"].dtype) == "boolean"
    assert out.geometry.iloc[0].equals_exact(square(0), tolerance=1e-9)


def test_input_is_not_modified() -> None:
    gdf = layer([bow_tie()], households=["3"])
    before = gdf.copy()
    validate_layer(gdf, kind="buildings")
    pd.testing.assert_frame_equal(gdf, before)


def test_streets_get_foot_default_and_single_parts() -> None:
    multi = shapely.MultiLineString([[(LON, LAT), (LON + D, LAT)], [(LON, LAT + D), (LON + D, LAT + D)]])
    line = shapely.LineString([(LON, LAT), (LON, LAT + D)])
    gdf = layer([multi, line], kind="streets", road_class=["铁路", "主干道"])
    out, _ = validate_layer(gdf, kind="streets")
    assert out["street_id"].tolist() == ["S1-1", "S1-2", "S2"]
    assert set(out.geom_type) == {"LineString"}
    assert out["road_class"].tolist() == ["rail", "rail", "major"]
    assert out["foot"].tolist() == [False, False, True]


def test_a_plain_dataframe_is_refused() -> None:
    with pytest.raises(LayerError, match="buildings must be a GeoDataFrame with an active geometry column; got DataFrame"):
        validate_layer(pd.DataFrame({"building_id": ["B1"]}), kind="buildings")


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(LayerError, match="unknown layer kind 'houses'; use one of communities"):
        validate_layer(layer([square(0)]), kind="houses")


# ---------------------------------------------------------------- cross-layer checks

UTM = 32651
X0, Y0 = 350_000.0, 3_456_000.0


def metric_layer(kind: str, geoms: list[shapely.Geometry], ids: list[str]) -> gpd.GeoDataFrame:
    idc = {"buildings": "building_id", "communities": "community_id", "compounds": "compound_id"}[kind]
    return gpd.GeoDataFrame({idc: ids}, geometry=geoms, crs=UTM).to_crs(4326)


def block(x: float, y: float, w: float, h: float) -> shapely.Polygon:
    return shapely.box(X0 + x, Y0 + y, X0 + x + w, Y0 + y + h)


def two_communities() -> gpd.GeoDataFrame:
    """C1 and C2, 100 m squares sharing the edge x = 100."""
    return metric_layer("communities", [block(0, 0, 100, 100), block(100, 0, 100, 100)], ["C1", "C2"])


def test_overlapping_communities_name_both_and_the_area() -> None:
    a, b, c = block(0, 0, 100, 100), block(90, 0, 100, 100), block(190, 0, 100, 100)  # c only touches b
    report = validate_workspace({"communities": metric_layer("communities", [a, b, c], ["C1", "C2", "C3"])},
                                metric_crs=UTM)
    (issue,) = report.issues
    assert (issue.code, issue.feature_id, issue.severity) == ("overlapping_communities", "C1", "error")
    assert f"#C2 by {a.intersection(b).area:,.1f} m²" in issue.problem
    with pytest.raises(ValidationFailed, match="communities #C1: overlaps community #C2 by 1,000.* snap the shared"):
        report.raise_for_errors()


def test_small_overlap_within_tolerance_passes() -> None:
    a, b = block(0, 0, 100, 100), block(99.995, 0, 100, 100)  # 0.5 m²
    report = validate_workspace({"communities": metric_layer("communities", [a, b], ["C1", "C2"])}, metric_crs=UTM,
                                community_overlap_tolerance_m2=1.0)
    assert report.issues == ()


def test_buildings_outside_communities_are_listed() -> None:
    comms = metric_layer("communities", [block(0, 0, 100, 100)], ["C1"])
    blds = metric_layer("buildings", [block(10, 10, 10, 10), block(100.5, 10, 10, 10), block(150, 10, 10, 10),
                                      block(300, 0, 5, 5)], ["in", "near", "out1", "out2"])
    report = validate_workspace({"communities": comms, "buildings": blds}, metric_crs=UTM,
                                building_outside_tolerance_m=1.0)
    assert [(i.code, i.feature_id) for i in report.errors] == [("buildings_outside_communities", "out1"),
                                                               ("buildings_outside_communities", "out2")]
    assert "farther than 1 m from every community" in report.errors[0].problem


@pytest.mark.parametrize(("kind", "geoms", "code", "text"), [
    ("buildings", [block(90, 10, 30, 10), block(10, 10, 10, 10)], "buildings_in_several_communities",
     "assigned to #C2 (largest overlap)"),
    ("compounds", [block(50, 0, 100, 50), block(0, 0, 50, 50)], "compound_crosses_communities",
     "(#C1 2,500 m², #C2 2,500 m²)"),
], ids=["building in two communities", "compound in two communities"])
def test_features_across_two_communities_warn(kind: str, geoms: list[shapely.Geometry], code: str,
                                              text: str) -> None:
    features = metric_layer(kind, geoms, ["across", "inside"])
    report = validate_workspace({"communities": two_communities(), kind: features}, metric_crs=UTM)
    (issue,) = report.issues
    assert (issue.code, issue.feature_id, issue.severity) == (code, "across", "warning")
    assert text in str(issue)


# ---------------------------------------------------------------- real data


def test_suzhou_ids_all_zero_are_one_duplicate_issue(shared_datasets: Any) -> None:
    raw = gpd.read_file(shared_datasets / "suzhou_gusu_buildings.geojson")
    gdf = raw.rename(columns={"Id": "building_id", "Floor": "floors", "height": "height_m"})
    out, report = validate_layer(gdf, kind="buildings")
    assert [(i.code, i.feature_id) for i in report.errors] == [("duplicate_id", "0")]
    assert f"used by {len(raw)} features" in report.errors[0].problem
    assert out["floors"].tolist() == raw["Floor"].tolist()


def test_shanghai_osm_buildings_validate_with_use_warnings(shared_datasets: Any) -> None:
    raw = gpd.read_file(shared_datasets / "shanghai_bund_osm.gpkg", layer="buildings")
    gdf = raw.rename(columns={"id": "building_id", "kind_detail": "use", "height": "height_m"})
    out, report = validate_layer(gdf, kind="buildings")
    assert report.ok, report.errors[:3]
    unknown = {i.problem.split("'")[1] for i in report.issues if i.code == "unknown_building_use"}
    expected = set(raw["kind_detail"].dropna()) - {"residential", "commercial", "office", "school", "hospital",
                                                  "apartments", "house"}
    assert unknown == expected
    assert out.loc[raw["kind_detail"].eq("apartments").to_numpy(), "use"].eq("residential").all()
