"""The Huey queue of an app, its consumer, and the public job functions (submit, get, cancel).

Storage (setting ``jobs_url``): empty means a SQLite file ``instance/jobs-queue.sqlite3``
(embedded, no server); ``redis://…`` a Redis server several machines share. Either way Huey
takes a message off the queue when a worker starts it (at most once): a worker killed
mid-job loses the message, and :func:`api.jobs.store.recover_orphans` marks that job failed
when a consumer starts next. Huey's own results store is off (``results=False``): results,
progress and errors live in our ``jobs`` table. Retries are off: a partition that failed
fails again the same way; the user fixes the input and re-submits.

Consumers: with ``jobs_in_process`` (default) the web or CLI process runs ``job_workers``
threads, started by ``wangge serve`` and on the first submit; ``wangge worker`` runs the
same consumer on its own (signals: SIGINT stops after running jobs end, SIGTERM at once).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from huey import Huey, RedisHuey, SqliteHuey
from huey.consumer import Consumer

from api.db import session_scope
from api.jobs import store
from api.jobs.tasks import execute

__all__ = ["JobQueue", "job_queue", "make_huey", "start_consumer", "stop_consumer", "run_worker", "abandon_running",
           "submit",
           "get_job", "cancel_job"]

log = logging.getLogger(__name__)

_EXTENSION = "wangge.jobs"
#: tokens of the consumers running in this process (a job row names its consumer's token)
_LIVE_TOKENS: set[str] = set()
_START_LOCK = threading.Lock()


class _InProcessConsumer(Consumer):
    """Huey's consumer without signal handlers: the web server's own Ctrl+C handling stays."""

    def _set_signal_handlers(self) -> None:
        pass


@dataclass
class JobQueue:
    """The Huey instance of one app, its task and (when started here) its consumer."""

    huey: Huey
    token: str
    task: Any
    consumer: Consumer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def _queue_file(app: Flask, url: str) -> str:
    if not url:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        return str(Path(app.instance_path) / "jobs-queue.sqlite3")
    return url.removeprefix("sqlite:///")


def make_huey(app: Flask) -> Huey:
    """The Huey instance the setting ``jobs_url`` asks for (SQLite file or Redis)."""
    url = str(app.config["WANGGE"]["jobs_url"]).strip()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey("wangge", url=url, results=False)
    if url and not url.startswith("sqlite:///"):
        raise ValueError(f"setting jobs_url: {url!r} is not a job queue address; leave it empty "
                         "(SQLite in the instance folder), or give sqlite:///FILE or redis://HOST:6379/0")
    return SqliteHuey("wangge", filename=_queue_file(app, url), results=False)


def job_queue(app: Flask) -> JobQueue:
    """The :class:`JobQueue` of *app* (made on first use)."""
    with _START_LOCK:
        queue = app.extensions.get(_EXTENSION)
        if queue is None:
            huey = make_huey(app)
            token = secrets.token_hex(4)

            @huey.task(retries=0, name="wangge.run_job")
            def run_job(job_id: str) -> None:
                execute(app, job_id, store.worker_id(token))

            queue = app.extensions[_EXTENSION] = JobQueue(huey=huey, token=token, task=run_job)
    return queue


def _recover(app: Flask, queue: JobQueue) -> None:
    """Fail the jobs of dead processes; re-enqueue queued jobs whose message was lost."""
    with app.app_context():
        with session_scope() as session:
            dead = store.dead_workers(session, _LIVE_TOKENS)
        with session_scope() as session:
            failed = store.fail_orphans(session, dead)
        with session_scope() as session:
            pending = {t.args[0] for t in queue.huey.pending() if t.args}
            lost = [i for i in store.queued_ids(session) if i not in pending]
    for job_id in lost:
        queue.task(job_id)
    if failed or lost:
        log.warning("jobs: %d interrupted job(s) marked failed %s, %d queued job(s) re-enqueued",
                    len(failed), failed, len(lost))


def _consumer(app: Flask, queue: JobQueue, workers: int | None, cls: type[Consumer]) -> Consumer:
    settings = app.config["WANGGE"]
    n = int(workers if workers is not None else settings["job_workers"])
    if n < 1:
        raise ValueError(f"job_workers must be at least 1, got {n}; set WANGGE_JOB_WORKERS=2")
    # A graceful stop (SIGINT, SIGHUP) lets running jobs finish for job_shutdown_timeout_s.
    return cls(queue.huey, workers=n, worker_type="thread", periodic=False,
               max_delay=float(settings["job_poll_s"]), check_worker_health=True,
               shutdown_timeout=float(settings["job_shutdown_timeout_s"]))


def start_consumer(app: Flask, *, workers: int | None = None) -> JobQueue:
    """Run *app*'s consumer in threads of this process (idempotent); recovers orphans first."""
    queue = job_queue(app)
    with queue.lock:
        if queue.consumer is None:
            _LIVE_TOKENS.add(queue.token)
            _recover(app, queue)
            queue.consumer = _consumer(app, queue, workers, _InProcessConsumer)
            # Huey's start-up banner (task list, scheduler) is for `wangge worker`, not the web log.
            logging.getLogger("huey.consumer").setLevel(logging.WARNING)
            queue.consumer.start()
            log.info("jobs: %d worker thread(s) started", queue.consumer.workers)
    return queue


def stop_consumer(app: Flask, *, wait: bool = False) -> None:
    """Stop *app*'s in-process consumer: it takes no more jobs; running jobs finish in their threads.

    With *wait*, return once its threads have ended (running jobs finished, at most
    ``job_shutdown_timeout_s``): :func:`api.db.dispose` then closes every connection, none
    being still checked out by a job thread (it would go back to a disposed pool, unclosed).
    """
    queue = app.extensions.get(_EXTENSION)
    if queue is None:
        return
    with queue.lock:
        consumer, queue.consumer = queue.consumer, None
    if consumer is None:
        return
    consumer.stop(graceful=False)  # sets the stop flag: idle workers wake and end at once
    if wait:  # outside the lock: a running job may submit another job meanwhile
        deadline = time.monotonic() + float(app.config["WANGGE"]["job_shutdown_timeout_s"])
        for _, thread in consumer.worker_threads:
            thread.join(max(deadline - time.monotonic(), 0.0))


def run_worker(app: Flask, *, workers: int | None = None) -> None:
    """Run *app*'s consumer in the foreground with Huey's signal handling (``wangge worker``)."""
    queue = job_queue(app)
    _LIVE_TOKENS.add(queue.token)
    _recover(app, queue)
    consumer = _consumer(app, queue, workers, Consumer)
    try:
        consumer.run()
    finally:
        abandon_running(app)


def abandon_running(app: Flask) -> list[str]:
    """Mark failed the jobs this process still runs (it is exiting: their threads die with it)."""
    queue = app.extensions.get(_EXTENSION)
    if queue is None:
        return []
    _LIVE_TOKENS.discard(queue.token)
    with app.app_context(), session_scope() as session:
        failed = store.fail_orphans(session, [store.worker_id(queue.token)], message=store.STOPPED)
    if failed:
        log.warning("jobs: %d job(s) stopped with the process and marked failed %s", len(failed), failed)
    return failed


def submit(app: Flask, kind: str, fn_name: str, params: dict[str, Any], *, user: str) -> store.Job:
    """Queue job *fn_name* (``"package.module:function"``) of *kind* with JSON *params* for *user*."""
    queue = job_queue(app)
    with app.app_context(), session_scope() as session:
        row = store.create_job(session, kind=kind, fn_name=fn_name, params=params, user=user)
        job = store.Job.from_row(row)
    queue.task(job.job_id)
    if app.config["WANGGE"]["jobs_in_process"]:
        start_consumer(app)
    log.info("job %s queued by %s (%s)", job.job_id, user, kind)
    return job


def get_job(job_id: str, app: Flask | None = None) -> store.Job | None:
    """A fresh snapshot of job *job_id*, or ``None``."""
    with (app or current_app).app_context(), session_scope() as session:
        row = store.load_job(session, job_id)
        return None if row is None else store.Job.from_row(row)


def cancel_job(job_id: str, app: Flask | None = None) -> store.Job | None:
    """Cancel *job_id* (queued: at once; running: at its next progress step); ``None`` if unknown."""
    with (app or current_app).app_context(), session_scope() as session:
        row = store.request_cancel(session, job_id)
        return None if row is None else store.Job.from_row(row)
