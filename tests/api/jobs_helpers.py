"""Job functions for the job tests (importable by a ``wangge worker`` child process too)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select

from api import audit
from api.db import session_scope
from api.jobs import JobContext, JobError
from api.models import AuditEntry, BackgroundJob

__all__ = ["steps", "rendezvous", "written"]

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
