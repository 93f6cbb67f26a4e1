"""The import pipeline: validate, link buildings to communities and compounds, or fail whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo.crs import local_metric_crs
from geo.errors import LayerError, ValidationFailed
from geo.osm import normalise_osm_columns
from geo.prepare import APPROXIMATE_COMMUNITY_ID, PreparedWorkspace, prepare_files, prepare_layers
from geo.settings import DEFAULTS
from geo.synthetic import synthetic_district

UTM = 32651
X0, Y0 = 350_000.0, 3_456_000.0  # near the Bund, in UTM 51N


def block(x: float, y: float, w: float, h: float) -> shapely.Polygon:
    return shapely.box(X0 + x, Y0 + y, X0 + x + w, Y0 + y + h)


def frame(id_column: str, ids: list[str], geoms: list[shapely.Geometry], **columns: Any) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({id_column: ids, **columns}, geometry=geoms, crs=UTM).to_crs(4326)


def bow_tie() -> shapely.Polygon:
    """A self-intersecting 20 m building inside community C1."""
    ring = [(X0 + 20, Y0 + 20), (X0 + 40, Y0 + 40), (X0 + 40, Y0 + 20), (X0 + 20, Y0 + 40)]
    return gpd.GeoSeries([shapely.Polygon(ring)], crs=UTM).to_crs(4326).iloc[0]


@pytest.fixture
def town() -> dict[str, gpd.GeoDataFrame]:
    """Two 100 m communities side by side, a compound in C1, four buildings."""
    return {
        "communities": frame("community_id", ["C1", "C2"], [block(0, 0, 100, 100), block(100, 0, 100, 100)],
                             name=["梅园社区", "崂山社区"]),
        "compounds": frame("compound_id", ["P1"], [block(0, 0, 60, 60)], name=["梅一小区"]),
        "buildings": frame("building_id", ["in-P1", "C1-only", "straddle", "C2-near"],
                           [block(10, 10, 20, 10), block(70, 70, 20, 10), block(90, 40, 30, 10),
                            block(200.5, 40, 10, 10)],
                           floors=[6, 3, 4, 2], households=[None, 12, None, None]),
    }


def test_buildings_get_community_compound_and_households(town: dict[str, gpd.GeoDataFrame]) -> None:
    ws = prepare_layers(town)
    b = ws.layers["buildings"].set_index("building_id")
    assert b["community_id"].to_dict() == {"in-P1": "C1", "C1-only": "C1", "straddle": "C2", "C2-near": "C2"}
    assert b["compound_id"].fillna("-").to_dict() == {"in-P1": "P1", "C1-only": "-", "straddle": "-", "C2-near": "-"}
    assert b.loc["C1-only", "households"] == 12 and not b.loc["C1-only", "households_estimated"]
    assert b["households"].notna().all() and b.loc["in-P1", "households_estimated"]
    assert ws.metric_crs == local_metric_crs(town["buildings"])
    assert ws.report.ok and ws.approximate_communities == ()
    assert [(i.code, i.feature_id) for i in ws.report.warnings] == [("buildings_in_several_communities", "straddle")]


def test_layers_are_canonical_wgs84(town: dict[str, gpd.GeoDataFrame]) -> None:
    ws = prepare_layers(town)
    assert isinstance(ws, PreparedWorkspace)
    assert set(ws.layers) == {"communities", "compounds", "buildings"}
    for gdf in ws.layers.values():
        assert gdf.crs.to_epsg() == 4326
    assert ws.layers["buildings"].geometry.iloc[0].equals_exact(town["buildings"].geometry.iloc[0], tolerance=1e-9)


def test_without_communities_one_approximate_community_covers_all(town: dict[str, gpd.GeoDataFrame]) -> None:
    ws = prepare_layers({"buildings": town["buildings"]})
    (community,) = ws.layers["communities"].itertuples()
    assert (community.community_id, community.name) == (APPROXIMATE_COMMUNITY_ID, "全域")
    assert ws.approximate_communities == (APPROXIMATE_COMMUNITY_ID,)
    assert "approximate_community" in ws.report.codes()
    assert ws.layers["buildings"]["community_id"].eq(APPROXIMATE_COMMUNITY_ID).all()
    assert ws.layers["buildings"].within(community.geometry).all()


def test_a_failing_prepare_raises_with_the_whole_report_and_leaves_inputs_alone(
        town: dict[str, gpd.GeoDataFrame]) -> None:
    town["buildings"].loc[3, "geometry"] = gpd.GeoSeries([block(400, 0, 10, 10)], crs=UTM).to_crs(4326).iloc[0]
    town["buildings"].loc[0, "geometry"] = bow_tie()  # repaired, reported
    before = {name: gdf.copy() for name, gdf in town.items()}
    result = None
    with pytest.raises(ValidationFailed, match="1 blocking problem.*buildings #C2-near: farther than 1 m") as caught:
        result = prepare_layers(town)
    assert result is None
    report = caught.value.report
    assert [(i.code, i.feature_id) for i in caught.value.issues] == [("buildings_outside_communities", "C2-near")]
    assert {"invalid_geometry", "buildings_outside_communities"} <= report.codes()
    for name, gdf in town.items():
        pd.testing.assert_frame_equal(gdf, before[name])


def test_layer_errors_stop_before_cross_layer_checks(town: dict[str, gpd.GeoDataFrame]) -> None:
    town["buildings"]["households"] = ["2.5", "12", None, "-1"]
    town["communities"].loc[1, "community_id"] = "C1"
    with pytest.raises(ValidationFailed, match="3 blocking problem") as caught:
        prepare_layers(town)
    assert sorted((i.code, i.feature_id) for i in caught.value.issues) == [
        ("duplicate_id", "C1"), ("negative_households", "C2-near"), ("non_integer_households", "in-P1")]


def test_repair_off_makes_invalid_geometry_blocking(town: dict[str, gpd.GeoDataFrame]) -> None:
    town["buildings"].loc[1, "geometry"] = bow_tie()
    with pytest.raises(ValidationFailed, match=r"buildings #C1-only: invalid geometry \(Self-intersection"):
        prepare_layers(town, settings={"repair_invalid_geometry": False})


def test_configured_local_crs_is_used(town: dict[str, gpd.GeoDataFrame]) -> None:
    ws = prepare_layers(town, settings={"local_crs": "EPSG:4547"})
    assert ws.metric_crs.to_epsg() == 4547


def test_buildings_are_required(town: dict[str, gpd.GeoDataFrame]) -> None:
    with pytest.raises(ValidationFailed, match="buildings: no buildings layer given: import a buildings layer"):
        prepare_layers({"communities": town["communities"]})


def test_unknown_layer_names_are_refused(town: dict[str, gpd.GeoDataFrame]) -> None:
    with pytest.raises(LayerError, match="unknown layer.*'houses'.*use communities, buildings"):
        prepare_layers({**town, "houses": town["buildings"]})


def test_given_compound_ids_are_kept(town: dict[str, gpd.GeoDataFrame]) -> None:
    town["buildings"]["compound_id"] = ["P9", None, None, None]
    ws = prepare_layers(town)
    assert ws.layers["buildings"]["compound_id"].fillna("-").tolist() == ["P9", "-", "-", "-"]


# ---------------------------------------------------------------- files and real data


def test_prepare_files_reads_every_layer(tmp_path: Path, town: dict[str, gpd.GeoDataFrame]) -> None:
    gpkg = tmp_path / "town.gpkg"
    town["buildings"].rename(columns={"floors": "层数"}).to_file(gpkg, layer="楼栋")
    town["communities"].to_file(gpkg, layer="社区")
    ws = prepare_files({"buildings": gpkg, "communities": gpkg}, field_maps={"buildings": {"层数": "floors"}},
                       source_layers={"buildings": "楼栋", "communities": "社区"})
    assert ws.layers["buildings"]["floors"].tolist() == [6, 3, 4, 2]
    assert ws.layers["buildings"]["community_id"].tolist() == ["C1", "C1", "C2", "C2"]


def test_suzhou_ids_are_all_zero(shared_datasets: Path) -> None:
    with pytest.raises(ValidationFailed, match="buildings #0: building_id '0' is used by 3076 features"):
        prepare_files({"buildings": shared_datasets / "suzhou_gusu_buildings.geojson"},
                      field_maps={"buildings": {"Id": "building_id", "Floor": "floors"}})


def test_suzhou_floors_through_prepare_layers(shared_datasets: Path) -> None:
    raw = gpd.read_file(shared_datasets / "suzhou_gusu_buildings.geojson")
    buildings = raw.drop(columns="Id").rename(columns={"Floor": "floors"})
    buildings.insert(0, "building_id", [f"SZ{i}" for i in range(len(raw))])
    ws = prepare_layers({"buildings": buildings})
    b = ws.layers["buildings"]
    assert len(b) == len(raw) and b["floors"].tolist() == raw["Floor"].tolist()
    assert ws.approximate_communities == (APPROXIMATE_COMMUNITY_ID,)
    assert b["community_id"].eq(APPROXIMATE_COMMUNITY_ID).all()
    big = raw.to_crs(ws.metric_crs).area.to_numpy() > DEFAULTS["household_min_footprint_m2"]
    assert b["households_estimated"].all() and (b["households"][big] > 0).all() and (b["households"] >= 0).all()
    assert ws.metric_crs.to_epsg() == 32651  # Suzhou, 120.6 °E: UTM zone 51N


def test_shanghai_buildings_get_their_residential_compounds(shared_datasets: Path) -> None:
    gpkg = shared_datasets / "shanghai_bund_osm.gpkg"
    buildings = normalise_osm_columns(gpd.read_file(gpkg, layer="buildings"), kind="buildings")
    compounds = normalise_osm_columns(gpd.read_file(gpkg, layer="landuse"), kind="compounds")
    ws = prepare_layers({"buildings": buildings, "compounds": compounds})
    b = ws.layers["buildings"]
    assert len(ws.layers["compounds"]) == 18 and len(b) == len(buildings)
    # independent check: the compound covering the representative point, else most of the area
    points = gpd.GeoDataFrame(b[["building_id"]], geometry=b.representative_point(), crs=4326)
    joined = points.sjoin(ws.layers["compounds"][["compound_id", "geometry"]], predicate="within")
    by_point = joined.groupby("building_id")["compound_id"].agg(set)
    got = b.set_index("building_id")["compound_id"].dropna()
    assert len(got) > 40
    assert all(got[k] in by_point[k] for k in got.index.intersection(by_point.index))
    assert by_point.index.isin(got.index).all()
    compounds_m = ws.layers["compounds"].to_crs(ws.metric_crs).set_index("compound_id").geometry
    buildings_m = b.to_crs(ws.metric_crs).set_index("building_id").geometry
    for k in got.index.difference(by_point.index):
        assert buildings_m[k].intersection(compounds_m[got[k]]).area > 0.5 * buildings_m[k].area
    assert b["households"].sum() > 0 and np.all(b["community_id"] == APPROXIMATE_COMMUNITY_ID)


def test_synthetic_district_assignment_matches_its_ground_truth() -> None:
    district = synthetic_district(2000, seed=7)
    truth = district.buildings[["community_id", "compound_id"]].astype("str")
    layers = {k: getattr(district, k) for k in ("communities", "buildings", "streets", "compounds", "service_points")}
    layers["buildings"] = layers["buildings"].assign(community_id=None, compound_id=None)
    ws = prepare_layers(layers)
    got = ws.layers["buildings"][["community_id", "compound_id"]]
    assert truth["compound_id"].notna().any()
    pd.testing.assert_frame_equal(got.fillna("-"), truth.fillna("-"), check_dtype=False)


def test_untagged_towers_are_not_homes_through_the_import_pipeline() -> None:
    """Validation defaults a missing use to residential; the household estimate still treats
    the use as unknown, so the residential_max_height_m rule applies (Bund: 103,444 → 55,137)."""
    boxes = [shapely.box(121.5 + i * 0.001, 31.2, 121.5005 + i * 0.001, 31.2005) for i in range(3)]
    b = gpd.GeoDataFrame({"building_id": ["T1", "T2", "H1"], "use": [None, "residential", None],
                          "height_m": [150.0, 150.0, 30.0]}, geometry=boxes, crs=4326)
    out = prepare_layers({"buildings": b}).layers["buildings"].set_index("building_id")
    assert out.at["T1", "households"] == 0 and out.at["T2", "households"] > 100
    assert out.at["H1", "households"] > 0 and out.at["T1", "use"] == "residential"
