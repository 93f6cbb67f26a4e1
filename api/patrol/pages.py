"""Patrol pages: the worker's phone map (/patrol/my), the supervisor's view (/patrol), tracker devices (/patrol/devices)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from api.auth import role_required
from api.db import get_session, session_scope
from api.models import User
from api.patrol.protocol import ProtocolError, device_id
from api.patrol.store import PatrolError, bind_device, devices_listing

__all__ = ["bp"]

bp = Blueprint("patrol_pages", __name__)


@bp.get("/patrol/my")
@login_required
def my_page() -> str:
    """我的巡查: own grids, today's track, visited vs unvisited buildings, due visits (phone first)."""
    return render_template("patrol/my.html")


@bp.get("/patrol")
@role_required("admin", "planner")
def supervisor_page() -> str:
    """巡查督导: coverage ranking per grid, tracks per worker and day."""
    return render_template("patrol/supervisor.html", workers=_workers())


def _workers() -> list[str]:
    return list(get_session().scalars(select(User.username).where(User.role == "worker").order_by(User.username)))


@bp.route("/patrol/devices", methods=["GET", "POST"])
@role_required("admin")
def devices_page() -> Response | str:
    """巡查设备: bind a tracker app's device id to a worker; refused unknown devices listed with a bind form."""
    if request.method == "POST":
        label = request.form.get("label", "").strip()[:100] or None
        try:
            device = device_id(request.form.get("device_id"))
            with session_scope() as s:
                bind_device(s, device, request.form.get("username", "").strip(), by=current_user.username, label=label)
            flash(f"设备 {device} 已绑定到 {request.form.get('username', '').strip()}")
        except (ProtocolError, PatrolError) as exc:
            flash(f"未绑定：{exc}", "error")
        return redirect(url_for("patrol_pages.devices_page"))
    return render_template("patrol/devices.html", listing=devices_listing(get_session()), workers=_workers())
