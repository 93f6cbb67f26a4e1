"""Read side of incidents: case lists with filters and paging, 我的待办, the supervisor queue, map GeoJSON.

Who sees what: the 指挥中心 roles (admin, planner) and viewers see every case; a 网格员 sees
cases assigned to them, reported by them or located in the grids they serve.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from api.incidents.models import IncidentCase, IncidentPhoto
from api.incidents.tables import load_categories
from api.models import User, utcnow
from api.register.access import own_grids
from geo.incidents.workflow import OPEN_STATES, STATES, SUPERVISE_LEVELS

__all__ = ["visible", "case_row", "list_cases", "inbox", "supervisor_queue", "supervisor_queue_counts", "QUEUE_SHOWN",
           "cases_geojson", "grid_counts",
           "case_photos", "open_counts"]


def visible(stmt: Select[Any], session: Session, user: User) -> Select[Any]:
    """*stmt* restricted to the cases *user* may see."""
    if user.role != "worker":
        return stmt
    grids = own_grids(session, user)
    return stmt.where(or_(IncidentCase.assignee == user.username, IncidentCase.reporter == user.username,
                          IncidentCase.grid_code.in_(grids)))


def case_row(case: IncidentCase, categories: Mapping[str, Any], now: datetime, soon_hours: float) -> dict[str, Any]:
    """One case as lists and the case page show it (flags: overdue, due soon)."""
    cat = categories.get(case.category)
    open_ = case.state in OPEN_STATES
    overdue = bool(open_ and case.due_at is not None and case.due_at < now)
    soon = bool(open_ and not overdue and case.due_at is not None and case.due_at < now + timedelta(hours=soon_hours))
    return {"id": case.id, "category": case.category, "category_name": cat.name if cat else case.category,
            "department": cat.department if cat else "", "description": case.description, "address": case.address,
            "lon": case.lon, "lat": case.lat, "grid_code": case.grid_code, "plan_version_id": case.plan_version_id,
            "state": case.state, "state_label": STATES[case.state], "assignee": case.assignee, "source": case.source,
            "reported_at": case.reported_at, "dispatched_at": case.dispatched_at, "due_at": case.due_at,
            "closed_at": case.closed_at, "rework_count": case.rework_count, "extension_count": case.extension_count,
            "pending_extension_days": case.pending_extension_days, "supervise_level": case.supervise_level,
            "supervise_label": SUPERVISE_LEVELS.get(case.supervise_level or "", ""), "rating": case.rating,
            "overdue": overdue, "due_soon": soon, "external_id": case.external_id}


def _unindexed(column: Any) -> Any:
    """*column* as an expression no index serves: a filter of the cases of a few grids then leaves the
    grid_code lookup (~10^4 rows) as the planner's only way in, instead of, say, every open case through
    the state index (1 M cases: 2.6 s CPU against 0.05 s)."""
    return func.coalesce(column, column)


def _filtered(args: Mapping[str, str], *, by_grid: bool = False) -> list[Any]:
    c = IncidentCase
    state, category, source = (_unindexed(x) for x in (c.state, c.category, c.source)) if by_grid else (
        c.state, c.category, c.source)
    out: list[Any] = []
    if args.get("state") == "pending_location":
        out.append(c.grid_code.is_(None))
        out.append(state.in_(OPEN_STATES))
    elif args.get("state") == "open":
        out.append(state.in_(OPEN_STATES))
    elif args.get("state") in STATES:
        out.append(state == args["state"])
    for key, col in (("category", category), ("grid", c.grid_code), ("source", source)):
        if args.get(key):
            out.append(col == args[key])
    return out


def list_cases(session: Session, user: User, args: Mapping[str, str], *, settings: Mapping[str, Any],
               page: int = 1) -> tuple[list[dict[str, Any]], int]:
    """One page of cases (newest first) matching the filters in *args*, and the total."""
    size = int(settings["incident_page_size"])
    stmt = visible(select(IncidentCase).where(*_filtered(args)), session, user)
    total = int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    rows = session.scalars(stmt.order_by(IncidentCase.id.desc()).limit(size).offset((max(page, 1) - 1) * size))
    cats, now = load_categories(session), utcnow()
    return [case_row(c, cats, now, settings["incident_due_soon_hours"]) for c in rows], total


def _rows(session: Session, stmt: Select[Any], settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    cats, now = load_categories(session), utcnow()
    return [case_row(c, cats, now, settings["incident_due_soon_hours"]) for c in session.scalars(stmt)]


def inbox(session: Session, user: User, *, settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """我的待办: open cases assigned to *user*, soonest due first."""
    stmt = (select(IncidentCase).where(IncidentCase.assignee == user.username, IncidentCase.state.in_(OPEN_STATES))
            .order_by(IncidentCase.due_at.is_(None), IncidentCase.due_at))
    return _rows(session, stmt, settings)


#: Cases listed per section of the command centre's queue (the count above each says how many there are).
QUEUE_SHOWN = 200


def _queue_statements() -> dict[str, Select[Any]]:
    now, open_ = utcnow(), IncidentCase.state.in_(OPEN_STATES)
    return {
        "new": select(IncidentCase).where(IncidentCase.state == "reported", IncidentCase.grid_code.is_not(None)),
        "pending_location": select(IncidentCase).where(open_, IncidentCase.grid_code.is_(None)),
        "overdue": select(IncidentCase).where(open_, or_(IncidentCase.due_at < now,
                                                         IncidentCase.supervise_level.is_not(None))),
        "feedback": select(IncidentCase).where(IncidentCase.state == "feedback"),
        "extensions": select(IncidentCase).where(open_, IncidentCase.pending_extension_days > 0),
    }


def supervisor_queue(session: Session, *, settings: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The command centre's queue: to accept, 待定位, overdue or 督办, extension requests (the first
    :data:`QUEUE_SHOWN` of each by case number)."""
    return {k: _rows(session, stmt.order_by(IncidentCase.id).limit(QUEUE_SHOWN), settings)
            for k, stmt in _queue_statements().items()}


def supervisor_queue_counts(session: Session) -> dict[str, int]:
    """How many cases each section of the queue holds (it lists at most :data:`QUEUE_SHOWN`)."""
    return {k: int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
            for k, stmt in _queue_statements().items()}


def cases_geojson(session: Session, user: User, args: Mapping[str, str], *, limit: int = 5000) -> dict[str, Any]:
    """Located cases in the bounding box ``bbox=w,s,e,n`` (and filters) as GeoJSON points."""
    stmt = select(IncidentCase.id, IncidentCase.lon, IncidentCase.lat, IncidentCase.state, IncidentCase.category,
                  IncidentCase.supervise_level, IncidentCase.due_at).where(IncidentCase.lon.is_not(None), *_filtered(args))
    bbox = [float(v) for v in args.get("bbox", "").split(",") if v.strip()] if args.get("bbox") else []
    if len(bbox) == 4:
        stmt = stmt.where(IncidentCase.lon.between(bbox[0], bbox[2]), IncidentCase.lat.between(bbox[1], bbox[3]))
    stmt = stmt.where(*_recent(args))
    rows = session.execute(visible(stmt, session, user).order_by(IncidentCase.id.desc()).limit(limit)).all()
    now = utcnow()
    feats = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]},
              "properties": {"id": i, "state": st, "state_label": STATES[st], "category": cat, "supervise": sup,
                             "overdue": bool(st in OPEN_STATES and due is not None and due < now)}}
             for i, x, y, st, cat, sup, due in rows]
    return {"type": "FeatureCollection", "features": feats, "truncated": len(rows) == limit}


def _recent(args: Mapping[str, str], *, by_grid: bool = False) -> list[Any]:
    """The ``days=N`` filter: cases reported in the last N days."""
    if str(args.get("days", "")).isdigit():
        reported = _unindexed(IncidentCase.reported_at) if by_grid else IncidentCase.reported_at
        return [reported >= utcnow() - timedelta(days=int(args["days"]))]
    return []


def _in_grids(keys: Sequence[str] | None) -> list[Any]:
    """Cases of the grids *keys* (``None``: every located case); the grid_code index serves the lookup."""
    return [IncidentCase.grid_code.is_not(None)] if keys is None else [IncidentCase.grid_code.in_(list(keys))]


def grid_counts(session: Session, user: User, args: Mapping[str, str], *,
                keys: Sequence[str] | None = None) -> dict[str, int]:
    """Cases per grid code matching the map's filters (``state``, ``category``, ``source``, ``days``) that *user* sees,
    in the grids *keys* (default: all)."""
    by_grid = keys is not None
    stmt = (select(IncidentCase.grid_code, func.count())
            .where(*_in_grids(keys), *_filtered(args, by_grid=by_grid), *_recent(args, by_grid=by_grid))
            .group_by(IncidentCase.grid_code))
    return {str(k): int(n) for k, n in session.execute(visible(stmt, session, user))}


def case_photos(session: Session, case_id: int) -> list[IncidentPhoto]:
    """Photos of a case, oldest first."""
    return list(session.scalars(select(IncidentPhoto).where(IncidentPhoto.case_id == case_id).order_by(IncidentPhoto.id)))


def open_counts(session: Session, *, keys: Sequence[str] | None = None) -> dict[str, int]:
    """Open cases per grid code (the map's choropleth), in the grids *keys* (default: all)."""
    state = IncidentCase.state if keys is None else _unindexed(IncidentCase.state)
    rows = session.execute(select(IncidentCase.grid_code, func.count()).where(
        state.in_(OPEN_STATES), *_in_grids(keys)).group_by(IncidentCase.grid_code))
    return {str(k): int(n) for k, n in rows}
