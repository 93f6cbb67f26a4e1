"""Suggested patrol route: a loop through every reachable stop, distances checked against networkx."""

from __future__ import annotations

import itertools

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point

from geo.errors import LayerError
from geo.network import snap_points, walk_graph_from_streets
from geo.patrol.route import one_tree_bound, patrol_route, tour_length

CRS = "EPSG:32650"


def lattice(n: int = 6, step: float = 100.0) -> gpd.GeoDataFrame:
    """An n x n street lattice with one diagonal lane (so shortest walks are not all Manhattan)."""
    lines = [LineString([(0, i * step), ((n - 1) * step, i * step)]) for i in range(n)]
    lines += [LineString([(i * step, 0), (i * step, (n - 1) * step)]) for i in range(n)]
    lines.append(LineString([(0, 0), (2 * step, 2 * step)]))
    return gpd.GeoDataFrame({"street_id": [f"s{i}" for i in range(len(lines))]}, geometry=lines, crs=CRS)


def stops(seed: int, k: int) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(10, 490, (k, 2))
    return gpd.GeoDataFrame({"building_id": [f"b{i}" for i in range(k)]},
                            geometry=shapely.box(xy[:, 0] - 4, xy[:, 1] - 4, xy[:, 0] + 4, xy[:, 1] + 4), crs=CRS)


def nx_door_distance(graph, snapped, i: int, j: int) -> float:
    """Door i to door j through a networkx copy of the walk graph with each door on its edge."""
    g = nx.Graph()
    for u, v, w in zip(graph.edge_u, graph.edge_v, graph.edge_length, strict=True):
        if not g.has_edge(u, v) or g[u][v]["weight"] > w:
            g.add_edge(int(u), int(v), weight=float(w))
    for door in (i, j):
        e = snapped.edge[door]
        u, v, t, length = int(graph.edge_u[e]), int(graph.edge_v[e]), snapped.t[door], graph.edge_length[e]
        g.add_edge(("door", door), u, weight=snapped.leg[door] + t * length)
        g.add_edge(("door", door), v, weight=snapped.leg[door] + (1 - t) * length)
    if snapped.edge[i] == snapped.edge[j]:
        along = snapped.leg[i] + snapped.leg[j] + abs(snapped.t[i] - snapped.t[j]) * graph.edge_length[snapped.edge[i]]
        g.add_edge(("door", i), ("door", j), weight=along)
    return nx.shortest_path_length(g, ("door", i), ("door", j), weight="weight")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_route_passes_every_stop_once_and_its_legs_are_networkx_shortest_walks(seed: int) -> None:
    graph = walk_graph_from_streets(lattice())
    b = stops(seed, 15)
    route = patrol_route(graph, b)
    assert sorted(route.stops["building_id"]) == sorted(b["building_id"])
    assert route.stops["order"].tolist() == list(range(1, 16))
    snapped = snap_points(graph, b, id_field="building_id")
    index = {k: i for i, k in enumerate(snapped.ids)}
    order = [index[k] for k in route.stops["building_id"]]
    legs = [nx_door_distance(graph, snapped, a, c) for a, c in zip(order[:-1], order[1:], strict=True)]
    assert route.stops["leg_m"].iloc[1:].to_numpy() == pytest.approx(legs)
    back = nx_door_distance(graph, snapped, order[-1], order[0])
    assert route.length_m == pytest.approx(sum(legs) + back)
    # The drawn line runs street to street: the door legs (building to street) are walked twice per stop.
    assert route.path.length + 2 * snapped.leg.sum() == pytest.approx(route.length_m)
    assert route.minutes == pytest.approx(route.length_m / 1.0 / 60)
    assert 0 < route.lower_bound_m <= route.length_m


@pytest.mark.parametrize("seed", [4, 5, 6, 7])
def test_small_loops_sit_between_the_bound_and_the_brute_force_optimum(seed: int) -> None:
    graph = walk_graph_from_streets(lattice())
    route = patrol_route(graph, stops(seed, 7))
    snapped = snap_points(graph, stops(seed, 7), id_field="building_id")
    d = np.array([[0.0 if a == c else nx_door_distance(graph, snapped, a, c) for c in range(7)] for a in range(7)])
    best = min(tour_length(np.array((0, *p)), d) for p in itertools.permutations(range(1, 7)))
    assert one_tree_bound(d) <= best + 1e-6
    assert route.lower_bound_m == pytest.approx(one_tree_bound(d))
    assert best - 1e-6 <= route.length_m <= 1.05 * best
    assert route.gap == pytest.approx((route.length_m - route.lower_bound_m) / route.lower_bound_m)


def test_start_point_far_and_cut_off_stops() -> None:
    streets = lattice(4)
    island = gpd.GeoDataFrame({"street_id": ["island"]}, geometry=[LineString([(2000, 0), (2100, 0)])], crs=CRS)
    graph = walk_graph_from_streets(gpd.GeoDataFrame(
        {"street_id": list(streets["street_id"]) + ["island"]},
        geometry=list(streets.geometry) + list(island.geometry), crs=CRS))
    b = stops(8, 5)
    b = b.assign(geometry=b.geometry.translate(-200, -200).where(b.geometry.centroid.x < 300,
                                                                 b.geometry.translate(-100, -100)))
    far = gpd.GeoDataFrame({"building_id": ["far", "isle"]},
                           geometry=[Point(150, 5000).buffer(5), Point(2050, 10).buffer(5)], crs=CRS)
    everything = gpd.GeoDataFrame(
        {"building_id": list(b["building_id"]) + list(far["building_id"])},
        geometry=list(b.geometry) + list(far.geometry), crs=CRS)
    route = patrol_route(graph, everything, start=Point(0, 0))
    assert set(route.unreachable) == {"far", "isle"}
    assert "__start__" not in set(route.stops["building_id"])
    assert len(route.stops) == 5
    assert route.stops["leg_m"].iloc[0] > 0  # walked from the start
    assert route.path.coords[0] == route.path.coords[-1] == (0.0, 0.0)


def test_one_stop_and_bad_arguments() -> None:
    graph = walk_graph_from_streets(lattice(3))
    one = patrol_route(graph, stops(9, 1).assign(geometry=[Point(50, 50).buffer(3)]))
    assert one.length_m == 0 and one.path is None and one.stops["building_id"].tolist() == ["b0"]
    with pytest.raises(LayerError, match="no column 'code'; pass id_column="):
        patrol_route(graph, stops(9, 3), id_column="code")
    with pytest.raises(LayerError, match="walk_speed_mps=0 must be > 0"):
        patrol_route(graph, stops(9, 3), walk_speed_mps=0)
