"""Manual edits of a plan as reversible deltas: move, split, merge, lock, exclusive, rename; undo/redo.

Every edit becomes a *delta* ``{"create": [grid attrs], "assign": [[cell_id, grid_id]],
"attrs": {grid_id: {name: value}}, "delete": [grid_id]}`` applied in that order; its
inverse is computed from the state before applying, so undo and redo replay stored
deltas without re-running the operation. Only the grids a delta touches are recomputed.
"""

from __future__ import annotations

import logging
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import shape
from shapely.ops import split as split_geometry
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from api import audit
from api.errors import RequestError
from api.models import Building, PlanEdit, PlanVersion, User, utcnow
from api.plans.scope import delta_communities, edit_communities, merge_ids, unknown_grid, whole_lock
from api.plans.splitmove import (
    BuildingSource,
    SplitPlan,
    invert_cells,
    plan_split_move,
)
from api.plans.state import (
    GridMeta,
    PlanState,
    cell_buildings,
    cell_components,
    change_cells,
    get_state,
    grid_feature,
    grid_label,
    invalidate,
    refresh_grid,
    set_building_cells,
    table_of,
)
from api.plans.store import check_version, write_change
from geo.activegrids import GridIndex
from geo.cellsplit import overlap_partners

__all__ = ["OPS", "build_delta", "move_confirmation", "invert", "apply_delta", "run_edit", "run_undo"]

log = logging.getLogger(__name__)

OPS = ("move", "split", "merge", "lock", "unlock", "exclusive", "rename")
#: Buildings a move confirmation lists by name (the rest are counted).
_LISTED = 50


def _bad(message: str, fix: str, code: str = "bad_request") -> RequestError:
    return RequestError(400, code, message, fix)


def _refused(message: str, fix: str, code: str = "edit_refused") -> RequestError:
    return RequestError(422, code, message, fix)


def _grid(state: PlanState, grid_id: Any, what: str = "grid_id") -> GridMeta:
    if not isinstance(grid_id, str) or grid_id not in state.grids:
        raise unknown_grid(state.plan_id, grid_id, what)
    return state.grids[grid_id]



def _unlocked(meta: GridMeta) -> None:
    if meta.locked:
        raise _refused(f"网格 {grid_label(meta)} 已锁定，不能修改其范围", "先选中该网格点击“解锁”，再编辑",
                       code="grid_locked")


def _geojson(value: Any, kinds: tuple[str, ...], what: str) -> Any:
    if not isinstance(value, dict) or value.get("type") not in kinds:
        raise _bad(f"{what} 不是有效的 GeoJSON {'/'.join(kinds)}：{str(value)[:80]}",
                   f'传 {{"type": "{kinds[0]}", "coordinates": [...]}}（WGS84 经纬度）')
    try:
        geom = shape(value)
    except Exception as exc:  # shapely raises several types for malformed coordinates
        raise _bad(f"{what} 不是有效的 GeoJSON {kinds[0]}：{exc}", "检查坐标数组的嵌套层数与点数") from None
    if geom.is_empty or not geom.is_valid:
        raise _bad(f"{what} 几何无效（{shapely.is_valid_reason(geom)}）", "重新绘制，不要自相交")
    return geom


def _inside(polygon: Any, points: np.ndarray) -> np.ndarray:
    """Whether each WGS84 point is in *polygon*, by the active-grids index (no nearest fallback)."""
    drawn = gpd.GeoDataFrame({"id": ["drawn"]}, geometry=[polygon], crs=4326)
    xy = shapely.get_coordinates(points)
    hit = GridIndex.from_grids(drawn, id_column="id").grid_of_points(xy[:, 0], xy[:, 1], tolerance_m=0,
                                                                     nearest_fallback=False)
    return np.asarray(hit["how"].to_numpy() == "inside", dtype=bool)


def _by_cell(state: PlanState, ids: list[str], target: str) -> dict[int, list[str]]:
    """Buildings *ids* by the index of the cell they stand in (cells already in *target* left out)."""
    out: dict[int, list[str]] = {}
    for b in dict.fromkeys(ids):
        i = state.cell_index[state.building_cell[b]]
        if state.grid_of[i] != target:
            out.setdefault(i, []).append(b)
    return out


def _selected(state: PlanState, body: dict[str, Any]) -> list[str]:
    """The ``building_ids`` of a move, checked."""
    ids = body["building_ids"]
    if not isinstance(ids, list) or not ids or not all(isinstance(b, str) for b in ids):
        raise _bad("building_ids 须为非空的字符串数组", '例如 {"building_ids": ["B0001"]}')
    missing = [b for b in ids if b not in state.building_cell]
    if missing:
        raise _bad(f"楼栋 {', '.join(missing[:5])} 不在方案 {state.plan_id} 中", "从 buildings.geojson 选择楼栋",
                   code="unknown_building")
    return ids


def _drawn(state: PlanState, poly: Any, buildings: BuildingSource | None) -> list[str]:
    """Buildings of the plan whose representative point lies in the drawn *poly*."""
    if buildings is None:
        return []
    near = buildings.near(poly)
    if near.empty:
        return []
    inside = _inside(poly, np.asarray(near.geometry.representative_point().values, dtype=object))
    return [b for b, hit in zip(near.index, inside.tolist(), strict=True) if hit and b in state.building_cell]


def _move_plan(state: PlanState, body: dict[str, Any], target: str, buildings: BuildingSource | None) -> SplitPlan:
    """Cells moving whole, and cells split so that exactly the selected buildings move.

    A drawn polygon selects the buildings whose point is inside it; a plan whose buildings
    are not in the workspace any more falls back to the cells whose point is inside.
    """
    if "building_ids" in body:
        return plan_split_move(state, target, _by_cell(state, _selected(state, body), target), buildings)
    if "polygon" in body:
        poly = _geojson(body["polygon"], ("Polygon", "MultiPolygon"), "polygon")
        ids = _drawn(state, poly, buildings)
        if ids:
            return plan_split_move(state, target, _by_cell(state, ids, target), buildings)
        return SplitPlan(whole=np.flatnonzero(_inside(poly, state.rep)).tolist())
    raise _bad("move 需要 building_ids 或 polygon", '传 {"op": "move", "building_ids": [...], "to_grid": "G"}')


def _adjacent(state: PlanState, target: GridMeta, cells: list[int], pieces: list[Any]) -> bool:
    """Whether the moving cells or new pieces share a boundary with *target* (an empty grid takes any)."""
    tm = state.members.get(target.grid_id, set())
    if not tm or any(j in tm for i in cells for j in state.neighbours(i).tolist()):
        return True
    edges = shapely.boundary(state.geom[sorted(tm)])
    return any((shapely.length(shapely.intersection(p.boundary, edges)) > 0).any() for p in pieces)


def _move_delta(state: PlanState, body: dict[str, Any], buildings: BuildingSource | None) -> dict[str, Any]:
    target = _grid(state, body.get("to_grid"), "to_grid")
    _unlocked(target)
    plan = _move_plan(state, body, target.grid_id, buildings)
    cells = [i for i in plan.whole if state.grid_of[i] != target.grid_id]
    pieces = plan.pieces()
    if not cells and not pieces:
        raise _bad("没有可移动的楼栋：所选楼栋已在目标网格中，或多边形内没有楼栋", "重新选择楼栋", code="nothing_to_move")
    split_from = {state.grid_of[state.cell_index[state.building_cell[b]]] for b, _ in plan.building_cells}
    for g in sorted({state.grid_of[i] for i in cells} | split_from):
        _unlocked(state.grids[g])
    if not _adjacent(state, target, cells, pieces):
        raise _refused(f"所选楼栋与网格 {grid_label(target)} 不相邻", "只能移到相邻网格；先选择与目标网格接壤的楼栋",
                       code="not_adjacent")
    moving = set(cells)
    emptied = [g for g in sorted({state.grid_of[i] for i in cells}) if state.members[g] <= moving]
    delta: dict[str, Any] = {"assign": [[state.cell_ids[i], target.grid_id] for i in cells], "delete": emptied}
    if pieces:
        delta.update(cells=plan.cells, building_cells=plan.building_cells)
    return delta


def _new_code(state: PlanState, meta: GridMeta) -> str | None:
    """Next free sequence code in the community (DB11: last 3 digits, CJ/T 349: last 2)."""
    code = meta.code
    if not code or not code.isdigit():
        return None
    width = 3 if len(code) == 15 else 2
    prefix = code[:-width]
    used = [int(m.code[-width:]) for m in state.grids.values()
            if m.code and m.code.startswith(prefix) and len(m.code) == len(code) and m.code[-width:].isdigit()]
    nxt = max(used, default=0) + 1
    return prefix + f"{nxt:0{width}d}" if nxt < 10**width else None


def _split_delta(state: PlanState, body: dict[str, Any]) -> dict[str, Any]:
    meta = _grid(state, body.get("grid_id"))
    _unlocked(meta)
    line = _geojson(body.get("line"), ("LineString",), "line")
    pieces = list(split_geometry(meta.geometry, line).geoms) if meta.geometry is not None else []
    if len(pieces) < 2:
        raise _refused(f"分割线没有穿过网格 {grid_label(meta)}", "画一条从网格一侧边界穿到另一侧边界的线", code="split_miss")
    cells = sorted(state.members[meta.grid_id])
    side = _inside(pieces[0], state.rep[cells])
    a = [c for c, s in zip(cells, side.tolist(), strict=True) if s]
    b = [c for c, s in zip(cells, side.tolist(), strict=True) if not s]
    if not a or not b:
        raise _refused(f"分割线一侧没有楼栋单元（网格 {grid_label(meta)}）", "让分割线穿过网格中部，两侧都要有楼栋",
                       code="split_one_sided")
    for part in (a, b):
        if cell_components(state, set(part)) > 1:
            raise _refused(f"分割后网格 {grid_label(meta)} 的一部分不连通（{len(pieces)} 块），已拒绝",
                           "调整分割线，使两侧各自连成一片", code="split_not_contiguous")
    if state.households[b].sum() > state.households[a].sum():
        a, b = b, a
    k = 2
    while f"{meta.grid_id}-{k}" in state.grids:
        k += 1
    new_id = f"{meta.grid_id}-{k}"
    attrs = {**meta.attrs(), "grid_id": new_id, "code": _new_code(state, meta), "locked": False,
             "name": f"{meta.name or meta.grid_id}-{k}", "street_share": None, "flags": ""}
    return {"create": [attrs], "assign": [[state.cell_ids[i], new_id] for i in b]}


def _merge_delta(state: PlanState, body: dict[str, Any]) -> dict[str, Any]:
    ids = merge_ids(body)
    keep, gone = _grid(state, ids[0], "grid_ids[0]"), _grid(state, ids[1], "grid_ids[1]")
    _unlocked(keep)
    _unlocked(gone)
    if keep.community_id != gone.community_id:
        raise _refused(f"网格 {grid_label(keep)} 与 {grid_label(gone)} 属于不同社区，不能合并",
                       "网格不得跨社区（属地管理）", code="merge_nesting")
    km = state.members[keep.grid_id]
    if not any(j in km for i in state.members[gone.grid_id] for j in state.neighbours(i).tolist()):
        raise _refused(f"网格 {grid_label(keep)} 与 {grid_label(gone)} 不相邻，不能合并", "选择两个接壤的网格", code="not_adjacent")
    return {"assign": [[state.cell_ids[i], keep.grid_id] for i in sorted(state.members[gone.grid_id])],
            "delete": [gone.grid_id]}


def _attr_delta(state: PlanState, op: str, body: dict[str, Any]) -> dict[str, Any]:
    meta = _grid(state, body.get("grid_id"))
    if op in ("lock", "unlock"):
        return {"attrs": {meta.grid_id: {"locked": op == "lock"}}}
    if op == "exclusive":
        value = body.get("value", True)
        if not isinstance(value, bool):
            raise _bad(f"value 须为 true 或 false：{value!r}", '例如 {"op": "exclusive", "value": true}')
        return {"attrs": {meta.grid_id: {"exclusive": value}}}
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise _bad(f"name 须为 1–200 个字符的文字：{name!r}", '例如 {"op": "rename", "name": "一网格"}')
    return {"attrs": {meta.grid_id: {"name": name.strip()}}}


def _listed_buildings(session: Session, ids: list[str]) -> list[dict[str, Any]]:
    """Name and households of buildings *ids* (the first ``_LISTED`` of them), for a confirmation."""
    shown = ids[:_LISTED]
    rows = {r[0]: r for r in session.execute(select(Building.building_id, Building.name, Building.households)
                                             .where(Building.building_id.in_(shown)))}
    return [{"building_id": b, "name": rows[b][1] if b in rows else None,
             "households": int(rows[b][2] or 0) if b in rows else None} for b in shown]


def _name(b: str, names: dict[str, Any]) -> str:
    return f"{names[b]}（{b}）" if names.get(b) else b


def _why_whole(session: Session, selected: set[str], extra: list[str]) -> str:
    """Why the *extra* buildings move with the selected ones: overlapping footprints named with
    their shares, else a unit that cannot be divided."""
    ids = sorted(selected | set(extra))
    rows = session.execute(select(Building.building_id, Building.name, Building.geometry)
                           .where(Building.building_id.in_(ids[:_LISTED * 4]))).all()
    footprints = gpd.GeoSeries({r[0]: r[2] for r in rows if r[2] is not None}, crs=4326)
    names = {r[0]: r[1] for r in rows}
    pairs = overlap_partners(footprints, selected) if len(footprints) else None
    told = []
    if pairs is not None:
        pairs = pairs[pairs["building_id"].isin(extra)].drop_duplicates("building_id").head(3)
        told = [f"{_name(str(r['building_id']), names)} 与所选 {_name(str(r['with_id']), names)} 的轮廓重叠"
                f"（重叠面积占较小楼栋的 {r['share']:.0%}、较大楼栋的 {r['larger_share']:.1%}；"
                "一栋楼落在所属网格外的面积不得超过 1%）"
                for r in pairs.to_dict("records")]
    rest = len(extra) - len(told)
    if rest > 0:
        told.append(f"{'另有 ' if told else ''}{rest} 栋楼与所选楼栋同在一个无法拆分的单元")
    return "；".join(told)


def move_confirmation(session: Session, state: PlanState, body: dict[str, Any],
                      delta: dict[str, Any]) -> RequestError | None:
    """Why a move needs the planner's confirmation before it runs, or ``None``.

    A unit (cell) of several buildings is split so that only the selected buildings move;
    buildings whose footprints overlap a selected one, or every building of a unit that cannot
    be split, move with it: the answer lists them. A move that leaves a
    grid without buildings deletes it (an exclusive grid too): the answer names it. Either
    way nothing is written until the request comes again with ``"confirm": true``.
    """
    if body.get("op") != "move" or body.get("confirm") is True:
        return None
    moving = {c for c, _ in delta.get("assign", [])}
    selected = set(body.get("building_ids") or [])
    dragged = {b for b, _ in delta.get("building_cells", [])}  # split units: overlapping footprints
    members = cell_buildings(state)
    extra = sorted(({b for c in moving for b in members.get(c, ())} | dragged) - selected) if selected else []
    deleted = [state.grids[g] for g in delta.get("delete", [])]
    if not extra and not deleted:
        return None
    parts = []
    if extra:
        parts.append(f"所选 {len(selected)} 栋楼须与另外 {len(extra)} 栋楼整体移动：{_why_whole(session, selected, extra)}")
    for meta in deleted:
        kind = "专属网格" if meta.exclusive else "网格"
        parts.append(f"{kind} {grid_label(meta)} 的楼栋将全部移走，该网格将被删除")
    return RequestError(
        422, "confirm_move", "；".join(parts) + "。尚未移动任何楼栋。",
        "确认后整体移动（请求中加 \"confirm\": true），或改选其他楼栋",
        also_moving=_listed_buildings(session, extra), also_moving_count=len(extra),
        deleted_grids=[{"grid_id": m.grid_id, "label": grid_label(m), "exclusive": m.exclusive} for m in deleted])


def build_delta(state: PlanState, body: dict[str, Any], *, buildings: BuildingSource | None = None) -> dict[str, Any]:
    """The delta of edit request *body* on *state* (400/422 with a Chinese message when refused).

    *buildings* reads the workspace's footprints: with it, a move of some buildings of a unit
    splits the unit so exactly those move (:mod:`api.plans.splitmove`).
    """
    op = body.get("op")
    if op not in OPS:
        raise _bad(f"未知编辑操作 op={op!r}", f"op 取值：{', '.join(OPS)}")
    if op == "move":
        return _move_delta(state, body, buildings)
    if op == "split":
        return _split_delta(state, body)
    if op == "merge":
        return _merge_delta(state, body)
    return _attr_delta(state, op, body)


def invert(state: PlanState, delta: dict[str, Any]) -> dict[str, Any]:
    """The delta undoing *delta* on *state* (computed before *delta* is applied)."""
    return {
        "create": [state.grids[g].attrs() for g in delta.get("delete", [])],
        "assign": [[c, state.grid_of[state.cell_index[c]]] for c, _ in delta.get("assign", [])],
        "attrs": {g: {k: getattr(state.grids[g], k) for k in kv} for g, kv in delta.get("attrs", {}).items()},
        "delete": [a["grid_id"] for a in delta.get("create", [])],
        **invert_cells(state, delta),
    }


def _apply_cells(state: PlanState, delta: dict[str, Any]) -> set[str]:
    """Apply the ``cells`` and ``building_cells`` parts; the grids whose cells changed content."""
    part = delta.get("cells")
    if not part:
        return set()
    counted = [c for c, v in part.get("update", {}).items() if "households" in v] + list(part.get("drop", []))
    affected = {state.grid_of[state.cell_index[c]] for c in counted} | {r["grid_id"] for r in part.get("add", [])}
    change_cells(state, update=part.get("update", {}), add=part.get("add", []), drop=part.get("drop", []))
    set_building_cells(state, delta.get("building_cells", []))
    return affected


def apply_delta(state: PlanState, delta: dict[str, Any]) -> tuple[list[int], list[str], list[str]]:
    """Apply *delta* to *state*; (changed cell indexes, affected grid ids, removed grid ids)."""
    affected = _apply_cells(state, delta)
    for attrs in delta.get("create", []):
        state.grids[attrs["grid_id"]] = GridMeta(**attrs)
        state.members[attrs["grid_id"]] = set()
        affected.add(attrs["grid_id"])
    cells = []
    for c, g in delta.get("assign", []):
        i = state.cell_index[c]
        old = state.grid_of[i]
        state.members[old].discard(i)
        state.members[g].add(i)
        state.grid_of[i] = g
        affected |= {old, g}
        cells.append(i)
    for g, kv in delta.get("attrs", {}).items():
        for k, v in kv.items():
            setattr(state.grids[g], k, v)
        affected.add(g)
    removed = []
    for g in delta.get("delete", []):
        if state.members.get(g):
            raise RuntimeError(f"apply_delta: grid {g} still has {len(state.members[g])} cells")
        state.grids.pop(g, None)
        state.members.pop(g, None)
        removed.append(g)
    grids = sorted(g for g in affected if g in state.grids)
    for g in grids:
        refresh_grid(state, g)
    return cells, grids, removed


def _answer(state: PlanState, version: int, grids: list[str], removed: list[str], **extra: Any) -> dict[str, Any]:
    metas = [state.grids[g] for g in grids]
    return {"version": version, "grids": [grid_feature(state, m) for m in metas], "removed": removed,
            "violations": [v for m in metas for v in m.violations], **extra}


def _commit(session: Session, state: PlanState, delta: dict[str, Any], expected: int, *,
            after: Any) -> tuple[int, list[str], list[str]]:
    """Apply *delta*, write it, run *after(new_version)* (edit rows, audit) and commit; reload on failure."""
    try:
        cells, grids, removed = apply_delta(state, delta)
        version = write_change(session, state, expected=expected, cells=cells, grids=grids, removed=removed,
                               cell_delta=delta.get("cells"), building_cells=delta.get("building_cells"))
        after(version)
        session.commit()
    except BaseException:
        session.rollback()
        invalidate(session, state.plan_id)
        raise
    state.version = version
    _share(state)
    return version, grids, removed


def _share(state: PlanState) -> None:
    """Store the edited state for other processes once the plan is idle (api.plans.snapshot)."""
    from flask import current_app

    from api.plans.snapshot import schedule_save

    if state.scope is not None:  # a community's state: the stored whole-plan state replays this edit
        return
    schedule_save(current_app._get_current_object(), state)  # type: ignore[attr-defined]


def _history(session: Session, plan_id: int) -> dict[str, bool]:
    rows: dict[Any, int] = dict(session.execute(select(PlanEdit.undone, func.count()).where(PlanEdit.plan_version_id == plan_id)
                                .group_by(PlanEdit.undone)).all())
    return {"can_undo": rows.get(False, 0) > 0, "can_redo": rows.get(True, 0) > 0}


def run_edit(session: Session, plan: PlanVersion, body: dict[str, Any], *, user: User | str,
             defaults: dict[str, Any]) -> dict[str, Any]:
    """Check the version, apply edit *body*, persist it with its inverse, audit; the route's answer."""
    expected = check_version(session, plan, body.get("version"))
    if body.get("op") not in OPS:
        raise _bad(f"未知编辑操作 op={body.get('op')!r}", f"op 取值：{', '.join(OPS)}")
    communities = edit_communities(session, plan.id, body)
    with whole_lock(session, plan.id, communities):
        return _run_edit(session, plan, body, expected, communities, user=user, defaults=defaults)


def _run_edit(session: Session, plan: PlanVersion, body: dict[str, Any], expected: int,
              communities: set[str] | None, *, user: User | str, defaults: dict[str, Any]) -> dict[str, Any]:
    state = get_state(session, plan, defaults, communities=communities)
    delta = build_delta(state, body, buildings=BuildingSource(session))
    refusal = move_confirmation(session, state, body, delta)
    if refusal is not None:
        raise refusal
    inverse = invert(state, delta)
    author = user.username if isinstance(user, User) else str(user)
    request_body = {k: v for k, v in body.items() if k not in ("version", "confirm")}

    def after(version: int) -> None:
        session.execute(delete(PlanEdit).where(PlanEdit.plan_version_id == plan.id, PlanEdit.undone.is_(True)))
        seq = session.execute(select(func.coalesce(func.max(PlanEdit.seq), 0))
                              .where(PlanEdit.plan_version_id == plan.id)).scalar_one() + 1
        session.execute(insert(table_of(PlanEdit)).values(
            plan_version_id=plan.id, seq=seq, op=body["op"],
            payload={"request": request_body, "delta": delta, "applied": [[version, "do"]]},
            inverse=inverse, author=author, at=utcnow(), undone=False))
        audit.record(session, user=user, action=f"plan.edit.{body['op']}", target=f"plan:{plan.id}",
                     detail={"seq": seq, "version": version, "cells": len(delta.get("assign", [])),
                             "created": [a["grid_id"] for a in delta.get("create", [])],
                             "deleted": delta.get("delete", []), "attrs": delta.get("attrs", {})})

    version, grids, removed = _commit(session, state, delta, expected, after=after)
    log.info("plan %d edit %s by %s: %d cells, grids %s, removed %s", plan.id, body["op"], author,
             len(delta.get("assign", [])), grids, removed)
    return _answer(state, version, grids, removed, op=body["op"], **_history(session, plan.id))


def run_undo(session: Session, plan: PlanVersion, body: dict[str, Any], *, user: User | str,
             defaults: dict[str, Any], redo: bool = False) -> dict[str, Any]:
    """Undo the newest edit (or redo the oldest undone one) of *plan*."""
    expected = check_version(session, plan, body.get("version"))
    stmt = select(PlanEdit).where(PlanEdit.plan_version_id == plan.id, PlanEdit.undone.is_(redo))
    stmt = stmt.order_by(PlanEdit.seq.asc() if redo else PlanEdit.seq.desc()).limit(1)
    edit = session.scalars(stmt).first()
    word = "重做" if redo else "撤销"
    if edit is None:
        raise RequestError(422, "nothing_to_redo" if redo else "nothing_to_undo", f"没有可{word}的编辑",
                           "先进行编辑" if not redo else "先撤销一次编辑")
    delta = edit.payload["delta"] if redo else edit.inverse
    communities = delta_communities(session, plan.id, delta)
    with whole_lock(session, plan.id, communities):
        return _replay_edit(session, plan, edit, delta, expected, communities, user=user, defaults=defaults,
                            redo=redo)


def _replay_edit(session: Session, plan: PlanVersion, edit: PlanEdit, delta: dict[str, Any], expected: int,
                 communities: set[str] | None, *, user: User | str, defaults: dict[str, Any],
                 redo: bool) -> dict[str, Any]:
    """Undo (or redo) stored *edit*: apply *delta*, mark the edit, audit."""
    state = get_state(session, plan, defaults, communities=communities)
    edit_id, seq, op, payload = edit.id, edit.seq, edit.op, dict(edit.payload)

    def after(version: int) -> None:
        # the versions it was applied at let other processes replay it (api.plans.catchup)
        payload["applied"] = [*payload.get("applied", []), [version, "redo" if redo else "undo"]]
        session.execute(update(table_of(PlanEdit)).where(PlanEdit.id == edit_id).values(undone=not redo,
                                                                                         payload=payload))
        audit.record(session, user=user, action="plan.redo" if redo else "plan.undo", target=f"plan:{plan.id}",
                     detail={"seq": seq, "op": op, "version": version})

    session.expunge(edit)
    version, grids, removed = _commit(session, state, delta, expected, after=after)
    return _answer(state, version, grids, removed, op=op, **_history(session, plan.id))
