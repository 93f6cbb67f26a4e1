"""Roles on the plan routes: planners and admins edit, see drafts and export; workers and viewers
see only published plans (drafts answer 404) and get 403 on every change and export."""

from __future__ import annotations

import pytest
from flask import Flask

from api.db import session_scope
from api.models import PlanEdit, PlanVersion
from api.plans.store import copy_version, save_partition
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
#: Every read route of one plan (diff: against itself).
READS = ["/api/plans/{p}", "/api/plans/{p}/grids.geojson", "/api/plans/{p}/grids.geojson?display=1",
         "/api/plans/{p}/buildings.geojson", "/api/plans/{p}/communities.geojson", "/api/plans/{p}/diff/{p}"]


@pytest.fixture
def plans(app: Flask) -> dict[str, int]:
    """A draft (with its automatic result) and a published copy of it."""
    with app.app_context(), session_scope() as s:
        draft = save_partition(s, _result(LAYOUT), name="手工方案", author="test", settings={})
        published = copy_version(s, draft, name="已发布", message=None, author="test")
        published.status, published.is_active = "published", True
        return {"auto": draft.parent_id, "draft": draft.id, "published": published.id}


@pytest.mark.parametrize("role", ["viewer", "worker"])
def test_read_only_roles_get_403_from_every_mutating_route(app: Flask, plans: dict[str, int], role: str) -> None:
    client = login(app, role)
    for plan in plans.values():
        for path, body in MUTATING:
            r = client.post(path.format(p=plan), json=body)
            assert r.status_code == 403, (path, r.status_code)
            assert r.get_json()["error"]["code"] == "forbidden"
    with app.app_context(), session_scope() as s:
        assert s.query(PlanEdit).count() == 0
        assert s.query(PlanVersion).count() == 3
        assert s.get(PlanVersion, plans["draft"]).version_counter == 1


@pytest.mark.parametrize("role", ["viewer", "worker"])
def test_read_only_roles_see_the_published_plan_only(app: Flask, plans: dict[str, int], role: str) -> None:
    client = login(app, role)
    assert [p["id"] for p in client.get("/api/plans").get_json()] == [plans["published"]]
    for kind in ("auto", "draft"):
        for path in READS:
            r = client.get(path.format(p=plans[kind]))
            assert r.status_code == 404, (kind, path, r.status_code)
            assert "尚未发布" in r.get_json()["error"]["message"]
    assert client.get(f"/api/plans/{plans['draft']}/diff/{plans['published']}").status_code == 404
    for path in READS:
        assert client.get(path.format(p=plans["published"])).status_code == 200, path
    meta = client.get(f"/api/plans/{plans['published']}").get_json()
    assert meta["actions"] == []
    for plan in plans.values():  # exports carry every building's households: planners' only
        for fmt in ("csv", "geojson", "gpkg"):
            r = client.get(f"/api/plans/{plan}/export?format={fmt}")
            assert r.status_code == 403 and r.get_json()["error"]["code"] == "forbidden"
    assert client.get("/api/jobs/abc").status_code == 403


def test_planners_see_every_plan_and_its_actions(app: Flask, plans: dict[str, int]) -> None:
    client = login(app, "planner")
    assert {p["id"] for p in client.get("/api/plans").get_json()} == set(plans.values())
    actions = {k: client.get(f"/api/plans/{p}").get_json()["actions"] for k, p in plans.items()}
    assert actions["draft"] == ["save_version", "edit", "undo", "redo", "repartition", "publish"]
    assert actions["auto"] == ["save_version", "publish"]
    assert actions["published"] == ["save_version"]  # nothing was active before it: no rollback
    assert client.get(f"/api/plans/{plans['draft']}/export?format=csv").status_code == 200


def test_anonymous_gets_401_and_admin_may_edit(app: Flask, plans: dict[str, int]) -> None:
    plan = plans["draft"]
    assert app.test_client().get("/api/plans").status_code == 401
    assert app.test_client().post(f"/api/plans/{plan}/edits", json={}).status_code == 401
    r = login(app, "admin").post(f"/api/plans/{plan}/edits", json={"op": "lock", "grid_id": "A", "version": 1})
    assert r.status_code == 200 and r.get_json()["version"] == 2
