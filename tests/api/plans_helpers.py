"""Shared helpers of the plan route tests: a workspace from the synthetic district, logins, jobs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.db import session_scope
from api.users import create_user
from api.workspace import import_workspace
from tests.databases import database_url_for

PASSWORD = "grid2026plan"


def seed_district(app: Flask, n_buildings: int, *, seed: int = 42) -> Any:
    """Import ``synthetic_district(n_buildings)`` (prepared) into the app's workspace."""
    from geo.prepare import prepare_layers
    from geo.synthetic import synthetic_district

    district = synthetic_district(n_buildings, seed=seed)
    prepared = prepare_layers(district.layers, settings=app.config["WANGGE"])
    with app.app_context(), session_scope() as s:
        import_workspace(s, prepared, user="test", sources={"kind": "synthetic"}, note="test district")
    return prepared


@contextmanager
def district_app(tmp: Path, n_buildings: int, *, seed: int = 42,
                 settings: dict[str, Any] | None = None) -> Iterator[Flask]:
    """A fresh app in *tmp* (SQLite file) whose workspace holds ``synthetic_district(n_buildings)``."""
    from api import create_app, db

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANGGE_SECRET_KEY", "test-secret")
        mp.delenv("WANGGE_DATABASE_URL", raising=False)
        app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp / "instance"),
                          "DATABASE_URL": database_url_for(tmp), "WTF_CSRF_ENABLED": False,
                          "WANGGE": dict(settings or {})})
        seed_district(app, n_buildings, seed=seed)
        yield app
        db.dispose(app)


def district_fixture(name: str, n_buildings: int) -> Any:
    """A module-scoped ``app`` fixture: :func:`district_app` of *n_buildings* in a temp folder *name*."""

    @pytest.fixture(scope="module")
    def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
        with district_app(tmp_path_factory.mktemp(name), n_buildings) as app:
            yield app

    return app


def login(app: Flask, role: str) -> FlaskClient:
    """A new client logged in as a fresh user of *role*."""
    with app.app_context(), session_scope() as s:
        from api.users import get_user

        if get_user(s, role) is None:
            create_user(s, role, PASSWORD, role=role)
    client = app.test_client()
    r = client.post("/login", data={"username": role, "password": PASSWORD})
    assert r.status_code == 302, r.data[:300]
    return client


def wait_job(client: FlaskClient, job_id: str, *, timeout: float = 120.0, path: str = "/api/jobs/{}") -> dict[str, Any]:
    """Poll a job (at *path*, ``{}`` the job id) until it leaves queued/running."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        job = client.get(path.format(job_id)).get_json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still running after {timeout} s: {job}")


def partitioned_plan(client: FlaskClient, name: str, *, seed: int = 7) -> int:
    """Id of a new draft plan of the whole workspace, made by the partition job."""
    r = client.post("/api/plans/partition", json={"name": name, "seed": seed})
    assert r.status_code == 202
    job = wait_job(client, r.get_json()["job_id"])
    assert job["state"] == "done", job
    return job["plan_id"]


def boundary_move(app: Flask, plan_id: int) -> tuple[str, str, str]:
    """(building id, its grid, a neighbouring grid of the same community) for a one-cell move.

    Picks a one-building cell whose grid keeps more than one cell, so the move empties nothing.
    """
    from api.models import PlanVersion
    from api.plans.state import get_state

    with app.app_context(), session_scope() as s:
        state = get_state(s, s.get(PlanVersion, plan_id), app.config["WANGGE"])
        cell_building = {c: b for b, c in state.building_cell.items()}
        for i, cid in enumerate(state.cell_ids.tolist()):
            g = state.grid_of[i]
            if state.buildings[i] != 1 or len(state.members[g]) < 3 or state.grids[g].locked:
                continue
            for j in state.neighbours(i).tolist():
                h = state.grid_of[j]
                if h != g and state.community[j] == state.community[i] and not state.grids[h].locked:
                    return cell_building[cid], g, h
    raise AssertionError(f"plan {plan_id}: no building on a grid boundary")
