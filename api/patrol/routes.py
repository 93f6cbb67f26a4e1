"""Patrol routes: live intake from tracker apps, devices, coverage and tracks (``/api/patrol/...``).

``/api/patrol/osmand`` takes fixes from stock apps with no login: the device id is bound
to a worker by an admin, unknown ids are refused (403) and listed. Set the app's server
address to ``http(s)://HOST/api/patrol/osmand`` (OsmAnd: online tracking URL with
``?id=…&lat={0}&lon={1}&timestamp={2}&…``; Traccar Client: server URL, any version).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from flask_login import current_user

from api.auth import csrf, role_required
from api.db import get_session, session_scope
from api.errors import RequestError
from api.grids.service import GridNotFound
from api.incidents.photos import Photo, PhotoError, check_photos
from api.models import User
from api.patrol.models import FIX_SOURCES
from api.patrol.protocol import (
    IncomingFix,
    ProtocolError,
    device_id,
    fixes_from_query,
    fixes_from_traccar_json,
)
from api.patrol.reports import BY_CHOICES, PERIODS, clean_options, coverage_report, period_bounds
from api.patrol.store import (
    PatrolError,
    bind_device,
    device_owner,
    devices_listing,
    fix_rows,
    fixes_frame,
    grids_for,
    insert_fixes,
    last_positions,
    note_unknown,
    user_by_name,
)
from api.patrol.visits import audit_first
from api.security import MAX_ID, json_object
from geo.patrol.clean import clean_fixes

__all__ = ["bp", "intake", "SUPERVISOR_ROLES"]

bp = Blueprint("patrol", __name__)

#: Roles that may see every worker's tracks and the coverage of every grid.
SUPERVISOR_ROLES: tuple[str, ...] = ("admin", "planner")


def _incoming() -> tuple[list[IncomingFix], str]:
    if request.method == "POST" and request.is_json:
        return fixes_from_traccar_json(request.get_json(silent=True)), FIX_SOURCES[1]
    return fixes_from_query(request.values), FIX_SOURCES[0]


def _columns(fixes: list[IncomingFix]) -> dict[str, list[Any]]:
    return {k: [getattr(f, k) for f in fixes] for k in ("t", "lon", "lat", "accuracy", "speed", "bearing", "altitude",
                                                         "battery")}


@bp.route("/api/patrol/osmand", methods=["GET", "POST"])
@csrf.exempt
def intake() -> Any:
    """One OsmAnd-protocol fix or a Traccar Client JSON body; 200 (empty) when stored."""
    try:
        fixes, source = _incoming()
    except ProtocolError as exc:
        raise RequestError(400, "bad_fix", str(exc), "按 OsmAnd 或 Traccar Client 的格式上报定位") from None
    device = fixes[0].device_id
    settings = current_app.config["WANGGE"]
    # Everything but the INSERT happens before the write transaction: a writer holds the
    # database (and this process's writer queue) for one statement and the commit.
    with session_scope(write=False) as s:
        owner = device_owner(s, device)
        grids = grids_for(s, settings) if owner is not None else None
    if owner is None:
        with session_scope() as s:
            note_unknown(s, fixes[-1])
        raise RequestError(403, "unknown_device", f"设备 {device} 未绑定网格员，定位已拒收",
                           "请管理员在“巡查设备”中把它绑定到网格员账号", field="id")
    rows = fix_rows(owner, _columns(fixes), source=source, device_id=device, grids=grids, settings=settings)
    with session_scope() as s:
        insert_fixes(s, rows)
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
    username, label = str(body.get("username") or "").strip(), body.get("label")
    try:
        device = device_id(body.get("device_id"))
    except ProtocolError as exc:
        raise RequestError(400, "bad_device_id", f"device_id：{exc}", "填写 1–100 个字的设备标识", field="device_id") from None
    if not username:
        raise RequestError(400, "bad_request", "缺少 username", "填写网格员账号", field="username")
    if label is not None and (not isinstance(label, str) or len(label) > 100):
        raise RequestError(400, "bad_label", "label 须为不超过 100 个字的文字", "填写简短的设备名称或留空", field="label")
    try:
        with session_scope() as s:
            dev = bind_device(s, device, username, by=current_user.username, label=body.get("label"))
            out = {"device_id": dev.device_id, "username": username}
    except PatrolError as exc:
        raise RequestError(400, "bind_refused", str(exc), "检查设备标识和网格员账号后重试") from None
    return jsonify(out), 201


def _date_arg(name: str) -> date:
    value = request.args.get(name, "")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RequestError(400, "bad_date", f"参数 {name}={value!r} 不是日期", "写成 2024-05-06", field=name) from None


@bp.get("/api/patrol/coverage")
@role_required(*SUPERVISOR_ROLES)
def coverage() -> Any:
    """Coverage per grid / worker / day for ``?from=&to=&by=`` (``&period=day|week|month``), with the cleaning counts."""
    start, end = _date_arg("from"), _date_arg("to")
    by = request.args.get("by", "grid")
    if by not in BY_CHOICES or end < start:
        raise RequestError(400, "bad_request", f"参数 by={by!r} 或日期范围无效",
                           f"by 应为 {'、'.join(BY_CHOICES)} 之一，且 to 不早于 from", field="by" if by not in BY_CHOICES else "to")
    period = request.args.get("period") or None
    if period is not None and period not in PERIODS:
        raise RequestError(400, "bad_period", f"参数 period={period!r} 无效", f"period 应为 {'、'.join(PERIODS)} 之一",
                           field="period")
    rep = coverage_report(get_session(), settings=current_app.config["WANGGE"], start=start, end=end, by=by,
                          period=period)
    rows = rep.table.astype(object).where(rep.table.notna(), None).to_dict("records")
    # Per record, not per column: a column of text and None would come back as a string column with NaN.
    for r in rows:
        for col in ("period", "first_visit", "last_visit"):
            r[col] = None if r[col] is None else r[col].isoformat()
    return jsonify({"rows": rows, "dropped": rep.cleaned.dropped,
                    "repaired": rep.cleaned.repaired, "fixes_in": rep.cleaned.n_input})


@bp.get("/api/patrol/track")
@role_required("admin", "planner", "worker")
def track() -> Any:
    """One worker's cleaned track of one day (``?user=&date=``); workers see only their own. Audited."""
    me: User = current_user._get_current_object()  # type: ignore[attr-defined]
    username = request.args.get("user") or me.username
    if me.role not in SUPERVISOR_ROLES and username != me.username:
        raise RequestError(403, "forbidden", "网格员只能查看本人的巡查轨迹", "去掉参数 user，或请督导查看", field="user")
    day = _date_arg("date")
    settings = current_app.config["WANGGE"]
    with session_scope() as s:
        audit_first(s, me, "patrol.track_view", f"user:{username}").detail = {"date": day.isoformat()}
        try:
            user = user_by_name(s, username)
        except PatrolError as exc:
            raise RequestError(404, "user_not_found", str(exc), "检查网格员账号", field="user") from None
        lo, hi = period_bounds(day, day, settings["patrol_timezone"])
        cleaned = clean_fixes(fixes_frame(s, lo, hi, user_ids=[user.id]), **clean_options(settings))
    f = cleaned.fixes
    sessions = [{"session": int(k), "start": g["t"].iloc[0].isoformat(), "end": g["t"].iloc[-1].isoformat(),
                 "coordinates": g[["lon", "lat"]].round(7).to_numpy().tolist(),
                 "times": [t.isoformat() for t in g["t"]]} for k, g in f.groupby("session")]
    return jsonify({"user": username, "date": day.isoformat(), "sessions": sessions,
                    "dropped": cleaned.dropped, "fixes_in": cleaned.n_input,
                    "generated_at": datetime.now(UTC).isoformat()})


def _float_or_none(value: Any, name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise RequestError(400, "bad_coordinates", f"{name}={value!r} 不是数字", "填写经纬度数字或留空", field=name) from None
    if not math.isfinite(out) or abs(out) > (90 if name == "lat" else 180):
        raise RequestError(400, "bad_coordinates", f"{name}={value!r} 超出范围（经度 -180~180，纬度 -90~90，WGS84）",
                           "填写 WGS84 经纬度或留空", field=name)
    return out


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
                raise RequestError(400, "grid_required", "您的账号没有关联网格", "请用 ?grid= 指定网格", field="grid")
            rows = [r for g in grids for r in visits_of_grid(s, me, g, today=today, settings=settings)]
    except access.Forbidden as exc:
        raise RequestError(403, "forbidden", str(exc), "只能查看本人负责网格的记录；如需更多权限，请联系管理员") from None
    except (RecordNotFound, GridNotFound) as exc:
        raise RequestError(404, "not_found", str(exc).strip("'\""), "检查网格编码或记录编号", field="grid") from None
    return jsonify({"grids": grids, "rows": rows})


@bp.get("/api/patrol/visits/history")
@role_required("admin", "planner", "worker")
def visit_history() -> Any:
    """Visits recorded in ``?grid=`` (workers: default all own grids), newest first. Masked, audited."""
    from api.localtime import local_text
    from api.patrol.visits import visit_history as history
    from api.register import access
    from api.register.queries import RecordNotFound

    me: User = current_user._get_current_object()  # type: ignore[attr-defined]
    settings = current_app.config["WANGGE"]
    try:
        with session_scope() as s:
            grids = [request.args["grid"]] if request.args.get("grid") else sorted(access.own_grids(s, me))
            if not grids:
                raise RequestError(400, "grid_required", "您的账号没有关联网格", "请用 ?grid= 指定网格", field="grid")
            limit = int(settings["patrol_visit_history_limit"])
            rows = [dict(r, grid=g) for g in grids for r in history(s, me, g, limit=limit)]
            rows = sorted(rows, key=lambda r: (r["at"], r["id"]), reverse=True)[:limit]
    except access.Forbidden as exc:
        raise RequestError(403, "forbidden", str(exc), "只能查看本人负责网格的记录；如需更多权限，请联系管理员") from None
    except (RecordNotFound, GridNotFound) as exc:
        raise RequestError(404, "not_found", str(exc).strip("'\""), "检查网格编码", field="grid") from None
    for r in rows:
        r["at_local"] = local_text(r["at"], settings)
        r["at"] = r["at"].isoformat()
        r["photo_url"] = url_for(".visit_photo", visit_id=r["id"]) if r.pop("has_photo") else None
    return jsonify({"grids": grids, "rows": rows})


def _visit_photo() -> Photo | None:
    """The multipart ``photo`` of a visit, checked (one JPEG, PNG or WebP within incident_photo_max_mb), or None."""
    files = [(f.filename or "photo", f.read()) for f in request.files.getlist("photo")]
    if len(files) > 1:
        raise RequestError(400, "bad_photo", f"每次走访最多 1 张照片，收到 {len(files)} 张", "只选一张照片", field="photo")
    try:
        photos = check_photos(files, current_app.config["WANGGE"])
    except PhotoError as exc:
        raise RequestError(400, "bad_photo", str(exc), "上传一张 JPEG、PNG 或 WebP 照片", field="photo") from None
    return photos[0] if photos else None


@bp.post("/api/patrol/visits")
@role_required("admin", "planner", "worker")
def record() -> Any:
    """Record a visit ``{"keyperson_id", "note"?, "lon"?, "lat"?}`` (own grids only); as a form with a ``photo`` file too."""
    from api.patrol.visits import record_visit
    from api.register import access
    from api.register.queries import RecordNotFound

    me: User = current_user._get_current_object()  # type: ignore[attr-defined]
    multipart = request.mimetype == "multipart/form-data"
    body: dict[str, Any] = request.form.to_dict() if multipart else json_object()
    try:
        kp = int(body.get("keyperson_id"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise RequestError(400, "bad_request", "需要 keyperson_id（整数）", "请从待走访名单中选择", field="keyperson_id") from None
    lon, lat = _float_or_none(body.get("lon"), "lon"), _float_or_none(body.get("lat"), "lat")
    note = body.get("note")
    if note is not None and not isinstance(note, str):
        raise RequestError(400, "bad_note", "note 须为文字", "填写走访情况（文字）或留空", field="note")
    if abs(kp) > MAX_ID:  # beyond any id column (PostgreSQL: "integer out of range")
        raise RequestError(404, "keyperson_not_found", f"重点人员 {kp} 不存在", "请从待走访名单中选择", field="keyperson_id")
    photo = _visit_photo() if multipart else None
    try:
        with session_scope() as s:
            v, repeated = record_visit(s, me, kp, note=note or None, lon=lon, lat=lat, photo=photo,
                                       instance=current_app.instance_path,
                                       repeat_s=float(current_app.config["WANGGE"]["patrol_visit_repeat_s"]))
            out = {"id": v.id, "keyperson_id": kp, "grid": v.grid_code, "at": v.at.isoformat(),
                   "photo_url": url_for(".visit_photo", visit_id=v.id) if v.photo_path else None,
                   "repeated": repeated}
    except access.Forbidden as exc:
        raise RequestError(403, "forbidden", str(exc), "只能查看本人负责网格的记录；如需更多权限，请联系管理员") from None
    except RecordNotFound as exc:
        raise RequestError(404, "not_found", str(exc), "请从待走访名单中选择", field="keyperson_id") from None
    except ValueError as exc:
        raise RequestError(400, "bad_request", str(exc), "检查走访记录的内容后重试") from None
    return jsonify(out), 200 if repeated else 201


@bp.get("/api/patrol/visits/<int:visit_id>/photo")
@role_required("admin", "planner", "worker")
def visit_photo(visit_id: int) -> Any:
    """The photo of a visit: its worker, or users who may see its grid's key persons. Audited."""
    from api.patrol.visits import visit_photo as read_photo
    from api.register import access
    from api.register.queries import RecordNotFound

    me: User = current_user._get_current_object()  # type: ignore[attr-defined]
    if visit_id > MAX_ID:
        raise RequestError(404, "photo_not_found", f"走访 {visit_id} 没有照片", "从走访记录打开照片")
    try:
        with session_scope() as s:
            data, mime = read_photo(s, me, visit_id, current_app.instance_path)
    except access.Forbidden as exc:
        raise RequestError(403, "forbidden", str(exc), "只能查看本人负责网格的走访照片") from None
    except RecordNotFound as exc:
        raise RequestError(404, "photo_not_found", str(exc), "从走访记录打开照片") from None
    response = Response(data, mimetype=mime)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


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


@bp.get("/api/patrol/route")
@role_required("admin", "planner", "worker")
def route() -> Any:
    """Suggested loop of ``?grid=`` (workers: own grid) for ``?date=`` (default today); ``due_only=1``,
    ``lon=&lat=`` (start). Audited: the stops show where key persons are due a visit."""
    from api.patrol.route import route_of_grid
    from api.register import access
    from geo.errors import LayerError

    me: User = current_user._get_current_object()  # type: ignore[attr-defined]
    settings = current_app.config["WANGGE"]
    day = _date_arg("date") if request.args.get("date") else datetime.now(ZoneInfo(settings["patrol_timezone"])).date()
    lon, lat = _float_or_none(request.args.get("lon"), "lon"), _float_or_none(request.args.get("lat"), "lat")
    if (lon is None) != (lat is None):
        raise RequestError(400, "bad_coordinates", "起点只给了 lon 或 lat 之一：需同时提供 lon 和 lat", "同时提供 lon 和 lat，或都不填", field="lon")
    if lon is not None and not (abs(lon) <= 180 and abs(lat) <= 90):  # also refuses NaN
        raise RequestError(400, "bad_coordinates", f"起点 lon={lon}, lat={lat} 不是有效经纬度", "经度 -180~180，纬度 -90~90", field="lon")
    try:
        with session_scope() as s:
            key = request.args.get("grid") or next(iter(sorted(access.own_grids(s, me))), "")
            if not key:
                raise RequestError(400, "no_grid", "您的账号没有关联网格", "请用 ?grid= 指定网格", field="grid")
            audit_first(s, me, "patrol.route_view", f"grid:{key}").detail = {"date": day.isoformat()}
            access.require_grid(s, me, key)
            out = route_of_grid(s, key, day, settings=settings, user=me, due_only=request.args.get("due_only") == "1",
                                start=None if lon is None else (lon, lat))
    except access.Forbidden as exc:
        raise RequestError(403, "forbidden", str(exc), "只能查看本人负责的网格", field="grid") from None
    except GridNotFound as exc:
        raise RequestError(404, "grid_not_found", str(exc).strip("'\""), "检查网格编码", field="grid") from None
    except LayerError as exc:
        raise RequestError(409, "route_unavailable", str(exc), "先导入街巷路网并发布方案") from None
    return jsonify(out)


@bp.get("/api/patrol/positions")
@role_required(*SUPERVISOR_ROLES)
def positions() -> Any:
    """Each worker's last known position (latest fix of the last ``?hours=``, default 24). Audited."""
    from datetime import timedelta

    value = request.args.get("hours", "24")
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 24 * 31:
        raise RequestError(400, "bad_hours", f"参数 hours={value!r} 无效", "hours 应为 1 到 744 之间的整数（小时）", field="hours")
    me: User = current_user._get_current_object()  # type: ignore[attr-defined]
    with session_scope() as s:
        audit_first(s, me, "patrol.positions_view", "workers").detail = {"hours": int(value)}
        rows = last_positions(s, since=datetime.now(UTC) - timedelta(hours=int(value)))
    return jsonify({"workers": rows})


@bp.get("/api/patrol/alerts")
@role_required(*SUPERVISOR_ROLES)
def alerts() -> Any:
    """Geofence alerts (outside grids, stationary, silent) of today, or of ``?at=`` (ISO time). Audited."""
    from api.patrol.reports import geofence_report

    value = request.args.get("at")
    try:
        at = datetime.fromisoformat(value) if value else datetime.now(UTC)
    except ValueError:
        raise RequestError(400, "bad_time", f"参数 at={value!r} 不是时间", "写成 2024-05-06T10:00:00+08:00",
                           field="at") from None
    if at.tzinfo is None:
        raise RequestError(400, "bad_time", "参数 at 需要带时区", "写成 2024-05-06T10:00:00+08:00", field="at")
    me: User = current_user._get_current_object()  # type: ignore[attr-defined]
    with session_scope() as s:
        audit_first(s, me, "patrol.alerts_view", "alerts").detail = {"at": at.isoformat()}
        table = geofence_report(s, settings=current_app.config["WANGGE"], at=at)
    rows = table.astype(object).where(table.notna(), None).to_dict("records")
    for r in rows:
        r["start"], r["end"] = r["start"].isoformat(), r["end"].isoformat()
    return jsonify({"at": at.isoformat(), "alerts": rows})
