"""Job functions for the job tests (importable by a ``wangge worker`` child process too)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from api import audit, create_app, db
from api.db import session_scope
from api.jobs import JobContext, JobError
from api.models import AuditEntry, BackgroundJob

__all__ = ["steps", "rendezvous", "written", "make_app_fixture", "login"]

FN_STEPS = "tests.api.jobs_helpers:steps"
FN_RENDEZVOUS = "tests.api.jobs_helpers:rendezvous"


def steps(ctx: JobContext, params: dict[str, Any]) -> None:
    """Take ``n`` steps of ``sleep`` seconds, then write one audit row and finish in that transaction."""
    n = int(params["n"])
    for i in range(n):
        ctx.progress(f"第 {i + 1} 步", i / n)
        time.sleep(float(params["sleep"]))
    with session_scope() as session:
        audit.record(session, user=ctx.user, action="test.job", target=ctx.job_id)
        ctx.complete(session, message=f"完成 {n} 步", result={"steps": n})


def rendezvous(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """Wait until ``peers`` rendezvous jobs have started; fail after ``timeout`` seconds.

    No job ends before the last one started, so all ``peers`` ran at the same time.
    """
    deadline = time.monotonic() + float(params["timeout"])
    query = select(func.count()).where(BackgroundJob.kind == "rendezvous", BackgroundJob.started_at.is_not(None))
    while time.monotonic() < deadline:
        with session_scope() as session:
            running = session.scalar(query)
        if running >= int(params["peers"]):
            return {"message": "同时运行", "seen": running}
        time.sleep(0.05)
    raise JobError(f"{params['timeout']} 秒内没有 {params['peers']} 个任务同时运行")


def written(job_id: str) -> int:
    """Audit rows the ``steps`` job *job_id* wrote (its output)."""
    with session_scope() as session:
        return session.scalar(select(func.count()).where(AuditEntry.action == "test.job",
                                                         AuditEntry.target == job_id)) or 0


@pytest.fixture(name="make_app")
def make_app_fixture(tmp_path: Path) -> Iterator[Any]:
    """Apps on one instance folder and database (a second app is the server after a restart).

    ``make(**settings)``; the first app also gets the users ``u_admin``, ``u_planner`` and ``u_viewer``.
    """
    from api.users import create_user

    apps: list[Flask] = []

    def make(**settings: Any) -> Flask:
        app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"),
                          "DATABASE_URL": f"sqlite:///{tmp_path / 'wangge.db'}", "SECRET_KEY": "test-secret",
                          "WTF_CSRF_ENABLED": False,
                          "WANGGE": {"job_poll_s": 0.2, "job_progress_every_s": 0.0, **settings}})
        if not apps:
            with app.app_context(), session_scope() as s:
                for role in ("admin", "planner", "viewer"):
                    create_user(s, f"u_{role}", PASSWORD, role=role)
        apps.append(app)
        return app

    yield make
    for app in apps:
        db.dispose(app)


PASSWORD = "grid2026plan"


def login(app: Flask, role: str) -> FlaskClient:
    """A test client of *app* logged in as ``u_<role>``."""
    client = app.test_client()
    assert client.post("/login", data={"username": f"u_{role}", "password": PASSWORD}).status_code == 302
    return client
