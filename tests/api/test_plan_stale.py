"""Plans tied to the workspace version they were made from (issue 16 §4).

After a re-import an older plan is marked stale with the reason, cannot be published
(409 naming the fix), and can be re-based (same grids, buildings re-assigned by location,
report of what changed) or re-partitioned.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from api.db import session_scope
from api.models import PlanAssignment, PlanCell, PlanGrid
from api.workspace import import_workspace
from tests.api.plans_helpers import district_fixture, login, seed_district, wait_job

N_BUILDINGS = 700
REMOVED, RENAMED = 10, 5


app = district_fixture("stale", N_BUILDINGS)


@pytest.fixture(scope="module")
def planner(app: Flask) -> FlaskClient:
    """A planner's client (plans are made, re-based and published as a planner)."""
    return login(app, "planner")


def _partition(planner: FlaskClient, name: str) -> int:
    r = planner.post("/api/plans/partition", json={"name": name, "seed": 5})
    job = wait_job(planner, r.get_json()["job_id"])
    assert job["state"] == "done", job
    return job["plan_id"]


def _assignment(app: Flask, plan: int) -> dict[str, str]:
    with app.app_context(), session_scope(write=False) as s:
        return dict(s.execute(select(PlanAssignment.building_id, PlanAssignment.grid_id)
                              .where(PlanAssignment.plan_version_id == plan)).all())


@pytest.fixture(scope="module")
def reimported(app: Flask, planner: FlaskClient) -> dict[str, Any]:
    """A plan, then a re-import: buildings removed, renamed (new ids) and two swapped across grids."""
    plan = _partition(planner, "导入前方案")
    before = _assignment(app, plan)
    prepared = seed_district(app, N_BUILDINGS)  # same data as the plan's, prepared again
    b = prepared.layers["buildings"]
    ids = b["building_id"].astype(str)
    a = ids.iloc[0]
    other = next(i for i in ids.iloc[1:] if before[i] != before[a])
    ia, io = b.index[ids == a][0], b.index[ids == other][0]
    ga, go = b.geometry.loc[ia], b.geometry.loc[io]
    b.loc[ia, "geometry"], b.loc[io, "geometry"] = go, ga
    removed = ids.iloc[-REMOVED:].tolist()
    renamed = ids.iloc[-REMOVED - RENAMED:-REMOVED].tolist()
    b = b[~ids.isin(removed)].copy()
    b["building_id"] = b["building_id"].astype(str).replace({r: f"{r}-new" for r in renamed})
    prepared.layers["buildings"] = b
    with app.app_context(), session_scope() as s:
        import_workspace(s, prepared, user="reimporter", sources={"kind": "test"}, note="re-import")
    return {"plan": plan, "swapped": {a: (before[a], before[other]), other: (before[other], before[a])},
            "removed": set(removed) | set(renamed), "added": {f"{r}-new" for r in renamed},
            "buildings": b}


def test_a_plan_made_from_the_current_workspace_is_not_stale(planner: FlaskClient) -> None:
    plan = _partition(planner, "新方案")
    detail = planner.get(f"/api/plans/{plan}").get_json()
    assert detail["stale"] is False and detail["stale_reason"] is None
    r = planner.post(f"/api/plans/{plan}/rebase", json={})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "not_stale"


def test_reimport_marks_the_plan_stale_with_the_reason(planner: FlaskClient, reimported: dict) -> None:
    listed = {p["id"]: p for p in planner.get("/api/plans").get_json()}
    entry = listed[reimported["plan"]]
    assert entry["stale"] is True
    assert "重新导入" in entry["stale_reason"] and "reimporter" in entry["stale_reason"]


def test_a_stale_plan_cannot_be_published(planner: FlaskClient, reimported: dict) -> None:
    plan = reimported["plan"]
    version = planner.get(f"/api/plans/{plan}").get_json()["version"]
    r = planner.post(f"/api/plans/{plan}/publish", json={"version": version})
    assert r.status_code == 409
    err = r.get_json()["error"]
    assert err["code"] == "stale_plan" and "不能发布" in err["message"]
    assert "/rebase" in err["fix"] and "/repartition" in err["fix"]
    assert planner.get(f"/api/plans/{plan}").get_json()["status"] == "draft"


def test_rebase_keeps_the_grids_reassigns_buildings_and_reports(app: Flask, planner: FlaskClient,
                                                                reimported: dict) -> None:
    plan = reimported["plan"]
    r = planner.post(f"/api/plans/{plan}/rebase", json={})
    assert r.status_code == 201, r.get_json()
    new, report = r.get_json()["plan"], r.get_json()["report"]
    assert new["stale"] is False and new["parent_id"] == plan
    assert report["removed"]["count"] == len(reimported["removed"])
    assert set(report["removed"]["sample"]) <= reimported["removed"]
    assert report["added"]["count"] == len(reimported["added"])
    assert report["outside"]["count"] == 0
    moved = {m["building_id"]: (m["from"], m["to"]) for m in report["moved"]["sample"]}
    assert moved == reimported["swapped"] and report["moved"]["count"] == 2
    after = _assignment(app, new["id"])
    assert set(after) == set(reimported["buildings"]["building_id"].astype(str))
    with app.app_context(), session_scope(write=False) as s:
        grid_hh = s.scalar(select(func.sum(PlanGrid.households)).where(PlanGrid.plan_version_id == new["id"]))
        cell_hh = s.scalar(select(func.sum(PlanCell.households)).where(PlanCell.plan_version_id == new["id"]))
        n_grids = [s.scalar(select(func.count()).select_from(PlanGrid).where(PlanGrid.plan_version_id == p))
                   for p in (plan, new["id"])]
    assert grid_hh == cell_hh == int(reimported["buildings"]["households"].sum())
    assert n_grids[0] == n_grids[1]
    changed = {g["grid_id"] for g in report["grids_changed"]}
    assert {g for pair in reimported["swapped"].values() for g in pair} <= changed
    # the re-based plan edits and publishes like any draft
    detail = planner.get(f"/api/plans/{new['id']}").get_json()
    assert detail["summary"]["buildings"] == len(after)
    r = planner.post(f"/api/plans/{new['id']}/publish", json={"version": detail["version"]})
    assert r.status_code == 200, r.get_json()


def test_repartition_of_a_stale_plan_gives_a_current_plan(planner: FlaskClient, reimported: dict) -> None:
    plan = reimported["plan"]
    grid = next(iter(reimported["swapped"].values()))[0]
    version = planner.get(f"/api/plans/{plan}").get_json()["version"]
    r = planner.post(f"/api/plans/{plan}/edits", json={"op": "lock", "grid_id": grid, "version": version})
    assert r.status_code == 200, r.get_json()
    r = planner.post(f"/api/plans/{plan}/repartition", json={"version": version + 1})
    assert r.status_code == 409  # a locked grid of a stale plan holds buildings of the old import
    err = r.get_json()["error"]
    assert err["code"] == "stale_locked_grids" and "/rebase" in err["fix"]
    r = planner.post(f"/api/plans/{plan}/edits", json={"op": "unlock", "grid_id": grid, "version": version + 1})
    assert r.status_code == 200, r.get_json()
    r = planner.post(f"/api/plans/{plan}/repartition", json={"version": version + 2})
    assert r.status_code == 202
    job = wait_job(planner, r.get_json()["job_id"])
    assert job["state"] == "done", job
    fresh = planner.get(f"/api/plans/{job['plan_id']}").get_json()
    assert fresh["stale"] is False and fresh["summary"]["buildings"] == len(reimported["buildings"])
