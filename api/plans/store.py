"""Persistence of plan versions: partitions saved, copies, edit writes, publish, rollback, diff.

Bulk rows go through SQLAlchemy Core (``executemany``), never ORM loops: a 20 k-building
plan is saved in one transaction and an edit writes only the rows it changed.

A plan records the workspace version it was made from (``workspace_version``, the newest
import run then). After a re-import it is *stale* (:func:`stale_reason`): its list entry
says why, and it cannot be published until it is re-based (:mod:`api.plans.rebase`) or
re-partitioned.
"""

from __future__ import annotations

import logging
from typing import Any

import geopandas as gpd
import pandas as pd
from shapely.geometry import mapping
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session, object_session

from api import audit
from api.errors import RequestError
from api.localtime import SECONDS, local_text
from api.models import (
    Building,
    ImportRun,
    PlanAssignment,
    PlanCell,
    PlanEdit,
    PlanGrid,
    PlanVersion,
    User,
    utcnow,
)
from api.plans.state import PlanState, table_of
from api.plans.summary_store import apply_grid_change, copy_summary, grids_before
from api.workspace import workspace_version

__all__ = [
    "violation_rules",
    "get_plan",
    "plan_json",
    "plan_communities",
    "check_version",
    "stale_reason",
    "check_fresh",
    "save_partition",
    "copy_version",
    "write_change",
    "previous_result",
    "publish",
    "rollback",
    "diff_versions",
]

log = logging.getLogger(__name__)

_CHUNK = 500
_STATUS_LABELS = {"draft": "草稿", "published": "已发布", "archived": "已归档", "auto": "自动结果（只读）"}


def get_plan(session: Session, plan_id: int) -> PlanVersion:
    """The plan version *plan_id* or a 404 naming it."""
    plan = session.get(PlanVersion, plan_id)
    if plan is None:
        raise RequestError(404, "plan_not_found", f"方案 {plan_id} 不存在", "从方案列表 GET /api/plans 选择已有方案")
    return plan


def plan_json(plan: PlanVersion) -> dict[str, Any]:
    """The list entry of a plan version (``GET /api/plans``), with ``stale`` and its reason."""
    session = object_session(plan)
    reason = stale_reason(session, plan) if session is not None else None
    return {"id": plan.id, "name": plan.name, "status": plan.status, "author": plan.author,
            "created_at": plan.created_at.isoformat(), "message": plan.message,
            "community_id": plan.community_id, "is_active": bool(plan.is_active),
            "version": plan.version_counter, "parent_id": plan.parent_id,
            "workspace_version": plan.workspace_version, "stale": reason is not None, "stale_reason": reason}


def stale_reason(session: Session, plan: PlanVersion) -> str | None:
    """Why *plan* no longer matches the workspace (a re-import since it was made), or ``None``."""
    current = workspace_version(session)
    if plan.workspace_version is None or current is None or plan.workspace_version == current:
        return None
    run = session.get(ImportRun, current)
    when = local_text(run.finished_at) if run and run.finished_at else "?"
    who = run.username if run else "?"
    return (f"方案基于第 {plan.workspace_version} 次导入的工作区，工作区已于 {when} 由 {who} 重新导入"
            f"（第 {current} 次导入），方案中的楼栋和户数可能已过时")


def check_fresh(session: Session, plan: PlanVersion, *, action: str) -> None:
    """409 when *plan* is stale: *action* (e.g. ``"发布"``) needs a plan of the current workspace."""
    reason = stale_reason(session, plan)
    if reason is not None:
        raise RequestError(
            409, "stale_plan", f"方案 {plan.id} 已过时，不能{action}：{reason}",
            f"先重新关联楼栋（POST /api/plans/{plan.id}/rebase，保留网格，按位置重新分配楼栋）"
            f"或重新划分（POST /api/plans/{plan.id}/repartition），再{action}新版本",
            workspace_version=plan.workspace_version, current_workspace_version=workspace_version(session))


def plan_communities(session: Session, plan_id: int, *, among: list[str] | None = None) -> list[str]:
    """Community ids the plan's grids lie in (only those of *among* when given: a view's)."""
    stmt = select(PlanGrid.community_id).where(PlanGrid.plan_version_id == plan_id)
    if among is not None:
        if not among:
            return []
        stmt = stmt.where(PlanGrid.community_id.in_(sorted(set(among))))
    return sorted(str(c) for c in session.execute(stmt.distinct()).scalars() if c is not None)


def _last_change(session: Session, plan: PlanVersion) -> tuple[str, str]:
    edit = session.execute(select(PlanEdit.author, PlanEdit.at).where(PlanEdit.plan_version_id == plan.id)
                           .order_by(PlanEdit.at.desc(), PlanEdit.id.desc()).limit(1)).first()
    who, when = (edit[0], edit[1]) if edit else (plan.author, plan.created_at)
    return who, local_text(when, fmt=SECONDS)


def _conflict(session: Session, plan: PlanVersion, version: int, current: int) -> RequestError:
    """409 naming who changed the plan, when, and its current version."""
    who, when = _last_change(session, plan)
    return RequestError(409, "conflict", f"方案已被 {who} 于 {when} 修改，当前版本 {current}，您提交的是 {version}",
                        "reload", version=current, by=who, at=when)


def check_version(session: Session, plan: PlanVersion, version: Any, *, editable: bool = True) -> int:
    """The client's *version* as int, or 409 when stale (naming who changed the plan and when)."""
    if isinstance(version, bool) or not isinstance(version, int):
        raise RequestError(400, "bad_request", f"缺少或无效的 version：{version!r}（须为整数）",
                           "在请求体中带上方案当前的 version（GET /api/plans/<id> 返回）")
    if version != plan.version_counter:
        raise _conflict(session, plan, version, plan.version_counter)
    if editable and plan.status != "draft":
        raise RequestError(422, "not_draft", f"方案 #{plan.id} 状态为{_STATUS_LABELS.get(plan.status, plan.status)}，"
                           "只有草稿可以编辑", "点击“保存版本”另存为新草稿，在新草稿上编辑")
    return version


def _grid_rows(plan_id: int, grids: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    g = grids.to_crs(4326)
    out = []
    for r in g.itertuples(index=False):
        share = getattr(r, "street_share", None)
        out.append({"plan_version_id": plan_id, "grid_id": str(r.grid_id), "community_id": str(r.community_id),
                    "code": None if pd.isna(getattr(r, "code", None)) else str(r.code),
                    "name": getattr(r, "name", None) if isinstance(getattr(r, "name", None), str) else None,
                    "households": int(r.households), "buildings": int(r.buildings),
                    "locked": bool(r.locked), "exclusive": bool(r.exclusive), "geometry": r.geometry,
                    "area_m2": float(r.area_m2), "polsby_popper": float(r.polsby_popper),
                    "street_share": None if share is None or pd.isna(share) else float(share),
                    "flags": str(getattr(r, "flags", "") or "")})
    return out


def _insert_many(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), 5000):
        if rows[i:i + 5000]:
            session.execute(insert(table), rows[i:i + 5000])


def save_partition(session: Session, result: Any, *, name: str, author: str, settings: dict[str, Any],
                   parent_id: int | None = None, message: str | None = None,
                   community_id: str | None = None, workspace: int | None = None) -> PlanVersion:
    """Store a :class:`geo.partition.PartitionResult` (with ``cells``) as a new draft plan version.

    *workspace* is the workspace version the partition read (default: the current one).
    """
    if result.cells is None or result.building_cell is None:
        raise RequestError(500, "no_cells", "划分结果没有单元（cells）", "升级划分引擎后重试")
    plan = PlanVersion(name=name, author=author, settings=dict(settings), parent_id=parent_id,
                       message=message, community_id=community_id, status="draft",
                       workspace_version=workspace if workspace is not None else workspace_version(session))
    session.add(plan)
    session.flush()
    _insert_many(session, table_of(PlanGrid), _grid_rows(plan.id, result.grids))
    cells = result.cells.to_crs(4326)
    _insert_many(session, table_of(PlanCell), [
        {"plan_version_id": plan.id, "cell_id": str(c), "community_id": None if m is None else str(m),
         "grid_id": str(g), "households": int(h), "buildings": int(b), "geometry": geom}
        for c, m, g, h, b, geom in zip(cells["cell_id"], cells["community_id"], cells["grid_id"],
                                       cells["households"], cells["buildings"], cells.geometry.values,
                                       strict=True)])
    a = result.assignment.dropna().astype(str)
    bc = result.building_cell.reindex(a.index)
    _insert_many(session, table_of(PlanAssignment), [
        {"plan_version_id": plan.id, "building_id": str(b), "grid_id": g, "cell_id": None if pd.isna(c) else str(c)}
        for b, g, c in zip(a.index, a.to_numpy(), bc.to_numpy(), strict=True)])
    log.info("plan %d saved: %d grids, %d cells, %d buildings", plan.id, len(result.grids), len(cells), len(a))
    return _draft_of_auto_result(session, plan, author=author)


def _draft_of_auto_result(session: Session, auto: PlanVersion, *, author: str) -> PlanVersion:
    """Keep *auto* (a partition's automatic result) read-only; the draft to edit is its copy.

    So the automatic result stays the first stored version of every plan and a planner can
    diff their edits against it.
    """
    auto.status = "auto"
    draft = copy_version(session, auto, name=auto.name, message=auto.message, author=author)
    auto.name = f"{auto.name}（自动结果）"[:200]
    log.info("plan %d: automatic result kept as read-only version %d", draft.id, auto.id)
    return draft


def copy_version(session: Session, plan: PlanVersion, *, name: str, message: str | None,
                 author: str) -> PlanVersion:
    """A new draft version with *plan*'s grids, cells and assignments (edit history not copied)."""
    new = PlanVersion(name=name, author=author, settings=dict(plan.settings or {}), parent_id=plan.id,
                      message=message, community_id=plan.community_id, status="draft",
                      workspace_version=plan.workspace_version)
    session.add(new)
    session.flush()
    for model in (PlanGrid, PlanCell, PlanAssignment):
        t = table_of(model)
        cols = [c for c in t.c if c.name not in ("id", "plan_version_id")]
        src = select(*([bindparam("new_id", new.id)] + cols)).where(t.c.plan_version_id == plan.id)
        session.execute(t.insert().from_select(["plan_version_id"] + [c.name for c in cols], src))
    copy_summary(session, plan.id, new.id, new.version_counter)
    return new


def _write_cells(session: Session, state: PlanState, part: dict[str, Any], building_cells: list[list[str]]) -> None:
    """Write split or re-joined cells (an edit's ``cells`` part) and the buildings' new cells."""
    plan_id = state.plan_id
    ct, at = table_of(PlanCell), table_of(PlanAssignment)
    if part.get("drop"):
        session.execute(delete(ct).where(ct.c.plan_version_id == plan_id, ct.c.cell_id.in_(part["drop"])))
    for c in part.get("update", {}):
        i = state.cell_index[c]
        session.execute(update(ct).where(ct.c.plan_version_id == plan_id, ct.c.cell_id == c).values(
            geometry=state.geom[i], households=int(state.households[i]), buildings=int(state.buildings[i])))
    _insert_many(session, ct, [
        {"plan_version_id": plan_id, "cell_id": r["cell_id"], "community_id": r["community_id"], "grid_id": r["grid_id"],
         "households": int(r["households"]), "buildings": int(r["buildings"]),
         "geometry": state.geom[state.cell_index[r["cell_id"]]]} for r in part.get("add", [])])
    if building_cells:
        session.execute(update(at).where(at.c.plan_version_id == plan_id, at.c.building_id == bindparam("b"))
                        .values(cell_id=bindparam("c"), grid_id=bindparam("g")),
                        [{"b": b, "c": c, "g": state.grid_of[state.cell_index[c]]} for b, c in building_cells])


def write_change(session: Session, state: PlanState, *, expected: int, cells: list[int],
                 grids: list[str], removed: list[str], cell_delta: dict[str, Any] | None = None,
                 building_cells: list[list[str]] | None = None) -> int:
    """Write the changed cells' grids and the affected grids; bump the version (409 if stale).

    *cell_delta* and *building_cells* are an edit's changes to the cells themselves (a unit
    split for a move, or its undo), already applied to *state*.
    """
    plan_id = state.plan_id
    pv = table_of(PlanVersion)
    res = session.execute(update(pv).where(pv.c.id == plan_id, pv.c.version_counter == expected)
                          .values(version_counter=expected + 1))
    if getattr(res, "rowcount", 0) != 1:
        # Another writer committed between our version check and this update (PostgreSQL's READ
        # COMMITTED lets both pass the check; SQLite's BEGIN IMMEDIATE serialises them first).
        current = session.scalar(select(PlanVersion.version_counter).where(PlanVersion.id == plan_id))
        plan = session.get(PlanVersion, plan_id)
        raise _conflict(session, plan, expected, int(current or 0)) if plan is not None else \
            RequestError(404, "plan_not_found", f"方案 #{plan_id} 已被删除", "回到方案列表")
    if cell_delta:
        _write_cells(session, state, cell_delta, building_cells or [])
    if cells:
        rows = [{"p": plan_id, "c": state.cell_ids[i], "g": state.grid_of[i]} for i in cells]
        for t in (table_of(PlanCell), table_of(PlanAssignment)):
            session.execute(update(t).where(t.c.plan_version_id == bindparam("p"), t.c.cell_id == bindparam("c"))
                            .values(grid_id=bindparam("g")), rows)
    gt = table_of(PlanGrid)
    touched = sorted(set(grids) | set(removed))
    rows = [_grid_row(plan_id, state.grids[g]) for g in grids if g in state.grids]
    before = grids_before(session, plan_id, touched, rows)
    for i in range(0, len(touched), _CHUNK):
        session.execute(delete(gt).where(gt.c.plan_version_id == plan_id, gt.c.grid_id.in_(touched[i:i + _CHUNK])))
    _insert_many(session, gt, rows)
    apply_grid_change(session, plan_id, expected=expected, lo=state.lo, hi=state.hi, before=before, after=rows)
    return expected + 1


def _grid_row(plan_id: int, m: Any) -> dict[str, Any]:
    """The ``plan_grids`` row of grid meta *m*."""
    return {"plan_version_id": plan_id, "grid_id": m.grid_id, "community_id": m.community_id,
            "code": m.code, "name": m.name, "households": m.households, "buildings": m.buildings,
            "locked": m.locked, "exclusive": m.exclusive, "geometry": m.geometry, "area_m2": m.area_m2,
            "polsby_popper": m.polsby_popper, "street_share": m.street_share, "flags": m.flags,
            "violations": violation_rules(m)}


def violation_rules(meta: Any) -> str:
    """The rules grid *meta* breaks as stored in ``plan_grids.violations`` (comma-separated, "" none)."""
    return ",".join(dict.fromkeys(v["rule"] for v in meta.violations))


def previous_result(session: Session, plan_id: int) -> Any:
    """The stored plan as a :class:`geo.partition.PartitionResult` (``previous`` of a re-run)."""
    from api.plans.exports import grids_frame
    from geo.partition import PartitionResult

    grids = grids_frame(session, plan_id)
    rows = session.execute(select(PlanAssignment.building_id, PlanAssignment.grid_id)
                           .where(PlanAssignment.plan_version_id == plan_id)).all()
    assign = pd.Series([g for _, g in rows], index=[b for b, _ in rows], name="grid_id", dtype=object)
    return PartitionResult(grids, assign, {})


def _deactivate_overlapping(session: Session, plan: PlanVersion, comms: list[str]) -> list[int]:
    grid_comm = select(PlanGrid.plan_version_id).where(PlanGrid.community_id.in_(comms))
    others = session.scalars(select(PlanVersion).where(PlanVersion.is_active.is_(True),
                                                       PlanVersion.id != plan.id,
                                                       PlanVersion.id.in_(grid_comm))).all()
    for o in others:
        o.is_active = False
        o.status = "archived"
    return [o.id for o in others]


def publish(session: Session, plan: PlanVersion, *, user: User | str) -> dict[str, Any]:
    """Make *plan* the active grid layer of its communities; previously active overlapping plans are archived.

    A stale plan (made before the last import) is refused with 409 ``stale_plan``.
    """
    check_fresh(session, plan, action="发布")
    comms = plan_communities(session, plan.id)
    previous = _deactivate_overlapping(session, plan, comms)
    plan.is_active = True
    plan.status = "published"
    plan.settings = {**(plan.settings or {}), "previous_active": previous, "published_at": utcnow().isoformat()}
    session.flush()
    audit.record(session, user=user, action="plan.publish", target=f"plan:{plan.id}",
                 detail={"communities": comms, "archived": previous})
    log.info("plan %d published for %d communities; archived %s", plan.id, len(comms), previous)
    return {"plan": plan_json(plan), "archived": previous, "communities": comms}


def rollback(session: Session, plan: PlanVersion, *, user: User | str) -> dict[str, Any]:
    """Withdraw the active *plan* and re-publish the versions it replaced."""
    if not plan.is_active:
        raise RequestError(422, "not_active", f"方案 #{plan.id} 不是当前生效的方案，无需回滚",
                           "对当前生效（已发布）的方案执行回滚")
    prev_ids = list((plan.settings or {}).get("previous_active") or [])
    if not prev_ids:
        raise RequestError(422, "nothing_to_roll_back", f"方案 #{plan.id} 发布前没有生效的方案，无法回滚",
                           "发布另一个版本以替换它")
    restored = session.scalars(select(PlanVersion).where(PlanVersion.id.in_(prev_ids))).all()
    plan.is_active = False
    plan.status = "archived"
    for p in restored:
        p.is_active = True
        p.status = "published"
    session.flush()
    audit.record(session, user=user, action="plan.rollback", target=f"plan:{plan.id}",
                 detail={"restored": [p.id for p in restored]})
    return {"plan": plan_json(plan), "restored": [plan_json(p) for p in restored]}


def _assignments(session: Session, plan_id: int) -> pd.Series:
    rows = session.execute(select(PlanAssignment.building_id, PlanAssignment.grid_id)
                           .where(PlanAssignment.plan_version_id == plan_id)).all()
    return pd.Series([g for _, g in rows], index=[b for b, _ in rows], dtype=object)


def diff_versions(session: Session, a: int, b: int) -> dict[str, Any]:
    """Buildings whose grid differs between plan versions *a* and *b* (``None`` when absent)."""
    sa_, sb = _assignments(session, a), _assignments(session, b)
    df = pd.DataFrame({"from": sa_, "to": sb})
    df = df.astype(object).where(df.notna(), None)
    moved = df[df["from"] != df["to"]].sort_index()
    ids = moved.index.tolist()
    geoms: dict[str, Any] = {}
    for i in range(0, len(ids), _CHUNK):
        for bid, geom in session.execute(select(Building.building_id, Building.geometry)
                                         .where(Building.building_id.in_(ids[i:i + _CHUNK]))):
            geoms[bid] = geom
    items = [{"building_id": k, "from": r["from"], "to": r["to"]} for k, r in moved.iterrows()]
    features = [{"type": "Feature", "properties": it,
                 "geometry": mapping(geoms[it["building_id"]]) if it["building_id"] in geoms else None}
                for it in items]
    return {"a": a, "b": b, "moved": items, "count": len(items),
            "features": {"type": "FeatureCollection", "features": features}}
