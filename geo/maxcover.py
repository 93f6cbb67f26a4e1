"""New sites for a facility category: the maximal covering location problem (MCLP).

Choose *k* sites among candidates (given points, or network nodes near uncovered
buildings) so that the most uncovered households get a facility within the level's
walking distance. Coverage sets come from one Dijkstra call per candidate batch (one
extra source node per candidate). The exact model is solved as a MIP with HiGHS
(through :func:`scipy.optimize.milp`, which bundles it) under a time limit; greedy is the
fallback. The result says which method produced it and its gap to the LP bound.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from geo.access import node_distances, per_source_distances
from geo.errors import LayerError
from geo.network import SnappedPoints, WalkGraph, snap_points
from geo.settings import DEFAULTS

__all__ = ["CoverSolution", "SiteSuggestion", "households_added", "solve_max_cover", "suggest_sites"]

log = logging.getLogger(__name__)

_CELLS_PER_BATCH = 20_000_000


@dataclass(frozen=True)
class CoverSolution:
    """Chosen candidate columns, covered weight, method and LP upper bound."""

    chosen: tuple[int, ...]
    covered: float
    method: str  # "exact", "exact (time limit, best found)" or "greedy"
    lp_bound: float

    @property
    def gap(self) -> float:
        """Relative gap to the LP bound (0 = proven optimal by the bound)."""
        return 0.0 if self.lp_bound <= 0 else max(0.0, 1.0 - self.covered / self.lp_bound)


@dataclass(frozen=True)
class SiteSuggestion:
    """Suggested new sites for one category and level."""

    category: str
    level_m: float
    k: int
    sites: gpd.GeoDataFrame
    uncovered_households: float
    newly_covered_households: float
    method: str
    lp_bound: float
    gap: float
    candidates: int
    seconds: float


def _greedy(cover: sparse.csc_matrix, w: np.ndarray, k: int) -> tuple[list[int], float]:
    left = w.astype(float).copy()
    chosen: list[int] = []
    for _ in range(min(k, cover.shape[1])):
        gains = cover.T @ left
        gains[chosen] = -1.0
        j = int(np.argmax(gains))
        if gains[j] <= 0:
            break
        chosen.append(j)
        left[cover[:, j].indices] = 0.0
    return chosen, float(w.sum() - left.sum())


def _model(cover: sparse.csc_matrix, w: np.ndarray, k: int) -> tuple[np.ndarray, list[LinearConstraint], Bounds]:
    """MCLP as ``min -w.y`` s.t. ``y_i <= sum_j a_ij x_j``, ``sum x = k``; vars ``[x, y]``."""
    n_b, n_c = cover.shape
    c = np.concatenate([np.zeros(n_c), -w])
    link = sparse.hstack([-cover, sparse.identity(n_b)], format="csr")
    count = sparse.csr_matrix(np.concatenate([np.ones(n_c), np.zeros(n_b)])[None, :])
    cons = [LinearConstraint(link, -np.inf, 0.0), LinearConstraint(count, 0, min(k, n_c))]
    return c, cons, Bounds(0.0, 1.0)


def solve_max_cover(cover: sparse.spmatrix, weights: np.ndarray, k: int, *,
                    method: str = "auto",
                    time_limit_s: float = DEFAULTS["maxcover_time_limit_s"]) -> CoverSolution:
    """Pick at most *k* columns of the 0/1 *cover* matrix (rows = demand) maximising weight.

    ``method="auto"`` solves the MIP with a time limit and keeps the better of its best
    solution and greedy; ``"exact"`` and ``"greedy"`` force one.
    """
    if method not in ("auto", "exact", "greedy"):
        raise LayerError(f"solve_max_cover: method must be auto, exact or greedy; got {method!r}")
    cover = sparse.csc_matrix(cover, dtype=float)
    w = np.asarray(weights, dtype=float)
    c, cons, bounds = _model(cover, w, k)
    lp = milp(c, constraints=cons, bounds=bounds, options={"time_limit": time_limit_s})
    bound = -lp.fun if lp.x is not None else float(w.sum())
    greedy, greedy_cov = _greedy(cover, w, k)
    if method == "greedy":
        return CoverSolution(tuple(greedy), greedy_cov, "greedy", bound)
    integrality = np.concatenate([np.ones(cover.shape[1]), np.zeros(cover.shape[0])])
    res = milp(c, constraints=cons, bounds=bounds, integrality=integrality,
               options={"time_limit": time_limit_s})
    if res.x is None:
        log.warning("MIP found no solution in %.0f s (%s): using greedy", time_limit_s,
                    res.message)
        return CoverSolution(tuple(greedy), greedy_cov, "greedy", bound)
    chosen = tuple(int(j) for j in np.flatnonzero(res.x[: cover.shape[1]] > 0.5))
    covered = float(w[np.asarray(cover[:, list(chosen)].sum(axis=1)).ravel() > 0].sum())
    label = "exact" if res.status == 0 else "exact (time limit, best found)"
    if method == "auto" and res.status != 0 and greedy_cov > covered:
        return CoverSolution(tuple(greedy), greedy_cov, "greedy", bound)
    return CoverSolution(chosen, covered, label, bound)


def households_added(cover: sparse.spmatrix, weights: np.ndarray) -> np.ndarray:
    """Weight each column of *cover* adds, taking the columns best first (they sum to the union).

    A household in reach of two sites counts once, for the site that adds more; the
    result is in the columns' order. Example: columns covering {0, 1} and {1, 2} with
    weights (5, 3, 1) add 8 and 1.
    """
    cover = sparse.csc_matrix(cover, dtype=bool)
    w = np.asarray(weights, dtype=float)
    left = w.copy()
    added = np.zeros(cover.shape[1])
    todo = list(range(cover.shape[1]))
    while todo:
        gains = [left[cover[:, j].indices].sum() for j in todo]
        j = todo.pop(int(np.argmax(gains)))
        added[j] = left[cover[:, j].indices].sum()
        left[cover[:, j].indices] = 0.0
    return added


def _candidate_nodes(graph: WalkGraph, demand: SnappedPoints, demand_rows: np.ndarray, level_m: float,
                     n_candidates: int, seed: int) -> np.ndarray:
    """Network nodes within *level_m* of some uncovered building, sampled to *n_candidates*."""
    near = np.flatnonzero(np.isfinite(
        node_distances(graph, demand, limit=level_m,
                       mask=np.isin(np.arange(len(demand.edge)), demand_rows))))
    if len(near) > n_candidates:
        near = np.sort(np.random.default_rng(seed).choice(near, n_candidates, replace=False))
    return near


def _coverage(graph: WalkGraph, cand: tuple[np.ndarray, ...], demand: SnappedPoints, rows: np.ndarray,
              level_m: float) -> sparse.csc_matrix:
    """0/1 matrix: demand building (rows) x candidate reached within *level_m*."""
    cu, cv, c_to_u, c_to_v = cand
    bu, bv, b_to_u, b_to_v = (x[rows] for x in demand.offsets(graph))
    batch = max(1, _CELLS_PER_BATCH // max(graph.n_nodes, 1))
    cols = []
    for s in range(0, len(cu), batch):
        sl = slice(s, s + batch)
        d = per_source_distances(graph, cu[sl], cv[sl], c_to_u[sl], c_to_v[sl], limit=level_m)
        reach = np.minimum(d[:, bu] + b_to_u, d[:, bv] + b_to_v) <= level_m
        cols.append(sparse.csc_matrix(reach.T))
    return sparse.hstack(cols, format="csc") if cols else sparse.csc_matrix((len(rows), 0))


def suggest_sites(
    graph: WalkGraph,
    buildings: gpd.GeoDataFrame,
    *,
    category: str,
    level_m: float,
    k: int,
    candidates: gpd.GeoDataFrame | None = None,
    n_candidates: int = DEFAULTS["maxcover_candidates"],
    time_limit_s: float = DEFAULTS["maxcover_time_limit_s"],
    method: str = "auto",
    max_snap_m: float = DEFAULTS["walk_max_snap_m"],
    seed: int = 42,
) -> SiteSuggestion:
    """Suggest *k* new sites of *category* covering the most uncovered households.

    Parameters
    ----------
    graph : WalkGraph
    buildings : GeoDataFrame
        Buildings with ``dist_<category>`` (e.g. ``AccessResult.buildings``) and
        ``households`` (1 per building when absent).
    level_m : float
        A building is covered when a site is within this walk.
    candidates : GeoDataFrame, optional
        Candidate points; default: up to *n_candidates* network nodes (seeded sample)
        within *level_m* of an uncovered building.
    method : {"auto", "exact", "greedy"}
    """
    t0 = time.perf_counter()
    col = f"dist_{category}"
    if col not in buildings.columns:
        raise LayerError(f"suggest_sites: the buildings have no {col!r} column; run "
                         "service_circle_analysis first or check the category name")
    hh = (pd.to_numeric(buildings["households"], errors="coerce").fillna(0).to_numpy(float)
          if "households" in buildings.columns else np.ones(len(buildings)))
    demand = snap_points(graph, buildings, max_snap_m=max_snap_m)
    uncovered = ~(buildings[col].to_numpy(float) <= level_m)
    rows = np.flatnonzero(uncovered & demand.snapped & (hh > 0))
    if candidates is not None:
        snap = snap_points(graph, candidates, max_snap_m=max_snap_m)
        keep = np.flatnonzero(snap.snapped)
        cand = tuple(x[keep] for x in snap.offsets(graph))
        cand_geom = candidates.geometry.to_crs(graph.crs).to_numpy()[keep]
        cand_id = candidates.index.to_numpy()[keep]
    else:
        nodes = _candidate_nodes(graph, demand, rows, level_m, n_candidates, seed)
        zero = np.zeros(len(nodes))
        cand = (nodes, nodes, zero, zero)
        cand_geom = shapely.points(graph.node_xy[nodes])
        cand_id = np.array([f"node{n}" for n in nodes], dtype=object)
    cover = _coverage(graph, cand, demand, rows, level_m)
    sol = solve_max_cover(cover, hh[rows], k, method=method, time_limit_s=time_limit_s)
    chosen = list(sol.chosen)
    gains = np.asarray(cover[:, chosen].multiply(hh[rows][:, None]).sum(axis=0)).ravel()
    added = households_added(cover[:, chosen], hh[rows])
    order = np.argsort(-added, kind="stable")
    sites = gpd.GeoDataFrame({"candidate_id": cand_id[chosen][order], "category": category,
                              "rank": np.arange(1, len(chosen) + 1),
                              "households_added": added[order], "households_in_reach": gains[order]},
                             geometry=list(cand_geom[chosen][order]), crs=graph.crs)
    out = SiteSuggestion(
        category=category, level_m=float(level_m), k=k, sites=sites,
        uncovered_households=float(hh[rows].sum()), newly_covered_households=sol.covered,
        method=sol.method, lp_bound=sol.lp_bound, gap=sol.gap, candidates=cover.shape[1],
        seconds=time.perf_counter() - t0)
    log.info("new %s sites: %d of %d candidates cover %.0f of %.0f uncovered households "
             "(%s, gap to LP bound %.1f %%)", category, len(chosen), cover.shape[1],
             sol.covered, out.uncovered_households, sol.method, 100 * sol.gap)
    return out
