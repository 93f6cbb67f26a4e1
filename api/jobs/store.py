"""The jobs table in our database: create, claim, progress, finish, cancel, recover.

Huey only carries "run job X" messages; everything the UI shows (state, progress, result,
error) lives here, so it survives restarts and is the same whichever process runs the job.
Every function takes the caller's session and leaves the commit to it.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import literal, select, update
from sqlalchemy.orm import Session

from api.models import BackgroundJob, utcnow

__all__ = [
    "ACTIVE_STATES",
    "Job",
    "create_job",
    "load_job",
    "list_jobs",
    "queued_ids",
    "claim_job",
    "save_progress",
    "cancel_requested",
    "finish_job",
    "request_cancel",
    "worker_id",
    "worker_alive",
    "INTERRUPTED",
    "STOPPED",
    "dead_workers",
    "fail_orphans",
]

ACTIVE_STATES: tuple[str, ...] = ("queued", "running")


@dataclass(frozen=True)
class Job:
    """A snapshot of one job row, as callers and the UI see it."""

    job_id: str
    kind: str
    user: str
    state: str
    progress: float
    message: str
    plan_id: int | None
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: BackgroundJob) -> Job:
        """The snapshot of *row*."""
        return cls(job_id=row.id, kind=row.kind, user=row.username, state=row.state,
                   progress=float(row.progress or 0.0), message=row.message or "", plan_id=row.plan_id,
                   result=row.result, error=row.error, created_at=row.created_at,
                   started_at=row.started_at, finished_at=row.finished_at)

    def json(self) -> dict[str, Any]:
        """The polling shape of ``GET /api/jobs/<id>`` (kept from the in-memory jobs)."""
        return {"job_id": self.job_id, "kind": self.kind, "state": self.state, "progress": round(self.progress, 3),
                "message": self.message, "plan_id": self.plan_id}

    def detail(self) -> dict[str, Any]:
        """Everything a job list shows: the polling shape plus user, result, error and times."""
        def iso(t: datetime | None) -> str | None:
            return None if t is None else t.isoformat()

        return {**self.json(), "user": self.user, "result": self.result, "error": self.error,
                "created_at": iso(self.created_at), "started_at": iso(self.started_at),
                "finished_at": iso(self.finished_at)}


def create_job(session: Session, *, kind: str, fn_name: str, params: dict[str, Any], user: str) -> BackgroundJob:
    """Add a queued job row (flushed, not committed)."""
    row = BackgroundJob(id=uuid.uuid4().hex[:12], kind=kind, fn_name=fn_name, params=params, username=user,
                        state="queued", cancel_requested=False, progress=0.0, message="排队中", created_at=utcnow())
    session.add(row)
    session.flush()
    return row


def load_job(session: Session, job_id: str) -> BackgroundJob | None:
    """The row of *job_id*, or ``None``."""
    return session.get(BackgroundJob, job_id)


def list_jobs(session: Session, *, user: str | None = None, limit: int = 50) -> list[Job]:
    """The newest *limit* jobs (of *user* when given), newest first."""
    query = select(BackgroundJob).order_by(BackgroundJob.created_at.desc()).limit(limit)
    if user is not None:
        query = query.where(BackgroundJob.username == user)
    return [Job.from_row(r) for r in session.scalars(query)]


def queued_ids(session: Session) -> list[str]:
    """Ids of the queued jobs, oldest first."""
    return list(session.scalars(select(BackgroundJob.id).where(BackgroundJob.state == "queued")
                                .order_by(BackgroundJob.created_at)))


def claim_job(session: Session, job_id: str, worker: str) -> bool:
    """Mark *job_id* running on *worker* if it is still queued and not cancelled (one claimant wins)."""
    done = session.execute(
        update(BackgroundJob)
        .where(BackgroundJob.id == job_id, BackgroundJob.state == "queued", BackgroundJob.cancel_requested.is_(False))
        .values(state="running", worker=worker, started_at=utcnow(), progress=0.02, message="开始运行"))
    return bool(done.rowcount)  # type: ignore[attr-defined]


# SQLite (WAL) cannot turn a read transaction into a write one after another connection
# wrote ("database is locked" at once, no busy wait): each write below starts with its
# UPDATE and reads, if at all, after it.

def save_progress(session: Session, job_id: str, progress: float, message: str) -> bool:
    """Record the progress of a running job; ``False`` when the user cancelled it (nothing written)."""
    done = session.execute(
        update(BackgroundJob)
        .where(BackgroundJob.id == job_id, BackgroundJob.state == "running", BackgroundJob.cancel_requested.is_(False))
        .values(progress=progress, message=message[:500]))
    return bool(done.rowcount)  # type: ignore[attr-defined]


def cancel_requested(session: Session, job_id: str) -> bool:
    """Whether the user asked *job_id* to stop."""
    return bool(session.scalar(select(BackgroundJob.cancel_requested).where(BackgroundJob.id == job_id)))


def finish_job(session: Session, job_id: str, *, state: str, message: str, result: dict[str, Any] | None = None,
               plan_id: int | None = None, error: str | None = None) -> bool:
    """Record the end of running job *job_id* ("done" only if not cancelled); ``False`` if nothing was written.

    A job given up meanwhile (marked failed by a restart) keeps that state.
    """
    values: dict[str, Any] = {"state": state, "message": message[:500], "finished_at": utcnow(), "error": error,
                              "result": result, "plan_id": plan_id}
    query = update(BackgroundJob).where(BackgroundJob.id == job_id, BackgroundJob.state == "running")
    if state == "done":
        values["progress"] = 1.0
        query = query.where(BackgroundJob.cancel_requested.is_(False))
    return bool(session.execute(query.values(**values)).rowcount)  # type: ignore[attr-defined]


def request_cancel(session: Session, job_id: str) -> BackgroundJob | None:
    """Cancel a queued job now, or ask a running one to stop at its next progress step."""
    job = BackgroundJob.id == job_id
    session.execute(update(BackgroundJob).where(job, BackgroundJob.state == "queued")
                    .values(state="cancelled", cancel_requested=True, message="已取消", finished_at=utcnow()))
    session.execute(update(BackgroundJob).where(job, BackgroundJob.state == "running")
                    .values(cancel_requested=True, message="正在取消…"))
    return session.scalar(select(BackgroundJob).where(job).execution_options(populate_existing=True))


def worker_id(token: str) -> str:
    """``host:pid:token`` naming the consumer of this process that runs a job."""
    return f"{socket.gethostname()}:{os.getpid()}:{token}"


def worker_alive(worker: str | None, live_tokens: Collection[str]) -> bool:
    """Whether the consumer *worker* may still run its job (other hosts: assumed alive)."""
    if not worker:
        return False
    host, _, rest = worker.partition(":")
    pid_text, _, token = rest.partition(":")
    if host != socket.gethostname():
        return True
    if not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return token in live_tokens
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def dead_workers(session: Session, live_tokens: Collection[str]) -> list[str]:
    """The consumers named by running jobs whose process on this host is gone."""
    workers = session.scalars(select(BackgroundJob.worker).where(BackgroundJob.state == "running").distinct())
    return sorted(w or "" for w in workers if not worker_alive(w, live_tokens))


INTERRUPTED = "任务中断：运行它的进程已停止（服务重启或崩溃），结果未保存；请重新提交"
STOPPED = "任务中断：服务已停止，结果未保存；请重新提交"


def fail_orphans(session: Session, workers: Collection[str], *, message: str = INTERRUPTED) -> list[str]:
    """Mark failed the running jobs of the dead *workers*; their ids.

    Huey takes a message off the queue when a worker starts it, so a job whose process
    died mid-run is never re-run by Huey; its output was never written (jobs write in one
    transaction at the end), and the user re-submits it.
    """
    if not workers:
        return []
    now, orphan = utcnow(), (BackgroundJob.state == "running") & BackgroundJob.worker.in_(list(workers))
    session.execute(update(BackgroundJob).where(orphan).values(
        state="failed", finished_at=now, message=message,
        error=literal("worker ") + BackgroundJob.worker + literal(" gone before the job finished")))
    return list(session.scalars(select(BackgroundJob.id).where(BackgroundJob.worker.in_(list(workers)),
                                                               BackgroundJob.finished_at == now)))
