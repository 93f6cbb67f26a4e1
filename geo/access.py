"""Walking distance from every building to the nearest facility of each category.

One multi-source :func:`scipy.sparse.csgraph.dijkstra` per category: a super-source node
is linked to both ends of every service point's edge with the door-to-node distance
(snap leg + along-edge part), so node distances are exact door-to-node walks. A
building then takes the better of its own edge's two ends plus its own leg, or the
direct walk along a shared edge when a facility sits on the same edge.

``mode="euclidean"`` gives straight-line distances instead: a *screening* view only,
which overstates coverage (:func:`euclidean_overstatement` says by how much).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from geo.errors import LayerError
from geo.lifecircle import DEFAULT_CHECKLIST, Checklist, level_distances
from geo.network import SnappedPoints, WalkGraph, snap_points, walk_graph_from_streets
from geo.settings import DEFAULTS

__all__ = [
    "MODES",
    "AccessResult",
    "node_distances",
    "per_source_distances",
    "nearest_facility_distances",
    "levels_met",
    "complete_circles",
    "coverage_by_level",
    "uncovered_buildings",
    "service_circle_analysis",
    "euclidean_overstatement",
]

log = logging.getLogger(__name__)

#: Distance modes and how a map or report must label them.
MODES: dict[str, str] = {
    "network": "步行网络距离",
    "euclidean": "直线距离（仅供初筛，会高估覆盖）",
}


@dataclass(frozen=True)
class AccessResult:
    """Everything the 15-minute-circle analysis produced.

    ``buildings`` keeps the input rows (input CRS) plus ``dist_<category>`` (m, NaN when
    unreachable within the largest level), ``grid_id``/``community_id`` when known, and
    ``complete_<level>`` flags. ``coverage`` is long: one row per group, level and
    category (``"complete"`` for the whole circle).
    """

    mode: str
    levels_m: tuple[float, ...]
    checklist: Checklist
    buildings: gpd.GeoDataFrame
    services: gpd.GeoDataFrame
    coverage: pd.DataFrame
    graph: WalkGraph | None
    service_snap: SnappedPoints | None
    unsnapped_buildings: tuple[str, ...]
    unsnapped_services: tuple[str, ...]
    grids: gpd.GeoDataFrame | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def label_zh(self) -> str:
        return MODES[self.mode]


def _super_source_matrix(graph: WalkGraph, nodes: np.ndarray, offsets: np.ndarray) -> sparse.csr_matrix:
    """``graph.matrix`` plus one extra node linked to *nodes* with *offsets* (directed)."""
    order = np.lexsort((offsets, nodes))
    nodes, offsets = nodes[order], offsets[order]
    first = np.ones(len(nodes), dtype=bool)
    first[1:] = nodes[1:] != nodes[:-1]
    nodes, offsets = nodes[first], np.maximum(offsets[first], 1e-9)  # explicit 0 = no edge
    m = graph.matrix
    n = m.shape[0]
    indptr = np.concatenate([m.indptr, [m.indptr[-1] + len(nodes)]])
    return sparse.csr_matrix(
        (np.concatenate([m.data, offsets]), np.concatenate([m.indices, nodes]), indptr),
        shape=(n + 1, n + 1),
    )


def node_distances(graph: WalkGraph, sources: SnappedPoints, *, limit: float,
                   mask: np.ndarray | None = None) -> np.ndarray:
    """Walk distance (m) from the nearest of *sources* (door) to every node; inf beyond *limit*."""
    use = sources.snapped if mask is None else sources.snapped & mask
    if not use.any():
        return np.full(graph.n_nodes, np.inf)
    u, v, to_u, to_v = (a[use] for a in sources.offsets(graph))
    aug = _super_source_matrix(graph, np.concatenate([u, v]), np.concatenate([to_u, to_v]))
    dist = dijkstra(aug, directed=True, indices=graph.n_nodes, limit=limit)
    return dist[: graph.n_nodes]


def per_source_distances(graph: WalkGraph, u: np.ndarray, v: np.ndarray, to_u: np.ndarray,
                         to_v: np.ndarray, *, limit: float) -> np.ndarray:
    """Walk distance from each of *k* sources to every node, shape ``(k, n)``; inf beyond *limit*.

    A source sits on edge ``u``-``v`` at door distances ``to_u``/``to_v`` (a node source has
    ``u == v`` and zero offsets). One Dijkstra call runs all sources (one extra node each).
    """
    k, m, n = len(u), graph.matrix, graph.n_nodes
    if k == 0:
        return np.zeros((0, n))
    two = u != v  # a node source (u == v) gets one link
    rows = np.concatenate([np.arange(k), np.flatnonzero(two)])
    cols = np.concatenate([u, v[two]])
    vals = np.maximum(np.concatenate([to_u, to_v[two]]), 1e-9)  # explicit 0 = no edge
    extra = sparse.csr_matrix((vals, (rows, cols)), shape=(k, n + k))
    base = sparse.csr_matrix((m.data, m.indices, m.indptr), shape=(n, n + k))
    aug = sparse.vstack([base, extra], format="csr")
    dist = dijkstra(aug, directed=True, indices=np.arange(n, n + k), limit=limit)
    return dist[:, :n]


def _shared_edges(targets: SnappedPoints, sources: SnappedPoints) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(target, source)`` of points snapped to the same edge."""
    src = np.flatnonzero(sources.snapped)
    tgt = np.flatnonzero(targets.snapped)
    shared = pd.merge(pd.DataFrame({"edge": targets.edge[tgt], "i": tgt}),
                      pd.DataFrame({"edge": sources.edge[src], "j": src}), on="edge")
    return shared["i"].to_numpy(), shared["j"].to_numpy()


def _door_distances(graph: WalkGraph, node_dist: np.ndarray, targets: SnappedPoints,
                    sources: SnappedPoints, source_mask: np.ndarray,
                    shared: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Door-to-door distance of each target from node distances plus same-edge shortcuts."""
    u, v, to_u, to_v = targets.offsets(graph)
    dist = np.minimum(node_dist[u] + to_u, node_dist[v] + to_v)
    i, j = shared if shared is not None else _shared_edges(targets, sources)
    use = source_mask[j]
    i, j = i[use], j[use]
    if len(i):
        direct = (targets.leg[i] + sources.leg[j]
                  + np.abs(targets.t[i] - sources.t[j]) * graph.edge_length[targets.edge[i]])
        np.minimum.at(dist, i, direct)
    return dist


def _require_column(frame: pd.DataFrame, column: str, *, layer: str, func: str) -> None:
    if column not in frame.columns:
        raise LayerError(f"{func}: the {layer} layer has no {column!r} column; "
                         f"columns are {', '.join(map(str, frame.columns))}; pass "
                         f"{'category_field' if layer == 'service points' else 'id_field'}=...")


def _categories(services: pd.DataFrame, category_field: str, func: str) -> np.ndarray:
    _require_column(services, category_field, layer="service points", func=func)
    cats = services[category_field]
    return np.array(sorted(cats.dropna().astype(str).unique()), dtype=object)


def nearest_facility_distances(
    graph: WalkGraph | None,
    buildings: gpd.GeoDataFrame,
    services: gpd.GeoDataFrame,
    *,
    category_field: str = "category",
    id_field: str = "building_id",
    max_distance_m: float = max(DEFAULTS["walk_levels_m"]),
    max_snap_m: float = DEFAULTS["walk_max_snap_m"],
    mode: str = "network",
    building_snap: SnappedPoints | None = None,
    service_snap: SnappedPoints | None = None,
) -> pd.DataFrame:
    """Walking distance from each building to the nearest facility of every category.

    Parameters
    ----------
    graph : WalkGraph or None
        The walk network (``None`` only with ``mode="euclidean"``).
    buildings, services : GeoDataFrame
        Buildings (polygons; their point on surface is the door) and service points,
        any CRS.
    category_field : str
        Column of *services* naming the category.
    max_distance_m : float
        Search limit, normally the largest level; farther facilities give NaN.
    mode : {"network", "euclidean"}
        ``"euclidean"`` is a straight-line screening mode that overstates coverage.
    building_snap, service_snap : SnappedPoints, optional
        Reuse snapping already done on the same layers.

    Returns
    -------
    DataFrame
        Index ``building_id``; one float column ``dist_<category>`` (m) per category.
    """
    func = "nearest_facility_distances"
    _require_column(buildings, id_field, layer="buildings", func=func)
    cats = _categories(services, category_field, func)
    cat_of = services[category_field].astype("string").to_numpy()
    index = pd.Index(buildings[id_field].astype(str).to_numpy(), name="building_id")
    if mode == "euclidean":
        return _euclidean(buildings, services, cats, cat_of, index, max_distance_m, graph)
    if mode != "network":
        raise LayerError(f"{func}: mode must be one of {', '.join(MODES)}; got {mode!r}")
    if graph is None:
        raise LayerError(f"{func}: mode='network' needs a WalkGraph; build one with "
                         "walk_graph_from_streets(streets)")
    b = building_snap or snap_points(graph, buildings, max_snap_m=max_snap_m)
    s = service_snap or snap_points(graph, services, max_snap_m=max_snap_m)
    out = {}
    shared = _shared_edges(b, s)
    for cat in cats:
        mask = cat_of == cat
        nd = node_distances(graph, s, limit=max_distance_m, mask=mask)
        d = _door_distances(graph, nd, b, s, mask, shared)
        out[f"dist_{cat}"] = np.where(d <= max_distance_m, d, np.nan)
    frame = pd.DataFrame(out, index=index)
    log.info("network distances: %d buildings x %d categories, %d buildings unsnapped",
             len(frame), len(cats), int((~b.snapped).sum()))
    return frame


def _euclidean(buildings: gpd.GeoDataFrame, services: gpd.GeoDataFrame, cats: np.ndarray,
               cat_of: np.ndarray, index: pd.Index, limit: float,
               graph: WalkGraph | None) -> pd.DataFrame:
    from geo.crs import local_metric_crs
    from geo.network import _as_points

    crs = graph.crs if graph is not None else local_metric_crs(buildings)
    bxy = _as_points(buildings, crs, func="nearest_facility_distances")
    sxy = _as_points(services, crs, func="nearest_facility_distances")
    out = {}
    for cat in cats:
        d, _ = cKDTree(sxy[cat_of == cat]).query(bxy, distance_upper_bound=limit)
        out[f"dist_{cat}"] = np.where(np.isfinite(d), d, np.nan)
    log.info("straight-line (screening) distances: %d buildings x %d categories",
             len(index), len(cats))
    return pd.DataFrame(out, index=index)


def levels_met(distances: pd.DataFrame, *,
               levels_m: tuple[float, ...] = DEFAULTS["walk_levels_m"]) -> pd.DataFrame:
    """Smallest level (m) each building meets per category (``level_<category>``, NaN if none)."""
    out = {}
    for col in distances.columns:
        d = distances[col].to_numpy()
        met = np.full(len(d), np.nan)
        for lv in sorted(levels_m, reverse=True):
            met = np.where(d <= lv, lv, met)
        out["level_" + col.removeprefix("dist_")] = met
    return pd.DataFrame(out, index=distances.index)


def complete_circles(distances: pd.DataFrame, *,
                     levels_m: tuple[float, ...] = DEFAULTS["walk_levels_m"],
                     checklist: Checklist = DEFAULT_CHECKLIST) -> pd.DataFrame:
    """Whether each building lies in a complete circle of each level (``complete_<m>``).

    Non-inclusive: level L needs every category of level L and of each lower level, each
    within its *own* level's distance. A category with no facility anywhere is missing.
    """
    dist_of = level_distances(levels_m, checklist=checklist)
    out = {}
    for rank, lv in dist_of.items():
        ok = np.ones(len(distances), dtype=bool)
        for cat, cat_rank in checklist.required_for(rank).items():
            col = f"dist_{cat}"
            if col not in distances.columns:
                ok[:] = False
                continue
            ok &= (distances[col] <= dist_of[cat_rank]).to_numpy()
        out[f"complete_{lv:g}"] = ok
    return pd.DataFrame(out, index=distances.index)


def _households(buildings: pd.DataFrame) -> np.ndarray:
    if "households" not in buildings.columns:
        log.warning("buildings have no households column: counting each building as 1")
        return np.ones(len(buildings))
    return pd.to_numeric(buildings["households"], errors="coerce").fillna(0).to_numpy(float)


def coverage_by_level(
    distances: pd.DataFrame,
    buildings: pd.DataFrame,
    *,
    levels_m: tuple[float, ...] = DEFAULTS["walk_levels_m"],
    checklist: Checklist = DEFAULT_CHECKLIST,
    group_by: str | None = None,
    id_field: str = "building_id",
) -> pd.DataFrame:
    """Share of households covered per group, level and category, and in a complete circle.

    Returns a long table: ``group_by`` (or ``area`` = "all"), ``level_m``, ``category``
    (``"complete"`` for the whole circle), ``households``, ``covered_households``,
    ``share`` (0-1; NaN for a group without households).
    """
    func = "coverage_by_level"
    _require_column(buildings, id_field, layer="buildings", func=func)
    b = buildings.set_index(buildings[id_field].astype(str))
    b = b.reindex(distances.index)
    key = "area"
    groups = pd.Series("all", index=distances.index)
    if group_by is not None:
        _require_column(buildings, group_by, layer="buildings", func=func)
        key, groups = group_by, b[group_by]
    hh = _households(b)
    flags = {}
    for lv in levels_m:
        for col in distances.columns:
            flags[(float(lv), col.removeprefix("dist_"))] = (distances[col] <= lv).to_numpy()
    complete = complete_circles(distances, levels_m=levels_m, checklist=checklist)
    for lv in levels_m:
        flags[(float(lv), "complete")] = complete[f"complete_{lv:g}"].to_numpy()
    covered = pd.DataFrame({k: np.where(v, hh, 0.0) for k, v in flags.items()},
                           index=distances.index)
    covered.columns = pd.MultiIndex.from_tuples(flags.keys(), names=["level_m", "category"])
    sums = covered.groupby(groups.to_numpy(), dropna=False).sum()
    totals = pd.Series(hh, index=distances.index).groupby(groups.to_numpy(), dropna=False).sum()
    stacked = cast("pd.Series", sums.stack(["level_m", "category"], future_stack=True))
    long = stacked.rename("covered_households").reset_index().rename(columns={"level_0": key})
    long["households"] = long[key].map(totals).to_numpy()
    long["share"] = long["covered_households"] / long["households"].where(long["households"] > 0)
    return long[[key, "level_m", "category", "households", "covered_households", "share"]]


def uncovered_buildings(
    distances: pd.DataFrame,
    buildings: gpd.GeoDataFrame,
    *,
    level_m: float,
    category: str | None = None,
    levels_m: tuple[float, ...] = DEFAULTS["walk_levels_m"],
    checklist: Checklist = DEFAULT_CHECKLIST,
    id_field: str = "building_id",
) -> gpd.GeoDataFrame:
    """Buildings not covered: by *category* within *level_m*, or not in a complete circle.

    The result has a ``missing`` column listing the categories out of reach (comma-joined).
    """
    _require_column(buildings, id_field, layer="buildings", func="uncovered_buildings")
    if category is not None:
        col = f"dist_{category}"
        if col not in distances.columns:
            raise LayerError(f"uncovered_buildings: no distances for category {category!r}; "
                             f"known: {', '.join(str(c).removeprefix('dist_') for c in distances)}")
        need = {category: float(level_m)}
    else:
        dist_of = level_distances(levels_m, checklist=checklist)
        rank = {float(v): k for k, v in dist_of.items()}.get(float(level_m))
        if rank is None:
            raise LayerError(f"uncovered_buildings: level_m={level_m} is not one of the walk "
                             f"levels {list(levels_m)}; pass category= for other distances")
        need = {c: dist_of[r] for c, r in checklist.required_for(rank).items()}
    missing = pd.Series("", index=distances.index)
    for cat, lv in need.items():
        col = f"dist_{cat}"
        far = ~(distances[col] <= lv) if col in distances.columns else np.ones(len(missing), bool)
        missing = missing.where(~far, missing + np.where(missing == "", "", ",") + cat)
    ids = buildings[id_field].astype(str)
    out = buildings.loc[ids.isin(missing.index[missing != ""]).to_numpy()].copy()
    out["missing"] = missing.reindex(out[id_field].astype(str)).to_numpy()
    return out


def euclidean_overstatement(network: pd.DataFrame, euclidean: pd.DataFrame) -> pd.DataFrame:
    """How much straight-line coverage overstates network coverage.

    Takes two :func:`coverage_by_level` tables (same grouping) and returns them side by
    side with ``overstatement`` = euclidean share - network share (share points, 0-1).
    """
    key = [c for c in network.columns if c not in
           ("households", "covered_households", "share")]
    both = network.merge(euclidean, on=key, suffixes=("_network", "_euclidean"))
    both["overstatement"] = both["share_euclidean"] - both["share_network"]
    return both[[*key, "share_network", "share_euclidean", "overstatement"]]


def _assign_group(buildings: gpd.GeoDataFrame, polygons: gpd.GeoDataFrame,
                  id_col: str) -> pd.Series:
    """Id of the polygon holding each building's point on surface (NaN when none)."""
    _require_column(polygons, id_col, layer=id_col.removesuffix("_id") + "s",
                    func="service_circle_analysis")
    pts = gpd.GeoDataFrame(geometry=buildings.geometry.representative_point(), crs=buildings.crs)
    joined = gpd.sjoin(pts, polygons[[id_col, "geometry"]].to_crs(buildings.crs),
                       how="left", predicate="within")
    return joined[id_col].groupby(level=0).first().reindex(buildings.index)


def service_circle_analysis(
    buildings: gpd.GeoDataFrame,
    streets: gpd.GeoDataFrame,
    services: gpd.GeoDataFrame,
    *,
    levels_m: tuple[float, ...] = DEFAULTS["walk_levels_m"],
    grids: gpd.GeoDataFrame | None = None,
    communities: gpd.GeoDataFrame | None = None,
    category_field: str = "category",
    id_field: str = "building_id",
    checklist: Checklist = DEFAULT_CHECKLIST,
    mode: str = "network",
    snap_tolerance_m: float = DEFAULTS["walk_snap_tolerance_m"],
    max_snap_m: float = DEFAULTS["walk_max_snap_m"],
    excluded_classes: tuple[str, ...] = DEFAULTS["walk_excluded_road_classes"],
) -> AccessResult:
    """The 15-minute service circle end to end: network, snapping, distances, coverage.

    Coverage is reported for the whole area, per grid (``grid_id`` on the buildings or
    from *grids* polygons) and per community (``community_id`` or *communities*).
    ``mode="euclidean"`` is a labelled screening run (no network, overstates coverage).
    *snap_tolerance_m*, *max_snap_m* and *excluded_classes* are the settings
    ``walk_snap_tolerance_m``, ``walk_max_snap_m`` and ``walk_excluded_road_classes``.
    """
    levels_m = tuple(float(x) for x in levels_m)
    level_distances(levels_m, checklist=checklist)
    _require_column(buildings, id_field, layer="buildings", func="service_circle_analysis")
    _require_column(services, category_field, layer="service points",
                    func="service_circle_analysis")
    services = services.loc[services[category_field].notna()]
    graph = b_snap = s_snap = None
    if mode == "network":
        graph = walk_graph_from_streets(streets, snap_tolerance_m=snap_tolerance_m,
                                        excluded_classes=tuple(excluded_classes))
        b_snap = snap_points(graph, buildings, max_snap_m=max_snap_m)
        s_snap = snap_points(graph, services, max_snap_m=max_snap_m)
    dist = nearest_facility_distances(
        graph, buildings, services, category_field=category_field, id_field=id_field,
        max_distance_m=max(levels_m), mode=mode, building_snap=b_snap, service_snap=s_snap)
    out = buildings.copy()
    if grids is not None:
        out["grid_id"] = _assign_group(out, grids, "grid_id").to_numpy()
    if communities is not None:
        out["community_id"] = _assign_group(out, communities, "community_id").to_numpy()
    flags = complete_circles(dist, levels_m=levels_m, checklist=checklist)
    extra = pd.concat([dist, flags], axis=1).reset_index(drop=True)
    out = pd.concat([out.reset_index(drop=True).drop(columns=extra.columns, errors="ignore"),
                     extra], axis=1)
    tables = []
    for key in (None, "grid_id", "community_id"):
        if key is None or (key in out.columns and out[key].notna().any()):
            t = coverage_by_level(dist, out, levels_m=levels_m, checklist=checklist,
                                  group_by=key, id_field=id_field)
            tables.append(t.rename(columns={key or "area": "group"})
                          .assign(group_by=key or "area"))
    coverage = pd.concat(tables, ignore_index=True)[
        ["group_by", "group", "level_m", "category", "households", "covered_households",
         "share"]]
    unsnapped_b = tuple(out.loc[~b_snap.snapped, id_field].astype(str)) if b_snap else ()
    point_ids = (services["point_id"] if "point_id" in services.columns
                 else pd.Series(services.index, index=services.index)).astype(str)
    unsnapped_s = tuple(point_ids[~s_snap.snapped]) if s_snap else ()
    complete_all = coverage[(coverage.group_by == "area") & (coverage.category == "complete")]
    complete_share = dict(zip(complete_all.level_m, complete_all.share, strict=True))
    summary: dict[str, Any] = {
        "buildings": len(out), "services": len(services),
        "categories": [c.removeprefix("dist_") for c in dist.columns],
        "unsnapped_buildings": len(unsnapped_b), "unsnapped_services": len(unsnapped_s),
        "complete_share": complete_share,
        "network": vars(graph.summary) if graph is not None else None,
    }
    log.info("service circle (%s): %d buildings, %d services; complete-circle share %s",
             mode, len(out), len(services),
             {f"{k:g}": round(v, 3) for k, v in complete_share.items()})
    return AccessResult(
        mode=mode, levels_m=levels_m, checklist=checklist, buildings=out, services=services,
        coverage=coverage, graph=graph, service_snap=s_snap, unsnapped_buildings=unsnapped_b,
        unsnapped_services=unsnapped_s, grids=grids, summary=summary)
