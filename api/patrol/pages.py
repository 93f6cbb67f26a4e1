"""Patrol pages: the worker's phone map (/patrol/my) and the supervisor's view (/patrol); tracker devices and
track files are on /patrol/devices (:mod:`api.patrol.device_pages`)."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required
from sqlalchemy import select

from api.auth import role_required
from api.db import get_session
from api.models import User
from api.patrol.models import PatrolFix

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
    session = get_session()
    workers = session.scalars(select(User.username).where(User.role == "worker").order_by(User.username)).all()
    has_tracks = session.scalar(select(PatrolFix.id).limit(1)) is not None
    return render_template("patrol/supervisor.html", workers=workers, has_tracks=has_tracks,
                           can_manage=current_user.role == "admin")
