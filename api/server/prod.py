"""``wangge serve --prod``: gunicorn web workers plus the job processes, one command, one unit.

The master process (gunicorn's arbiter, the process systemd starts) listens, starts
``server_workers`` web worker processes of ``server_threads`` threads each, and the
``job_processes`` job processes (:class:`~api.server.jobprocs.JobProcesses`). Web workers
never run jobs (``jobs_in_process`` is forced off): they queue them in the shared queue.

Signals to the master:

- ``SIGTERM`` (systemd stop): web workers finish the requests they serve
  (``server_graceful_timeout_s``), job processes finish running jobs
  (``job_shutdown_timeout_s``); queued jobs wait in the queue for the next start.
- ``SIGHUP`` (systemd reload): new web workers start and the old ones finish their requests;
  new job processes start and the old ones finish their jobs. The listening socket stays
  open throughout: no request is refused and no job is lost.
- ``SIGINT`` (Ctrl+C): stop at once; running jobs are marked failed (as after a crash).
- ``SIGABRT`` (``kill -ABRT PID``, to see where a process is stuck): the master, a web worker
  or a job process writes the stack of each of its threads to the log, then exits (the
  master replaces a web worker or job process that exits).

The master runs one thread (its job processes are driven from gunicorn's loop, see
:mod:`api.server.jobprocs`), so a web worker never starts with a lock held by another
thread. A web worker that does not report alive within ``server_timeout_s`` of its start,
booting included, is killed (its stacks written to the log) and replaced.

Every web worker builds its own app (:func:`api.create_app`): no database connection or
thread crosses a fork. The master builds one first to upgrade the schema, so workers never
race to migrate a fresh database.
"""

from __future__ import annotations

import faulthandler
import gc
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from api import db
from api.server.jobprocs import JobProcesses

__all__ = ["ProdServer", "gunicorn_options", "json_logconfig", "serve_prod", "warm_caches", "warm_before_serving"]

log = logging.getLogger(__name__)
_SHM = "/dev/shm"


def json_logconfig() -> dict[str, Any]:
    """gunicorn's logging as JSON lines on stderr (``log_format = "json"``)."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1, "disable_existing_loggers": False,
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False,
                                       "qualname": "gunicorn.error"},
                    # api.requestlog writes the request lines (with the request id)
                    "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False,
                                        "qualname": "gunicorn.access"}},
        "handlers": {"console": handler, "error_console": handler},
        "formatters": {"json": {"()": "api.requestlog.JsonFormatter"}},
    }


def gunicorn_options(settings: Mapping[str, Any], *, host: str, port: int, cert: str | None = None,
                     key: str | None = None, workers: int | None = None) -> dict[str, Any]:
    """gunicorn's configuration from the Wangge settings and the command line.

    Parameters
    ----------
    settings
        The app's settings (``server_workers``, ``server_threads``, ``server_timeout_s``, ``server_keepalive_s``,
        ``server_graceful_timeout_s``, ``log_format``).
    host, port
        Where to listen.
    cert, key
        TLS certificate and key (PEM): HTTPS.
    workers
        Web worker processes (default: the setting ``server_workers``).
    """
    n = int(workers if workers is not None else settings["server_workers"])
    if n < 1:
        raise ValueError(f"server_workers must be at least 1, got {n}; set WANGGE_SERVER_WORKERS=2")
    options: dict[str, Any] = {
        "bind": [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"],
        "workers": n, "worker_class": "gthread", "threads": int(settings["server_threads"]),
        "timeout": int(float(settings["server_timeout_s"])),
        # gunicorn's default (2 s) closes a phone's connection between two requests; the next
        # request on it races the close and is reset
        "keepalive": int(float(settings["server_keepalive_s"])),
        "graceful_timeout": int(float(settings["server_graceful_timeout_s"])),
        "accesslog": None,  # api.requestlog writes one line per request, with its id
        "errorlog": "-", "proc_name": "wangge", "preload_app": False,
        "control_socket_disable": True,  # signals (systemd) control it; no socket in $HOME
        # forwarded headers are the app's business (trusted_proxy_hops, api.proxy), not gunicorn's
        "secure_scheme_headers": {},
        # The workers' heartbeat touches a file every loop; on a disk-backed /tmp that can wait
        # on the filesystem journal, holding up every request of the worker (gunicorn's FAQ).
        "worker_tmp_dir": _SHM if os.path.isdir(_SHM) else None,
    }
    if cert and key:
        options.update(certfile=cert, keyfile=key)
    if settings["log_format"] == "json":
        options["logconfig_dict"] = json_logconfig()
    return options


def warm_caches(app: Flask) -> threading.Thread:
    """Build *app*'s per-process caches in a background thread as a web worker starts; the thread.

    A city's active-grids index (every published grid, STRtree) takes seconds to build; without
    this the first grid lookups and patrol fixes a new or restarted worker answers would each
    wait for it. Requests arriving meanwhile wait for the one build instead of starting theirs.
    """

    def run() -> None:
        from api.grids.cache import cached_active

        try:
            with app.app_context(), db.session_scope(write=False) as session:
                grids = cached_active(session)
            gc.freeze()  # the index lives as long as the worker, like what start-up built (see load)
            log.info("warmed the active grids index: %d grids", len(grids.grids))
        except Exception:  # noqa: BLE001 - a cold cache is built by the first request instead
            log.exception("warming the caches failed; the first requests build them")

    thread = threading.Thread(target=run, name="wangge-warm", daemon=True)
    thread.start()
    return thread


def warm_before_serving(worker: Any) -> None:
    """gunicorn's ``post_worker_init``: the worker accepts no request until its caches are built.

    A city's active-grids index takes seconds (115 k grids at a million buildings); a worker
    that served meanwhile made every fix and lookup it took wait for the build. Now the other
    workers answer while a new or restarted one warms (``/readyz`` answers from a warm worker).
    The worker keeps telling the master it is alive, so a long build is not taken for a hang.
    """
    thread = warm_caches(worker.wsgi)
    while thread.is_alive():
        worker.notify()
        thread.join(timeout=1.0)


def _pre_fork(server: Any, worker: Any) -> None:
    """Start the worker's timeout clock now: a worker stuck before it serves is then restarted too.

    gunicorn 27 compares its monotonic clock with the worker file's mtime, which is wall-clock
    time until the worker first reports alive: a worker that blocked while booting was never
    timed out (the offline-bundle test waited on one for 9 minutes).
    """
    worker.tmp.notify()


def _worker_abort(worker: Any) -> None:
    """On SIGABRT (gunicorn's timeout, or ``kill -ABRT``), write the worker's stacks to the log."""
    faulthandler.dump_traceback(all_threads=True)


class _Arbiter(Arbiter):  # type: ignore[misc]
    """gunicorn's master, driving the job processes from its own loop (one thread: see :mod:`api.server.jobprocs`).

    The job processes start draining at the same moment as the web workers when a stop
    begins (gunicorn calls ``on_exit`` only after its web workers are gone), and their exit
    statuses are taken before gunicorn's ``waitpid(-1)`` reaps every child.
    """

    def halt(self, reason: str | None = None, exit_status: int = 0) -> None:
        self.app.jobs.begin_stop()
        super().halt(reason, exit_status)

    def manage_workers(self) -> None:
        super().manage_workers()
        self.app.jobs.check()

    def reap_workers(self) -> None:
        self.app.jobs.reap()
        super().reap_workers()


class ProdServer(BaseApplication):  # type: ignore[misc]
    """gunicorn running :func:`api.create_app` in each worker, with the job processes beside it."""

    def __init__(self, options: Mapping[str, Any], jobs: JobProcesses) -> None:
        self.options, self.jobs = dict(options), jobs
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.options.items():
            self.cfg.set(name, value)
        self.cfg.set("when_ready", self._when_ready)
        self.cfg.set("pre_fork", _pre_fork)
        self.cfg.set("worker_abort", _worker_abort)
        self.cfg.set("on_reload", self._on_reload)
        self.cfg.set("on_exit", self._on_exit)
        self.cfg.set("post_worker_init", warm_before_serving)

    def run(self) -> None:
        _Arbiter(self).run()

    def load(self) -> Flask:
        from api import create_app

        app = create_app()
        # What start-up built (modules, the app) lives as long as the worker: out of the cyclic
        # collector's way, so a full collection scans only what requests made. A warm worker
        # holds ~310 k tracked objects; one full collection of them stopped every thread of the
        # worker for 0.85-1.9 s on the shared 2-core machine.
        gc.freeze()
        return app

    def _when_ready(self, server: Any) -> None:
        self.jobs.start()
        server.log.info("wangge: %d web worker(s), %d job process(es)", self.cfg.workers, self.jobs.count)

    def _on_reload(self, server: Any) -> None:
        self.jobs.restart()

    def _on_exit(self, server: Any) -> None:
        self.jobs.stop()


def serve_prod(app: Flask, *, host: str, port: int, cert: str | None, key: str | None,
               workers: int | None = None, log_format: str = "json") -> None:
    """Run the production server for *app*'s configuration until SIGTERM/SIGINT (blocks).

    *app* is the CLI's app: its schema is already upgraded; its connections are closed here
    so none is inherited by a forked worker.
    """
    settings = {**app.config["WANGGE"], "log_format": log_format}
    os.environ["WANGGE_JOBS_IN_PROCESS"] = "false"  # web workers queue jobs; job processes run them
    os.environ["WANGGE_LOG_FORMAT"] = log_format
    if app.instance_path:
        os.environ.setdefault("WANGGE_INSTANCE_PATH", app.instance_path)
    options = gunicorn_options(settings, host=host, port=port, cert=cert, key=key, workers=workers)
    if options["workers"] > 1 and str(settings["ratelimit_storage_uri"]).startswith("memory"):
        log.warning("rate limits count per web worker (ratelimit_storage_uri = memory://): a client gets up to "
                    "%d times login_rate_limit; set ratelimit_storage_uri to a redis:// address for exact limits",
                    options["workers"])
    jobs = JobProcesses(int(settings["job_processes"]), env=os.environ,
                        shutdown_timeout_s=float(settings["job_shutdown_timeout_s"]))
    db.get_db(app).engine.dispose()
    # `kill -ABRT` of the master, or of a web worker still booting, writes its stacks to the log
    faulthandler.enable(all_threads=True)
    ProdServer(options, jobs).run()
