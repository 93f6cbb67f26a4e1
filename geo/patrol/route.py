"""Suggested patrol route: a walking loop on the street network through the buildings to visit.

The stops (a grid's unvisited buildings and the buildings of key households due a visit)
are snapped to their nearest walk edge (:func:`geo.network.snap_points`); door-to-door
walking distances come from one multi-source Dijkstra over the walk graph. The loop is a
travelling-salesman tour on those distances: nearest-neighbour construction, then 2-opt
until no exchange shortens it. Its quality is reported against a **lower bound**: the best
Held-Karp 1-tree over a few roots (every tour is a 1-tree, so no loop can be shorter).

The loop starts and ends at the first stop, or at *start* (where the worker stands).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse.csgraph import dijkstra, minimum_spanning_tree

from geo.errors import LayerError
from geo.network import SnappedPoints, WalkGraph, snap_points
from geo.settings import DEFAULTS

__all__ = ["PatrolRoute", "patrol_route", "tour_length", "one_tree_bound"]

log = logging.getLogger(__name__)

# Roots tried for the 1-tree bound: each costs one MST over the stops.
_BOUND_ROOTS = 12
_START = "__start__"


@dataclass(frozen=True)
class PatrolRoute:
    """A patrol loop: stops in walking order, the walked line and its length against a bound.

    ``stops`` has ``order`` (1 = first), ``building_id``, ``leg_m`` (walk from the previous
    stop or the start) and ``cumulative_m``; ``path`` is the loop along the streets in the
    graph's CRS (``None`` with fewer than two places); ``unreachable`` lists stops farther
    than ``walk_max_snap_m`` from any street or on a street piece cut off from the rest.
    """

    stops: pd.DataFrame
    path: shapely.LineString | None
    crs: object
    length_m: float
    minutes: float
    lower_bound_m: float
    unreachable: tuple[str, ...]

    @property
    def gap(self) -> float:
        """How much longer than the lower bound the loop is (0.05 = at most 5 % above optimal)."""
        return (self.length_m - self.lower_bound_m) / self.lower_bound_m if self.lower_bound_m > 0 else 0.0


@dataclass(frozen=True)
class _Doors:
    """Door-to-door walk distances and what is needed to draw each walk."""

    d: np.ndarray        # (k, k) metres
    how: np.ndarray      # (k, k) 0-3: via end a (0 = u, 1 = v) of i's edge and end b of j's (2a + b); 4: along one edge
    xy: np.ndarray       # (k, 2) door points on the street
    nodes: np.ndarray    # (k, 2) end nodes of each door's edge
    rows: np.ndarray     # (k, 2) Dijkstra row of each of those nodes
    pred: np.ndarray     # Dijkstra predecessors


def _doors(graph: WalkGraph, snapped: SnappedPoints) -> _Doors:
    u, v, to_u, to_v = snapped.offsets(graph)
    sources, inverse = np.unique(np.concatenate([u, v]), return_inverse=True)
    dist, pred = dijkstra(graph.matrix, directed=False, indices=sources, return_predecessors=True)
    k = len(u)
    rows, nodes, offs = (np.stack(p, axis=1) for p in ((inverse[:k], inverse[k:]), (u, v), (to_u, to_v)))
    options = [offs[:, a][:, None] + dist[rows[:, a]][:, nodes[:, b]] + offs[:, b][None, :]
               for a in (0, 1) for b in (0, 1)]
    e = np.where(snapped.snapped, snapped.edge, 0)
    along = snapped.leg[:, None] + snapped.leg[None, :] + np.abs(snapped.t[:, None] - snapped.t[None, :]) * \
        graph.edge_length[e][:, None]
    options.append(np.where(e[:, None] == e[None, :], along, np.inf))
    stack = np.stack(options)
    stack[np.isnan(stack)] = np.inf  # unsnapped doors (NaN offsets) reach nothing
    how = np.argmin(stack, axis=0)
    d = np.take_along_axis(stack, how[None], axis=0)[0]
    np.fill_diagonal(d, 0.0)
    a_xy, b_xy = graph.node_xy[graph.edge_u[e]], graph.node_xy[graph.edge_v[e]]
    xy = a_xy + np.nan_to_num(snapped.t)[:, None] * (b_xy - a_xy)
    return _Doors(d=d, how=how, xy=xy, nodes=nodes, rows=rows, pred=pred)


def _walk(graph: WalkGraph, doors: _Doors, i: int, j: int) -> list[np.ndarray]:
    """Points of the walk from door i to door j (door i included, door j not)."""
    how = int(doors.how[i, j])
    out = [doors.xy[i]]
    if how == 4:
        return out
    a, b = divmod(how, 2)
    first, node, back = doors.nodes[i, a], doors.nodes[j, b], []
    while node != first and node >= 0:
        back.append(graph.node_xy[node])
        node = doors.pred[doors.rows[i, a], node]
    back.append(graph.node_xy[first])
    return out + back[::-1]


def _nearest_neighbour(d: np.ndarray) -> np.ndarray:
    n = len(d)
    tour, left = [0], np.ones(n, dtype=bool)
    left[0] = False
    for _ in range(n - 1):
        row = np.where(left, d[tour[-1]], np.inf)
        nxt = int(np.argmin(row))
        tour.append(nxt)
        left[nxt] = False
    return np.array(tour)


def _two_opt(tour: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Reverse tour pieces while that shortens the loop (first-best exchange per position)."""
    n = len(tour)
    improved = True
    while improved and n > 3:
        improved = False
        for i in range(n - 2):
            j = np.arange(i + 2, n if i > 0 else n - 1)
            a, b, c, e = tour[i], tour[i + 1], tour[j], tour[(j + 1) % n]
            delta = d[a, c] + d[b, e] - d[a, b] - d[c, e]
            k = int(np.argmin(delta))
            if delta[k] < -1e-9:
                tour[i + 1:j[k] + 1] = tour[i + 1:j[k] + 1][::-1]
                improved = True
    return tour


def tour_length(tour: np.ndarray, d: np.ndarray) -> float:
    """Length of the closed loop *tour* under distances *d*."""
    return float(d[tour, np.roll(tour, -1)].sum())


def one_tree_bound(d: np.ndarray) -> float:
    """Best Held-Karp 1-tree over up to ``_BOUND_ROOTS`` roots: no closed tour is shorter."""
    n = len(d)
    if n < 3:
        return float(2 * d.max()) if n == 2 else 0.0
    two = np.sort(d + np.diag(np.full(n, np.inf)), axis=1)[:, :2].sum(axis=1)
    best = 0.0
    for r in np.argsort(-two)[:_BOUND_ROOTS]:
        rest = np.delete(np.delete(d, r, axis=0), r, axis=1)
        # csgraph drops zero entries: co-located doors get a hair of length instead.
        mst = minimum_spanning_tree(np.where(rest > 0, rest, 1e-9)).sum()
        best = max(best, float(mst + two[r]))
    return best


def _path(graph: WalkGraph, doors: _Doors, tour: np.ndarray) -> shapely.LineString:
    """The loop as one line along the streets, back to where it started."""
    pts = [p for i, j in zip(tour, np.roll(tour, -1), strict=True) for p in _walk(graph, doors, int(i), int(j))]
    return shapely.LineString(np.array(pts + [doors.xy[tour[0]]]))


def patrol_route(
    graph: WalkGraph,
    stops: gpd.GeoDataFrame,
    *,
    id_column: str = "building_id",
    start: shapely.Point | None = None,
    walk_speed_mps: float = DEFAULTS["walk_speed_mps"],
    max_snap_m: float = DEFAULTS["walk_max_snap_m"],
) -> PatrolRoute:
    """A short walking loop through every stop, with its length against a lower bound.

    Parameters
    ----------
    graph
        Walk network (:func:`geo.network.walk_graph_from_streets`) around the stops.
    stops
        Buildings (or points) to pass, any CRS, with an *id_column*.
    start
        Where the loop starts and ends, in ``graph.crs`` (default: the first stop reached).
    walk_speed_mps
        Walking speed for ``minutes``.
    max_snap_m
        Stops farther than this from every street are unreachable.

    Returns
    -------
    PatrolRoute
    """
    if id_column not in stops.columns:
        raise LayerError(f"patrol_route: stops have no column {id_column!r}; pass id_column=")
    if walk_speed_mps <= 0:
        raise LayerError(f"patrol_route: walk_speed_mps={walk_speed_mps} must be > 0; set walk_speed_mps")
    places = stops[[id_column, "geometry"]].to_crs(graph.crs).rename(columns={id_column: "id"})
    places["id"] = places["id"].astype(str)
    if start is not None:
        places = pd.concat([gpd.GeoDataFrame({"id": [_START]}, geometry=[start], crs=graph.crs), places],
                           ignore_index=True)
    snapped = snap_points(graph, places, max_snap_m=max_snap_m, id_field="id")
    doors = _doors(graph, snapped)
    # Keep the stops reachable from the anchor (the start, else the best-connected stop).
    ok = snapped.snapped
    reach = np.isfinite(doors.d) & ok[:, None] & ok[None, :]
    anchor = 0 if start is not None else int(np.argmax(reach.sum(axis=1)))
    keep = np.flatnonzero(reach[anchor])
    keep = np.concatenate([[anchor], keep[keep != anchor]]) if len(keep) else keep
    ids = places["id"].to_numpy()
    lost = tuple(str(x) for x in np.delete(ids, keep) if x != _START)
    d = doors.d[np.ix_(keep, keep)]
    tour = _two_opt(_nearest_neighbour(d), d) if len(keep) else np.zeros(0, dtype=np.int64)
    length = tour_length(tour, d) if len(tour) > 1 else 0.0
    legs = np.concatenate([[0.0], d[tour[:-1], tour[1:]]]) if len(tour) else np.zeros(0)
    table = pd.DataFrame({"building_id": ids[keep[tour]], "leg_m": legs, "cumulative_m": np.cumsum(legs)})
    table = table.loc[table["building_id"] != _START].reset_index(drop=True)
    table.insert(0, "order", np.arange(1, len(table) + 1))
    path = _path(graph, doors, keep[tour]) if len(tour) > 1 else None
    bound = one_tree_bound(d)
    log.info("patrol_route: %d stops (%d unreachable), loop %.0f m, 1-tree bound %.0f m",
             len(table), len(lost), length, bound)
    return PatrolRoute(stops=table, path=path, crs=graph.crs, length_m=length,
                       minutes=length / walk_speed_mps / 60.0, lower_bound_m=bound, unreachable=lost)
