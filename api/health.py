"""Liveness and readiness for load balancers, systemd and monitoring: ``/healthz`` and ``/readyz``.

``/healthz`` answers 200 while the process serves requests at all (it touches nothing, so
a slow database never gets a healthy worker restarted). ``/readyz`` answers 200 only when
this process can do real work: the database answers, its schema is at the newest migration
(a worker started against an old database, or before ``wangge db upgrade`` finished, is not
ready), and the job queue answers; otherwise 503 naming each failed check and its fix.
They sit at the site root, like every proxy's and orchestrator's default probe paths, need
no login, are not rate limited, and disclose no data (``/api/health`` stays for old monitors).
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text
from werkzeug.wrappers import Response

from api import db
from api.security import limiter

__all__ = ["bp", "readiness"]

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@cache
def _head() -> str | None:
    """The newest migration of this code (read once: the code does not change while it runs)."""
    return db.head_revision()


def _check_database() -> dict[str, Any]:
    with db.get_db().engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return {"ok": True}


def _check_migrations() -> dict[str, Any]:
    current, head = db.current_revision(db.get_db().engine), _head()
    if current != head:
        return {"ok": False, "revision": current, "head": head,
                "fix": "运行 `wangge db upgrade` 把数据库升级到最新版本 / run `wangge db upgrade`"}
    return {"ok": True, "revision": current}


def _check_queue() -> dict[str, Any]:
    from api.jobs.queue import job_queue

    pending = job_queue(current_app._get_current_object()).huey.pending_count()  # type: ignore[attr-defined]
    return {"ok": True, "pending": int(pending)}


_CHECKS = {"database": _check_database, "migrations": _check_migrations, "queue": _check_queue}
_FIXES = {"database": "检查数据库服务与 WANGGE_DATABASE_URL / check the database and WANGGE_DATABASE_URL",
          "queue": "检查任务队列（设置 jobs_url）/ check the job queue (setting jobs_url)"}


def readiness() -> dict[str, dict[str, Any]]:
    """Each readiness check of the current app: ``{"ok": bool, ...}`` with a ``fix`` when failed."""
    out: dict[str, dict[str, Any]] = {}
    for name, check in _CHECKS.items():
        try:
            out[name] = check()
        except Exception as exc:  # noqa: BLE001 - any failure of a dependency makes the process unready
            log.warning("readiness check %s failed: %s", name, exc)
            out[name] = {"ok": False, "error": type(exc).__name__, "fix": _FIXES[name]}  # details: the log
    return out


@bp.get("/healthz")
@limiter.exempt
def healthz() -> Response:
    """Liveness: the process answers."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
@limiter.exempt
def readyz() -> tuple[Response, int]:
    """Readiness: database reachable, schema at the newest migration, job queue reachable."""
    checks = readiness()
    ready = all(c["ok"] for c in checks.values())
    return jsonify({"status": "ready" if ready else "not_ready", "checks": checks}), 200 if ready else 503
