"""The browser import on the durable job queue (api.imports.jobs): persisted, cancel, restart, crash."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from api.db import session_scope
from api.jobs import get_job, start_consumer
from api.jobs.store import worker_id
from api.models import BackgroundJob, Building
from tests.api.jobs_helpers import login, make_app_fixture  # noqa: F401  (the make_app fixture)
from tests.api.plans_helpers import wait_job


@pytest.fixture(scope="module")
def buildings_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from geo.synthetic import synthetic_district

    path = tmp_path_factory.mktemp("import-jobs") / "楼栋.geojson"
    synthetic_district(100, seed=5).buildings.to_file(path, driver="GeoJSON")
    return path


def _planner(app: Flask) -> FlaskClient:
    return login(app, "planner")


def _start_import(client: FlaskClient, path: Path) -> tuple[str, dict[str, Any]]:
    r = client.post("/api/imports/uploads", data={"buildings": (io.BytesIO(path.read_bytes()), path.name)},
                    content_type="multipart/form-data")
    assert r.status_code == 201, r.get_json()
    upload_id = r.get_json()["upload_id"]
    r = client.post("/api/imports", json={"upload_id": upload_id})
    assert r.status_code == 202, r.get_json()
    return upload_id, r.get_json()


def _wait(client: FlaskClient, job_id: str) -> dict[str, Any]:
    return wait_job(client, job_id, timeout=90.0, path="/api/imports/jobs/{}")


def _buildings(app: Flask) -> int:
    with app.app_context(), session_scope() as s:
        return s.scalar(select(func.count()).select_from(Building)) or 0


def test_a_queued_import_is_a_job_row_and_runs_after_a_restart(make_app: Any, buildings_file: Path) -> None:
    offline = make_app(jobs_in_process=False)  # no consumer: the import stays queued
    _upload_id, queued = _start_import(_planner(offline), buildings_file)
    assert queued["state"] == "queued" and queued["kind"] == "import"
    with offline.app_context(), session_scope() as s:
        row = s.get(BackgroundJob, queued["job_id"])
        assert row is not None and row.fn_name == "api.imports.jobs:run_import" and row.username == "u_planner"

    restarted = make_app()
    start_consumer(restarted)  # what `wangge serve` does at start
    job = _wait(_planner(restarted), queued["job_id"])
    assert job["state"] == "done" and job["progress"] == 1.0, job
    assert job["summary"]["counts"]["buildings"] == _buildings(restarted) == 100
    assert job["rows_done"] == job["rows_total"] > 100  # buildings plus the approximate community


def test_cancelling_a_queued_import_writes_nothing_and_keeps_the_upload(make_app: Any, buildings_file: Path) -> None:
    app = make_app(jobs_in_process=False)
    client = _planner(app)
    upload_id, queued = _start_import(client, buildings_file)
    assert client.post("/api/imports", json={"upload_id": upload_id}).get_json()["error"]["code"] == "import_running"
    r = client.post(f"/api/imports/jobs/{queued['job_id']}/cancel")
    assert r.status_code == 200 and r.get_json()["state"] == "cancelled"
    start_consumer(app)
    time.sleep(0.5)  # a consumer poll or two: the cancelled message is skipped
    assert get_job(queued["job_id"], app).state == "cancelled" and _buildings(app) == 0
    retry = client.post("/api/imports", json={"upload_id": upload_id})  # the files are still there
    assert retry.status_code == 202
    assert _wait(client, retry.get_json()["job_id"])["state"] == "done" and _buildings(app) == 100


def test_an_import_whose_process_died_is_failed_on_the_next_start(make_app: Any, buildings_file: Path) -> None:
    from tests.api.test_jobs import _dead_pid

    app = make_app(jobs_in_process=False)
    _upload_id, queued = _start_import(_planner(app), buildings_file)
    with app.app_context(), session_scope() as s:  # a worker took it, then its process was killed
        row = s.get(BackgroundJob, queued["job_id"])
        row.state, row.worker = "running", worker_id("gone").replace(f":{os.getpid()}:", f":{_dead_pid()}:")

    restarted = make_app()
    start_consumer(restarted)
    job = _planner(restarted).get(f"/api/imports/jobs/{queued['job_id']}").get_json()
    assert job["state"] == "failed" and "重新提交" in job["message"] and _buildings(restarted) == 0


def test_another_users_import_job_is_not_found(make_app: Any, buildings_file: Path) -> None:
    app = make_app(jobs_in_process=False)
    _upload_id, queued = _start_import(_planner(app), buildings_file)
    other = login(app, "admin")
    for r in (other.get(f"/api/imports/jobs/{queued['job_id']}"), other.post(f"/api/imports/jobs/{queued['job_id']}/cancel")):
        assert r.status_code == 404 and r.get_json()["error"]["code"] == "job_not_found"
    assert get_job(queued["job_id"], app).state == "queued"
