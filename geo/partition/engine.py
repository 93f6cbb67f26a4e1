"""``partition_grids``: buildings → grids of bounded households, tiling every community."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.errors import CRSError, LayerError
from geo.partition.assemble import assemble
from geo.partition.cells import Tessellation, tessellate
from geo.partition.options import PartitionOptions
from geo.partition.planner import plan_community
from geo.settings import DEFAULTS

__all__ = ["PartitionResult", "PartitionOptions", "partition_grids"]

log = logging.getLogger(__name__)
ALL_COMMUNITY = "ALL"


@dataclass(frozen=True)
class PartitionResult:
    """A grid plan.

    Attributes
    ----------
    grids : GeoDataFrame
        One row per grid: grid_id, community_id, code, households, buildings, area_m2,
        polsby_popper, street_share, exclusive, locked, flags, geometry (input CRS).
    assignment : Series
        building_id → grid_id.
    report : dict
        Plan totals, share of grids in range, infeasible communities with reasons.
    cells : GeoDataFrame or None
        The indivisible units the grids are made of (:mod:`geo.partition.cells_out`):
        cell_id, community_id, grid_id, households, buildings, geometry (input CRS).
    building_cell : Series or None
        building_id → cell_id.
    """

    grids: gpd.GeoDataFrame
    assignment: pd.Series
    report: dict[str, Any] = field(default_factory=dict)
    cells: gpd.GeoDataFrame | None = None
    building_cell: pd.Series | None = None


def _metric_crs(buildings: gpd.GeoDataFrame, local_crs: str) -> Any:
    if buildings.crs is None:
        raise CRSError("partition_grids: layer 'buildings' has no CRS; use set_crs() (e.g. 'EPSG:4326')")
    if buildings.crs.is_projected:
        return buildings.crs
    from geo.crs import local_metric_crs

    return local_metric_crs(buildings, configured=local_crs)


def _check_buildings(buildings: gpd.GeoDataFrame) -> None:
    for col in ("building_id", "households"):
        if col not in buildings.columns:
            raise LayerError(f"partition_grids: layer 'buildings' has no column {col!r}; "
                             f"map your column with field_map={{'your_column': '{col}'}}")
    if buildings.empty:
        raise LayerError("partition_grids: layer 'buildings' is empty; import buildings first")
    if buildings["building_id"].duplicated().any():
        dup = buildings.loc[buildings["building_id"].duplicated(), "building_id"].iloc[0]
        raise LayerError(f"partition_grids: layer 'buildings' repeats building_id {dup!r}; ids must be unique")
    h = pd.to_numeric(buildings["households"], errors="coerce")
    if h.isna().any() or (h < 0).any():
        bad = buildings.loc[h.isna() | (h < 0), "building_id"].iloc[0]
        raise LayerError(f"partition_grids: building {bad!r} has households "
                         f"{buildings.set_index('building_id').at[bad, 'households']!r}; "
                         "give a non-negative number (or estimate with geo.households)")


def _communities(communities: gpd.GeoDataFrame | None, bm: gpd.GeoDataFrame, crs: Any,
                 margin: float) -> gpd.GeoDataFrame:
    if communities is None or communities.empty:
        minx, miny, maxx, maxy = bm.total_bounds
        geom = shapely.box(minx - margin, miny - margin, maxx + margin, maxy + margin)
        return gpd.GeoDataFrame({"community_id": [ALL_COMMUNITY]}, geometry=[geom], crs=crs)
    if "community_id" not in communities.columns:
        raise LayerError("partition_grids: layer 'communities' has no column 'community_id'")
    cm = communities.to_crs(crs).reset_index(drop=True)
    cm["community_id"] = cm["community_id"].astype(str)
    cm["geometry"] = shapely.make_valid(cm.geometry.values)
    return cm


def _locate(points: np.ndarray, polys: np.ndarray, given: np.ndarray | None) -> np.ndarray:
    """Index of the polygon holding every point (the given index when valid, else nearest)."""
    out = np.full(len(points), -1)
    if given is not None:
        out = given.copy()
    todo = np.flatnonzero(out < 0)
    if len(todo):
        tree = shapely.STRtree(polys)
        pts = shapely.points(points[todo])
        qi, qj = tree.query(pts, predicate="within")
        out[todo[qi[::-1]]] = qj[::-1]
        rest = todo[out[todo] < 0]
        if len(rest):
            qi, qj = tree.query_nearest(shapely.points(points[rest]))
            out[rest[qi[::-1]]] = qj[::-1]
    return out


def _codes_per_building(bm: gpd.GeoDataFrame, col: str, polys: gpd.GeoDataFrame | None,
                        anchors: np.ndarray, id_col: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer code per building of *col* (compound id), from the column or by location."""
    vals = bm[col] if col in bm.columns else pd.Series([None] * len(bm), index=bm.index)
    vals = vals.astype(object).where(vals.notna() & (vals.astype(str) != ""), None)
    geoms = np.empty(0, dtype=object)
    if polys is not None and not polys.empty:
        geoms = polys.geometry.values
        if vals.isna().all():
            tree = shapely.STRtree(geoms)
            qi, qj = tree.query(shapely.points(anchors), predicate="within")
            got = np.full(len(bm), None, dtype=object)
            got[qi[::-1]] = polys[id_col].astype(str).to_numpy()[qj[::-1]]
            vals = pd.Series(got, index=bm.index)
    codes, _ = pd.factorize(vals.astype(object).where(vals.notna(), None), use_na_sentinel=True)
    return codes.astype(np.int64), geoms


def _exclusive_codes(bm: gpd.GeoDataFrame, uses: Sequence[str]) -> np.ndarray:
    use = bm["use"].astype(str) if "use" in bm.columns else pd.Series("residential", index=bm.index)
    flag = use.isin(list(uses)).to_numpy()
    if "exclusive" in bm.columns:
        flag |= bm["exclusive"].fillna(False).astype(bool).to_numpy()
    codes, _ = pd.factorize(use)
    return np.where(flag, codes, -1).astype(np.int64)


def _previous_labels(tess: Tessellation, bids: pd.Series, previous: Any) -> tuple[np.ndarray, list[str]]:
    """Previous grid per node (majority of its buildings' previous grids), -1 when new."""
    prev_assign = previous.assignment if isinstance(previous, PartitionResult) else pd.Series(previous)
    prev_assign.index = prev_assign.index.astype(str)
    pg = bids.map(prev_assign).to_numpy(dtype=object)
    names = sorted({str(x) for x in pg if x is not None and x == x})
    code = {n: i for i, n in enumerate(names)}
    gi = np.array([code.get(str(x), -1) if x is not None and x == x else -1 for x in pg])
    out = np.full(len(tess.node_comm), -1)
    ok = (gi >= 0) & (tess.building_node >= 0)
    if ok.any():
        df = pd.DataFrame({"n": tess.building_node[ok], "g": gi[ok]})
        top = df.groupby(["n", "g"]).size().reset_index(name="c").sort_values(["n", "c", "g"],
                                                                              ascending=[True, False, True])
        top = top.drop_duplicates("n")
        out[top["n"].to_numpy()] = top["g"].to_numpy()
    return out, names


def partition_grids(
    buildings: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame | None = None,
    *,
    streets: gpd.GeoDataFrame | None = None,
    compounds: gpd.GeoDataFrame | None = None,
    previous: PartitionResult | pd.Series | None = None,
    locked: Sequence[str] = (),
    min_households: int | None = None,
    max_households: int | None = None,
    target_households: int | None = None,
    micro: bool = False,
    seed: int = DEFAULTS["partition_seed"],
    exclusive_uses: Sequence[str] = DEFAULTS["exclusive_uses"],
    code_scheme: str = DEFAULTS["grid_code_scheme"],
    progress: Callable[[str, float], None] | None = None,
    workers: int = DEFAULTS["partition_workers"],
    shard_buildings: int = DEFAULTS["partition_shard_buildings"],
    options: PartitionOptions | None = None,
) -> PartitionResult:
    """Divide every community into contiguous grids of bounded households.

    Parameters
    ----------
    buildings : GeoDataFrame
        Canonical buildings (building_id, households; optional use, compound_id,
        community_id, exclusive) in any CRS.
    communities : GeoDataFrame, optional
        Canonical communities; without them the extent of the buildings is one community.
    streets, compounds : GeoDataFrame, optional
        Streets (road_class; ``major`` roads are the cheapest boundaries) and compounds.
    previous : PartitionResult or Series (building_id → grid_id), optional
        A plan to start from: kept where it satisfies the rules, repaired where not.
    locked : sequence of str
        Grid ids of *previous* that must not change (geometry and buildings).
    min_households, max_households, target_households : int, optional
        Bounds; default to the grid (or micro-grid when *micro*) settings.
    seed : int
        Random seed; the same inputs and seed give the same plan.
    workers : int
        Worker processes for large districts (0 = every core); the plan does not depend on it.
    shard_buildings : int
        Districts with more buildings than this (and more than one community) are planned
        in shards of whole communities of about this size (:mod:`geo.partition.shards`);
        0 plans everything in one piece.
    options : PartitionOptions, optional
        Cut costs, cell and repair tunables and the local metric CRS (settings
        ``partition_cost_*``, ``partition_street_near_m``, ``partition_whole_block_share``,
        ``partition_balance_budget``, ``street_snap_m``, ``local_crs``); build it with
        ``PartitionOptions.from_settings(settings)``. Default: the settings' defaults.

    Returns
    -------
    PartitionResult
    """
    _check_buildings(buildings)
    pre = "micro_grid" if micro else "grid"
    lo = int(min_households if min_households is not None else DEFAULTS[f"{pre}_min_households"])
    hi = int(max_households if max_households is not None else DEFAULTS[f"{pre}_max_households"])
    target = int(target_households if target_households is not None else DEFAULTS[f"{pre}_target_households"])
    if not 0 < lo <= target <= hi:
        raise LayerError(f"partition_grids: bounds must satisfy 0 < min ≤ target ≤ max; "
                         f"got min={lo}, target={target}, max={hi}")
    say = progress or (lambda step, frac: None)
    opts = options or PartitionOptions()
    crs = _metric_crs(buildings, opts.local_crs)
    bm = buildings.to_crs(crs).reset_index(drop=True)
    bm["building_id"] = bm["building_id"].astype(str)
    _check_locked(previous, tuple(locked))
    if shard_buildings and len(bm) > shard_buildings and communities is not None and len(communities) > 1:
        res = _run_in_shards(bm, buildings.crs, crs, communities, streets, compounds, previous, tuple(locked),
                             lo=lo, hi=hi, target=target, seed=seed, exclusive_uses=exclusive_uses,
                             code_scheme=code_scheme, workers=workers, shard_buildings=shard_buildings, say=say,
                             opts=opts)
    else:
        res = _run(bm, buildings.crs, crs, communities, streets, compounds, previous, tuple(locked),
                   lo=lo, hi=hi, target=target, seed=seed, exclusive_uses=exclusive_uses,
                   code_scheme=code_scheme, say=say, opts=opts)
    return _restore_locked(res, previous, tuple(locked))


def _restore_locked(res: PartitionResult, previous: Any, locked: tuple[str, ...]) -> PartitionResult:
    """Locked grids (and their cells) with the previous plan's exact geometry.

    The plan is made in metres; a grid that went there and back from, say, WGS84 would
    differ in the last bits, and "untouched" means untouched.
    """
    if not locked:
        return res
    before = previous.grids.set_index("grid_id").geometry.to_crs(res.grids.crs)
    grids = res.grids.copy()
    rows = grids["grid_id"].isin(locked).to_numpy()
    grids.loc[rows, "geometry"] = before.reindex(grids.loc[rows, "grid_id"]).to_numpy()
    cells = res.cells
    if cells is not None:
        cells = cells.copy()
        rows = cells["cell_id"].str.startswith("L:").to_numpy()
        cells.loc[rows, "geometry"] = before.reindex(cells.loc[rows, "grid_id"]).to_numpy()
    return dataclasses.replace(res, grids=grids, cells=cells)


def _check_locked(previous: Any, locked: tuple[str, ...]) -> None:
    if not locked:
        return
    if not isinstance(previous, PartitionResult):
        raise LayerError("partition_grids: locked grids need previous=PartitionResult (their outlines)")
    missing = sorted(set(locked) - set(previous.grids["grid_id"]))
    if missing:
        raise LayerError(f"partition_grids: locked grid id(s) {missing[:5]} are not in the previous plan")


def _run_in_shards(bm: gpd.GeoDataFrame, in_crs: Any, crs: Any, communities: gpd.GeoDataFrame, streets: Any,
                   compounds: Any, previous: Any, locked: tuple[str, ...], *, lo: int, hi: int, target: int,
                   seed: int, exclusive_uses: Sequence[str], code_scheme: str, workers: int,
                   shard_buildings: int, say: Callable[[str, float], None],
                   opts: PartitionOptions) -> PartitionResult:
    """A large district in shards of whole communities (:mod:`geo.partition.shards`)."""
    from geo.partition.shards import partition_in_shards, plan_shards, resolve_workers

    cm = _communities(communities, bm, crs, margin=opts.street_snap_m + 20.0)
    anchors = shapely.get_coordinates(shapely.point_on_surface(bm.geometry.values))
    given = None
    if "community_id" in bm.columns:
        cid = {c: i for i, c in enumerate(cm["community_id"])}
        given = bm["community_id"].astype(str).map(cid).fillna(-1).astype(np.int64).to_numpy()
    bcomm = _locate(anchors, cm.geometry.values, given)
    shards = plan_shards(cm, bcomm, shard_buildings=shard_buildings)
    metric = [x.to_crs(crs) if x is not None and not x.empty else None for x in (streets, compounds)]
    return partition_in_shards(
        bm, in_crs, cm, bcomm, shards, streets=metric[0], compounds=metric[1], previous=previous,
        locked=locked, workers=resolve_workers(workers), lo=lo, hi=hi, code_scheme=code_scheme,
        options={"target_households": target, "seed": seed, "exclusive_uses": tuple(exclusive_uses),
                 "options": opts}, say=say)


def _split_locked(bm: gpd.GeoDataFrame, cm: gpd.GeoDataFrame, previous: Any, locked: tuple[str, ...],
                  crs: Any) -> tuple[gpd.GeoDataFrame, pd.Series, gpd.GeoDataFrame]:
    """Locked grids (metric), their buildings (building_id → grid_id) and the communities minus them."""
    if not locked:
        return gpd.GeoDataFrame(columns=["grid_id", "geometry"], geometry="geometry", crs=crs), \
            pd.Series(dtype=object), cm
    lg = previous.grids[previous.grids["grid_id"].isin(locked)].to_crs(crs).reset_index(drop=True)
    prev = previous.assignment.astype(str)
    by_prev = bm["building_id"].map(prev)
    inside = _locate(shapely.get_coordinates(shapely.point_on_surface(bm.geometry.values)),
                     lg.geometry.values, None)
    within = shapely.contains_xy(lg.geometry.values[inside],
                                 *shapely.get_coordinates(shapely.point_on_surface(bm.geometry.values)).T)
    gid = np.where(by_prev.isin(locked), by_prev, np.where(within, lg["grid_id"].to_numpy()[inside], None))
    assign = pd.Series(gid, index=bm["building_id"]).dropna()
    cm = cm.copy()
    cm["geometry"] = shapely.difference(cm.geometry.values, shapely.union_all(lg.geometry.values))
    cm = cm[~cm.geometry.is_empty].reset_index(drop=True)
    return lg, assign, cm


def _run(bm: gpd.GeoDataFrame, in_crs: Any, crs: Any, communities: Any, streets: Any, compounds: Any,
         previous: Any, locked: tuple[str, ...], *, lo: int, hi: int, target: int, seed: int,
         exclusive_uses: Sequence[str], code_scheme: str, say: Callable[[str, float], None],
         opts: PartitionOptions) -> PartitionResult:
    cm = _communities(communities, bm, crs, margin=opts.street_snap_m + 20.0)
    lg, locked_assign, cm_free = _split_locked(bm, cm, previous, locked, crs)
    free = ~bm["building_id"].isin(locked_assign.index)
    bf = bm[free.to_numpy()].reset_index(drop=True)
    anchors = shapely.get_coordinates(shapely.point_on_surface(bf.geometry.values))
    cid = {c: i for i, c in enumerate(cm_free["community_id"])}
    given = None
    if communities is not None and "community_id" in bf.columns:
        given = bf["community_id"].astype(str).map(cid).fillna(-1).astype(np.int64).to_numpy()
    bcomm = _locate(anchors, cm_free.geometry.values, given)
    kp = compounds.to_crs(crs) if compounds is not None and not compounds.empty else None
    bcomp, kgeoms = _codes_per_building(bf, "compound_id", kp, anchors, "compound_id")
    bexcl = _exclusive_codes(bf, exclusive_uses)
    sm = streets.to_crs(crs) if streets is not None and not streets.empty else None
    sgeoms = sm.geometry.values if sm is not None else np.empty(0, dtype=object)
    major = (sm["road_class"].astype(str) == "major").to_numpy() if sm is not None and "road_class" in sm else \
        np.zeros(len(sgeoms), dtype=bool)
    hh = pd.to_numeric(bf["households"]).to_numpy(dtype=np.float64)
    say("tessellate", 0.1)
    tess = tessellate(cm_free.geometry.values, sgeoms, major, kgeoms, anchors, bcomm, hh, bcomp, bexcl,
                      footprints=bf.geometry.values,
                      whole_block=opts.whole_block_share * target, compound_max=hi,
                      costs=opts.costs, snap_m=opts.street_snap_m, near_m=opts.street_near_m,
                      overlap_share=opts.footprint_overlap_share)
    prev_nodes: np.ndarray | None = None
    prev_names: list[str] = []
    if previous is not None:
        prev_nodes, prev_names = _previous_labels(tess, bf["building_id"], previous)
    say("partition", 0.4)
    node_grid, meta = _plan_all(tess, cm_free, lo=lo, hi=hi, target=target, seed=seed, prev=prev_nodes, say=say,
                                budget=opts.balance_budget)
    say("outlines", 0.8)
    result = assemble(tess, node_grid, meta, bf, bm, cm, cm_free, lg, locked_assign, previous,
                      lo=lo, hi=hi, crs=crs, in_crs=in_crs, code_scheme=code_scheme,
                      code_options=opts.code_options)
    from geo.partition.cells_out import with_cells
    from geo.partition.footprints import overlap_report

    assert tess.overlaps is not None and tess.overlap_area is not None and tess.overlap_merged is not None, \
        "tessellate records the footprint overlaps"
    overlaps = overlap_report(tess.overlaps, tess.overlap_area, tess.overlap_merged, bf["building_id"].to_numpy())
    result = dataclasses.replace(result, report={**result.report, "overlapping_footprints": overlaps})
    return with_cells(result, tess, node_grid, bf["building_id"].to_numpy(),
                      cm_free["community_id"].astype(str).to_numpy(), crs=crs)


def _plan_all(tess: Tessellation, cm: gpd.GeoDataFrame, *, lo: int, hi: int, target: int, seed: int,
              prev: np.ndarray | None, say: Callable[[str, float], None],
              budget: int) -> tuple[np.ndarray, list[dict]]:
    node_grid = np.full(len(tess.node_comm), -1)
    meta: list[dict] = []
    ncomm = len(cm)
    norder = np.argsort(tess.node_comm, kind="stable")
    nstart = np.searchsorted(tess.node_comm[norder], np.arange(ncomm + 1))
    ecomm = tess.node_comm[tess.edge_u]
    eorder = np.argsort(ecomm, kind="stable")
    estart = np.searchsorted(ecomm[eorder], np.arange(ncomm + 1))
    for ci in range(ncomm):
        plan = plan_community(tess, ci, norder[nstart[ci]:nstart[ci + 1]], eorder[estart[ci]:estart[ci + 1]],
                              lo=lo, hi=hi, target=target, seed=seed, prev=prev, balance_budget=budget)
        base = len(meta)
        node_grid[plan.nodes] = base + plan.labels
        for f, x in zip(plan.flags, plan.exclusive, strict=True):
            meta.append({"community": ci, "flags": f, "exclusive": x, "reasons": plan.reasons})
        if ci % 50 == 0:
            say("partition", 0.4 + 0.4 * ci / max(ncomm, 1))
    return node_grid, meta
