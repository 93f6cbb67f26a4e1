"""Shared helpers for the 15-minute-circle tests: random layers and a networkx reference."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from geo.network import SnappedPoints, WalkGraph

CRS = "EPSG:32651"
X0, Y0 = 350_000.0, 3_460_000.0


def random_streets(n_lines: int, *, seed: int, extent: float = 2000.0) -> gpd.GeoDataFrame:
    """Random straight and bent streets that cross each other (noding needed)."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, extent, (n_lines, 3, 2)) + (X0, Y0)
    return gpd.GeoDataFrame({"street_id": [f"s{i}" for i in range(n_lines)]},
                            geometry=shapely.linestrings(pts), crs=CRS)


def random_points(n: int, *, seed: int, extent: float = 2000.0, prefix: str = "p"):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, extent, (n, 2)) + (X0, Y0)
    return xy, [f"{prefix}{i}" for i in range(n)]


def random_layers(*, seed: int, n_lines: int = 40, n_buildings: int = 150, n_services: int = 12):
    streets = random_streets(n_lines, seed=seed)
    bxy, bids = random_points(n_buildings, seed=seed + 1, prefix="b")
    size = 6.0
    buildings = gpd.GeoDataFrame(
        {"building_id": bids, "households": np.random.default_rng(seed).integers(1, 60, len(bids))},
        geometry=shapely.box(bxy[:, 0] - size, bxy[:, 1] - size, bxy[:, 0] + size, bxy[:, 1] + size),
        crs=CRS)
    sxy, sids = random_points(n_services, seed=seed + 2, prefix="s")
    cats = np.array(["kindergarten", "bus_stop", "primary_school"])[np.arange(n_services) % 3]
    services = gpd.GeoDataFrame({"point_id": sids, "category": cats},
                                geometry=shapely.points(sxy), crs=CRS)
    return streets, buildings, services


def nx_door_graph(graph: WalkGraph, buildings: SnappedPoints, services: SnappedPoints) -> nx.Graph:
    """The walk graph in networkx with every door and its projection spliced into its edge."""
    weight: dict[tuple, float] = {}

    def add(a, b, w):
        key = (a, b) if repr(a) < repr(b) else (b, a)
        weight[key] = min(weight.get(key, np.inf), w)

    att = pd.DataFrame({
        "edge": np.concatenate([buildings.edge, services.edge]),
        "t": np.concatenate([buildings.t, services.t]),
        "leg": np.concatenate([buildings.leg, services.leg]),
        "door": [("b", i) for i in range(len(buildings.edge))]
        + [("s", j) for j in range(len(services.edge))],
    })
    att = att[att.edge >= 0].sort_values(["edge", "t"])
    spliced = set(att.edge)
    for e, (u, v, w) in enumerate(zip(graph.edge_u, graph.edge_v, graph.edge_length, strict=True)):
        if e not in spliced:
            add(int(u), int(v), float(w))
    for e, grp in att.groupby("edge"):
        u, v, w = int(graph.edge_u[e]), int(graph.edge_v[e]), float(graph.edge_length[e])
        prev, prev_t = u, 0.0
        for row in grp.itertuples():
            proj = ("proj",) + row.door
            add(prev, proj, (row.t - prev_t) * w)
            add(proj, row.door, row.leg)
            prev, prev_t = proj, row.t
        add(prev, v, (1.0 - prev_t) * w)
    g = nx.Graph()
    g.add_weighted_edges_from((a, b, w) for (a, b), w in weight.items())
    return g


def nx_distances(g: nx.Graph, n_buildings: int, services: SnappedPoints, mask: np.ndarray,
                 limit: float) -> np.ndarray:
    """Door-to-door distances from the nearest masked service door by networkx."""
    sources = [("s", j) for j in np.flatnonzero(mask & services.snapped)]
    if not sources:
        return np.full(n_buildings, np.nan)
    found = nx.multi_source_dijkstra_path_length(g, sources, cutoff=limit)
    return np.array([found.get(("b", i), np.nan) for i in range(n_buildings)])
