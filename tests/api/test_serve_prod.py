"""``wangge serve --prod`` for real: gunicorn web workers and job processes as child processes,
``/healthz`` and ``/readyz``, JSON request logs with the request id, and SIGTERM / SIGHUP /
``kill -9`` of the master with jobs running (issue 17 §2)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from flask import Flask

from api import create_app, db
from api.jobs import Job, get_job, submit
from api.server.prod import ProdServer as GunicornApp
from api.server.prod import _pre_fork, gunicorn_options
from geo.settings import DEFAULTS
from tests.api.jobs_helpers import FN_STEPS, written
from tests.api.prod_helpers import REPO, ProdServer, server_env, stall_report

pytestmark = pytest.mark.slow


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    """The test's own view of the server's database and queue (it never runs jobs itself)."""
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"),
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'wangge.db'}", "SECRET_KEY": "test-secret",
                      "WANGGE": {"jobs_in_process": False}})
    yield app
    db.dispose(app)


def _env(app: Flask, tmp_path: Path, **settings: Any) -> dict[str, str]:
    return server_env(tmp_path, app.config["DATABASE_URL"], job_workers=1, **settings)


def _wait(app: Flask, job_id: str, state: str, *, timeout: float = 60.0) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = get_job(job_id, app)
        assert job is not None
        if job.state == state:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never became {state}: {get_job(job_id, app)}")


def _steps(app: Flask, n: int, sleep: float = 0.1) -> str:
    return submit(app, "steps", FN_STEPS, {"n": n, "sleep": sleep}, user="amy").job_id


def test_gunicorn_options_come_from_the_settings() -> None:
    settings = {**DEFAULTS, "server_workers": 3, "server_threads": 5, "server_timeout_s": 90.0,
                "server_graceful_timeout_s": 12.0, "server_keepalive_s": 30.0, "log_format": "json"}
    opts = gunicorn_options(settings, host="0.0.0.0", port=8443, cert="c.pem", key="k.pem")
    assert (opts["bind"], opts["workers"], opts["threads"], opts["timeout"], opts["graceful_timeout"],
            opts["keepalive"]) == (["0.0.0.0:8443"], 3, 5, 90, 12, 30)
    assert (opts["certfile"], opts["keyfile"], opts["worker_class"]) == ("c.pem", "k.pem", "gthread")
    assert opts["worker_tmp_dir"] == ("/dev/shm" if os.path.isdir("/dev/shm") else None)  # heartbeat off the disk
    formatter = opts["logconfig_dict"]["formatters"]["json"]["()"]
    assert formatter == "api.requestlog.JsonFormatter"
    plain = gunicorn_options({**settings, "log_format": "text"}, host="::1", port=80, workers=1)
    assert plain["bind"] == ["[::1]:80"] and plain["workers"] == 1
    assert "certfile" not in plain and "logconfig_dict" not in plain
    with pytest.raises(ValueError, match="server_workers must be at least 1, got 0; set WANGGE_SERVER_WORKERS"):
        gunicorn_options({**settings, "server_workers": 0}, host="127.0.0.1", port=80)


def test_a_worker_freezes_what_start_up_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app a web worker loads is out of the cyclic collector's way (gc.freeze): no long full collections."""
    import gc

    monkeypatch.setenv("WANGGE_SECRET_KEY", "test-secret")
    monkeypatch.setenv("WANGGE_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("WANGGE_DATABASE_URL", f"sqlite:///{tmp_path / 'wangge.db'}")
    gc.unfreeze()
    app = None
    try:
        app = GunicornApp({}, None).load()  # what gunicorn calls in each worker
        frozen = gc.get_freeze_count()
    finally:
        gc.unfreeze()
        if app is not None:
            db.dispose(app)
    assert frozen > 10_000


@pytest.mark.parametrize(("args", "message"), [
    (["--workers", "2"], "--workers needs --prod"),
    (["--prod", "--debug"], "--prod and --debug exclude each other"),
])
def test_serve_refuses_options_that_do_not_go_together(tmp_path: Path, args: list[str], message: str) -> None:
    from click.testing import CliRunner

    from api.cli import main

    env = {"WANGGE_SECRET_KEY": "x", "WANGGE_INSTANCE_PATH": str(tmp_path / "i"),
           "WANGGE_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}"}
    r = CliRunner().invoke(main, ["serve", *args], env=env)
    assert r.exit_code == 2 and message in r.output


def test_a_web_worker_is_timed_out_from_its_fork_booting_included() -> None:
    """gunicorn 27 compares its monotonic clock with the worker file's mtime, wall-clock time until the
    worker first reports alive: a worker stuck while booting was never timed out. pre_fork starts its clock."""
    from gunicorn.config import Config
    from gunicorn.workers.workertmp import WorkerTmp

    worker = type("Worker", (), {})()
    worker.tmp = WorkerTmp(Config())
    try:
        assert time.monotonic() - worker.tmp.last_update() < 0, "gunicorn fixed it: _pre_fork may go"
        _pre_fork(None, worker)
        assert 0 <= time.monotonic() - worker.tmp.last_update() < 5
    finally:
        worker.tmp.close()


def test_sighup_reloads_a_standalone_job_worker_after_its_running_job(app: Flask, tmp_path: Path) -> None:
    """The worker unit of docs/DEPLOY.md (``wangge worker``, ``ExecReload=kill -HUP``): the running job
    finishes, the same process starts again with the code on disk and takes the next job."""
    wangge = Path(sys.executable).parent / "wangge"
    if not wangge.exists():
        pytest.skip(f"{wangge}: the wangge command is not installed in this environment")
    env = _env(app, tmp_path, jobs_in_process="false")
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([str(wangge), "worker"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            running = _steps(app, 30)
            _wait(app, running, "running")
            proc.send_signal(signal.SIGHUP)
            assert _wait(app, running, "done").result == {"steps": 30}  # finished, not cut off
            after = _steps(app, 2)
            assert _wait(app, after, "done").state == "done" and proc.poll() is None  # same process, again
            proc.send_signal(signal.SIGINT)
            try:
                assert proc.wait(timeout=60) == 0
            except subprocess.TimeoutExpired:
                raise AssertionError(f"wangge worker did not stop:\n{stall_report(proc.pid)}") from None
        finally:
            proc.kill()
            proc.wait()
            out.seek(0)
            log = out.read().decode("utf-8", errors="replace")
    assert "Consumer will restart" in log and log.count("Huey consumer started") == 2, log[-3000:]
    with app.app_context():
        assert written(running) == 1 and written(after) == 1


def _probe(url: str, answers: Counter[str], done: threading.Event) -> None:
    """GET /healthz every 20 ms until *done*, counting the answers (or errors by type)."""
    with requests.Session() as s:
        while not done.is_set():
            try:
                answers[str(s.get(f"{url}/healthz", timeout=10).status_code)] += 1
            except requests.RequestException as exc:
                answers[type(exc).__name__] += 1
            time.sleep(0.02)


def _sighup(app: Flask, server: ProdServer) -> None:
    """SIGHUP with a job running and a client probing: every process replaced, nothing refused or lost."""
    web, jobs = server.web_pids(), server.job_pids()
    running = _steps(app, 30)
    _wait(app, running, "running")
    answers: Counter[str] = Counter()
    done = threading.Event()
    prober = threading.Thread(target=_probe, args=(server.url, answers, done))
    prober.start()
    try:
        server.signal(signal.SIGHUP)
        assert _wait(app, running, "done").result == {"steps": 30}  # the old job process finished it
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (server.web_pids() & web or server.job_pids() & jobs
                                               or len(server.job_pids()) != 1):
            time.sleep(0.2)
        assert not server.web_pids() & web and len(server.web_pids()) == 2
        assert not server.job_pids() & jobs and len(server.job_pids()) == 1
        after = _steps(app, 2)
        assert _wait(app, after, "done").state == "done"  # the new job process takes jobs
    finally:
        done.set()
        prober.join()
    assert set(answers) == {"200"} and answers["200"] > 10, answers
    with app.app_context():
        assert written(running) == 1 and written(after) == 1


def test_prod_server_health_logs_sighup_sigterm_restart_and_kill_9(app: Flask, tmp_path: Path) -> None:
    """One server's life (each start costs seconds): probes and JSON logs, SIGHUP, SIGTERM with a
    job running and one queued, the next start running the queued job, then kill -9 of the master."""
    server = ProdServer(_env(app, tmp_path), "--workers", "2")
    try:
        server.wait_ready()
        assert len(server.web_pids()) == 2 and len(server.job_pids()) == 1
        r = requests.get(f"{server.url}/healthz", headers={"X-Request-ID": "probe-42"}, timeout=10)
        assert (r.status_code, r.json(), r.headers["X-Request-ID"]) == (200, {"status": "ok"}, "probe-42")
        ready = requests.get(f"{server.url}/readyz", timeout=10).json()
        assert ready["status"] == "ready" and set(ready["checks"]) == {"database", "migrations", "queue"}
        lines = [e for e in server.log() if e.get("request_id") == "probe-42"]
        assert [(e["logger"], e["method"], e["path"], e["status"]) for e in lines] == [
            ("wangge.request", "GET", "/healthz", 200)]
        assert lines[0]["pid"] != server.proc.pid  # a web worker answered, not the master

        _sighup(app, server)

        running, queued = _steps(app, 30), _steps(app, 2)
        _wait(app, running, "running")
        server.signal(signal.SIGTERM)
        assert server.wait_exit(90) == 0
        assert get_job(running, app).state == "done"  # finished, not cut off
        assert get_job(queued, app).state == "queued"  # still waiting in the queue
        with app.app_context():
            assert written(running) == 1 and written(queued) == 0
    finally:
        server.kill()

    again = ProdServer(_env(app, tmp_path))
    try:
        again.wait_ready()
        assert _wait(app, queued, "done").result == {"steps": 2}  # the next start runs it
        family = again.children()
        doomed = _steps(app, 400)
        _wait(app, doomed, "running")
        again.proc.kill()
        again.proc.wait()
        _, alive = psutil.wait_procs(family, timeout=30)
        assert alive == [], [p.cmdline() for p in alive]
    finally:
        again.kill()
    # the job process went with its master (PR_SET_PDEATHSIG) and gave its job up, output unwritten
    failed = _wait(app, doomed, "failed", timeout=30)
    assert failed.message == "任务中断：服务已停止，结果未保存；请重新提交"
    with app.app_context():
        assert written(queued) == 1 and written(doomed) == 0


def test_a_starting_worker_warms_the_active_grids_index(tmp_path: Path) -> None:
    from api.grids.cache import cached_active
    from api.grids.service import APP_CACHE
    from api.server.prod import warm_caches
    from tests.api.register_helpers import published_app

    with published_app(tmp_path, 600) as app:
        warm_caches(app).join(timeout=120)
        hit = app.extensions.get(APP_CACHE, {}).get("active_grids")
        assert hit is not None and len(hit[1].grids) > 1
        with app.app_context(), db.session_scope(write=False) as s:
            assert cached_active(s) is hit[1]  # the first request finds it built


def test_a_starting_worker_serves_only_once_warm(tmp_path: Path) -> None:
    """gunicorn's post_worker_init returns (the worker starts accepting) only with the index built,
    telling the master it is alive meanwhile."""
    from types import SimpleNamespace

    from api.grids.service import APP_CACHE
    from api.server.prod import warm_before_serving
    from tests.api.register_helpers import published_app

    with published_app(tmp_path, 600) as app:
        beats: list[float] = []
        worker = SimpleNamespace(wsgi=app, notify=lambda: beats.append(time.monotonic()))
        warm_before_serving(worker)
        hit = app.extensions.get(APP_CACHE, {}).get("active_grids")
        assert hit is not None and len(hit[1].grids) > 1
        assert beats, "the master heard from the worker while it warmed"
