"""Durable background jobs (api.jobs): real SQLite queue and database, real consumer threads,
and a real ``wangge worker`` child process killed mid-job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from api import create_app, db
from api.db import session_scope
from api.jobs import Job, cancel_job, get_job, start_consumer, submit
from api.jobs.queue import make_huey
from api.jobs.store import create_job, dead_workers, fail_orphans, worker_alive, worker_id
from api.jobs.tasks import resolve
from tests.api.jobs_helpers import FN_RENDEZVOUS, FN_STEPS, written

REPO = Path(__file__).resolve().parents[2]


def _config(tmp: Path, url: str, **settings: Any) -> dict[str, Any]:
    return {"TESTING": True, "INSTANCE_PATH": str(tmp / "instance"), "DATABASE_URL": url,
            "SECRET_KEY": "test-secret", "WTF_CSRF_ENABLED": False, "WANGGE": {"job_poll_s": 0.2, "job_progress_every_s": 0.0, **settings}}


@pytest.fixture
def make_app(tmp_path: Path, database_url: str) -> Iterator[Any]:
    """Build apps on one instance folder and database (a 'restart' is a second app); disposed at the end."""
    apps: list[Flask] = []

    def make(**settings: Any) -> Flask:
        app = create_app(_config(tmp_path, database_url, **settings))
        apps.append(app)
        return app

    yield make
    for app in apps:
        db.dispose(app)


def _wait(app: Flask, job_id: str, until: Any, *, timeout: float = 30.0) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = get_job(job_id, app)
        assert job is not None
        if until(job):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached the expected state: {get_job(job_id, app)}")


def _finished(job: Job) -> bool:
    return job.state not in ("queued", "running")


def test_finished_job_and_queued_job_survive_a_restart(make_app: Any) -> None:
    first = make_app()
    done = submit(first, "steps", FN_STEPS, {"n": 2, "sleep": 0.05}, user="amy")
    assert _wait(first, done.job_id, _finished).state == "done"
    db.dispose(first)  # stops its consumer threads
    offline = make_app(jobs_in_process=False)  # no consumer: the job stays queued
    queued = submit(offline, "steps", FN_STEPS, {"n": 1, "sleep": 0.0}, user="bo")
    time.sleep(0.5)
    assert get_job(queued.job_id, offline).state == "queued"
    db.dispose(offline)

    again = make_app()
    kept = get_job(done.job_id, again)
    assert (kept.state, kept.progress, kept.message, kept.result, kept.user) == ("done", 1.0, "完成 2 步", {"steps": 2},
                                                                                 "amy")
    start_consumer(again)  # what `wangge serve` does at start
    resumed = _wait(again, queued.job_id, _finished)
    assert resumed.state == "done" and resumed.started_at >= resumed.created_at
    with again.app_context():
        assert written(queued.job_id) == 1


def test_dispose_waits_for_running_jobs_so_no_connection_outlives_the_pool(make_app: Any) -> None:
    """A job thread still working when the app is disposed gave its connection back to a pool that
    dispose() had already replaced: that connection was never closed (on PostgreSQL, psycopg warns
    when the garbage collector finds it)."""
    app = make_app()
    job = submit(app, "steps", FN_STEPS, {"n": 4, "sleep": 0.25}, user="amy")
    _wait(app, job.job_id, lambda j: j.state == "running")
    threads = [t for _, t in app.extensions["wangge.jobs"].consumer.worker_threads]
    pool = db.get_db(app).engine.pool
    db.dispose(app)
    assert not any(t.is_alive() for t in threads)
    assert pool.checkedout() == 0
    with app.app_context():
        assert written(job.job_id) == 1  # the job finished before dispose returned


def test_cancel_a_running_job_at_its_next_step(make_app: Any) -> None:
    app = make_app()
    job = submit(app, "steps", FN_STEPS, {"n": 200, "sleep": 0.05}, user="amy")
    running = _wait(app, job.job_id, lambda j: j.state == "running" and j.progress > 0)
    assert running.message.startswith("第 ")
    assert cancel_job(job.job_id, app).message == "正在取消…"
    ended = _wait(app, job.job_id, _finished, timeout=5)
    assert (ended.state, ended.message, ended.plan_id) == ("cancelled", "已取消", None)
    with app.app_context():
        assert written(job.job_id) == 0
    assert cancel_job("nope", app) is None


@pytest.mark.parametrize(("workers", "states"), [(2, ["done", "done"]), (1, ["failed", "done"])])
def test_job_workers_jobs_run_at_once(make_app: Any, workers: int, states: list[str]) -> None:
    app = make_app(job_workers=workers)
    params = {"peers": 2, "timeout": 10 if workers == 2 else 1.5}
    ids = [submit(app, "rendezvous", FN_RENDEZVOUS, params, user="amy").job_id for _ in range(2)]
    ended = sorted((_wait(app, i, _finished) for i in ids), key=lambda j: j.started_at)
    assert [j.state for j in ended] == states
    if workers == 1:  # the first waited alone and said so; the second started after it ended
        assert ended[0].message == "1.5 秒内没有 2 个任务同时运行"
        assert ended[1].started_at >= ended[0].finished_at
    else:
        assert ended[1].started_at < ended[0].finished_at


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_job_whose_process_died_is_failed_on_the_next_start(make_app: Any) -> None:
    app = make_app(jobs_in_process=False)
    with app.app_context(), session_scope() as session:
        row = create_job(session, kind="partition", fn_name="api.plans.jobs:run_partition", params={}, user="amy")
        row.state, row.worker = "running", worker_id("gone").replace(f":{os.getpid()}:", f":{_dead_pid()}:")
        job_id = row.id
    assert get_job(job_id, app).state == "running"

    start_consumer(app)
    failed = get_job(job_id, app)
    assert failed.state == "failed" and failed.plan_id is None
    assert failed.message == "任务中断：运行它的进程已停止（服务重启或崩溃），结果未保存；请重新提交"
    assert "gone before the job finished" in failed.error


def _worker_process(app: Flask, tmp_path: Path) -> subprocess.Popen:
    """``wangge worker --workers 1`` on *app*'s instance folder and database, in a child process."""
    env = {**os.environ, "WANGGE_INSTANCE_PATH": str(tmp_path / "instance"), "WANGGE_SECRET_KEY": "test-secret",
           "WANGGE_DATABASE_URL": app.config["DATABASE_URL"], "WANGGE_JOBS_IN_PROCESS": "false",
           "WANGGE_JOB_POLL_S": "0.2", "WANGGE_JOB_PROGRESS_EVERY_S": "0"}
    return subprocess.Popen([sys.executable, "-c", "from api.cli import main; main()", "worker", "--workers", "1"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_worker_alive_tells_dead_local_processes_from_live_and_remote_ones() -> None:
    me = worker_id("tok")
    assert worker_alive(me, {"tok"}) is True
    assert worker_alive(me, {"other"}) is False  # this process, but that consumer is gone
    assert worker_alive(me.replace(f":{os.getpid()}:", f":{_dead_pid()}:"), set()) is False
    assert worker_alive(me.replace(f":{os.getpid()}:", f":{os.getppid()}:"), set()) is True
    assert worker_alive("another-host:1:tok", set()) is True  # its own worker recovers it
    assert worker_alive(None, set()) is False


def test_recover_orphans_leaves_live_and_finished_jobs_alone(make_app: Any) -> None:
    app = make_app(jobs_in_process=False)
    with app.app_context(), session_scope() as session:
        live = create_job(session, kind="k", fn_name=FN_STEPS, params={}, user="amy")
        live.state, live.worker = "running", worker_id("live")
        done = create_job(session, kind="k", fn_name=FN_STEPS, params={}, user="amy")
        done.state, done.worker = "done", worker_id("gone")
    with app.app_context(), session_scope() as session:
        assert dead_workers(session, {"live"}) == []
        assert dead_workers(session, set()) == [worker_id("live")]
        assert fail_orphans(session, []) == []
        assert fail_orphans(session, [worker_id("live"), worker_id("gone")]) == [live.id]
    assert (get_job(live.id, app).state, get_job(done.id, app).state) == ("failed", "done")


def test_bad_queue_address_and_job_function_names_say_the_fix(make_app: Any) -> None:
    with pytest.raises(ValueError, match=r"setting jobs_url: 'amqp://q' is not a job queue address; leave it empty"):
        make_huey(make_app(jobs_url="amqp://q"))
    with pytest.raises(ValueError, match=r"name it as 'package.module:function'"):
        resolve("tests.api.jobs_helpers.steps")
    with pytest.raises(ValueError, match=r"module tests.api.jobs_helpers has no function nope"):
        resolve("tests.api.jobs_helpers:nope")


def test_job_list_shows_own_jobs_and_an_admin_everyones(make_app: Any) -> None:
    from tests.api.plans_helpers import login

    app = make_app(jobs_in_process=False)
    planner, admin = login(app, "planner"), login(app, "admin")
    mine = submit(app, "steps", FN_STEPS, {"n": 1, "sleep": 0}, user="planner")
    theirs = submit(app, "steps", FN_STEPS, {"n": 1, "sleep": 0}, user="someone")
    own = planner.get("/api/jobs").get_json()
    assert [j["job_id"] for j in own] == [mine.job_id]
    assert own[0]["state"] == "queued" and own[0]["user"] == "planner" and own[0]["created_at"]
    assert [j["job_id"] for j in admin.get("/api/jobs?limit=5").get_json()] == [theirs.job_id, mine.job_id]
    r = admin.get("/api/jobs?limit=0")
    assert r.status_code == 400 and "limit 须为 1–500 的整数" in r.get_json()["error"]["message"]
    assert app.test_client().get("/api/jobs").status_code == 401


@pytest.mark.parametrize(("debug", "reloader_child", "started"), [(False, None, True), (True, None, False),
                                                                  (True, "true", True)])
def test_wangge_serve_runs_jobs_in_process(make_app: Any, monkeypatch: pytest.MonkeyPatch, debug: bool,
                                           reloader_child: str | None, started: bool) -> None:
    from api.cli.serve import _start_jobs

    if reloader_child is None:
        monkeypatch.delenv("WERKZEUG_RUN_MAIN", raising=False)
    else:
        monkeypatch.setenv("WERKZEUG_RUN_MAIN", reloader_child)
    app = make_app(jobs_in_process=False)
    job = submit(app, "steps", FN_STEPS, {"n": 1, "sleep": 0}, user="amy")
    app.config["WANGGE"]["jobs_in_process"] = True
    _start_jobs(app, debug)  # what `wangge serve` does before serving
    if started:
        assert _wait(app, job.job_id, _finished).state == "done"
    else:  # the reloader's watcher process runs no jobs; its serving child does
        time.sleep(0.5)
        assert get_job(job.job_id, app).state == "queued"


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A throwaway redis-server on a free loopback port (Debian redis-server, scripts/system-deps.sh)."""
    import shutil
    import socket

    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server not found: install Debian redis-server (`make system-deps`)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait()


def test_a_redis_queue_runs_jobs_and_keeps_queued_ones_across_a_restart(make_app: Any, redis_url: str) -> None:
    offline = make_app(jobs_url=redis_url, jobs_in_process=False)
    queued = submit(offline, "steps", FN_STEPS, {"n": 2, "sleep": 0.0}, user="amy")
    queue = make_huey(offline)
    assert type(queue).__name__ == "RedisHuey" and queue.pending_count() == 1  # the message waits in Redis
    db.dispose(offline)

    app = make_app(jobs_url=redis_url)
    start_consumer(app)
    job = _wait(app, queued.job_id, _finished)
    assert (job.state, job.result) == ("done", {"steps": 2})
    with app.app_context():
        assert written(queued.job_id) == 1


def test_stopping_wangge_worker_fails_its_running_job_at_once(make_app: Any, tmp_path: Path) -> None:
    app = make_app(jobs_in_process=False)
    job = submit(app, "steps", FN_STEPS, {"n": 400, "sleep": 0.05}, user="amy")
    worker = _worker_process(app, tmp_path)
    try:
        _wait(app, job.job_id, lambda j: j.state == "running", timeout=60)
        worker.send_signal(signal.SIGTERM)  # Huey: stop now, do not wait for running jobs
        assert worker.wait(timeout=30) == 0
    finally:
        worker.kill()
        worker.wait()
    stopped = get_job(job.job_id, app)
    assert (stopped.state, stopped.message) == ("failed", "任务中断：服务已停止，结果未保存；请重新提交")
    with app.app_context():
        assert written(job.job_id) == 0


def test_a_partition_whose_wangge_worker_was_killed_mid_run_is_failed_and_left_no_plan(make_app: Any, tmp_path: Path) -> None:
    from sqlalchemy import func, select

    from api.models import PlanVersion
    from api.plans.jobs import partition_params, submit_partition
    from tests.api.plans_helpers import seed_district

    app = make_app(jobs_in_process=False)
    seed_district(app, 4000)
    job = submit_partition(app, user="amy", params=partition_params({}, app.config["WANGGE"]), name="被中断")
    worker = _worker_process(app, tmp_path)
    try:  # killed once the engine reports its first step, long before the save at 92 %
        mid = _wait(app, job.job_id, lambda j: j.state == "running" and j.progress > 0.04, timeout=120)
    finally:
        worker.kill()
        worker.wait()
    assert mid.progress < 0.9, mid
    assert get_job(job.job_id, app).state == "running"  # nobody has looked yet
    start_consumer(app)  # the next start: its own consumer threads
    failed = get_job(job.job_id, app)
    assert (failed.state, failed.plan_id) == ("failed", None) and f":{worker.pid}:" in failed.error
    with app.app_context(), session_scope() as session:
        assert session.scalar(select(func.count()).select_from(PlanVersion)) == 0
