"""``GET /api/jobs``: the job list of the UI (own jobs; an admin sees everyone's).

Polling and cancelling one job stay at ``/api/jobs/<id>`` and ``/api/jobs/<id>/cancel``
(:mod:`api.plans.routes`), whose answers keep their shape.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from api.db import get_session
from api.errors import RequestError
from api.jobs.store import list_jobs

__all__ = ["bp"]

bp = Blueprint("jobs_api", __name__, url_prefix="/api")

_MAX_LIMIT = 500


@bp.get("/jobs")
@login_required
def jobs_list() -> Response:
    """The newest jobs (``?limit=``, default 50) with state, progress, result and times."""
    raw = request.args.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= _MAX_LIMIT:
        raise RequestError(400, "bad_limit", f"limit 须为 1–{_MAX_LIMIT} 的整数：{raw!r}", "例如 limit=50",
                           field="limit")
    user = None if current_user.role == "admin" else current_user.username
    return jsonify([job.detail() for job in list_jobs(get_session(), user=user, limit=int(raw))])
