"""A planner's community is read and edited on the state of its cells alone (issue 17 §6: a city
of a million buildings took every web process 31-134 s to load the whole plan on its first
planner request). Community states equal the whole plan's, replay other processes' edits,
and the plan card counts the stored rules instead of loading the plan."""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import pytest
import shapely
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from api.db import session_scope
from api.models import PlanCell, PlanGrid, PlanSnapshot, PlanSummary, PlanVersion
from api.plans import state as plan_state
from api.plans import summary as plan_summary_module
from api.plans.state import PlanState, community_scope, get_state, load_state
from api.plans.summary import summary_of_state
from api.plans.summary_store import count_summary
from tests.api.plans_helpers import district_app, login, partitioned_plan

N_BUILDINGS = 600


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    with district_app(tmp_path_factory.mktemp("scope"), N_BUILDINGS,
                      settings={"plan_snapshot_delay_s": 3600.0}) as app:
        yield app


@pytest.fixture(scope="module")
def planner(app: Flask) -> FlaskClient:
    return login(app, "planner")


@pytest.fixture(scope="module")
def base(planner: FlaskClient) -> int:
    return partitioned_plan(planner, "社区范围测试")


@pytest.fixture
def plan(planner: FlaskClient, base: int) -> int:
    """A fresh draft copy of the partitioned plan (its edits stay in this test)."""
    r = planner.post(f"/api/plans/{base}/versions", json={"name": "副本"})
    assert r.status_code == 201, r.get_json()
    return int(r.get_json()["id"])


def test_the_partition_job_checks_the_saved_plan(app: Flask, base: int) -> None:
    """The job stores the plan's rules (the card reads them) and its state (the plan page reads it)."""
    with app.app_context(), session_scope(write=False) as s:
        auto = s.get(PlanVersion, base).parent_id
        for p in (base, auto):
            rules = s.scalars(select(PlanGrid.violations).where(PlanGrid.plan_version_id == p)).all()
            assert rules and None not in rules
        assert s.scalar(select(PlanSnapshot.key).where(PlanSnapshot.plan_version_id == base)).startswith("v1:")


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[frozenset[str] | None, int]]:
    """(scope, cells) of every plan state this process builds from now on; loading the whole plan fails."""
    monkeypatch.setattr(plan_state, "_CACHE", OrderedDict())
    seen: list[tuple[frozenset[str] | None, int]] = []

    def counting(session: Any, plan: Any, defaults: Any, *, scope: frozenset[str] | None = None) -> PlanState:
        built = load_state(session, plan, defaults, scope=scope)
        seen.append((scope, len(built.cell_ids)))
        return built

    monkeypatch.setattr(plan_state, "load_state", counting)
    monkeypatch.setattr(plan_state, "_stored_or_built", lambda *a: pytest.fail("the whole plan was loaded"))
    return seen


def _cells_per_community(app: Flask, plan: int) -> dict[str, int]:
    with app.app_context(), session_scope(write=False) as s:
        rows = s.execute(select(PlanCell.community_id, func.count()).where(PlanCell.plan_version_id == plan)
                         .group_by(PlanCell.community_id)).all()
    return {str(c): int(n) for c, n in rows}


def _state(app: Flask, plan: int, communities: list[str] | None = None) -> PlanState:
    with app.app_context(), session_scope(write=False) as s:
        return get_state(s, s.get(PlanVersion, plan), app.config["WANGGE"], communities=communities)


def _whole(app: Flask, plan: int) -> PlanState:
    """The whole plan built afresh from its tables (as a new process would)."""
    with app.app_context(), session_scope(write=False) as s:
        return load_state(s, s.get(PlanVersion, plan), app.config["WANGGE"])


def _post(client: FlaskClient, plan: int, path: str, **body: object) -> dict[str, Any]:
    body.setdefault("version", client.get(f"/api/plans/{plan}").get_json()["version"])
    r = client.post(f"/api/plans/{plan}/{path}", json=body)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def _adjacent_pair(state: PlanState, community: str) -> tuple[str, str]:
    """Two unlocked neighbouring grids of *community*."""
    for g, cells in sorted(state.members.items()):
        if state.grids[g].community_id != community:
            continue
        for i in sorted(cells):
            for j in state.neighbours(i).tolist():
                h = state.grid_of[j]
                if h != g and state.grids[h].community_id == community:
                    return g, h
    raise AssertionError(f"community {community}: no two neighbouring grids")


def _same_grids(part: PlanState, whole: PlanState, community: str) -> None:
    """The grids of *community* in a community state equal those of the whole plan."""
    mine = {g: m for g, m in part.grids.items() if m.community_id == community}
    theirs = {g: m for g, m in whole.grids.items() if m.community_id == community}
    assert sorted(mine) == sorted(theirs) and mine
    for g, m in mine.items():
        n = theirs[g]
        assert (m.households, m.buildings, m.name, m.locked, m.code) == (n.households, n.buildings, n.name, n.locked,
                                                                           n.code)
        assert m.violations == n.violations
        assert m.area_m2 == pytest.approx(n.area_m2, rel=1e-9)
        assert shapely.equals(m.geometry, n.geometry)
        assert sorted(part.cell_ids[list(part.members[g])]) == sorted(whole.cell_ids[list(whole.members[g])])


def test_a_community_read_loads_only_its_cells(app: Flask, planner: FlaskClient, plan: int,
                                               loads: list[tuple[frozenset[str] | None, int]]) -> None:
    cells = _cells_per_community(app, plan)
    community = max(cells, key=lambda c: cells[c])
    assert len(cells) > 2 and sum(cells.values()) > 2 * cells[community]  # a city of several communities
    for display in ("1", "0"):
        r = planner.get(f"/api/plans/{plan}/grids.geojson?display={display}&community_id={community}")
        assert r.status_code == 200
        feats = r.get_json()["features"]
        assert feats and {f["properties"]["community_id"] for f in feats} == {community}
    assert loads == [(frozenset({community}), cells[community])]  # built once, then served from the cache
    r = planner.get(f"/api/plans/{plan}/grids.geojson?community_id=nowhere")
    assert r.status_code == 200 and r.get_json()["features"] == [] and len(loads) == 1


def test_a_community_read_equals_the_whole_plan(app: Flask, planner: FlaskClient, plan: int) -> None:
    cells = _cells_per_community(app, plan)
    community = max(cells, key=lambda c: cells[c])
    feats = planner.get(f"/api/plans/{plan}/grids.geojson?community_id={community}").get_json()["features"]
    whole = planner.get(f"/api/plans/{plan}/grids.geojson").get_json()["features"]
    assert feats == [f for f in whole if f["properties"]["community_id"] == community]


def test_community_edits_load_only_their_community(app: Flask, planner: FlaskClient, plan: int,
                                                   loads: list[tuple[frozenset[str] | None, int]]) -> None:
    whole = _whole(app, plan)
    building, grid, target = _boundary_move(whole)
    community = whole.grids[grid].community_id
    keep, gone = _adjacent_pair(whole, community)
    _post(planner, plan, "edits", op="rename", grid_id=grid, name="改名网格")
    _post(planner, plan, "edits", op="move", building_ids=[building], to_grid=target, confirm=True)
    _post(planner, plan, "edits", op="merge", grid_ids=[keep, gone])
    _post(planner, plan, "undo")
    out = _post(planner, plan, "redo")
    assert out["removed"] == [gone]
    assert {scope for scope, _ in loads} == {frozenset({community})}
    assert max(n for _, n in loads) == _cells_per_community(app, plan)[community]
    _same_grids(_state(app, plan, [community]), _whole(app, plan), community)  # edits equal a fresh build
    with app.app_context(), session_scope(write=False) as s:
        stored = s.scalar(select(PlanGrid.name).where(PlanGrid.plan_version_id == plan, PlanGrid.grid_id == grid))
    assert stored == "改名网格"


def _boundary_move(state: PlanState) -> tuple[str, str, str]:
    """(building, its grid, a neighbouring grid of its community) of a one-building cell whose grid keeps others."""
    building_of = {c: b for b, c in state.building_cell.items()}
    for i, cid in enumerate(state.cell_ids.tolist()):
        g = state.grid_of[i]
        if state.buildings[i] != 1 or len(state.members[g]) < 3:
            continue
        for j in state.neighbours(i).tolist():
            if state.grid_of[j] != g and state.community[j] == state.community[i]:
                return building_of[cid], g, state.grid_of[j]
    raise AssertionError("no building on a grid boundary")


def test_a_community_state_replays_edits_made_elsewhere(app: Flask, planner: FlaskClient, plan: int,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cells = _cells_per_community(app, plan)
    here, there = sorted(cells, key=lambda c: -cells[c])[:2]
    stale = copy.deepcopy(_state(app, plan, [here]))  # what another process holds
    keep, gone = _adjacent_pair(stale, here)
    other = next(g for g, m in _whole(app, plan).grids.items() if m.community_id == there)
    assert other not in stale.grids
    _post(planner, plan, "edits", op="rename", grid_id=other, name="别的社区")
    _post(planner, plan, "edits", op="merge", grid_ids=[keep, gone])
    version = _post(planner, plan, "edits", op="lock", grid_id=keep)["version"]
    with plan_state._CACHE_LOCK:
        plan_state._CACHE[(*stale.key, stale.scope)] = stale
    monkeypatch.setattr(plan_state, "load_state", lambda *a, **k: pytest.fail("rebuilt instead of replaying"))
    current = _state(app, plan, [here])
    assert current is stale and current.version == version
    assert gone not in current.grids and current.grids[keep].locked and other not in current.grids
    monkeypatch.undo()
    _same_grids(current, _whole(app, plan), here)


def test_the_plan_card_counts_the_stored_rules(app: Flask, planner: FlaskClient, plan: int,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    first = planner.get(f"/api/plans/{plan}").get_json()["summary"]  # a copy: rules unchecked, loaded once
    assert first == summary_of_state(_whole(app, plan))
    with app.app_context(), session_scope(write=False) as s:
        unchecked = s.scalar(select(func.count()).where(PlanGrid.plan_version_id == plan,
                                                        PlanGrid.violations.is_(None)))
    assert unchecked == 0
    monkeypatch.setattr(plan_state, "_CACHE", OrderedDict())
    monkeypatch.setattr(plan_state, "_stored_or_built", lambda *a: pytest.fail("the whole plan was loaded"))
    community = max(_cells_per_community(app, plan).items(), key=lambda kv: kv[1])[0]
    keep, gone = _adjacent_pair(_state(app, plan, [community]), community)
    _post(planner, plan, "edits", op="merge", grid_ids=[keep, gone])  # a grid over the upper bound
    summary = planner.get(f"/api/plans/{plan}").get_json()["summary"]
    monkeypatch.undo()
    assert summary == summary_of_state(_whole(app, plan))
    assert summary["grids"] == first["grids"] - 1


def _stored_row(app: Flask, plan: int) -> dict[str, Any]:
    with app.app_context(), session_scope(write=False) as s:
        row = s.execute(select(PlanSummary.__table__).where(PlanSummary.plan_version_id == plan)).mappings().one()
        return dict(row) | {"current": s.get(PlanVersion, plan).version_counter}


def test_edits_keep_the_stored_card_row(app: Flask, planner: FlaskClient, plan: int,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The copy starts with its source's row; merge, rename, undo and redo apply their grids' difference
    to it in their own transaction, so the card reads one row (never counts the grids) and equals the
    plan; the row equals a count from the grids."""
    assert _stored_row(app, plan)["version"] == _stored_row(app, plan)["current"]
    monkeypatch.setattr(plan_summary_module, "count_summary", lambda *a: pytest.fail("the card counted the grids"))
    community = max(_cells_per_community(app, plan).items(), key=lambda kv: kv[1])[0]
    keep, gone = _adjacent_pair(_state(app, plan, [community]), community)
    seen = []
    for path, body in (("edits", {"op": "merge", "grid_ids": [keep, gone]}),
                       ("edits", {"op": "rename", "grid_id": keep, "name": "改名"}), ("undo", {}), ("undo", {}),
                       ("redo", {})):
        _post(planner, plan, path, **body)
        card = planner.get(f"/api/plans/{plan}").get_json()
        assert card["summary"] == summary_of_state(_whole(app, plan))
        seen.append(card["summary"]["grids"])
        row = _stored_row(app, plan)
        assert row["version"] == row["current"] == card["version"]
    monkeypatch.undo()
    assert seen[1] == seen[0] == seen[3] - 1 == seen[4]  # the merge dropped a grid, its undo restored it
    with app.app_context(), session_scope(write=False) as s:
        counted = count_summary(s, plan, row["lo"], row["hi"])
    assert {k: v for k, v in row.items() if k != "current"} == counted


def test_a_stale_card_row_is_counted_again(app: Flask, planner: FlaskClient, plan: int) -> None:
    """A row of another version or other bounds is never read: the card counts the grids and stores it."""
    truth = planner.get(f"/api/plans/{plan}").get_json()["summary"]
    for wrong in ({"version": _stored_row(app, plan)["version"] - 1}, {"hi": 1}):
        with app.app_context(), session_scope() as s:
            s.execute(update(PlanSummary.__table__).where(PlanSummary.plan_version_id == plan)
                      .values(grids=0, households=0, **wrong))
        assert planner.get(f"/api/plans/{plan}").get_json()["summary"] == truth
        row = _stored_row(app, plan)
        assert (row["grids"], row["version"]) == (truth["grids"], row["current"])


def test_the_card_row_stays_right_under_concurrent_edits(app: Flask, planner: FlaskClient, plan: int) -> None:
    """Two planners toggling exclusive grids (losing races: 409, then again) while two others read the
    card: the stored row ends at the plan's version, equal to a count of its grids."""
    grids = sorted(_whole(app, plan).grids)[:8]
    errors: list[object] = []

    def editor(k: int) -> None:
        client = login(app, "planner")
        for i in range(8):
            for _ in range(30):
                version = client.get(f"/api/plans/{plan}").get_json()["version"]
                r = client.post(f"/api/plans/{plan}/edits", json={"op": "exclusive", "grid_id": grids[(4 * k + i) % 8],
                                                                  "value": i < 4, "version": version})
                if r.status_code != 409:
                    if r.status_code != 200:
                        errors.append(r.get_json())
                    break

    def reader() -> None:
        client = login(app, "planner")
        errors.extend(r.status_code for r in (client.get(f"/api/plans/{plan}") for _ in range(20))
                      if r.status_code != 200)

    threads = [threading.Thread(target=editor, args=(k,)) for k in range(2)] + \
        [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    card = planner.get(f"/api/plans/{plan}").get_json()
    row = _stored_row(app, plan)
    assert row["version"] == row["current"] == card["version"] > 8
    with app.app_context(), session_scope(write=False) as s:
        assert {k: v for k, v in row.items() if k != "current"} == count_summary(s, plan, row["lo"], row["hi"])
    assert card["summary"] == summary_of_state(_whole(app, plan))


def test_a_grid_across_two_communities_loads_both(app: Flask, planner: FlaskClient, plan: int) -> None:
    whole = _whole(app, plan)
    building_of = {c: b for b, c in whole.building_cell.items()}
    move = next((building_of[whole.cell_ids[i]], whole.grid_of[j])
                for i in range(len(whole.cell_ids)) if whole.buildings[i] == 1
                and len(whole.members[whole.grid_of[i]]) > 2
                for j in whole.neighbours(i).tolist() if whole.community[j] != whole.community[i])
    out = _post(planner, plan, "edits", op="move", building_ids=[move[0]], to_grid=move[1], confirm=True)
    assert any(v["rule"] == "nesting" for v in out["violations"])
    home = whole.grids[move[1]].community_id
    with app.app_context(), session_scope(write=False) as s:
        scope = community_scope(s, plan, [home])
    assert scope is not None and len(scope) == 2 and home in scope
    _same_grids(_state(app, plan, [home]), _whole(app, plan), home)


def test_bad_edits_are_refused_before_loading(app: Flask, planner: FlaskClient, plan: int,
                                              loads: list[tuple[frozenset[str] | None, int]]) -> None:
    version = planner.get(f"/api/plans/{plan}").get_json()["version"]
    r = planner.post(f"/api/plans/{plan}/edits", json={"op": "rename", "grid_id": "nope", "name": "x",
                                                       "version": version})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "unknown_grid"
    assert "grid_id='nope'" in r.get_json()["error"]["message"]
    r = planner.post(f"/api/plans/{plan}/edits", json={"op": "merge", "grid_ids": ["a"], "version": version})
    assert r.status_code == 400 and "grid_ids 须为两个不同的网格" in r.get_json()["error"]["message"]
    r = planner.post(f"/api/plans/{plan}/edits", json={"op": "fly", "version": version})
    assert r.status_code == 400 and "未知编辑操作" in r.get_json()["error"]["message"]
    assert loads == []


def test_community_states_kept_are_bounded(app: Flask, plan: int,
                                           loads: list[tuple[frozenset[str] | None, int]]) -> None:
    """Setting plan_state_scopes_cached: the least recently used community states beyond it are dropped."""
    communities = sorted(_cells_per_community(app, plan))[:3]
    app.config["WANGGE"]["plan_state_scopes_cached"] = 2
    try:
        for c in communities:
            _state(app, plan, [c])
        with plan_state._CACHE_LOCK:
            kept = [k[2] for k in plan_state._CACHE if k[1] == plan]
        assert kept == [frozenset({c}) for c in communities[1:]]
        _state(app, plan, [communities[0]])  # dropped: built again
        assert [scope for scope, _ in loads].count(frozenset({communities[0]})) == 2
    finally:
        app.config["WANGGE"]["plan_state_scopes_cached"] = 64


def test_community_requests_do_not_wait_for_the_whole_plan(app: Flask, planner: FlaskClient, plan: int) -> None:
    """While the whole plan's state is loaded or stored (its lock held: tens of seconds for a city),
    a community's reads and edits go on."""
    import threading

    community = max(_cells_per_community(app, plan).items(), key=lambda kv: kv[1])[0]
    grid = next(g for g, m in _whole(app, plan).grids.items() if m.community_id == community)
    version = planner.get(f"/api/plans/{plan}").get_json()["version"]
    answers: list[int] = []

    def community_work() -> None:
        answers.append(planner.get(f"/api/plans/{plan}/grids.geojson?display=1&community_id={community}").status_code)
        answers.append(planner.post(f"/api/plans/{plan}/edits", json={"op": "rename", "grid_id": grid,
                                                                      "name": "锁外改名", "version": version}).status_code)

    with app.app_context(), session_scope(write=False) as s:
        whole = plan_state.plan_lock(s, plan)
    with whole:  # as a whole-plan load would
        worker = threading.Thread(target=community_work)
        worker.start()
        worker.join(timeout=20)
        assert not worker.is_alive(), "a community request waited for the whole plan's lock"
    assert answers == [200, 200]
