"""The in-memory plan: cells, their adjacency and grids, cached per process by version
and shared between processes through the database (:mod:`api.plans.snapshot`).

An edit touches a handful of cells; recomputing a grid is a coverage union of its cells
(they share exact coordinates) plus sums, so the live check of an edit costs
milliseconds. Loading a plan (cells, metric copies, adjacency) happens once per process
and plan version chain: an edit made here moves the cached state to the new version;
a version written by another process makes the next request reload.
"""

from __future__ import annotations

import gc
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import mapping
from sqlalchemy import Table, func, select, type_coerce, union_all
from sqlalchemy.orm import Session

from api.errors import RequestError
from api.models import WKB, Community, PlanAssignment, PlanCell, PlanGrid, PlanVersion
from geo.crs import local_metric_crs

__all__ = [
    "GridMeta",
    "PlanState",
    "cell_buildings",
    "set_building_cells",
    "load_state",
    "get_state",
    "community_scope",
    "is_cached",
    "invalidate",
    "forget_database",
    "plan_bounds",
    "refresh_grid",
    "grid_violations",
    "grid_feature",
    "grid_label",
    "plan_lock",
    "table_of",
    "cell_components",
    "change_cells",
]

log = logging.getLogger(__name__)

# Two cells are neighbours when they share more than this much boundary (m); touching at
# a corner does not make a grid contiguous.
_SHARED_M = 0.01
# Relative gap between a community's area and its cells' area that counts as "not tiled"
# (floating-point noise of the transforms is ~1e-9).
_TILING_REL = 1e-4

# (database, plan id, scope) -> state; scope None is the whole plan, else a frozenset of communities
_CACHE: OrderedDict[tuple[str, int, frozenset[str] | None], PlanState] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CATCHUP_LOCK = threading.Lock()
_PLAN_LOCKS: dict[tuple[str, int, bool], threading.Lock] = {}
_PLAN_CRS: dict[tuple[str, int], Any] = {}


@dataclass
class GridMeta:
    """One grid: stored attributes plus the numbers recomputed after every edit."""

    grid_id: str
    community_id: str | None
    code: str | None = None
    name: str | None = None
    locked: bool = False
    exclusive: bool = False
    street_share: float | None = None
    flags: str = ""
    households: int = 0
    buildings: int = 0
    area_m2: float = 0.0
    polsby_popper: float = 0.0
    geometry: Any = None
    violations: list[dict[str, str]] = field(default_factory=list)

    ATTRS = ("grid_id", "community_id", "code", "name", "locked", "exclusive", "street_share", "flags")

    def attrs(self) -> dict[str, Any]:
        """The stored (not computed) attributes, as JSON for an edit's inverse."""
        return {k: getattr(self, k) for k in self.ATTRS}


@dataclass
class PlanState:
    """A plan version's cells and grids in memory (see module doc)."""

    key: tuple[str, int]
    version: int
    lo: int
    hi: int
    cell_ids: np.ndarray
    cell_index: dict[str, int]
    community: np.ndarray
    households: np.ndarray
    buildings: np.ndarray
    geom: np.ndarray  # EPSG:4326
    metric: np.ndarray  # local metric CRS
    rep: np.ndarray  # representative points, EPSG:4326
    grid_of: np.ndarray  # grid id per cell (mutated by edits)
    adj_ptr: np.ndarray
    adj_idx: np.ndarray
    building_cell: dict[str, str]
    grids: dict[str, GridMeta]
    members: dict[str, set[int]]
    untiled: set[str]
    crs: Any  # the local metric CRS of ``metric``
    # the communities whose cells are loaded (closed: every cell of their grids is in them);
    # None for the whole plan
    scope: frozenset[str] | None = None
    # cell id -> its buildings (the inverse of building_cell): built on first use, kept in step
    # by set_building_cells, so a move never scans every building of the plan
    cell_members: dict[str, list[str]] | None = field(default=None, repr=False, compare=False)

    @property
    def plan_id(self) -> int:
        return self.key[1]

    def neighbours(self, i: int) -> np.ndarray:
        return self.adj_idx[self.adj_ptr[i]:self.adj_ptr[i + 1]]


def cell_buildings(state: PlanState) -> dict[str, list[str]]:
    """Buildings of every cell of *state* (cell id -> building ids), built once per loaded state."""
    if state.cell_members is None:
        out: dict[str, list[str]] = {}
        for b, c in state.building_cell.items():
            out.setdefault(c, []).append(b)
        state.cell_members = out
    return state.cell_members


def set_building_cells(state: PlanState, pairs: list[list[str]]) -> None:
    """Put every building of *pairs* (``[building, cell]``) in its cell, keeping :func:`cell_buildings` in step."""
    index = state.cell_members
    for b, c in pairs:
        old = state.building_cell.get(b)
        state.building_cell[b] = c
        if index is None or old == c:
            continue
        if old is not None and b in index.get(old, ()):
            index[old].remove(b)
            if not index[old]:
                del index[old]
        index.setdefault(c, []).append(b)


def table_of(model: Any) -> Table:
    """The Core table of an ORM model (typed, for ``insert``/``update``/``delete``)."""
    return cast(Table, model.__table__)


def _db_key(session: Session, plan_id: int) -> tuple[str, int]:
    return (session.get_bind().engine.url.render_as_string(hide_password=True), int(plan_id))


def plan_lock(session: Session, plan_id: int, *, whole: bool = True) -> threading.Lock:
    """The in-process lock serialising the use of one plan's cached states: its whole state
    (*whole*), or its community states (reads and edits of communities; an edit that needs the
    whole state takes the whole lock inside this one, never the other way round). Loading or
    storing the whole state of a city (tens of seconds) so never holds up a community's requests."""
    key = (*_db_key(session, plan_id), whole)
    with _CACHE_LOCK:
        return _PLAN_LOCKS.setdefault(key, threading.Lock())


def plan_bounds(plan: PlanVersion, defaults: dict[str, Any]) -> tuple[int, int]:
    """(min, max) households of *plan*: its settings, else the app's (micro-grid ones in micro mode)."""
    s = plan.settings or {}
    pre = "micro_grid" if s.get("micro") else "grid"
    return (int(s.get("min_households", defaults[f"{pre}_min_households"])),
            int(s.get("max_households", defaults[f"{pre}_max_households"])))


def _adjacency(metric: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR neighbour lists of cells sharing at least one boundary segment.

    Cells of a tessellation share exact vertices along common edges, so equal segments
    (rounded to ``_SHARED_M``) find every neighbour in one sort, without any overlay.
    """
    n = len(metric)
    polys, pidx = shapely.get_parts(metric, return_index=True)
    rings, ridx = shapely.get_rings(polys, return_index=True)
    xy, cidx = shapely.get_coordinates(rings, return_index=True)
    same = cidx[1:] == cidx[:-1]
    p0, p1 = np.round(xy[:-1][same] / _SHARED_M), np.round(xy[1:][same] / _SHARED_M)
    owner = pidx[ridx[cidx[:-1][same]]]
    keep = (p0 != p1).any(axis=1)
    p0, p1, owner = p0[keep], p1[keep], owner[keep]
    swap = (p0[:, 0] > p1[:, 0]) | ((p0[:, 0] == p1[:, 0]) & (p0[:, 1] > p1[:, 1]))
    seg = np.asarray(np.where(swap[:, None], np.hstack([p1, p0]), np.hstack([p0, p1])))
    order = np.lexsort(tuple(seg.T[::-1]))
    seg, owner = seg[order], owner[order]
    dup = (seg[1:] == seg[:-1]).all(axis=1) & (owner[1:] != owner[:-1])
    a, b = owner[:-1][dup], owner[1:][dup]
    pairs = np.unique(np.c_[np.minimum(a, b), np.maximum(a, b)], axis=0) if len(a) else np.empty((0, 2), np.int64)
    src, dst = np.r_[pairs[:, 0], pairs[:, 1]], np.r_[pairs[:, 1], pairs[:, 0]]
    order = np.argsort(src, kind="stable")
    ptr = np.r_[0, np.cumsum(np.bincount(src, minlength=n))]
    return ptr.astype(np.int64), dst[order].astype(np.int64)


def _untiled(session: Session, community: np.ndarray, metric: np.ndarray, crs: Any) -> set[str]:
    """Communities whose cells do not add up to the community polygon."""
    ids = sorted({str(c) for c in community if c is not None})
    rows = session.execute(select(Community.community_id, Community.geometry)
                           .where(Community.community_id.in_(ids))).all()
    if not rows:
        return set()
    comm = gpd.GeoSeries([g for _, g in rows], crs=4326).to_crs(crs)
    have = pd.Series(shapely.area(metric)).groupby(pd.Series(community, dtype=object)).sum()
    out = set()
    for (cid, _), geom in zip(rows, comm.values, strict=True):
        want = shapely.area(geom)
        if want > 0 and abs(float(have.get(cid, 0.0)) - want) / want > _TILING_REL:
            out.add(str(cid))
    return out


def _scope_cells(plan_id: int, scope: frozenset[str]) -> Any:
    """The cell ids of *scope*'s communities (a subquery)."""
    t = table_of(PlanCell)
    return select(t.c.cell_id).where(t.c.plan_version_id == plan_id, t.c.community_id.in_(sorted(scope)))


def _load_cells(session: Session, plan_id: int, scope: frozenset[str] | None = None) -> list[Any]:
    t = table_of(PlanCell)
    stmt = (select(t.c.cell_id, t.c.community_id, t.c.grid_id, t.c.households, t.c.buildings,
                   type_coerce(t.c.geometry, WKB)).where(t.c.plan_version_id == plan_id)
            .order_by(t.c.id))
    if scope is not None:
        stmt = stmt.where(t.c.community_id.in_(sorted(scope)))
    return list(session.connection().execute(stmt).all())


def _load_grids(session: Session, plan_id: int, scope: frozenset[str] | None = None,
                cell_grids: Iterable[str] = ()) -> dict[str, GridMeta]:
    t = table_of(PlanGrid)
    names = ("grid_id", "community_id", "code", "name", "locked", "exclusive", "street_share", "flags",
             "area_m2", "polsby_popper")
    stmt = select(*(t.c[n] for n in names), type_coerce(t.c.geometry, WKB)).where(t.c.plan_version_id == plan_id)
    if scope is not None:  # the grids of the scope's cells, and its empty grids (two indexed reads: SQLite
        # answers an OR of the two by reading every grid of the plan, 0.14 s at 115 k grids)
        grids = sorted(set(cell_grids))
        both = union_all(stmt.where(t.c.grid_id.in_(grids)).add_columns(t.c.id),
                         stmt.where(t.c.community_id.in_(sorted(scope)), t.c.grid_id.not_in(grids)).add_columns(t.c.id))
        rows = [r[:-1] for r in sorted(session.connection().execute(both).all(), key=lambda r: r[-1])]
    else:
        rows = list(session.connection().execute(stmt.order_by(t.c.id)).all())  # stored order: PostgreSQL moves updated rows
    geoms = shapely.from_wkb(np.asarray([None if r[-1] is None else bytes(r[-1]) for r in rows], dtype=object))
    out = {}
    for r, geom in zip(rows, geoms, strict=True):
        v = dict(zip(names, r[:-1], strict=True))
        out[v["grid_id"]] = GridMeta(
            grid_id=v["grid_id"], community_id=v["community_id"], code=v["code"], name=v["name"],
            locked=bool(v["locked"]), exclusive=bool(v["exclusive"]), street_share=v["street_share"],
            flags=v["flags"] or "", geometry=geom,
            area_m2=float("nan") if v["area_m2"] is None else v["area_m2"],
            polsby_popper=float("nan") if v["polsby_popper"] is None else v["polsby_popper"])
    return out


def _plan_crs(session: Session, plan_id: int) -> Any:
    """The local metric CRS of the whole plan, from its communities' extent (a community state
    computes in the same CRS as the whole plan, so its areas and shapes are the same)."""
    key = _db_key(session, plan_id)
    with _CACHE_LOCK:
        crs = _PLAN_CRS.get(key)
    if crs is None:
        comms = select(PlanGrid.community_id).where(PlanGrid.plan_version_id == plan_id).distinct()
        box = session.execute(select(func.min(Community.minx), func.min(Community.miny), func.max(Community.maxx),
                                     func.max(Community.maxy)).where(Community.community_id.in_(comms))).one()
        if any(v is None for v in box):
            return None
        crs = local_metric_crs(tuple(float(v) for v in box))
        with _CACHE_LOCK:
            _PLAN_CRS[key] = crs
    return crs


def community_scope(session: Session, plan_id: int, communities: Iterable[str]) -> frozenset[str] | None:
    """The communities to load so that *communities* are complete: every cell of every grid of theirs.

    A grid normally lies in one community; one that a move made cross a boundary pulls the
    other community in (repeated until closed). ``None`` when a grid holds cells of no
    community: only the whole plan is complete then.
    """
    t = table_of(PlanCell)
    scope = {str(c) for c in communities}
    while True:
        # two indexed reads: as one (a subquery, DISTINCT), SQLite read every cell of the plan (0.5 s at 1 M)
        grids = set(session.scalars(select(t.c.grid_id).where(t.c.plan_version_id == plan_id,
                                                              t.c.community_id.in_(sorted(scope)))))
        found = set(session.scalars(select(t.c.community_id).where(t.c.plan_version_id == plan_id,
                                                                   t.c.grid_id.in_(sorted(grids)))))
        if None in found:
            return None
        if found <= scope:
            return frozenset(str(c) for c in found)
        scope |= found


def load_state(session: Session, plan: PlanVersion, defaults: dict[str, Any], *,
               scope: frozenset[str] | None = None) -> PlanState:
    """Read *plan*'s cells, grids and building → cell map and build the in-memory state
    (of the communities *scope* only, when given: see :func:`community_scope`)."""
    rows = _load_cells(session, plan.id, scope)
    if not rows:
        raise RequestError(409, "plan_without_cells", f"方案 {plan.id} 没有单元（cells），无法编辑",
                           "重新运行自动划分生成方案")
    cid, comm, gid, hh, nb, wkb = (list(c) for c in zip(*rows, strict=True))
    geom = shapely.from_wkb(np.asarray([bytes(w) for w in wkb], dtype=object))
    gs = gpd.GeoSeries(geom, crs=4326)
    crs = _plan_crs(session, plan.id) or local_metric_crs(gs)  # whole and community states alike
    metric = np.asarray(gs.to_crs(crs).values, dtype=object)
    ptr, idx = _adjacency(metric)
    community = np.asarray(comm, dtype=object)
    at = table_of(PlanAssignment)
    bstmt = select(at.c.building_id, at.c.cell_id).where(at.c.plan_version_id == plan.id)
    if scope is not None:
        bstmt = bstmt.where(at.c.cell_id.in_(_scope_cells(plan.id, scope)))
    bc = session.connection().execute(bstmt).all()
    grids = _load_grids(session, plan.id, scope, gid)
    grid_of = np.asarray(gid, dtype=object)
    members: dict[str, set[int]] = {g: set() for g in grids}
    for i, g in enumerate(grid_of.tolist()):
        members.setdefault(g, set()).add(i)
    lo, hi = plan_bounds(plan, defaults)
    state = PlanState(
        key=_db_key(session, plan.id), version=int(plan.version_counter), lo=lo, hi=hi,
        cell_ids=np.asarray(cid, dtype=object), cell_index={c: i for i, c in enumerate(cid)},
        community=community, households=np.asarray(hh, dtype=np.int64), buildings=np.asarray(nb, dtype=np.int64),
        geom=geom, metric=metric, rep=shapely.point_on_surface(geom), grid_of=grid_of,
        adj_ptr=ptr, adj_idx=idx, building_cell={b: c for b, c in bc if c is not None},
        grids=grids, members=members, untiled=_untiled(session, community, metric, crs), crs=crs, scope=scope)
    for g, meta in grids.items():
        # outlines and shape numbers as stored; recomputed only when an edit touches the grid
        refresh_grid(state, g, outline=meta.geometry is None or meta.area_m2 != meta.area_m2)
    log.log(logging.INFO if scope is None else logging.DEBUG,
            "plan %d v%d loaded%s: %d cells, %d grids, %d neighbour pairs", plan.id, state.version,
            "" if scope is None else f" for {len(scope)} communities", len(cid), len(grids), len(idx) // 2)
    return state


def get_state(session: Session, plan: PlanVersion, defaults: dict[str, Any], *,
              communities: Iterable[str] | None = None) -> PlanState:
    """The cached state of *plan* at its current version (when missing or stale: the stored
    state another process made, else built from the cells and stored for the others).

    With *communities*, the state of those communities only (:func:`community_scope`): a
    planner's reads and edits of one community load its cells, not the city's; such states
    are built from the cells (small) and the ``plan_state_scopes_cached`` most recently used
    are kept.
    """
    key = _db_key(session, plan.id)
    scope = None if communities is None else community_scope(session, plan.id, communities)
    ckey = (*key, scope)
    with _CACHE_LOCK:
        state = _CACHE.get(ckey)
        if state is not None:
            _CACHE.move_to_end(ckey)
    if state is not None and state.version == plan.version_counter:
        return state
    if state is not None and state.version < plan.version_counter and _caught_up(session, state, plan.version_counter):
        return state
    if scope is None:
        state = _stored_or_built(session, plan, defaults, key)
    else:
        state = load_state(session, plan, defaults, scope=scope)
    with _CACHE_LOCK:
        _CACHE[ckey] = state
        _CACHE.move_to_end(ckey)
        _evict_scopes(int(defaults["plan_state_scopes_cached"]))
    if scope is None and 0 < defaults["plan_state_freeze_cells"] <= len(state.cell_ids):
        _settle_heap()
    return state


def _evict_scopes(keep: int) -> None:
    """Drop the least recently used community states beyond *keep* (caller holds ``_CACHE_LOCK``)."""
    scoped = [k for k in _CACHE if k[2] is not None]
    for k in scoped[:max(len(scoped) - keep, 0)]:
        del _CACHE[k]


def _settle_heap() -> None:
    """Collect all garbage, then keep every live object out of later full collections.

    A loaded plan state adds ~10^5 long-lived objects (geometries, ids) to a heap of ~4·10^5
    objects (20 k buildings): every full collection the cyclic garbage collector runs
    during later edits walks them all again, a pause of whichever edit triggers it
    (0.3-1 s measured under load, bench/planner_edit.py; plans of at least
    ``plan_state_freeze_cells`` cells). Frozen (``gc.freeze``), they are skipped. A plan state holds no reference cycles, so it is still freed by reference
    counting when replaced; objects frozen here that later become cyclic garbage are
    collected at the next load, which unfreezes everything first. One full collection per
    state load (cold path), none during edits.
    """
    t0 = time.perf_counter()
    gc.unfreeze()
    found = gc.collect()
    gc.freeze()
    log.info("plan state loaded: %d unreachable objects collected, %d objects frozen in %.0f ms", found,
             gc.get_freeze_count(), (time.perf_counter() - t0) * 1000)


def _caught_up(session: Session, state: PlanState, version: int) -> bool:
    """Whether *state* could be brought to *version* by replaying the edits since (another process's)."""
    from api.plans import catchup  # it builds on this module

    with _CATCHUP_LOCK:
        try:
            return state.version == version or catchup.replay(session, state, version)
        except Exception:  # noqa: BLE001 - a half-replayed state is dropped and rebuilt, never served
            log.exception("plan %d: replaying edits to version %d failed; rebuilding", state.plan_id, version)
            with _CACHE_LOCK:
                _CACHE.pop((*state.key, state.scope), None)
            return False


def _stored_or_built(session: Session, plan: PlanVersion, defaults: dict[str, Any],
                     key: tuple[str, int]) -> PlanState:
    from flask import current_app

    from api.plans import snapshot  # it builds on this module

    state = snapshot.read_snapshot(session, plan, defaults, key)
    if state is not None and state.version != plan.version_counter:
        # an older stored state (edits made on community states since): brought up to date
        if not _caught_up(session, state, plan.version_counter):
            state = None
        else:
            snapshot.schedule_save(current_app._get_current_object(), state)  # type: ignore[attr-defined]
    if state is None:
        state = load_state(session, plan, defaults)
        # stored once the plan is idle: storing holds the plan's lock, which the page's next requests need
        snapshot.schedule_save(current_app._get_current_object(), state)  # type: ignore[attr-defined]
    return state


def is_cached(state: PlanState) -> bool:
    """Whether *state* is this process's current state of its plan (not replaced or invalidated)."""
    with _CACHE_LOCK:
        return _CACHE.get((*state.key, state.scope)) is state


def invalidate(session: Session, plan_id: int) -> None:
    """Forget the cached states of *plan_id*, whole and per community (after a failed write or a bulk change)."""
    db, pid = _db_key(session, plan_id)
    with _CACHE_LOCK:
        for k in [k for k in _CACHE if k[0] == db and k[1] == pid]:
            del _CACHE[k]


def forget_database(url: str) -> None:
    """Forget every plan state and plan CRS of the database at *url* (``api.db.dispose``: it is
    going away, and another database may be created at the same address, its plans numbered again)."""
    with _CACHE_LOCK:
        for k in [k for k in _CACHE if k[0] == url]:
            del _CACHE[k]
        for plan_key in [p for p in _PLAN_CRS if p[0] == url]:
            del _PLAN_CRS[plan_key]


def _metric(state: PlanState, geoms: list[Any]) -> np.ndarray:
    return np.asarray(gpd.GeoSeries(geoms, crs=4326).to_crs(state.crs).values, dtype=object)


def change_cells(state: PlanState, *, update: dict[str, dict[str, Any]], add: list[dict[str, Any]],
                 drop: list[str]) -> None:
    """Change the cells themselves (a split for a move, or its undo) and rebuild the adjacency.

    *update* maps cell id to new ``wkb`` (hex, EPSG:4326) and optionally ``households`` and
    ``buildings``; *add* appends cells (``cell_id``, ``community_id``, ``grid_id``,
    ``households``, ``buildings``, ``wkb``); *drop* removes cells, which must be the last ones
    (edits are undone newest first, so the cells a split added are always at the end).
    """
    old_n, old_ptr, old_idx = len(state.cell_ids), state.adj_ptr, state.adj_idx
    touched = {state.cell_index[c] for c in [*update, *drop]}
    n = len(state.cell_ids) - len(drop)
    if sorted(state.cell_index[c] for c in drop) != list(range(n, len(state.cell_ids))):
        raise RuntimeError(f"change_cells: cells {drop} are not the last ones of plan {state.plan_id}")
    for c in drop:
        state.members[state.grid_of[state.cell_index[c]]].discard(state.cell_index[c])
        del state.cell_index[c]
    for name in ("cell_ids", "community", "households", "buildings", "geom", "metric", "rep", "grid_of"):
        setattr(state, name, getattr(state, name)[:n])
    if update:
        idx = np.asarray([state.cell_index[c] for c in update], dtype=np.int64)
        geoms = [shapely.from_wkb(v["wkb"]) for v in update.values()]
        state.geom[idx], state.metric[idx], state.rep[idx] = geoms, _metric(state, geoms), shapely.point_on_surface(geoms)
        for i, v in zip(idx.tolist(), update.values(), strict=True):
            state.households[i] = v.get("households", state.households[i])
            state.buildings[i] = v.get("buildings", state.buildings[i])
    if add:
        geoms = [shapely.from_wkb(r["wkb"]) for r in add]
        for r in add:
            state.cell_index[r["cell_id"]] = len(state.cell_index)
            state.members.setdefault(r["grid_id"], set()).add(state.cell_index[r["cell_id"]])
        state.cell_ids = np.r_[state.cell_ids, np.asarray([r["cell_id"] for r in add], dtype=object)]
        state.community = np.r_[state.community, np.asarray([r["community_id"] for r in add], dtype=object)]
        state.grid_of = np.r_[state.grid_of, np.asarray([r["grid_id"] for r in add], dtype=object)]
        state.households = np.r_[state.households, [int(r["households"]) for r in add]].astype(np.int64)
        state.buildings = np.r_[state.buildings, [int(r["buildings"]) for r in add]].astype(np.int64)
        state.geom = np.r_[state.geom, np.asarray(geoms, dtype=object)]
        state.metric = np.r_[state.metric, _metric(state, geoms)]
        state.rep = np.r_[state.rep, shapely.point_on_surface(geoms)]
    around = {j for i in touched for j in old_idx[old_ptr[i]:old_ptr[i + 1]].tolist()}
    redo = {i for i in touched | around if i < n} | set(range(n, len(state.cell_ids)))
    state.adj_ptr, state.adj_idx = _adjacency_around(state.metric, old_ptr, old_idx, old_n, np.asarray(sorted(redo)))


def _adjacency_around(metric: np.ndarray, ptr: np.ndarray, idx: np.ndarray, old_n: int,
                      redo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The CSR adjacency after the cells *redo* changed: their pairs recomputed, every other pair kept.

    *redo* must hold every changed cell and all its old and new neighbours (a split piece's
    neighbours are its old cell's), so pairs with one end outside it are unchanged; a whole
    rebuild (:func:`_adjacency`) costs ~0.3 s on 10 k cells, this a few milliseconds.
    """
    n = len(metric)
    src = np.repeat(np.arange(old_n), np.diff(ptr))
    inside = np.zeros(max(n, old_n), dtype=bool)
    inside[redo] = True
    keep = (src < n) & (idx < n) & ~(inside[src] & inside[idx])
    lp, li = _adjacency(metric[redo])
    src = np.r_[src[keep], redo[np.repeat(np.arange(len(redo)), np.diff(lp))]]
    dst = np.r_[idx[keep], redo[li]]
    order = np.lexsort((dst, src))
    return np.r_[0, np.cumsum(np.bincount(src, minlength=n))].astype(np.int64), dst[order].astype(np.int64)


def cell_components(state: PlanState, cells: set[int]) -> int:
    """Connected pieces of *cells* in the cell adjacency graph."""
    todo, pieces = set(cells), 0
    while todo:
        pieces += 1
        stack = [todo.pop()]
        while stack:
            for j in state.neighbours(stack.pop()).tolist():
                if j in todo:
                    todo.remove(j)
                    stack.append(j)
    return pieces


def grid_label(meta: GridMeta) -> str:
    """How messages name a grid: its code and name (the internal id only when it has neither)."""
    if meta.code and meta.name and meta.name != meta.code:
        return f"{meta.code}（{meta.name}）"
    return meta.code or meta.name or meta.grid_id


def grid_violations(state: PlanState, meta: GridMeta, pieces: int, communities: set[str]) -> list[dict[str, str]]:
    """Broken rules of one grid: range, contiguity, nesting, tiling, empty."""
    out: list[dict[str, str]] = []
    g = grid_label(meta)

    def add(rule: str, message: str) -> None:
        out.append({"grid_id": meta.grid_id, "rule": rule, "message": message})

    if meta.buildings == 0:
        add("empty", f"网格 {g} 没有楼栋")
    elif not meta.exclusive and not state.lo <= meta.households <= state.hi:
        side = "少于下限" if meta.households < state.lo else "超过上限"
        add("range", f"网格 {g} 有 {meta.households} 户，{side}（{state.lo}–{state.hi} 户）")
    if pieces > 1:
        add("contiguity", f"网格 {g} 分成 {pieces} 块，不连通")
    if len(communities) > 1:
        add("nesting", f"网格 {g} 跨越 {len(communities)} 个社区：{'、'.join(sorted(communities))}")
    bad = sorted(communities & state.untiled)
    if bad:
        add("tiling", f"社区 {'、'.join(bad)} 的网格未完整覆盖社区范围")
    return out


def refresh_grid(state: PlanState, grid_id: str, *, outline: bool = True) -> GridMeta:
    """Recompute households, buildings, violations and (when *outline*) outline, area, Polsby–Popper."""
    meta = state.grids[grid_id]
    idx = np.fromiter(state.members.get(grid_id, ()), dtype=np.int64)
    meta.households = int(state.households[idx].sum())
    meta.buildings = int(state.buildings[idx].sum())
    if outline and len(idx):
        shape_m = shapely.coverage_union_all(state.metric[idx])
        area, perim = float(shape_m.area), float(shape_m.length)
        meta.geometry = shapely.coverage_union_all(state.geom[idx])
        meta.area_m2 = area
        meta.polsby_popper = 4 * math.pi * area / perim**2 if perim > 0 else 0.0
        meta.street_share = None  # the engine's figure no longer holds; a re-partition recomputes it
    elif outline:
        meta.geometry, meta.area_m2, meta.polsby_popper = None, 0.0, 0.0
    communities = {str(c) for c in state.community[idx].tolist()}
    if len(communities) == 1:
        meta.community_id = next(iter(communities))
    meta.violations = grid_violations(state, meta, cell_components(state, set(idx.tolist())), communities)
    return meta


def _status(state: PlanState, meta: GridMeta) -> str:
    if meta.exclusive:
        return "exclusive"
    if meta.households < state.lo:
        return "under"
    return "over" if meta.households > state.hi else "in"


def grid_feature(state: PlanState, meta: GridMeta) -> dict[str, Any]:
    """One grid as a GeoJSON feature (the properties of ``grids.geojson``)."""
    flags = [f for f in meta.flags.split(",") if f] + [v["rule"] for v in meta.violations]
    props = {
        "grid_id": meta.grid_id, "code": meta.code, "name": meta.name, "community_id": meta.community_id,
        "households": meta.households, "buildings": meta.buildings, "area_m2": round(meta.area_m2, 1),
        "polsby_popper": round(meta.polsby_popper, 4),
        "street_share": None if meta.street_share is None or meta.street_share != meta.street_share
        else round(float(meta.street_share), 4),
        "locked": meta.locked, "exclusive": meta.exclusive, "status": _status(state, meta),
        "flags": sorted(set(flags)),
    }
    geometry = mapping(meta.geometry) if meta.geometry is not None else None
    return {"type": "Feature", "id": meta.grid_id, "properties": props, "geometry": geometry}
