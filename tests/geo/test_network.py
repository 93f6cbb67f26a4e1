"""Walk graph: foot filter, snapping of tile gaps, noding, components, snap legs."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point

from geo.errors import CRSError, LayerError
from geo.network import snap_points, walk_graph_from_streets
from tests.geo.access_helpers import CRS, random_streets


def _streets(lines, **cols) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"street_id": [f"s{i}" for i in range(len(lines))], **cols},
                            geometry=lines, crs=CRS)


def test_crossing_without_shared_vertex_is_noded() -> None:
    g = walk_graph_from_streets(_streets([LineString([(0, 0), (100, 0)]),
                                          LineString([(50, -50), (50, 50)])]))
    assert g.summary.crossings_noded == 1
    assert (g.summary.nodes, g.summary.edges, g.summary.components) == (5, 4, 1)
    assert g.edge_length.sum() == pytest.approx(200.0)


def test_centimetre_gap_is_snapped_and_joins_components() -> None:
    lines = [LineString([(0, 0), (100, 0)]), LineString([(100.04, 0.03), (200, 0)]),
             LineString([(150, 0.2), (150, 80)])]  # T-junction 20 cm short of the street
    joined = walk_graph_from_streets(_streets(lines), snap_tolerance_m=0.5)
    apart = walk_graph_from_streets(_streets(lines), snap_tolerance_m=0.0)
    assert joined.summary.components == 1
    assert apart.summary.components == 3
    assert joined.summary.snapped_gaps == 1
    assert joined.summary.t_junctions_noded == 1


def test_rail_water_and_no_foot_streets_are_left_out() -> None:
    lines = [LineString([(0, 0), (100, 0)]), LineString([(0, 10), (100, 10)]),
             LineString([(0, 20), (100, 20)]), LineString([(0, 30), (100, 30)])]
    s = _streets(lines, road_class=["minor", "rail", "water", "lane"], foot=[True, True, True, False])
    g = walk_graph_from_streets(s)
    assert set(g.edge_street) == {"s0"}
    assert g.summary.streets_walkable == 1


def test_no_foot_edges_raises() -> None:
    s = _streets([LineString([(0, 0), (100, 0)])], road_class=["rail"])
    with pytest.raises(LayerError, match="none of the 1 streets is walkable"):
        walk_graph_from_streets(s)


def test_geographic_target_crs_raises() -> None:
    s = _streets([LineString([(0, 0), (100, 0)])])
    with pytest.raises(CRSError, match="projected CRS in metres.*EPSG:4326"):
        walk_graph_from_streets(s, crs="EPSG:4326")


def test_streets_without_crs_raise() -> None:
    s = gpd.GeoDataFrame({"street_id": ["a"]}, geometry=[LineString([(0, 0), (1, 0)])])
    with pytest.raises(CRSError, match="no CRS"):
        walk_graph_from_streets(s)


def test_geographic_streets_are_projected_to_utm() -> None:
    s = gpd.GeoDataFrame({"street_id": ["a"]}, crs="EPSG:4326",
                         geometry=[LineString([(121.49, 31.24), (121.50, 31.24)])])
    g = walk_graph_from_streets(s)
    assert g.crs.to_epsg() == 32651
    assert g.edge_length.sum() == pytest.approx(951, abs=5)  # 0.01 degree of longitude at 31.24 N


def test_noding_matches_shapely_node_on_random_streets() -> None:
    streets = random_streets(60, seed=3)
    g = walk_graph_from_streets(streets, snap_tolerance_m=0.0)
    noded = shapely.get_parts(shapely.node(shapely.multilinestrings(streets.geometry.to_numpy())))
    pieces = shapely.get_coordinates(noded)
    expected_nodes = len(np.unique(np.round(pieces, 6), axis=0))
    assert g.summary.nodes == expected_nodes
    assert g.edge_length.sum() == pytest.approx(streets.length.sum(), rel=1e-9)


def test_snap_legs_and_unreachable_points() -> None:
    g = walk_graph_from_streets(_streets([LineString([(0, 0), (100, 0)])]))
    pts = gpd.GeoDataFrame({"pid": ["near", "far"]}, crs=CRS,
                           geometry=[Point(30, 12), Point(50, 500)])
    snap = snap_points(g, pts, max_snap_m=100, id_field="pid")
    assert snap.edge.tolist()[1] == -1
    assert snap.leg[0] == pytest.approx(12.0)
    u, v, to_u, to_v = snap.offsets(g)
    end_at = {int(u[0]): to_u[0], int(v[0]): to_v[0]}
    x_of = {i: g.node_xy[i, 0] for i in end_at}
    assert sorted((x_of[i], d) for i, d in end_at.items()) == [(0.0, pytest.approx(42.0)),
                                                                 (100.0, pytest.approx(82.0))]


def test_nearest_edge_search_is_exact() -> None:
    g = walk_graph_from_streets(random_streets(80, seed=9))
    rng = np.random.default_rng(1)
    xy = rng.uniform(-500, 2500, (400, 2)) + (350_000.0, 3_460_000.0)
    pts = gpd.GeoSeries(shapely.points(xy), crs=CRS)
    snap = snap_points(g, pts, max_snap_m=1e9)
    exact = shapely.distance(shapely.points(xy)[:, None], g.edge_lines()[None, :]).min(axis=1)
    np.testing.assert_allclose(snap.leg, exact, atol=1e-6)


def test_shanghai_bund_snapping_reduces_components(shared_datasets) -> None:
    roads = gpd.read_file(shared_datasets / "shanghai_bund_osm.gpkg", layer="roads")
    roads["street_id"] = roads["id"].astype(str)
    roads["road_class"] = roads["kind"].map({"rail": "rail", "ferry": "water"}).fillna("minor")
    snapped = walk_graph_from_streets(roads)
    raw = walk_graph_from_streets(roads, snap_tolerance_m=0.0)
    assert snapped.summary.snapped_gaps > 0
    assert snapped.summary.components < raw.summary.components
    assert snapped.summary.largest_component_share > 0.9
    assert snapped.summary.streets_walkable == int((~roads["kind"].isin(["rail", "ferry"])).sum())
