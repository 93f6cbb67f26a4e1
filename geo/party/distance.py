"""Walking distance between buildings for centre-household links, straight line as fallback."""

from __future__ import annotations

from collections.abc import Callable

import geopandas as gpd
import numpy as np

from geo.access import per_source_distances
from geo.crs import require_metric
from geo.network import WalkGraph, snap_points
from geo.settings import DEFAULTS

__all__ = ["building_distance"]

Distance = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def building_distance(buildings: gpd.GeoDataFrame, graph: WalkGraph | None, *,
                      limit_m: float = DEFAULTS["party_link_max_walk_m"],
                      max_snap_m: float = DEFAULTS["walk_max_snap_m"]) -> Distance:
    """``distance(from_ids, to_ids) -> (metres, method)`` between buildings (door to door).

    Parameters
    ----------
    buildings : GeoDataFrame
        ``building_id`` and polygons or points in a metric CRS.
    graph : WalkGraph or None
        The walk network; ``None`` measures every pair in a straight line.
    limit_m : float
        Walks longer than this are ``inf`` (the link is not allowed).

    Notes
    -----
    The method is ``"walk"`` where both buildings sit on the same connected walk network,
    else ``"straight"`` (a building farther than *max_snap_m* from every street, or on a
    separate piece of network): the straight line is then the best estimate, labelled so.
    """
    require_metric(buildings, func="building_distance")
    pts = buildings.geometry.representative_point()
    xy = np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()])
    row = {b: i for i, b in enumerate(buildings["building_id"].to_numpy())}
    snapped = snap_points(graph, gpd.GeoDataFrame({"building_id": buildings["building_id"]}, geometry=pts),
                          max_snap_m=max_snap_m, id_field="building_id") if graph is not None else None

    def distance(from_ids: np.ndarray, to_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = np.fromiter((row[b] for b in from_ids), dtype=np.int64, count=len(from_ids))
        b = np.fromiter((row[x] for x in to_ids), dtype=np.int64, count=len(to_ids))
        straight = np.hypot(xy[a, None, 0] - xy[None, b, 0], xy[a, None, 1] - xy[None, b, 1])
        if snapped is None or not len(a) or not len(b):
            return straight, np.full(straight.shape, "straight", dtype=object)
        return _walk(graph, snapped, a, b, straight, limit_m)  # type: ignore[arg-type]

    return distance


def _walk(graph: WalkGraph, snapped: object, a: np.ndarray, b: np.ndarray, straight: np.ndarray,
          limit_m: float) -> tuple[np.ndarray, np.ndarray]:
    u, v, to_u, to_v = snapped.offsets(graph)  # type: ignore[attr-defined]
    ok_a, ok_b = snapped.snapped[a], snapped.snapped[b]  # type: ignore[attr-defined]
    node = per_source_distances(graph, u[a], v[a], np.where(ok_a, to_u[a], 0), np.where(ok_a, to_v[a], 0),
                                limit=limit_m)
    walk = np.minimum(node[:, u[b]] + to_u[b][None, :], node[:, v[b]] + to_v[b][None, :])
    edge, t, leg = snapped.edge, snapped.t, snapped.leg  # type: ignore[attr-defined]
    same = (edge[a][:, None] == edge[b][None, :]) & ok_a[:, None] & ok_b[None, :]
    direct = leg[a][:, None] + leg[b][None, :] + np.abs(t[a][:, None] - t[b][None, :]) * graph.edge_length[edge[a]][:, None]
    walk = np.where(same, np.minimum(walk, direct), walk)
    walk = np.where(a[:, None] == b[None, :], 0.0, walk)
    comp_a, comp_b = graph.component[u[a]], graph.component[u[b]]
    on_network = ok_a[:, None] & ok_b[None, :] & (comp_a[:, None] == comp_b[None, :])
    walk = np.where(on_network, np.where(walk <= limit_m, walk, np.inf), straight)
    return walk, np.where(on_network, "walk", "straight").astype(object)
