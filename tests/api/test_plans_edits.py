"""Plan edits on a hand-made plan of square cells (no partition engine): rules, refusals, undo/redo.

Layout (3 columns × 2 rows of 0.001° squares, one building per cell)::

    row 1:  c10  c11  c12        grid A = c00 c01 c02 c10 c12 (a U open at the top)
    row 0:  c00  c01  c02        grid B = c11 (inside the U), grid C = c03 c13 (east column)
                                 c03 / c13 are a fourth column
"""

from __future__ import annotations

from types import SimpleNamespace

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from flask import Flask
from flask.testing import FlaskClient

from api.db import session_scope
from api.models import AuditEntry, PlanAssignment, PlanEdit
from api.plans.store import save_partition
from tests.api.plans_helpers import login

X0, Y0, D = 120.60, 31.30, 0.001
LAYOUT = {"c00": "A", "c01": "A", "c02": "A", "c10": "A", "c12": "A", "c11": "B", "c03": "C", "c13": "C"}
HOUSEHOLDS = {"c00": 100, "c01": 110, "c02": 120, "c10": 130, "c12": 140, "c11": 150, "c03": 160, "c13": 170}


def _square(cell: str) -> shapely.Polygon:
    row, col = int(cell[1]), int(cell[2])
    return shapely.box(X0 + col * D, Y0 + row * D, X0 + (col + 1) * D, Y0 + (row + 1) * D)


def _result(layout: dict[str, str], communities: dict[str, str] | None = None) -> SimpleNamespace:
    comm = [(communities or {}).get(c, "K1") for c in layout]
    cells = gpd.GeoDataFrame({"cell_id": list(layout), "community_id": comm, "grid_id": list(layout.values()),
                              "households": [HOUSEHOLDS[c] for c in layout], "buildings": 1},
                             geometry=[_square(c) for c in layout], crs=4326)
    metric = cells.to_crs(cells.estimate_utm_crs())
    rows = []
    for g, grp in metric.groupby("grid_id"):
        outline = shapely.coverage_union_all(grp.geometry.values)
        rows.append({"grid_id": g, "community_id": grp["community_id"].iloc[0], "code": None, "households": int(grp["households"].sum()),
                     "buildings": len(grp), "area_m2": outline.area, "polsby_popper": 0.5, "street_share": None,
                     "exclusive": False, "locked": False, "flags": "", "geometry": outline})
    grids = gpd.GeoDataFrame(rows, geometry="geometry", crs=metric.crs).to_crs(4326)
    building_cell = pd.Series(list(layout), index=[f"B{c}" for c in layout])
    assignment = pd.Series(list(layout.values()), index=building_cell.index)
    return SimpleNamespace(grids=grids, assignment=assignment, cells=cells, building_cell=building_cell, report={})


@pytest.fixture
def plan(app: Flask) -> int:
    with app.app_context(), session_scope() as s:
        p = save_partition(s, _result(LAYOUT), name="手工方案", author="test",
                           settings={"min_households": 100, "max_households": 500})
        return p.id


@pytest.fixture
def planner(app: Flask) -> FlaskClient:
    return login(app, "planner")


def _version(client: FlaskClient, plan: int) -> int:
    return client.get(f"/api/plans/{plan}").get_json()["version"]


def _edit(client: FlaskClient, plan: int, **body: object) -> tuple[int, dict]:
    body.setdefault("version", _version(client, plan))
    r = client.post(f"/api/plans/{plan}/edits", json=body)
    return r.status_code, r.get_json()


def _households(answer: dict) -> dict[str, int]:
    return {f["id"]: f["properties"]["households"] for f in answer["grids"]}


def test_move_updates_both_grids_and_reports_contiguity(planner: FlaskClient, plan: int) -> None:
    status, out = _edit(planner, plan, op="move", building_ids=["Bc01"], to_grid="B")
    assert status == 200, out
    assert _households(out) == {"A": 600 - 110, "B": 150 + 110}
    rules = {(v["grid_id"], v["rule"]) for v in out["violations"]}
    assert ("A", "contiguity") in rules  # A lost its middle bottom cell: c00 and c02 are cut apart
    a = next(f for f in out["grids"] if f["id"] == "A")
    assert shapely.geometry.shape(a["geometry"]).geom_type == "MultiPolygon"


def test_move_not_adjacent_is_refused(planner: FlaskClient, plan: int) -> None:
    status, out = _edit(planner, plan, op="move", building_ids=["Bc00"], to_grid="C")
    assert status == 422
    assert out["error"]["code"] == "not_adjacent"
    assert "不相邻" in out["error"]["message"]


def test_split_refused_when_a_side_is_not_contiguous(planner: FlaskClient, plan: int) -> None:
    # a horizontal line between the rows: the top side of A is c10 + c12, cut apart by B
    line = {"type": "LineString", "coordinates": [[X0 - D, Y0 + D], [X0 + 4 * D, Y0 + D]]}
    status, out = _edit(planner, plan, op="split", grid_id="A", line=line)
    assert status == 422
    assert out["error"]["code"] == "split_not_contiguous"
    assert "不连通" in out["error"]["message"]


def test_split_then_merge_and_undo_everything(planner: FlaskClient, plan: int) -> None:
    line = {"type": "LineString", "coordinates": [[X0 + 3 * D - D, Y0 + D], [X0 + 5 * D, Y0 + D]]}
    status, out = _edit(planner, plan, op="split", grid_id="C", line=line)
    assert status == 200, out
    assert _households(out) == {"C": 170, "C-2": 160}
    status, out = _edit(planner, plan, op="merge", grid_ids=["C", "C-2"])
    assert status == 200, out
    assert out["removed"] == ["C-2"] and _households(out) == {"C": 330}
    v = out["version"]
    for expected in ({"C": 170, "C-2": 160}, {"C": 330}):
        r = planner.post(f"/api/plans/{plan}/undo", json={"version": v})
        assert r.status_code == 200, r.get_json()
        v = r.get_json()["version"]
        if len(expected) == 1:
            assert r.get_json()["removed"] == ["C-2"]
        assert {k: x for k, x in _households(r.get_json()).items() if k in expected} == expected
    r = planner.post(f"/api/plans/{plan}/undo", json={"version": v})
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "nothing_to_undo"


def test_new_edit_after_undo_drops_redo(app: Flask, planner: FlaskClient, plan: int) -> None:
    _edit(planner, plan, op="rename", grid_id="B", name="中心网格")
    r = planner.post(f"/api/plans/{plan}/undo", json={"version": _version(planner, plan)})
    assert r.get_json()["can_redo"] is True
    status, out = _edit(planner, plan, op="lock", grid_id="C")
    assert status == 200 and out["can_redo"] is False
    r = planner.post(f"/api/plans/{plan}/redo", json={"version": out["version"]})
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "nothing_to_redo"
    with app.app_context(), session_scope() as s:
        ops = [e.op for e in s.query(PlanEdit).filter_by(plan_version_id=plan).order_by(PlanEdit.seq)]
        actions = [a.action for a in s.query(AuditEntry).filter(AuditEntry.action.like("plan.%"))]
    assert ops == ["lock"]
    assert actions == ["plan.edit.rename", "plan.undo", "plan.edit.lock"]


def test_locked_grid_refuses_moves_until_unlocked(planner: FlaskClient, plan: int) -> None:
    status, out = _edit(planner, plan, op="lock", grid_id="B")
    assert status == 200 and out["grids"][0]["properties"]["locked"] is True
    status, out = _edit(planner, plan, op="move", building_ids=["Bc01"], to_grid="B")
    assert status == 422 and out["error"]["code"] == "grid_locked"
    _edit(planner, plan, op="unlock", grid_id="B")
    status, out = _edit(planner, plan, op="move", building_ids=["Bc01"], to_grid="B")
    assert status == 200


def test_exclusive_grid_is_exempt_from_range(planner: FlaskClient, plan: int) -> None:
    status, out = _edit(planner, plan, op="exclusive", grid_id="B", value=True)
    assert status == 200
    assert out["grids"][0]["properties"]["status"] == "exclusive"
    status, out = _edit(planner, plan, op="exclusive", grid_id="B", value="yes")
    assert status == 400 and "value" in out["error"]["message"]


def test_move_by_polygon_takes_cells_whose_point_is_inside(planner: FlaskClient, plan: int) -> None:
    poly = shapely.geometry.mapping(shapely.box(X0 + 2.2 * D, Y0 + 0.2 * D, X0 + 2.8 * D, Y0 + 0.8 * D))
    status, out = _edit(planner, plan, op="move", polygon=poly, to_grid="C")
    assert status == 200, out
    assert _households(out) == {"A": 600 - 120, "C": 330 + 120}


@pytest.mark.parametrize(("body", "code", "words"), [
    ({"op": "move", "building_ids": ["Bc01"], "to_grid": "Z9"}, "unknown_grid", "Z9"),
    ({"op": "move", "building_ids": ["nope"], "to_grid": "B"}, "unknown_building", "nope"),
    ({"op": "move", "polygon": {"type": "Polygon", "coordinates": [[1, 2]]}, "to_grid": "B"}, "bad_request", "GeoJSON"),
    ({"op": "move", "polygon": {"type": "Point", "coordinates": [1, 2]}, "to_grid": "B"}, "bad_request", "Polygon"),
    ({"op": "split", "grid_id": "A", "line": "not a line"}, "bad_request", "LineString"),
    ({"op": "merge", "grid_ids": ["A"]}, "bad_request", "grid_ids"),
    ({"op": "teleport"}, "bad_request", "teleport"),
    ({"op": "rename", "grid_id": "A", "name": ""}, "bad_request", "name"),
])
def test_bad_edits_get_400_naming_the_problem(planner: FlaskClient, plan: int, body: dict, code: str,
                                              words: str) -> None:
    status, out = _edit(planner, plan, **body)
    assert status == 400
    assert out["error"]["code"] == code
    assert words in out["error"]["message"]


def test_malformed_json_and_missing_version(planner: FlaskClient, plan: int) -> None:
    r = planner.post(f"/api/plans/{plan}/edits", data="{op: move", content_type="application/json")
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "malformed_json"
    r = planner.post(f"/api/plans/{plan}/edits", json=[1, 2])
    assert r.status_code == 400 and "JSON 对象" in r.get_json()["error"]["message"]
    r = planner.post(f"/api/plans/{plan}/edits", json={"op": "lock", "grid_id": "A"})
    assert r.status_code == 400 and "version" in r.get_json()["error"]["message"]


def test_stale_version_gets_409_naming_who_and_when(app: Flask, plan: int) -> None:
    first, second = login(app, "planner"), login(app, "admin")
    v = _version(first, plan)
    assert _edit(first, plan, op="rename", grid_id="A", name="甲", version=v)[0] == 200
    status, out = _edit(second, plan, op="rename", grid_id="A", name="乙", version=v)
    assert status == 409
    assert out["error"]["code"] == "conflict" and out["error"]["fix"] == "reload"
    assert "planner" in out["error"]["message"] and out["error"]["version"] == v + 1


def test_unknown_plan_is_404(planner: FlaskClient) -> None:
    r = planner.post("/api/plans/999/edits", json={"op": "lock", "grid_id": "A", "version": 1})
    assert r.status_code == 404 and "999" in r.get_json()["error"]["message"]


def test_nesting_and_tiling_are_reported(app: Flask, planner: FlaskClient) -> None:
    from api.models import Community

    with app.app_context(), session_scope() as s:
        # K2 (the east column) is drawn one column wider than its cells: not tiled
        k2 = shapely.box(X0 + 3 * D, Y0, X0 + 5 * D, Y0 + 2 * D)
        s.add(Community(community_id="K2", name="二社区", geometry=k2, minx=k2.bounds[0], miny=k2.bounds[1],
                        maxx=k2.bounds[2], maxy=k2.bounds[3]))
        plan = save_partition(s, _result(LAYOUT, {"c03": "K2", "c13": "K2"}), name="两社区", author="test",
                              settings={"min_households": 100, "max_households": 500}).id
    summary = planner.get(f"/api/plans/{plan}").get_json()["summary"]
    assert summary["violations_by_rule"] == {"range": 1, "tiling": 1}  # A holds 600 > 500; K2 not tiled
    status, out = _edit(planner, plan, op="move", building_ids=["Bc02"], to_grid="C")
    assert status == 200, out
    rules = {(v["grid_id"], v["rule"]) for v in out["violations"]}
    assert rules == {("C", "nesting"), ("C", "tiling"), ("A", "contiguity")}  # c12 hung on c02
    assert "K1" in next(v["message"] for v in out["violations"] if v["rule"] == "nesting")
    status, out = _edit(planner, plan, op="merge", grid_ids=["A", "C"])
    assert status == 422 and out["error"]["code"] == "merge_nesting"


def _save(app: Flask, result: SimpleNamespace) -> int:
    with app.app_context(), session_scope() as s:
        return save_partition(s, result, name="确认测试", author="test",
                              settings={"min_households": 100, "max_households": 500}).id


def _grid_households(client: FlaskClient, plan: int) -> dict[str, int]:
    fc = client.get(f"/api/plans/{plan}/grids.geojson").get_json()
    return {f["id"]: f["properties"]["households"] for f in fc["features"]}


def test_a_building_of_a_shared_unit_moves_only_after_confirmation(app: Flask, planner: FlaskClient) -> None:
    result = _result(LAYOUT)
    # c01 holds two buildings: the selected Bc01 and its neighbour Bc01x, which must move with it
    result.building_cell = pd.concat([result.building_cell, pd.Series(["c01"], index=["Bc01x"])])
    result.assignment = pd.concat([result.assignment, pd.Series(["A"], index=["Bc01x"])])
    plan = _save(app, result)
    before, version = _grid_households(planner, plan), _version(planner, plan)
    status, out = _edit(planner, plan, op="move", building_ids=["Bc01"], to_grid="B")
    assert status == 422 and out["error"]["code"] == "confirm_move"
    message = out["error"]["message"]
    assert "须与另外 1 栋楼整体移动：1 栋楼与所选楼栋同在一个无法拆分的单元" in message and "尚未移动" in message
    assert out["error"]["also_moving_count"] == 1
    assert [b["building_id"] for b in out["error"]["also_moving"]] == ["Bc01x"]
    assert out["error"]["deleted_grids"] == []
    assert _grid_households(planner, plan) == before and _version(planner, plan) == version  # nothing written
    status, out = _edit(planner, plan, op="move", building_ids=["Bc01"], to_grid="B", confirm=True)
    assert status == 200, out
    with app.app_context(), session_scope() as s:
        in_b = s.query(PlanAssignment.building_id).filter_by(plan_version_id=plan, grid_id="B")
        assert sorted(b for (b,) in in_b) == ["Bc01", "Bc01x", "Bc11"]


def test_a_move_that_would_delete_an_exclusive_grid_asks_first(planner: FlaskClient, plan: int) -> None:
    assert _edit(planner, plan, op="exclusive", grid_id="B", value=True)[0] == 200
    grids = _grid_households(planner, plan)
    status, out = _edit(planner, plan, op="move", building_ids=["Bc11"], to_grid="A")
    assert status == 422 and out["error"]["code"] == "confirm_move"
    assert "专属网格 B" in out["error"]["message"] and "将被删除" in out["error"]["message"]
    assert out["error"]["deleted_grids"] == [{"grid_id": "B", "label": "B", "exclusive": True}]
    assert _grid_households(planner, plan) == grids  # still 3 grids
    status, out = _edit(planner, plan, op="move", building_ids=["Bc11"], to_grid="A", confirm=True)
    assert status == 200 and out["removed"] == ["B"]
    r = planner.post(f"/api/plans/{plan}/undo", json={"version": out["version"]})
    back = next(f for f in r.get_json()["grids"] if f["id"] == "B")
    assert back["properties"]["exclusive"] is True and back["properties"]["households"] == 150


def test_messages_name_grids_by_code(app: Flask, planner: FlaskClient) -> None:
    result = _result(LAYOUT)
    result.grids["code"] = result.grids["grid_id"].map({"A": "320508001001001", "B": "320508001001002",
                                                        "C": "320508001001003"})
    plan = _save(app, result)
    summary_rules = planner.get(f"/api/plans/{plan}").get_json()["summary"]["violations_by_rule"]
    assert summary_rules == {"range": 1}
    fc = planner.get(f"/api/plans/{plan}/grids.geojson").get_json()
    assert _edit(planner, plan, op="lock", grid_id="B")[0] == 200
    status, out = _edit(planner, plan, op="move", building_ids=["Bc01"], to_grid="B")
    assert status == 422 and "320508001001002" in out["error"]["message"] and "网格 B" not in out["error"]["message"]
    status, out = _edit(planner, plan, op="move", building_ids=["Bc02"], to_grid="C")
    assert status == 200
    messages = " ".join(v["message"] for v in out["violations"])
    assert "320508001001001" in messages and "网格 A " not in messages
    assert fc["features"]  # the codes are the grids' own


def test_the_automatic_result_is_kept_as_the_first_version(app: Flask, planner: FlaskClient, plan: int) -> None:
    meta = planner.get(f"/api/plans/{plan}").get_json()
    auto = planner.get(f"/api/plans/{meta['parent_id']}").get_json()
    assert auto["status"] == "auto" and auto["name"] == "手工方案（自动结果）" and meta["status"] == "draft"
    assert auto["id"] < plan
    status, out = _edit(planner, plan, op="move", building_ids=["Bc01"], to_grid="B")
    assert status == 200
    diff = planner.get(f"/api/plans/{auto['id']}/diff/{plan}").get_json()
    assert diff["moved"] == [{"building_id": "Bc01", "from": "A", "to": "B"}]
    # the automatic result itself is read-only: the refusal names the reason and the fix
    r = planner.post(f"/api/plans/{auto['id']}/edits", json={"op": "lock", "grid_id": "A", "version": auto["version"]})
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "not_draft"
    assert "只有草稿可以编辑" in r.get_json()["error"]["message"] and "另存为" in r.get_json()["error"]["fix"]
    r = planner.post(f"/api/plans/{plan}/rollback", json={})
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "not_active"
