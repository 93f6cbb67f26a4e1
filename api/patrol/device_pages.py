"""巡查设备与轨迹 (``/patrol/devices``, admins): bind a tracker app's device to a worker, import track files.

What ``wangge patrol bind`` and ``wangge patrol import`` do, on a page the empty patrol map links
to. A track file is one worker's fixes (a day's GPX is a few hundred KB, bounded by
``max_upload_mb``): read and stored in the request, all or nothing, fixes already stored skipped.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, render_template, request
from flask_login import current_user
from sqlalchemy import select
from werkzeug.utils import secure_filename

from api.auth import role_required
from api.db import get_session, session_scope
from api.models import User
from api.patrol.protocol import ProtocolError, device_id
from api.patrol.store import PatrolError, bind_device, devices_listing, grids_for, import_tracks
from api.security import upload_route
from geo.errors import ReadError
from geo.patrol.readers import read_track

__all__ = ["bp", "TRACK_SUFFIXES"]

bp = Blueprint("patrol_device_pages", __name__)

#: Track files the import reads (``geo.patrol.readers.read_track``).
TRACK_SUFFIXES = (".gpx", ".csv", ".xlsx", ".geojson", ".json", ".gpkg", ".plt")
_COORDS = ("wgs84", "gcj02", "bd09")


def _worker() -> str:
    """The form's worker account name, or a :class:`PatrolError` asking for one."""
    username = request.form.get("username", "").strip()
    if not username:
        raise PatrolError("没有选择网格员；先选择设备或轨迹所属的网格员账号")
    return username


def _bind() -> str:
    """Bind the form's device to the form's worker; the message to show."""
    username = _worker()
    try:
        device = device_id(request.form.get("device_id"))
    except ProtocolError as exc:
        raise PatrolError(str(exc)) from None
    label = request.form.get("label", "").strip()[:100] or None
    with session_scope() as s:
        bind_device(s, device, username, by=current_user.username, label=label)
    return f"已把设备 {device} 绑定给 {username}：此后它上报的定位点记入该网格员的轨迹"


def _import() -> str:
    """Store the fixes of the uploaded track file for the form's worker; the message to show."""
    upload = request.files.get("file")
    name = secure_filename(upload.filename or "") if upload is not None else ""
    suffix = Path(name).suffix.lower()
    if upload is None or not name:
        raise PatrolError("没有选择轨迹文件；选择 GPX、CSV、XLSX、GeoJSON、GeoPackage 或 .plt 文件后重试")
    if suffix not in TRACK_SUFFIXES:
        raise PatrolError(f"不能读取 {suffix or '无扩展名'} 文件；可选：{'、'.join(TRACK_SUFFIXES)}")
    coords = request.form.get("coords", "wgs84")
    if coords not in _COORDS:
        raise PatrolError(f"坐标系 {coords!r} 不可用；可选：{'、'.join(_COORDS)}")
    settings = current_app.config["WANGGE"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        upload.save(path)
        try:
            fixes = read_track(path, coords=coords, naive_tz=settings["patrol_timezone"])
        except ReadError as exc:
            detail = str(exc).replace(f"{tmp}/", "")
            raise PatrolError(f"轨迹文件 {name} 读不出定位点（{detail}）；请导入 GPX、CSV/XLSX（经度、纬度、时间列）、"
                              "GeoJSON/GeoPackage 点或 GeoLife .plt 轨迹") from None
    username = _worker()
    with session_scope() as s:
        stored, skipped = import_tracks(s, username, [(name, fixes)], by=current_user.username,
                                        grids=grids_for(s, settings), settings=settings)
    return f"已导入 {name}：{stored} 个定位点记入 {username} 的轨迹，跳过已有 {skipped} 个"


@bp.route("/patrol/devices", methods=["GET", "POST"])
@upload_route
@role_required("admin")
def devices_page() -> tuple[str, int]:
    """巡查设备与轨迹: bound and refused devices, a bind form and a track-file import."""
    message, error = None, None
    if request.method == "POST":
        try:
            message = _bind() if request.form.get("action") == "bind" else _import()
        except PatrolError as exc:
            error = str(exc)
    s = get_session()
    workers = s.scalars(select(User.username).where(User.role == "worker").order_by(User.username)).all()
    listing: dict[str, Any] = devices_listing(s)
    return render_template("patrol/devices.html", workers=workers, listing=listing, message=message,
                           error=error, suffixes=TRACK_SUFFIXES,
                           chosen=request.form.get("username", "")), (400 if error else 200)
