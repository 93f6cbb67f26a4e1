"""Moving some buildings of a unit moves exactly those: the unit is split (issue 10 §4).

Hand-made plan (tests/api/test_plans_edits.py layout) whose cell c01 holds two buildings side
by side, Bc01 (west, 60 households) and Bc01x (east, 50); the footprints are in the workspace.
"""

from __future__ import annotations

import pandas as pd
import pytest
import shapely
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from api.db import session_scope
from api.models import Building, PlanAssignment, PlanCell
from api.plans import state as plan_state
from tests.api.plans_helpers import login
from tests.api.test_plans_edits import LAYOUT, X0, Y0, D, _edit, _result, _save, _square

WEST = shapely.box(X0 + 1.1 * D, Y0 + 0.2 * D, X0 + 1.4 * D, Y0 + 0.8 * D)
EAST = shapely.box(X0 + 1.6 * D, Y0 + 0.2 * D, X0 + 1.9 * D, Y0 + 0.8 * D)
#: Overlaps EAST by a third of its width: one unit with it.
OVER = shapely.box(X0 + 1.45 * D, Y0 + 0.3 * D, X0 + 1.7 * D, Y0 + 0.7 * D)


def _plan(app: Flask, footprints: dict[str, shapely.Polygon], households: dict[str, int]) -> int:
    """The layout with the buildings of *footprints* in c01 (replacing Bc01), stored with footprints."""
    result = _result(LAYOUT)
    extra = [b for b in footprints if b != "Bc01"]
    result.building_cell = pd.concat([result.building_cell, pd.Series(["c01"] * len(extra), index=extra)])
    result.assignment = pd.concat([result.assignment, pd.Series(["A"] * len(extra), index=extra)])
    result.cells.loc[result.cells["cell_id"] == "c01", ["households", "buildings"]] = [
        sum(households.values()), len(footprints)]
    plan = _save(app, result)
    with app.app_context(), session_scope() as s:
        for b in result.building_cell.index:
            geom = footprints.get(b) or shapely.affinity.scale(_square(result.building_cell[b]), 0.6, 0.6)
            s.add(Building(building_id=b, households=households.get(b, 100), geometry=geom,
                           minx=geom.bounds[0], miny=geom.bounds[1], maxx=geom.bounds[2], maxy=geom.bounds[3]))
    return plan


@pytest.fixture
def planner(app: Flask) -> FlaskClient:
    return login(app, "planner")


def _cells(app: Flask, plan: int) -> dict[str, shapely.Geometry]:
    with app.app_context(), session_scope(write=False) as s:
        rows = s.execute(select(PlanCell.cell_id, PlanCell.geometry).where(PlanCell.plan_version_id == plan)).all()
    return dict(rows)


def _where(app: Flask, plan: int) -> dict[str, tuple[str, str]]:
    with app.app_context(), session_scope(write=False) as s:
        rows = s.execute(select(PlanAssignment.building_id, PlanAssignment.grid_id, PlanAssignment.cell_id)
                         .where(PlanAssignment.plan_version_id == plan)).all()
    return {b: (g, c) for b, g, c in rows}


def _assert_adjacency_is_rebuilt(app: Flask, plan: int) -> None:
    """The cached state's incrementally updated neighbour lists equal a rebuild from scratch."""
    from api.models import PlanVersion
    from api.plans.store import plan_communities

    with app.app_context(), session_scope(write=False) as s:  # the community state the edits changed
        state = plan_state.get_state(s, s.get(PlanVersion, plan), app.config["WANGGE"],
                                     communities=plan_communities(s, plan))
    assert state.scope is not None
    ptr, idx = plan_state._adjacency(state.metric)
    assert state.adj_ptr.tolist() == ptr.tolist()
    assert [sorted(state.neighbours(i).tolist()) for i in range(len(ptr) - 1)] == \
        [sorted(idx[ptr[i]:ptr[i + 1]].tolist()) for i in range(len(ptr) - 1)]
    # the cell -> buildings index edits keep in step equals one built from building_cell afresh
    assert state.cell_members is not None, "a move builds the index"
    kept = {c: sorted(b) for c, b in state.cell_members.items()}
    state.cell_members = None
    assert kept == {c: sorted(b) for c, b in plan_state.cell_buildings(state).items()}


def _grids(answer: dict) -> dict[str, dict]:
    return {f["id"]: f for f in answer["grids"]}


def test_one_building_of_a_unit_moves_alone(app: Flask, planner: FlaskClient) -> None:
    plan = _plan(app, {"Bc01": WEST, "Bc01x": EAST}, {"Bc01": 60, "Bc01x": 50})
    before = _cells(app, plan)
    status, out = _edit(planner, plan, op="move", building_ids=["Bc01x"], to_grid="B")
    assert status == 200, out  # no confirmation: nothing but the selection moves
    grids = _grids(out)
    assert grids["B"]["properties"]["households"] == 150 + 50 and grids["B"]["properties"]["buildings"] == 2
    assert grids["A"]["properties"]["households"] == 600 - 50 and grids["A"]["properties"]["buildings"] == 5
    # validated live like any move: B's new piece runs from c11 down through row 0, cutting A in two
    rules = {(v["grid_id"], v["rule"]) for v in out["violations"]}
    assert ("A", "contiguity") in rules and not {r for g, r in rules if g == "B"}
    where = _where(app, plan)
    assert where["Bc01x"] == ("B", "c01+2") and where["Bc01"] == ("A", "c01")
    outline = {g: shapely.geometry.shape(f["geometry"]) for g, f in grids.items()}
    assert shapely.area(shapely.intersection(outline["B"], EAST)) >= 0.99 * EAST.area
    assert shapely.area(shapely.intersection(outline["A"], WEST)) >= 0.99 * WEST.area
    after = _cells(app, plan)
    assert set(after) == set(before) | {"c01+2"}
    assert shapely.coverage_is_valid(list(after.values()))  # the cells still tile without gaps or overlaps
    assert shapely.union_all(list(after.values())).equals(shapely.union_all(list(before.values())))
    assert after["c01"].covers(WEST) and after["c01+2"].covers(EAST)
    _assert_adjacency_is_rebuilt(app, plan)


def test_undo_rejoins_the_unit_and_redo_splits_it_again(app: Flask, planner: FlaskClient) -> None:
    plan = _plan(app, {"Bc01": WEST, "Bc01x": EAST}, {"Bc01": 60, "Bc01x": 50})
    before, where = _cells(app, plan), _where(app, plan)
    status, out = _edit(planner, plan, op="move", building_ids=["Bc01x"], to_grid="B")
    assert status == 200, out
    split = _cells(app, plan)
    r = planner.post(f"/api/plans/{plan}/undo", json={"version": out["version"]})
    assert r.status_code == 200, r.get_json()
    assert {g: f["properties"]["households"] for g, f in _grids(r.get_json()).items()} == {"A": 600, "B": 150}
    back = _cells(app, plan)
    assert set(back) == set(before) and all(back[c].equals(before[c]) for c in before)
    assert _where(app, plan) == where
    _assert_adjacency_is_rebuilt(app, plan)
    r = planner.post(f"/api/plans/{plan}/redo", json={"version": r.get_json()["version"]})
    assert r.status_code == 200, r.get_json()
    again = _cells(app, plan)
    assert set(again) == set(split) and all(again[c].equals(split[c]) for c in split)
    assert _where(app, plan)["Bc01x"] == ("B", "c01+2")
    _assert_adjacency_is_rebuilt(app, plan)


def test_a_split_plan_reloads_from_the_database(app: Flask, planner: FlaskClient) -> None:
    plan = _plan(app, {"Bc01": WEST, "Bc01x": EAST}, {"Bc01": 60, "Bc01x": 50})
    assert _edit(planner, plan, op="move", building_ids=["Bc01x"], to_grid="B")[0] == 200
    with plan_state._CACHE_LOCK:
        plan_state._CACHE.clear()  # as another process would: the state comes from the tables
    status, out = _edit(planner, plan, op="move", building_ids=["Bc01"], to_grid="B")
    assert status == 200, out  # the rest of c01 now holds only Bc01: the cell moves whole
    assert _grids(out)["B"]["properties"]["households"] == 150 + 60 + 50
    assert {b: g for b, (g, _) in _where(app, plan).items() if b.startswith("Bc01")} == {"Bc01": "B", "Bc01x": "B"}


def test_overlapping_footprints_move_together_after_confirmation(app: Flask, planner: FlaskClient) -> None:
    plan = _plan(app, {"Bc01": WEST, "Bc01x": EAST, "Bc01y": OVER}, {"Bc01": 40, "Bc01x": 50, "Bc01y": 20})
    status, out = _edit(planner, plan, op="move", building_ids=["Bc01x"], to_grid="B")
    assert status == 422 and out["error"]["code"] == "confirm_move"
    assert [b["building_id"] for b in out["error"]["also_moving"]] == ["Bc01y"]
    message = out["error"]["message"]
    assert "Bc01y 与所选 Bc01x 的轮廓重叠" in message and "尚未移动" in message
    # OVER shares 0.1 D x 0.4 D with EAST: 40 % of OVER (0.25 D x 0.4 D), 1/3 of EAST (0.3 D x 0.6 D)
    assert "占较小楼栋的 40%、较大楼栋的 22.2%" in message
    status, out = _edit(planner, plan, op="move", building_ids=["Bc01x"], to_grid="B", confirm=True)
    assert status == 200, out
    assert _grids(out)["B"]["properties"]["households"] == 150 + 50 + 20
    where = _where(app, plan)
    assert where["Bc01x"][0] == where["Bc01y"][0] == "B" and where["Bc01"] == ("A", "c01")


#: Over EAST's western edge, up to near c01's northern edge (grid B beyond): shares 0.005 D x 0.3 D
#: with EAST, 0.83 % of EAST and 6.7 % of TOWER; separable, so the shared strip goes with TOWER.
TOWER = shapely.box(X0 + 1.555 * D, Y0 + 0.5 * D, X0 + 1.605 * D, Y0 + 0.95 * D)


def test_a_small_overlap_does_not_tie_two_buildings(app: Flask, planner: FlaskClient) -> None:
    plan = _plan(app, {"Bc01": WEST, "Bc01x": EAST, "Bc01z": TOWER}, {"Bc01": 40, "Bc01x": 50, "Bc01z": 20})
    status, out = _edit(planner, plan, op="move", building_ids=["Bc01z"], to_grid="B")
    assert status == 200, out  # no confirmation: the tower moves alone
    where = _where(app, plan)
    assert {b for b, (g, _) in where.items() if b.startswith("Bc01") and g == "B"} == {"Bc01z"}
    cells = _cells(app, plan)
    assert cells[where["Bc01z"][1]].covers(TOWER)  # the shared strip went with the smaller building
    assert 0.99 <= cells[where["Bc01x"][1]].intersection(EAST).area / EAST.area < 1
    assert shapely.coverage_is_valid(list(cells.values()))


def test_a_drawn_polygon_moves_exactly_the_buildings_inside_it(app: Flask, planner: FlaskClient) -> None:
    plan = _plan(app, {"Bc01": WEST, "Bc01x": EAST}, {"Bc01": 60, "Bc01x": 50})
    drawn = shapely.geometry.mapping(shapely.buffer(EAST, 0.05 * D))  # around Bc01x; c01's own point is elsewhere
    status, out = _edit(planner, plan, op="move", polygon=drawn, to_grid="B")
    assert status == 200, out
    assert _grids(out)["B"]["properties"]["households"] == 150 + 50
    where = _where(app, plan)
    assert where["Bc01x"][0] == "B" and where["Bc01"] == ("A", "c01")


@pytest.mark.parametrize("freeze_cells", [0, 1])
def test_a_loaded_plan_state_is_kept_out_of_full_collections(app: Flask, planner: FlaskClient,
                                                             freeze_cells: int) -> None:
    """Setting plan_state_freeze_cells: a plan of at least that many cells is frozen (gc.freeze) once
    loaded, so full collections during its edits skip it; edits still work on it."""
    import gc

    from api.models import PlanVersion

    plan = _plan(app, {"Bc01": WEST, "Bc01x": EAST}, {"Bc01": 60, "Bc01x": 50})
    app.config["WANGGE"]["plan_state_freeze_cells"] = freeze_cells
    with plan_state._CACHE_LOCK:
        plan_state._CACHE.clear()
    gc.unfreeze()
    try:
        with app.app_context(), session_scope(write=False) as s:
            state = plan_state.get_state(s, s.get(PlanVersion, plan), app.config["WANGGE"])
        tracked = {id(o) for o in gc.get_objects()}  # frozen objects are in no generation
        assert (id(state.members) in tracked) is (freeze_cells == 0)
        assert (gc.get_freeze_count() > 0) is (freeze_cells > 0)
        status, out = _edit(planner, plan, op="move", building_ids=["Bc01x"], to_grid="B")
        assert status == 200, out
    finally:
        gc.unfreeze()
