"""The plan state stored for other processes (api.plans.snapshot, issue 17 §2): it equals a
state rebuilt from the cells, is used instead of a rebuild, and an older one is brought up to date by replaying the edits."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import shapely
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, select, update

from api.db import session_scope
from api.models import PlanSnapshot, PlanVersion
from api.plans import snapshot, state
from api.plans.state import PlanState, get_state, load_state
from tests.api.plans_helpers import district_app, login, partitioned_plan

N_BUILDINGS = 600


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    with district_app(tmp_path_factory.mktemp("snapshot"), N_BUILDINGS,
                      settings={"plan_snapshot_delay_s": 3600.0}) as app:  # stored on flush()
        yield app


@pytest.fixture(scope="module")
def planner(app: Flask) -> FlaskClient:
    return login(app, "planner")


@pytest.fixture(scope="module")
def plan(planner: FlaskClient) -> int:
    return partitioned_plan(planner, "快照测试")


def _rebuilt(app: Flask, plan_id: int) -> PlanState:
    with app.app_context(), session_scope(write=False) as s:
        return load_state(s, s.get(PlanVersion, plan_id), app.config["WANGGE"])


def _forget(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process forgets every plan state, as a new process would."""
    monkeypatch.setattr(state, "_CACHE", OrderedDict())


def _stored(app: Flask, plan_id: int) -> tuple[str, bytes] | None:
    with app.app_context(), session_scope(write=False) as s:  # this process's state, scheduled for storing
        snapshot.schedule_save(app, get_state(s, s.get(PlanVersion, plan_id), app.config["WANGGE"]))
    app.extensions["wangge.plan_snapshots"].flush()
    with app.app_context(), session_scope(write=False) as s:
        rows = s.execute(select(PlanSnapshot.key, PlanSnapshot.data).where(PlanSnapshot.plan_version_id == plan_id)
                         .order_by(PlanSnapshot.part)).all()
    return None if not rows else (rows[0].key, b"".join(bytes(r.data) for r in rows))


def _wkb(geoms: Any) -> list[bytes | None]:
    return [None if g is None else shapely.to_wkb(g) for g in geoms]


def assert_same_state(a: PlanState, b: PlanState) -> None:
    assert (a.key, a.version, a.lo, a.hi) == (b.key, b.version, b.lo, b.hi)
    for name in ("cell_ids", "community", "grid_of"):
        assert getattr(a, name).tolist() == getattr(b, name).tolist(), name
    for name in ("households", "buildings", "adj_ptr", "adj_idx"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ("geom", "metric", "rep"):
        assert _wkb(getattr(a, name)) == _wkb(getattr(b, name)), name  # bit for bit, not approximately
    assert (a.cell_index, a.building_cell, a.members, a.untiled) == (b.cell_index, b.building_cell, b.members,
                                                                      b.untiled)
    assert list(a.grids) == list(b.grids)
    for g, ma in a.grids.items():
        mb = b.grids[g]
        assert _wkb([ma.geometry]) == _wkb([mb.geometry]), g
        same = {k: getattr(ma, k) for k in vars(ma) if k != "geometry"}
        other = {k: getattr(mb, k) for k in vars(mb) if k != "geometry"}
        assert same == other or np.isnan(ma.area_m2) and np.isnan(mb.area_m2), g


def test_a_stored_state_equals_the_state_rebuilt_from_the_cells(app: Flask, plan: int) -> None:
    built = _rebuilt(app, plan)
    loaded = snapshot.load_snapshot(snapshot.dump_state(built), built.key)
    assert len(loaded.cell_ids) > 100 and len(loaded.grids) > 3
    assert_same_state(built, loaded)


def test_a_new_process_reads_the_stored_state_instead_of_rebuilding(app: Flask, plan: int,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    key, _ = _stored(app, plan)
    with app.app_context(), session_scope(write=False) as s:
        assert key == snapshot.snapshot_key(s, s.get(PlanVersion, plan), app.config["WANGGE"])
    expected = _rebuilt(app, plan)
    _forget(monkeypatch)

    def no_rebuild(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the plan state was rebuilt from its cells although a stored one matches")

    monkeypatch.setattr(state, "load_state", no_rebuild)
    with app.app_context(), session_scope(write=False) as s:
        assert_same_state(get_state(s, s.get(PlanVersion, plan), app.config["WANGGE"]), expected)


def test_an_older_stored_state_is_brought_up_to_date_by_replaying_the_edits(app: Flask, planner: FlaskClient,
                                                                          plan: int,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A community edit loads only its community's state and stores no whole-plan state; a process
    that loads the whole plan afterwards reads the older stored state and replays the edit."""
    before, _ = _stored(app, plan)
    grid = sorted(_rebuilt(app, plan).grids)[0]
    version = planner.get(f"/api/plans/{plan}").get_json()["version"]
    r = planner.post(f"/api/plans/{plan}/edits", json={"op": "rename", "grid_id": grid, "name": "改名后",
                                                       "version": version})
    assert r.status_code == 200, r.get_json()
    app.extensions["wangge.plan_snapshots"].flush()  # nothing was scheduled by the community edit
    with app.app_context(), session_scope(write=False) as s:  # the old state is still stored
        assert set(s.scalars(select(PlanSnapshot.key).where(PlanSnapshot.plan_version_id == plan))) == {before}
        older = snapshot.read_snapshot(s, s.get(PlanVersion, plan), app.config["WANGGE"], ("x", plan))
    assert older is not None and older.version == version and older.grids[grid].name != "改名后"
    _forget(monkeypatch)
    monkeypatch.setattr(state, "load_state", lambda *a, **k: pytest.fail("rebuilt instead of replaying the edit"))
    with app.app_context(), session_scope(write=False) as s:
        shared = get_state(s, s.get(PlanVersion, plan), app.config["WANGGE"])
    assert shared.version == version + 1 and shared.grids[grid].name == "改名后"
    app.extensions["wangge.plan_snapshots"].flush()  # the replayed state is stored for the next process
    with app.app_context(), session_scope(write=False) as s:
        after = s.scalar(select(PlanSnapshot.key).where(PlanSnapshot.plan_version_id == plan, PlanSnapshot.part == 0))
    assert after != before and after.startswith(f"v{version + 1}:")


def test_a_stale_or_damaged_stored_state_is_rebuilt(app: Flask, plan: int, monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    _stored(app, plan)
    with app.app_context(), session_scope() as s:  # another process bumped the version meanwhile
        s.execute(update(PlanSnapshot).where(PlanSnapshot.plan_version_id == plan).values(key="v0:old"))
    with app.app_context(), session_scope(write=False) as s:
        assert snapshot.read_snapshot(s, s.get(PlanVersion, plan), app.config["WANGGE"], ("x", plan)) is None
    key, _ = _stored(app, plan)
    with app.app_context(), session_scope() as s:
        s.execute(update(PlanSnapshot).where(PlanSnapshot.plan_version_id == plan).values(data=b"not a snapshot"))
    _forget(monkeypatch)
    with app.app_context(), session_scope(write=False) as s:
        rebuilt = get_state(s, s.get(PlanVersion, plan), app.config["WANGGE"])
    assert "stored state unreadable" in caplog.text
    assert_same_state(rebuilt, _rebuilt(app, plan))


def test_a_large_state_is_stored_in_parts_and_read_back_whole(app: Flask, plan: int,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """At 1 M buildings a state is over PostgreSQL's 1 GB field limit: it is stored in parts of at most
    PART_BYTES, read back in order, and a lost part means a rebuild, never a wrong state."""
    monkeypatch.setattr(snapshot, "PART_BYTES", 4096)
    key, data = _stored(app, plan)
    with app.app_context(), session_scope(write=False) as s:
        sizes = [len(d) for d in s.scalars(select(PlanSnapshot.data).where(PlanSnapshot.plan_version_id == plan)
                                           .order_by(PlanSnapshot.part))]
        assert len(sizes) == -(-len(data) // 4096) > 3 and max(sizes) <= 4096
        read = snapshot.read_snapshot(s, s.get(PlanVersion, plan), app.config["WANGGE"], ("x", plan))
    assert read is not None
    assert_same_state(read, snapshot.load_snapshot(data, ("x", plan)))  # the parts joined are the whole
    with app.app_context(), session_scope() as s:  # one part lost (or another writer's, half replaced)
        s.execute(delete(PlanSnapshot).where(PlanSnapshot.plan_version_id == plan, PlanSnapshot.part == 2))
    with app.app_context(), session_scope(write=False) as s:
        assert snapshot.read_snapshot(s, s.get(PlanVersion, plan), app.config["WANGGE"], ("x", plan)) is None
    assert "parts are incomplete" in caplog.text


def test_a_stored_state_goes_with_its_plan(app: Flask, planner: FlaskClient) -> None:
    other = partitioned_plan(planner, "将删除", seed=11)
    assert _stored(app, other) is not None
    with app.app_context(), session_scope() as s:
        s.delete(s.get(PlanVersion, other))
    with app.app_context(), session_scope(write=False) as s:
        assert s.scalar(select(PlanSnapshot.key).where(PlanSnapshot.plan_version_id == other)) is None


def test_stopping_the_saver_ends_its_thread(app: Flask) -> None:
    """dispose() stops the saver: its thread must end (a store under way finished) before the pool goes,
    else the store's connection goes back to a disposed pool and stays open."""
    saver = snapshot.SnapshotSaver(app, 3600.0)
    assert saver._thread.is_alive()
    saver.stop()
    assert not saver._thread.is_alive()
