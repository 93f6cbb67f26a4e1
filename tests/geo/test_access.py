"""Distances equal networkx door to door; coverage, complete circles, screening mode."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, Point, box

from geo.access import (
    complete_circles,
    coverage_by_level,
    euclidean_overstatement,
    levels_met,
    nearest_facility_distances,
    service_circle_analysis,
    uncovered_buildings,
)
from geo.errors import LayerError
from geo.lifecircle import Checklist, ChecklistItem, categorise_points
from geo.network import snap_points, walk_graph_from_streets
from tests.geo.access_helpers import CRS, nx_distances, nx_door_graph, random_layers


def _check_against_networkx(graph, buildings, services, limit: float) -> float:
    b = snap_points(graph, buildings)
    s = snap_points(graph, services)
    ours = nearest_facility_distances(graph, buildings, services, max_distance_m=limit,
                                      building_snap=b, service_snap=s)
    worst = 0.0
    cats = services["category"].to_numpy()
    g = nx_door_graph(graph, b, s)
    for cat in sorted(set(cats)):
        ref = nx_distances(g, len(buildings), s, cats == cat, limit)
        got = ours[f"dist_{cat}"].to_numpy()
        assert np.array_equal(np.isnan(ref), np.isnan(got)), cat
        if np.isfinite(ref).any():
            worst = max(worst, float(np.nanmax(np.abs(ref - got))))
    return worst


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_distances_equal_networkx_on_random_networks(seed: int) -> None:
    streets, buildings, services = random_layers(seed=seed)
    graph = walk_graph_from_streets(streets)
    worst = _check_against_networkx(graph, buildings, services, limit=1500.0)
    assert worst < 1e-6


def test_distances_equal_networkx_on_shanghai_bund(shared_datasets) -> None:
    path = shared_datasets / "shanghai_bund_osm.gpkg"
    roads = gpd.read_file(path, layer="roads")
    roads["street_id"] = roads["id"].astype(str)
    roads["road_class"] = roads["kind"].map({"rail": "rail", "ferry": "water"}).fillna("minor")
    pois = gpd.read_file(path, layer="pois")
    pois["category"] = categorise_points(pois)
    pois = pois[pois["category"].notna()]
    buildings = gpd.read_file(path, layer="buildings")
    buildings["building_id"] = buildings["id"].astype(str)
    graph = walk_graph_from_streets(roads)
    assert _check_against_networkx(graph, buildings, pois, limit=1000.0) < 1.0


def _line_world():
    """One 1 km street; buildings at x = 0 .. 1000, 10 m off the street."""
    streets = gpd.GeoDataFrame({"street_id": ["main"]}, crs=CRS,
                               geometry=[LineString([(0, 0), (1000, 0)])])
    xs = np.array([0.0, 250.0, 600.0, 1000.0])
    buildings = gpd.GeoDataFrame(
        {"building_id": [f"b{int(x)}" for x in xs], "households": [10, 20, 30, 40],
         "grid_id": ["g1", "g1", "g2", "g2"]},
        geometry=[box(x - 2, 8, x + 2, 12) for x in xs], crs=CRS)
    services = gpd.GeoDataFrame(
        {"point_id": ["k", "m"], "category": ["kindergarten", "middle_school"]},
        geometry=[Point(0, 0), Point(500, 0)], crs=CRS)
    return streets, buildings, services


def test_door_to_door_distance_on_a_single_street() -> None:
    streets, buildings, services = _line_world()
    d = nearest_facility_distances(walk_graph_from_streets(streets), buildings, services)
    # point_on_surface of a 4 x 4 box at y 8..12 is its centre: leg 10 m.
    assert d.loc["b250", "dist_kindergarten"] == pytest.approx(260.0)
    assert d.loc["b600", "dist_middle_school"] == pytest.approx(110.0)
    assert np.isnan(d.loc["b1000", "dist_kindergarten"])  # 1,010 m > 1,000 m
    met = levels_met(d)
    assert met.loc["b250", "level_kindergarten"] == 300
    assert met.loc["b600", "level_kindergarten"] == 1000


def test_levels_are_non_inclusive() -> None:
    checklist = Checklist((ChecklistItem("kindergarten", "幼儿园", 1),
                           ChecklistItem("middle_school", "中学", 3)))
    d = pd.DataFrame({"dist_kindergarten": [100.0, 400.0, np.nan],
                      "dist_middle_school": [900.0, 200.0, 100.0]}, index=["a", "b", "c"])
    flags = complete_circles(d, levels_m=(300, 500, 1000), checklist=checklist)
    # b has its 15-minute facility but its kindergarten is beyond the 5-minute 300 m.
    assert flags.loc["a"].tolist() == [True, True, True]
    assert flags.loc["b"].tolist() == [False, False, False]
    assert flags.loc["c"].tolist() == [False, False, False]


def test_coverage_shares_by_grid_weight_households() -> None:
    streets, buildings, services = _line_world()
    d = nearest_facility_distances(walk_graph_from_streets(streets), buildings, services)
    cov = coverage_by_level(d, buildings, group_by="grid_id")
    row = cov[(cov.grid_id == "g1") & (cov.level_m == 300) & (cov.category == "kindergarten")]
    assert row["share"].item() == pytest.approx(1.0)  # b0 (10 m) and b250 (260 m)
    row = cov[(cov.grid_id == "g2") & (cov.level_m == 1000) & (cov.category == "kindergarten")]
    assert row["covered_households"].item() == 30  # b600 only
    assert row["share"].item() == pytest.approx(30 / 70)


def test_uncovered_buildings_lists_missing_categories() -> None:
    streets, buildings, services = _line_world()
    d = nearest_facility_distances(walk_graph_from_streets(streets), buildings, services)
    out = uncovered_buildings(d, buildings, level_m=300, category="kindergarten")
    assert sorted(out.building_id) == ["b1000", "b600"]
    assert set(out["missing"]) == {"kindergarten"}
    with pytest.raises(LayerError, match="no distances for category 'school'"):
        uncovered_buildings(d, buildings, level_m=300, category="school")


def test_euclidean_mode_overstates_network_coverage() -> None:
    streets, buildings, services = random_layers(seed=5, n_lines=25)
    net = service_circle_analysis(buildings, streets, services)
    euc = service_circle_analysis(buildings, streets, services, mode="euclidean")
    assert euc.label_zh.startswith("直线距离")
    cmp = euclidean_overstatement(net.coverage, euc.coverage)
    per_cat = cmp[cmp.category != "complete"]
    assert (per_cat["overstatement"] >= -1e-12).all()
    assert per_cat["overstatement"].max() > 0.05


def test_service_circle_analysis_assigns_grids_and_reports() -> None:
    streets, buildings, services = random_layers(seed=7)
    grids = gpd.GeoDataFrame({"grid_id": ["west", "east"]}, crs=CRS, geometry=[
        box(349_000, 3_459_000, 351_000, 3_463_000), box(351_000, 3_459_000, 353_000, 3_463_000)])
    res = service_circle_analysis(buildings.drop(columns="households"), streets, services,
                                  grids=grids)
    assert set(res.coverage.group_by) == {"area", "grid_id"}
    assert set(res.buildings.grid_id) == {"west", "east"}
    assert {"dist_kindergarten", "complete_300", "complete_1000"} <= set(res.buildings.columns)
    assert res.summary["categories"] == ["bus_stop", "kindergarten", "primary_school"]
    # Checklist categories absent from the data make every circle incomplete.
    assert res.summary["complete_share"][1000.0] == 0.0


def test_missing_category_column_raises() -> None:
    streets, buildings, services = _line_world()
    with pytest.raises(LayerError, match="no 'kind' column.*category_field"):
        nearest_facility_distances(walk_graph_from_streets(streets), buildings, services,
                                   category_field="kind")


def test_unknown_mode_and_bad_levels_raise() -> None:
    streets, buildings, services = _line_world()
    g = walk_graph_from_streets(streets)
    with pytest.raises(LayerError, match="mode must be one of network, euclidean; got 'air'"):
        nearest_facility_distances(g, buildings, services, mode="air")
    with pytest.raises(LayerError, match="positive and increasing"):
        service_circle_analysis(buildings, streets, services, levels_m=(500, 300, 1000))


def test_geographic_points_are_reprojected_to_the_graph() -> None:
    streets, buildings, services = _line_world()
    g = walk_graph_from_streets(streets)
    metric = nearest_facility_distances(g, buildings, services)
    geographic = nearest_facility_distances(g, buildings.to_crs(4326), services.to_crs(4326))
    np.testing.assert_allclose(metric.to_numpy(), geographic.to_numpy(), atol=0.01)
    assert shapely.get_num_geometries(buildings.geometry.iloc[0]) == 1
