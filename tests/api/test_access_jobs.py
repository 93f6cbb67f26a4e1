"""The service-circle analysis on the durable job queue (api.access.analysis): persisted, pending, cancel, restart."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from api.db import session_scope
from api.jobs import get_job, start_consumer
from api.jobs.store import worker_id
from api.models import BackgroundJob
from api.workspace import import_workspace
from tests.api.jobs_helpers import login, make_app_fixture  # noqa: F401  (the make_app fixture)
from tests.api.plans_helpers import wait_job

SUMMARY = "/api/access/summary?category=kindergarten"


@pytest.fixture(scope="module")
def prepared_layers() -> dict[str, Any]:
    from geo.prepare import prepare_layers
    from geo.settings import DEFAULTS
    from geo.synthetic import synthetic_district

    district = synthetic_district(150, seed=3)
    names = ("communities", "buildings", "streets", "compounds", "service_points")
    return prepare_layers({k: getattr(district, k) for k in names}, settings=DEFAULTS)


def _seed(app: Flask, prepared: Any) -> None:
    with app.app_context(), session_scope() as s:
        import_workspace(s, prepared, user="test", sources={"kind": "synthetic"}, note="合成示例数据")


def _access_jobs(app: Flask) -> list[BackgroundJob]:
    with app.app_context(), session_scope(write=False) as s:
        rows = s.scalars(select(BackgroundJob).where(BackgroundJob.kind == "access")
                         .order_by(BackgroundJob.created_at)).all()
        s.expunge_all()
        return list(rows)


def test_the_analysis_is_a_job_whose_result_outlives_a_restart(make_app: Any, prepared_layers: Any) -> None:
    app = make_app()
    _seed(app, prepared_layers)
    r = login(app, "viewer").get(SUMMARY)
    assert r.status_code == 200 and r.get_json()["area"], r.get_json()
    (job,) = _access_jobs(app)
    assert job.state == "done" and job.fn_name == "api.access.analysis:run_access" and job.username == "u_viewer"
    assert job.result["key"] == job.params["key"] and "生活圈分析完成" in job.message
    assert list((Path(app.instance_path) / "access").glob("*.pickle"))

    restarted = make_app(jobs_in_process=False)  # no consumer: a new job could not run
    again = login(restarted, "viewer").get(SUMMARY)
    assert again.status_code == 200 and again.get_json() == r.get_json()
    assert len(_access_jobs(restarted)) == 1  # the stored result, not a second analysis


def test_a_pending_analysis_answers_202_with_its_progress_then_the_result(make_app: Any, prepared_layers: Any,
                                                                         ) -> None:
    app = make_app(jobs_in_process=False, access_wait_s=0.0)
    _seed(app, prepared_layers)
    viewer = login(app, "viewer")
    r = viewer.get(SUMMARY)
    assert r.status_code == 202 and r.headers["Retry-After"] == "3"
    body = r.get_json()
    assert body["state"] == "computing" and body["job"]["kind"] == "access" and body["job"]["state"] == "queued"
    page = viewer.get("/access?category=kindergarten", headers={"Accept": "text/html"})
    html = page.get_data(as_text=True)
    assert page.status_code == 202 and "生活圈覆盖正在计算" in html and 'http-equiv="refresh"' in html
    assert body["job"]["job_id"] in html  # the same job: one analysis per workspace state
    assert len(_access_jobs(app)) == 1

    start_consumer(app)
    done = wait_job(login(app, "planner"), body["job"]["job_id"])
    assert done["state"] == "done" and done["progress"] == 1.0
    assert viewer.get(SUMMARY).status_code == 200


def test_a_cancelled_analysis_is_queued_again_by_the_next_request(make_app: Any, prepared_layers: Any) -> None:
    app = make_app(jobs_in_process=False, access_wait_s=0.0)
    _seed(app, prepared_layers)
    first = login(app, "viewer").get(SUMMARY).get_json()["job"]["job_id"]
    planner = login(app, "planner")
    assert planner.post(f"/api/jobs/{first}/cancel").get_json()["state"] == "cancelled"
    second = login(app, "viewer").get(SUMMARY).get_json()["job"]["job_id"]
    assert second != first and [j.state for j in _access_jobs(app)] == ["cancelled", "queued"]
    assert not (Path(app.instance_path) / "access").exists()  # nothing stored by the cancelled job


def test_an_analysis_whose_process_died_is_failed_and_redone(make_app: Any, prepared_layers: Any) -> None:
    from tests.api.test_jobs import _dead_pid

    app = make_app(jobs_in_process=False, access_wait_s=0.0)
    _seed(app, prepared_layers)
    job_id = login(app, "viewer").get(SUMMARY).get_json()["job"]["job_id"]
    with app.app_context(), session_scope() as s:  # a worker took it, then its process was killed
        row = s.get(BackgroundJob, job_id)
        row.state, row.worker = "running", worker_id("gone").replace(f":{os.getpid()}:", f":{_dead_pid()}:")

    restarted = make_app()
    start_consumer(restarted)
    assert get_job(job_id, restarted).state == "failed"
    r = login(restarted, "viewer").get(SUMMARY)  # waits (access_wait_s) for a fresh job
    assert r.status_code == 200 and [j.state for j in _access_jobs(restarted)] == ["failed", "done"]
