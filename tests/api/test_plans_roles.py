"""Roles on the plan routes: planners and admins edit; workers and viewers read and get 403 on every change."""

from __future__ import annotations

import pytest
from flask import Flask

from api.db import session_scope
from api.models import PlanEdit, PlanVersion
from api.plans.store import save_partition
from tests.api.plans_helpers import login
from tests.api.test_plans_edits import LAYOUT, _result

MUTATING = [
    ("/api/plans/partition", {"name": "x"}),
    ("/api/jobs/abc/cancel", {}),
    ("/api/plans/{p}/edits", {"op": "lock", "grid_id": "A", "version": 1}),
    ("/api/plans/{p}/undo", {"version": 1}),
    ("/api/plans/{p}/redo", {"version": 1}),
    ("/api/plans/{p}/repartition", {"version": 1}),
    ("/api/plans/{p}/versions", {"name": "copy"}),
    ("/api/plans/{p}/publish", {"version": 1}),
    ("/api/plans/{p}/rollback", {}),
]


@pytest.fixture
def plan(app: Flask) -> int:
    with app.app_context(), session_scope() as s:
        return save_partition(s, _result(LAYOUT), name="手工方案", author="test", settings={}).id


@pytest.mark.parametrize("role", ["viewer", "worker"])
def test_read_only_roles_get_403_from_every_mutating_route(app: Flask, plan: int, role: str) -> None:
    client = login(app, role)
    for path, body in MUTATING:
        r = client.post(path.format(p=plan), json=body)
        assert r.status_code == 403, (path, r.status_code)
        assert r.get_json()["error"]["code"] == "forbidden"
    assert client.get(f"/api/plans/{plan}/grids.geojson").status_code == 200
    assert client.get(f"/api/plans/{plan}/export?format=csv").status_code == 200
    with app.app_context(), session_scope() as s:
        assert s.query(PlanEdit).count() == 0
        assert s.query(PlanVersion).count() == 1
        assert s.get(PlanVersion, plan).version_counter == 1


def test_anonymous_gets_401_and_admin_may_edit(app: Flask, plan: int) -> None:
    assert app.test_client().get("/api/plans").status_code == 401
    assert app.test_client().post(f"/api/plans/{plan}/edits", json={}).status_code == 401
    r = login(app, "admin").post(f"/api/plans/{plan}/edits", json={"op": "lock", "grid_id": "A", "version": 1})
    assert r.status_code == 200 and r.get_json()["version"] == 2
