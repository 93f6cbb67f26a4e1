"""Durable background jobs (issue 11): a Huey queue plus a ``jobs`` table in our database.

- :mod:`api.jobs.store` — the ``jobs`` table: create, claim, progress, finish, cancel, and
  :func:`~api.jobs.store.recover_orphans` (jobs whose process died are marked failed);
- :mod:`api.jobs.tasks` — running one job: :class:`~api.jobs.tasks.JobContext` (progress,
  cooperative cancel, ``complete`` in the job's own output transaction);
- :mod:`api.jobs.queue` — the Huey instance from app config (SQLite file by default, Redis
  by ``jobs_url``), the consumer (threads in the web/CLI process, or ``wangge worker``), and
  :func:`~api.jobs.queue.submit` / ``get_job`` / ``cancel_job`` every feature calls.

A feature adds a job by writing ``fn(ctx, params) -> dict | None`` in its own package and
calling ``submit(app, "kind", "api.feature.module:fn", params, user=...)``.
"""

from __future__ import annotations

from api.jobs.queue import cancel_job, get_job, start_consumer, stop_consumer, submit
from api.jobs.store import Job, list_jobs
from api.jobs.tasks import JobCancelled, JobContext, JobError

__all__ = ["Job", "JobCancelled", "JobContext", "JobError", "submit", "get_job", "cancel_job", "list_jobs",
           "start_consumer", "stop_consumer"]
