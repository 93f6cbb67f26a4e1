"""Network isochrones: inside the straight-line circle, smaller than it, partial edges cut."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point

from geo.errors import LayerError
from geo.isochrones import service_isochrones
from geo.network import walk_graph_from_streets
from tests.geo.access_helpers import CRS, random_layers


def test_isochrones_lie_inside_the_circle_and_are_smaller() -> None:
    streets, _, services = random_layers(seed=11, n_lines=40)
    graph = walk_graph_from_streets(streets)
    width = 30.0
    iso = service_isochrones(graph, services, levels_m=(300, 600), width_m=width)
    assert len(iso) == 2 * len(services)
    centre = services.set_index("point_id").geometry
    for row in iso.itertuples():
        circle = centre[row.point_id].buffer(row.level_m, quad_segs=64)
        assert row.geometry.within(circle.buffer(width + 1e-6))
        assert row.geometry.area < circle.area
    by_level = iso.pivot(index="point_id", columns="level_m", values="reached_m")
    assert (by_level[600.0] > by_level[300.0]).all()


def test_partial_edges_are_cut_at_the_remaining_distance() -> None:
    streets = gpd.GeoDataFrame({"street_id": ["a", "b"]}, crs=CRS, geometry=[
        LineString([(0, 0), (1000, 0)]), LineString([(400, 0), (400, 1000)])])
    services = gpd.GeoDataFrame({"point_id": ["p"], "category": ["bus_stop"]}, crs=CRS,
                                geometry=[Point(300, 20)])
    iso = service_isochrones(walk_graph_from_streets(streets), services, levels_m=(300,),
                             width_m=5)
    # Leg 20 m, then 280 m each way along the street and 180 m up the side street.
    assert iso["reached_m"].item() == pytest.approx(20 + 280 + 280 + 180)
    poly = iso.geometry.item()
    assert poly.contains(Point(570, 0)) and not poly.contains(Point(590, 0))
    assert poly.contains(Point(400, 170)) and not poly.contains(Point(400, 195))
    assert not poly.contains(Point(300, 300))  # not a circle: off-street land stays out
    assert shapely.get_num_geometries(poly) == 1


def test_missing_id_column_raises() -> None:
    streets, _, services = random_layers(seed=2)
    with pytest.raises(LayerError, match="no 'sid' column"):
        service_isochrones(walk_graph_from_streets(streets), services, id_field="sid")
    assert np.isfinite(services.geometry.x).all()


def test_access_map_layers_returns_wgs84_layers_for_a_map() -> None:
    from shapely.geometry import box

    from geo.access import service_circle_analysis
    from geo.isochrones import access_map_layers

    streets, buildings, services = random_layers(seed=4)
    grids = gpd.GeoDataFrame({"grid_id": ["w", "e"]}, crs=CRS, geometry=[
        box(349_000, 3_459_000, 351_000, 3_463_000), box(351_000, 3_459_000, 353_000, 3_463_000)])
    res = service_circle_analysis(buildings, streets, services, grids=grids)
    layers = access_map_layers(res, category="bus_stop", level_m=500)
    assert layers["isochrones"].crs.to_epsg() == 4326
    assert len(layers["isochrones"]) == int((services.category == "bus_stop").sum())
    assert layers["buildings"]["covered"].sum() == int((res.buildings["dist_bus_stop"] <= 500).sum())
    assert set(layers["grids"]["grid_id"]) == {"w", "e"} and layers["grids"]["share"].notna().all()
    with pytest.raises(LayerError, match="no facilities of category 'clinic'"):
        access_map_layers(res, category="clinic", level_m=500)


@pytest.mark.parametrize("seed", [3, 8])
def test_band_polygon_matches_the_exact_union_of_segment_buffers(seed: int) -> None:
    from geo.isochrones import band_polygon, reached_segments
    from geo.network import snap_points

    streets, _, services = random_layers(seed=seed, n_lines=40)
    graph = walk_graph_from_streets(streets)
    snap = snap_points(graph, services.iloc[:3])
    from geo.access import per_source_distances

    dist = per_source_distances(graph, *snap.offsets(graph), limit=800.0)
    src, segs = reached_segments(graph, dist, 800.0)
    width = 35.0
    for k in range(3):
        mine = segs[src == k]
        assert len(mine) > 5
        fast = band_polygon(mine, width_m=width)
        exact = shapely.union_all(shapely.buffer(shapely.linestrings(mine), width, quad_segs=32))
        # Round ends drawn with 3 arc pieces per quarter (chord error 3.4 % of the width)
        # plus the width/100 simplification: the outlines may differ by a few metres only.
        # (Containment both ways rather than a Hausdorff distance: tiny holes between bands
        # may open in one version and not the other.)
        assert fast.within(exact.buffer(0.05 * width)) and exact.within(fast.buffer(0.05 * width))
        assert not fast.within(exact.buffer(-0.05 * width))
        assert fast.symmetric_difference(exact).area < 0.01 * exact.area
        assert shapely.get_num_geometries(fast) == shapely.get_num_geometries(exact)
        mids = shapely.points(mine.mean(axis=1))
        assert shapely.contains(fast, mids).all()
