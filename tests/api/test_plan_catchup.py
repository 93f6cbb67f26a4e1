"""Another process's edits are replayed onto a process's cached plan state, not rebuilt (issue 17:
at city size a rebuild after every edit elsewhere cost each web process seconds to minutes);
a missing version falls back to a rebuild. Both give the state a fresh build gives."""

from __future__ import annotations

import copy

import pytest
import shapely
from flask import Flask
from flask.testing import FlaskClient

from api.db import session_scope
from api.models import PlanVersion
from api.plans import state as plan_state
from api.plans.store import save_partition
from tests.api.plans_helpers import login
from tests.api.test_plans_edits import LAYOUT, X0, Y0, D, _result


@pytest.fixture
def plan(app: Flask) -> int:
    with app.app_context(), session_scope() as s:
        return save_partition(s, _result(LAYOUT), name="手工方案", author="test",
                              settings={"min_households": 100, "max_households": 500}).id


def _cached(app: Flask, plan: int) -> plan_state.PlanState:
    with app.app_context(), session_scope(write=False) as s:
        return plan_state.get_state(s, s.get(PlanVersion, plan), app.config["WANGGE"])


def _rebuilt(app: Flask, plan: int) -> plan_state.PlanState:
    with app.app_context(), session_scope(write=False) as s:
        return plan_state.load_state(s, s.get(PlanVersion, plan), app.config["WANGGE"])


def _same(a: plan_state.PlanState, b: plan_state.PlanState) -> None:
    assert a.version == b.version
    assert sorted(a.grids) == sorted(b.grids)
    assert {g: sorted(a.cell_ids[list(m)]) for g, m in a.members.items()} == \
        {g: sorted(b.cell_ids[list(m)]) for g, m in b.members.items()}
    for g, m in a.grids.items():
        n = b.grids[g]
        assert (m.households, m.buildings, m.name, m.locked) == (n.households, n.buildings, n.name, n.locked)
        assert shapely.equals(m.geometry, n.geometry)


def _post(client: FlaskClient, plan: int, path: str, **body: object) -> int:
    body.setdefault("version", client.get(f"/api/plans/{plan}").get_json()["version"])
    r = client.post(f"/api/plans/{plan}/{path}", json=body)
    assert r.status_code == 200, r.get_json()
    return int(r.get_json()["version"])


def _swap_in(app: Flask, plan: int, stale: plan_state.PlanState) -> None:
    """Make *stale* this process's cached state, as a second process holding an old version has."""
    with plan_state._CACHE_LOCK:
        plan_state._CACHE[(*stale.key, stale.scope)] = stale


def test_edits_undo_and_redo_elsewhere_are_replayed(app: Flask, plan: int,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    planner = login(app, "planner")
    stale = copy.deepcopy(_cached(app, plan))  # what another process cached at version 1
    line = {"type": "LineString", "coordinates": [[X0 + 2 * D, Y0 + D], [X0 + 5 * D, Y0 + D]]}
    _post(planner, plan, "edits", op="move", building_ids=["Bc01"], to_grid="B")
    _post(planner, plan, "edits", op="split", grid_id="C", line=line)
    _post(planner, plan, "edits", op="merge", grid_ids=["C", "C-2"])
    _post(planner, plan, "undo")
    _post(planner, plan, "redo")
    version = _post(planner, plan, "edits", op="rename", grid_id="B", name="中心网格")
    _swap_in(app, plan, stale)
    monkeypatch.setattr(plan_state, "_stored_or_built", lambda *a: pytest.fail("rebuilt instead of replaying"))
    current = _cached(app, plan)
    assert current is stale and current.version == version
    monkeypatch.undo()
    _same(current, _rebuilt(app, plan))
    assert planner.get(f"/api/plans/{plan}").get_json()["summary"]["grids"] == len(current.grids)


def test_a_version_that_is_not_an_edit_means_a_rebuild(app: Flask, plan: int) -> None:
    planner = login(app, "planner")
    _post(planner, plan, "edits", op="rename", grid_id="A", name="甲")
    stale = copy.deepcopy(_cached(app, plan))  # version 2: after the rename
    _post(planner, plan, "undo")  # version 3
    _post(planner, plan, "edits", op="rename", grid_id="B", name="乙")  # drops the undone rename: 3 is gone
    _swap_in(app, plan, stale)
    current = _cached(app, plan)
    assert current is not stale
    _same(current, _rebuilt(app, plan))
    assert current.grids["A"].name != "甲" and current.grids["B"].name == "乙"
