"""Case transitions through the one state machine (:mod:`geo.incidents.workflow`), and queries.

Login roles map to workflow roles: ``admin`` and ``planner`` act as the 指挥中心 (``center``),
``worker`` as the 网格员; ``viewer`` may read but not act. Dispatch without a named assignee
goes to the grid's 网格员 from the register's staff (grid leader as fallback). Every write is
one conditional UPDATE on the state the actor saw plus one event row: two people acting on
the same case at once cannot both succeed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from api.grids.service import ActiveGrids
from api.incidents.bulk import insert_events
from api.incidents.intake import locate_points
from api.incidents.models import IncidentCase, IncidentEvent, IncidentPhoto
from api.incidents.notify import case_params, make_notice, notify, notify_event
from api.incidents.tables import load_calendar, load_categories
from api.localtime import local_today
from api.models import User, utcnow
from api.register.models import Staff
from geo.incidents.workcalendar import WorkCalendar
from geo.incidents.workflow import (
    ACTIONS,
    OPEN_STATES,
    SUPERVISE_LEVELS,
    CaseState,
    TransitionRefused,
    apply,
    escalation_level,
)

__all__ = ["WORKFLOW_ROLES", "CaseNotFound", "Forbidden", "workflow_role", "grid_worker", "state_of", "act", "relocate",
           "escalate_overdue",
           "case_events", "cases_frame"]

#: Login role -> workflow role.
WORKFLOW_ROLES: dict[str, str] = {"admin": "center", "planner": "center", "worker": "worker"}
_STATE_FIELDS = ("state", "assignee", "dispatched_at", "due_at", "closed_at", "rework_count", "extension_count",
                 "pending_extension_days", "supervise_level", "rating")


class CaseNotFound(LookupError):
    """No case has this id."""


class Forbidden(PermissionError):
    """The user's role may not act on cases."""


def workflow_role(user: User) -> str:
    """The workflow role of *user*, or :class:`Forbidden`."""
    role = WORKFLOW_ROLES.get(user.role)
    if role is None:
        raise Forbidden("只读用户不能办理案件；如需办理，请联系管理员分配网格员或规划员角色")
    return role


def grid_worker(session: Session, grid_code: str, *, today: date | None = None) -> str | None:
    """Username of the grid's 网格员 serving today (else its 网格长), or ``None``."""
    day = today or local_today()
    stmt = (select(User.username, Staff.role).join(User, User.id == Staff.user_id)
            .where(Staff.grid_code == grid_code, Staff.role.in_(("grid_worker", "grid_leader")),
                   User.active.is_(True), or_(Staff.start_date.is_(None), Staff.start_date <= day),
                   or_(Staff.end_date.is_(None), Staff.end_date >= day))
            .order_by(Staff.role.desc(), Staff.id))  # grid_worker sorts after grid_leader: desc puts it first
    row = session.execute(stmt).first()
    return None if row is None else str(row[0])


def state_of(case: IncidentCase) -> CaseState:
    """The workflow view of a stored case."""
    return CaseState(category=case.category, limit_value=case.limit_value, limit_unit=case.limit_unit,
                     **{f: getattr(case, f) for f in _STATE_FIELDS})


def _default_assignee(session: Session, case: IncidentCase, options: dict[str, Any]) -> None:
    if options.get("assignee"):
        who = session.scalar(select(User).where(User.username == options["assignee"]))
        if who is None or who.role != "worker" or not who.active:
            raise TransitionRefused(f"{options['assignee']} 不是在岗的网格员账号；请选择网格员")
        return
    if case.grid_code is None:
        raise TransitionRefused("案件尚未定位到网格（待定位），不能派遣；请先在地图上确定位置")
    worker = grid_worker(session, case.grid_code)
    if worker is None:
        raise TransitionRefused(f"网格 {case.grid_code} 没有关联账号的网格员；请在网格登记中为其配备网格员并关联账号")
    options["assignee"] = worker


def _store(session: Session, case: IncidentCase, new: CaseState, event: Any) -> IncidentEvent:
    values = {f: getattr(new, f) for f in _STATE_FIELDS}
    result = session.execute(update(IncidentCase)
                             .where(IncidentCase.id == case.id, IncidentCase.state == case.state,
                                    IncidentCase.updated_at == case.updated_at)
                             .values(**values, updated_at=event.at)
                             .execution_options(synchronize_session=False))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise TransitionRefused("案件已被他人更新；请刷新后重试")
    row = IncidentEvent(case_id=case.id, action=event.action, actor=event.actor, role=event.role, at=event.at,
                        from_state=event.from_state, to_state=event.to_state, reason=event.reason,
                        detail={k: v for k, v in event.detail})
    session.add(row)
    session.flush()
    session.refresh(case)
    return row


def _apply(session: Session, case: IncidentCase, action: str, *, role: str, actor: str, at: datetime,
           reason: str, settings: Mapping[str, Any], options: dict[str, Any],
           calendar: WorkCalendar | None = None) -> IncidentEvent:
    options.setdefault("max_days", settings["incident_max_extension_workdays"])
    options.setdefault("max_count", settings["incident_max_extensions"])
    new, event = apply(state_of(case), action, role=role, actor=actor, at=at, reason=reason,
                       calendar=calendar or load_calendar(session, settings), **options)
    return _store(session, case, new, event)


def act(session: Session, case_id: int, action: str, *, user: User, settings: Mapping[str, Any], reason: str = "",
        at: datetime | None = None, **options: Any) -> IncidentEvent:
    """Take *action* on case *case_id* as *user*; the stored event.

    Raises :class:`CaseNotFound`, :class:`Forbidden` or
    :class:`~geo.incidents.workflow.TransitionRefused` (with the reason; nothing written).
    """
    case = session.get(IncidentCase, case_id)
    if case is None:
        raise CaseNotFound(f"没有编号为 {case_id} 的案件")
    role = workflow_role(user)
    if action in ("dispatch", "reassign") and role == "center":
        _default_assignee(session, case, options)
    event = _apply(session, case, action, role=role, actor=user.username, at=at or utcnow(), reason=reason,
                   settings=settings, options=dict(options))
    notify_event(session, case, event, settings=settings)
    return event


def relocate(session: Session, case_id: int, lon: float | None, lat: float | None, *, user: User,
             active: ActiveGrids, settings: Mapping[str, Any]) -> IncidentEvent:
    """The centre places a 待定位 case by hand; the point must lie in an active grid."""
    case = session.get(IncidentCase, case_id)
    if case is None:
        raise CaseNotFound(f"没有编号为 {case_id} 的案件")
    if workflow_role(user) != "center":
        raise Forbidden("只有指挥中心可以人工定位案件")
    if case.grid_code is not None or case.state not in OPEN_STATES:
        raise TransitionRefused("只有未结案且待定位的案件可以人工定位")
    if lon is None or lat is None:
        raise TransitionRefused("请在地图上点选案件位置")
    where = locate_points(active, [lon], [lat], settings=settings).iloc[0]
    if where["grid_code"] is None:
        raise TransitionRefused("该位置不在任何生效网格内；请重新选点")
    at = utcnow()
    case.lon, case.lat, case.grid_code = lon, lat, where["grid_code"]
    case.plan_version_id, case.community_id = int(where["plan_version_id"]), where["community_id"]
    case.locate_how, case.updated_at = "manual", at
    event = IncidentEvent(case_id=case.id, action="locate", actor=user.username, role="center", at=at,
                          from_state=case.state, to_state=case.state, reason="人工定位",
                          detail={"grid_code": case.grid_code, "lon": lon, "lat": lat})
    session.add(event)
    session.flush()
    return event


def escalate_overdue(session: Session, *, settings: Mapping[str, Any], now: datetime | None = None) -> int:
    """The periodic 督办 job: raise the supervision level of overdue open cases per the settings.

    Each raise goes through the state machine (:func:`~geo.incidents.workflow.apply`, action
    ``supervise`` by the centre's ``system`` actor); the writes are batched (one conditional
    UPDATE per case in one ``executemany``, events in bulk), so a backlog of thousands is quick.
    """
    now = now or utcnow()
    rows = session.execute(select(IncidentCase.id, IncidentCase.state, IncidentCase.due_at,
                                  IncidentCase.supervise_level)
                           .where(IncidentCase.state.in_(OPEN_STATES), IncidentCase.due_at.is_not(None),
                                  IncidentCase.due_at < now)).all()
    updates, events = [], []
    for cid, state, due, current in rows:
        level = escalation_level(due, now, current, yellow_hours=settings["incident_escalate_yellow_hours"],
                                 red_hours=settings["incident_escalate_red_hours"])
        if level is None or state not in ACTIONS["supervise"].sources:
            continue
        hours = (now - due).total_seconds() / 3600
        new, ev = apply(CaseState(state=state, supervise_level=current), "supervise", role="center", actor="system",
                        at=now, reason=f"超期 {hours:.1f} 小时，系统自动督办", level=level)
        updates.append({"cid": cid, "old": state, "level": new.supervise_level, "at": now})
        events.append({"case_id": cid, "action": ev.action, "actor": ev.actor, "role": ev.role, "at": ev.at,
                       "from_state": ev.from_state, "to_state": ev.to_state, "reason": ev.reason,
                       "detail": dict(ev.detail)})
    if updates:
        table = IncidentCase.__table__
        session.connection().execute(update(table).where(table.c.id == bindparam("cid"), table.c.state == bindparam("old"))
                                     .values(supervise_level=bindparam("level"), updated_at=bindparam("at")), updates)
        insert_events(session, pd.DataFrame(events))
        _notify_supervised(session, [u["cid"] for u in updates], settings=settings)
    return len(updates)


def _notify_supervised(session: Session, case_ids: list[int], *, settings: Mapping[str, Any]) -> None:
    """督办 notices of the escalation job: once per case and level (the job may run again and again)."""
    cats, tz = load_categories(session), settings["incident_timezone"]
    notices = []
    for i in range(0, len(case_ids), 900):
        for case in session.scalars(select(IncidentCase).where(IncidentCase.id.in_(case_ids[i:i + 900]),
                                                               IncidentCase.assignee.is_not(None))):
            level = SUPERVISE_LEVELS.get(case.supervise_level or "", "督办")
            cat = cats.get(case.category)
            params = case_params(case, cat.name if cat else case.category, tz, level=level)
            key = f"supervise:{case.id}:{case.supervise_level}:{case.assignee}"
            notices.append(make_notice(key, str(case.assignee), "supervise", case, params, "系统自动督办"))
    notify(session, notices, settings=settings)


def case_events(session: Session, case_id: int) -> list[dict[str, Any]]:
    """The timeline of a case: every event with its photos, oldest first."""
    events = session.scalars(select(IncidentEvent).where(IncidentEvent.case_id == case_id).order_by(IncidentEvent.id))
    photos: dict[int | None, list[int]] = {}
    for p in session.scalars(select(IncidentPhoto).where(IncidentPhoto.case_id == case_id)):
        photos.setdefault(p.event_id, []).append(p.id)
    return [{"id": e.id, "action": e.action, "actor": e.actor, "role": e.role, "at": e.at, "from_state": e.from_state,
             "to_state": e.to_state, "reason": e.reason, "detail": e.detail, "photos": photos.get(e.id, [])}
            for e in events]


def cases_frame(session: Session, *, columns: tuple[str, ...] = ("id", "category", "grid_code", "community_id",
                                                                  "assignee", "source", "state", "dispatched_at",
                                                                  "due_at", "closed_at", "rework_count",
                                                                  "extension_count")) -> pd.DataFrame:
    """All cases as a table (UTC times) for :func:`geo.incidents.metrics.incident_metrics`.

    Read with the driver and converted per column (times parsed by pandas in one go): a
    million cases load in seconds, not the tens of seconds of per-row ORM type processing.
    """
    known = set(IncidentCase.__table__.c.keys())
    bad = [c for c in columns if c not in known]
    if bad:
        raise ValueError(f"cases_frame: unknown column(s) {', '.join(bad)}; use some of {', '.join(sorted(known))}")
    sql = f"SELECT {', '.join(columns)} FROM {IncidentCase.__tablename__}"
    conn = session.connection()
    raw = conn.connection.driver_connection  # plain tuples: no per-row Row objects
    cursor = raw.cursor()
    try:
        cursor.execute(sql)
        frame = pd.DataFrame(cursor.fetchall(), columns=list(columns))
    finally:
        cursor.close()
    for c in ("dispatched_at", "due_at", "closed_at", "reported_at", "updated_at"):
        if c in frame:
            frame[c] = pd.to_datetime(frame[c], utc=True, format="ISO8601")
    return frame
