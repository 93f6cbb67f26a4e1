"""Patrol routes: live intake from tracker apps, devices, coverage and tracks (``/api/patrol/...``).

``/api/patrol/osmand`` takes fixes from stock apps with no login: the device id is bound
to a worker by an admin, unknown ids are refused (403) and listed. Set the app's server
address to ``http(s)://HOST/api/patrol/osmand`` (OsmAnd: online tracking URL with
``?id=…&lat={0}&lon={1}&timestamp={2}&…``; Traccar Client: server URL, any version).
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from flask import Blueprint, abort, current_app, jsonify, request
from flask_login import current_user

from api.auth import csrf, role_required
from api.db import get_session, session_scope
from api.grids.service import GridNotFound
from api.models import User
from api.patrol.models import FIX_SOURCES
from api.patrol.protocol import (
    IncomingFix,
    ProtocolError,
    fixes_from_query,
    fixes_from_traccar_json,
)
from api.patrol.reports import BY_CHOICES, clean_options, coverage_report, period_bounds
from api.patrol.store import (
    PatrolError,
    bind_device,
    device_owner,
    devices_listing,
    fixes_frame,
    grids_for,
    note_unknown,
    store_fixes,
    user_by_name,
    write_lock,
)
from api.patrol.visits import audit_first
from api.security import MAX_ID, json_object
from geo.patrol.clean import clean_fixes

__all__ = ["bp", "intake", "SUPERVISOR_ROLES"]

bp = Blueprint("patrol", __name__)
_INTAKE_LOCK = threading.Lock()

#: Roles that may see every worker's tracks and the coverage of every grid.
SUPERVISOR_ROLES: tuple[str, ...] = ("admin", "planner")


def _incoming() -> tuple[list[IncomingFix], str]:
    if request.method == "POST" and request.is_json:
        return fixes_from_traccar_json(request.get_json(silent=True)), FIX_SOURCES[1]
    return fixes_from_query(request.values), FIX_SOURCES[0]


def _frame(fixes: list[IncomingFix]) -> pd.DataFrame:
    return pd.DataFrame([{k: getattr(f, k) for k in ("t", "lon", "lat", "accuracy", "speed", "bearing", "altitude",
                                                     "battery")} for f in fixes])


@bp.route("/api/patrol/osmand", methods=["GET", "POST"])
@csrf.exempt
def intake() -> Any:
    """One OsmAnd-protocol fix or a Traccar Client JSON body; 200 (empty) when stored."""
    try:
        fixes, source = _incoming()
    except ProtocolError as exc:
        abort(400, description=str(exc))
    device = fixes[0].device_id
    settings = current_app.config["WANGGE"]
    cache = current_app.extensions.setdefault("patrol_grids", {})
    # Writers of this process queue on a lock: SQLite's busy handler backs off in growing
    # sleeps, which gave a 1.3 s p99 at 200 fixes/s; other processes still meet write_lock.
    with _INTAKE_LOCK, session_scope() as s:
        write_lock(s)
        owner = device_owner(s, device)
        if owner is None:
            note_unknown(s, fixes[-1])
        else:
            store_fixes(s, owner, _frame(fixes), source=source, device_id=device,
                        grids=grids_for(s, settings, cache), settings=settings)
    if owner is None:
        abort(403, description=f"设备 {device} 未绑定网格员，定位已拒收；请管理员在 巡查设备 中把它绑定到网格员账号")
    return "", 200


@bp.get("/api/patrol/devices")
@role_required("admin")
def devices() -> Any:
    """Bound devices and refused unknown devices."""
    return jsonify(devices_listing(get_session()))


@bp.post("/api/patrol/devices")
@role_required("admin")
def bind() -> Any:
    """Bind ``{"device_id", "username", "label"?}``."""
    body = json_object()
    device, username = str(body.get("device_id") or "").strip(), str(body.get("username") or "").strip()
    if not device or not username:
        abort(400, description="需要 device_id 和 username；请填写设备标识和网格员账号")
    try:
        with session_scope() as s:
            dev = bind_device(s, device, username, by=current_user.username, label=body.get("label"))
            out = {"device_id": dev.device_id, "username": username}
    except PatrolError as exc:
        abort(400, description=str(exc))
    return jsonify(out), 201


def _date_arg(name: str) -> date:
    value = request.args.get(name, "")
    try:
        return date.fromisoformat(value)
    except ValueError:
        abort(400, description=f"参数 {name}={value!r} 不是日期；请写成 2024-05-06")


@bp.get("/api/patrol/coverage")
@role_required(*SUPERVISOR_ROLES)
def coverage() -> Any:
    """Coverage per grid / worker / day for ``?from=&to=&by=``, with the cleaning counts."""
    start, end = _date_arg("from"), _date_arg("to")
    by = request.args.get("by", "grid")
    if by not in BY_CHOICES or end < start:
        abort(400, description=f"by 应为 {'、'.join(BY_CHOICES)} 之一，且 to 不早于 from")
    rep = coverage_report(get_session(), settings=current_app.config["WANGGE"], start=start, end=end, by=by)
    table = rep.table.astype(object).where(rep.table.notna(), None)
    for col in ("period", "first_visit", "last_visit"):
        table[col] = [None if v is None else v.isoformat() for v in table[col]]
    return jsonify({"rows": table.to_dict("records"), "dropped": rep.cleaned.dropped,
                    "repaired": rep.cleaned.repaired, "fixes_in": rep.cleaned.n_input})


@bp.get("/api/patrol/track")
@role_required("admin", "planner", "worker")
def track() -> Any:
    """One worker's cleaned track of one day (``?user=&date=``); workers see only their own. Audited."""
    me: User = current_user._get_current_object()  # type: ignore[attr-defined]
    username = request.args.get("user") or me.username
    if me.role not in SUPERVISOR_ROLES and username != me.username:
        abort(403, description="网格员只能查看本人的巡查轨迹")
    day = _date_arg("date")
    settings = current_app.config["WANGGE"]
    with session_scope() as s:
        audit_first(s, me, "patrol.track_view", f"user:{username}").detail = {"date": day.isoformat()}
        try:
            user = user_by_name(s, username)
        except PatrolError as exc:
            abort(404, description=str(exc))
        lo, hi = period_bounds(day, day, settings["patrol_timezone"])
        cleaned = clean_fixes(fixes_frame(s, lo, hi, user_ids=[user.id]), **clean_options(settings))
    f = cleaned.fixes
    sessions = [{"session": int(k), "start": g["t"].iloc[0].isoformat(), "end": g["t"].iloc[-1].isoformat(),
                 "coordinates": g[["lon", "lat"]].round(7).to_numpy().tolist(),
                 "times": [t.isoformat() for t in g["t"]]} for k, g in f.groupby("session")]
    return jsonify({"user": username, "date": day.isoformat(), "sessions": sessions,
                    "dropped": cleaned.dropped, "fixes_in": cleaned.n_input,
                    "generated_at": datetime.now().astimezone().isoformat()})


def _float_or_none(value: Any, name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        abort(400, description=f"{name}={value!r} 不是数字；请填写经纬度数字或留空")


@bp.get("/api/patrol/visits")
@role_required("admin", "planner", "worker")
def visits() -> Any:
    """Key persons of ``?grid=`` (workers: default all own grids) with due / overdue / done. Masked, audited."""
    from api.patrol.visits import visits_of_grid
    from api.register import access
    from api.register.queries import RecordNotFound

    me: User = current_user._get_current_object()  # type: ignore[attr-defined]
    settings = current_app.config["WANGGE"]
    today = datetime.now(ZoneInfo(settings["patrol_timezone"])).date()
    try:
        with session_scope() as s:
            audit_first(s, me, "patrol.visits_list", request.args.get("grid") or "own")
            grids = [request.args["grid"]] if request.args.get("grid") else sorted(access.own_grids(s, me))
            if not grids:
                abort(400, description="请用 ?grid= 指定网格；您的账号没有关联网格")
            rows = [r for g in grids for r in visits_of_grid(s, me, g, today=today, settings=settings)]
    except access.Forbidden as exc:
        abort(403, description=str(exc))
    except (RecordNotFound, GridNotFound) as exc:
        abort(404, description=str(exc).strip("'\""))
    return jsonify({"grids": grids, "rows": rows})


@bp.post("/api/patrol/visits")
@role_required("admin", "planner", "worker")
def record() -> Any:
    """Record a visit ``{"keyperson_id", "note"?, "lon"?, "lat"?}`` (own grids only)."""
    from api.patrol.visits import record_visit
    from api.register import access
    from api.register.queries import RecordNotFound

    me: User = current_user._get_current_object()  # type: ignore[attr-defined]
    body = json_object()
    try:
        kp = int(body.get("keyperson_id"))
    except (TypeError, ValueError):
        abort(400, description="需要 keyperson_id（整数）；请从待走访名单中选择")
    lon, lat = _float_or_none(body.get("lon"), "lon"), _float_or_none(body.get("lat"), "lat")
    if abs(kp) > MAX_ID:  # beyond any id column (PostgreSQL: "integer out of range")
        abort(404, description=f"重点人员 {kp} 不存在；请从待走访名单中选择")
    try:
        with session_scope() as s:
            v = record_visit(s, me, kp, note=(body.get("note") or None), lon=lon, lat=lat)
            out = {"id": v.id, "keyperson_id": kp, "grid": v.grid_code, "at": v.at.isoformat()}
    except access.Forbidden as exc:
        abort(403, description=str(exc))
    except RecordNotFound as exc:
        abort(404, description=str(exc))
    except ValueError as exc:
        abort(400, description=str(exc))
    return jsonify(out), 201


@bp.get("/api/patrol/my")
@role_required("admin", "planner", "worker")
def my_day() -> Any:
    """The logged-in worker's own grids, track and visited buildings of ``?date=`` (default today). Audited."""
    from api.patrol.mymap import worker_day

    me: User = current_user._get_current_object()  # type: ignore[attr-defined]
    settings = current_app.config["WANGGE"]
    day = _date_arg("date") if request.args.get("date") else datetime.now(ZoneInfo(settings["patrol_timezone"])).date()
    with session_scope() as s:
        audit_first(s, me, "patrol.track_view", f"user:{me.username}").detail = {"date": day.isoformat(), "page": "my"}
        out = worker_day(s, me, day, settings=settings)
    return jsonify(out)


@bp.get("/api/patrol/alerts")
@role_required(*SUPERVISOR_ROLES)
def alerts() -> Any:
    """Geofence alerts (outside grids, stationary, silent) of today, or of ``?at=`` (ISO time). Audited."""
    from api.patrol.reports import geofence_report

    value = request.args.get("at")
    try:
        at = datetime.fromisoformat(value) if value else datetime.now(UTC)
    except ValueError:
        abort(400, description=f"参数 at={value!r} 不是时间；请写成 2024-05-06T10:00:00+08:00")
    if at.tzinfo is None:
        abort(400, description="参数 at 需要带时区；请写成 2024-05-06T10:00:00+08:00")
    me: User = current_user._get_current_object()  # type: ignore[attr-defined]
    with session_scope() as s:
        audit_first(s, me, "patrol.alerts_view", "alerts").detail = {"at": at.isoformat()}
        table = geofence_report(s, settings=current_app.config["WANGGE"], at=at)
    rows = table.astype(object).where(table.notna(), None).to_dict("records")
    for r in rows:
        r["start"], r["end"] = r["start"].isoformat(), r["end"].isoformat()
    return jsonify({"at": at.isoformat(), "alerts": rows})
