"""Planner HTML pages (api.plans.pages): roles see or miss the edit controls, 404s, context layers."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.db import session_scope
from api.models import PlanVersion
from api.users import create_user
from api.workspace import import_workspace
from tests.webmap.factories import make_layers
from webmap.offline import assert_offline

PASSWORD = "grid2026plan"


@pytest.fixture
def seeded(app: Flask) -> dict:
    layers = make_layers(80)
    with app.app_context(), session_scope() as s:
        import_workspace(s, SimpleNamespace(layers=layers, report=None), user="test",
                         sources={"test": "factories"}, note="合成示例数据（测试）")
        for role in ("planner", "viewer", "worker"):
            create_user(s, f"u_{role}", PASSWORD, role=role)
        s.add(PlanVersion(name="测试方案甲", author="u_planner", settings={"min_households": 40, "max_households": 90}))
        s.add(PlanVersion(name="测试方案乙", author="u_planner", settings={}))
        s.add(PlanVersion(name="已发布丙", author="u_planner", status="published", is_active=True,
                          settings={"min_households": 40, "max_households": 90}))
        s.add(PlanVersion(name="已发布丁", author="u_planner", status="published", is_active=True,
                          settings={"previous_active": [3]}))
    return layers


def _as(client: FlaskClient, role: str) -> FlaskClient:
    r = client.post("/login", data={"username": f"u_{role}", "password": PASSWORD})
    assert r.status_code == 302
    return client


def test_pages_need_login(client: FlaskClient) -> None:
    for path in ("/plans", "/plans/1", "/plans/1/diff/2"):
        r = client.get(path)
        assert r.status_code == 302 and r.location.startswith("/login"), path
    assert client.get("/api/context/streets.geojson").status_code == 401


def test_plan_list_offers_partition_to_planners_only(client: FlaskClient, seeded: dict) -> None:
    html = _as(client, "planner").get("/plans").get_data(as_text=True)
    assert "自动划分" in html and 'id="wg-partition-form"' in html and "微网格模式" in html
    client.post("/logout")
    html = _as(client, "viewer").get("/plans").get_data(as_text=True)
    assert "网格方案" in html and 'id="wg-partition-form"' not in html


def test_draft_page_gives_planners_every_edit_tool(client: FlaskClient, seeded: dict) -> None:
    r = _as(client, "planner").get("/plans/1")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert_offline(html)
    for text in ('id="wg-toolbar"', 'data-tool="box"', 'data-action="move"', 'data-action="undo"',
                 'data-action="publish"', 'data-action="repartition"', "leaflet-geoman.js", '"canEdit": true',
                 "测试方案甲", "户数", "紧凑度", "导出", "GeoPackage", "wanggePlannerConfig", "js/planner/plan_page.js"):
        assert text in html, text
    assert 'data-action="rollback"' not in html  # nothing was active before this draft
    assert '"bounds": [40, 90]' in html  # the plan's own bounds drive the legend and colours
    assert "FeatureCollection" not in html
    assert html.index("高级") < html.index("随机种子")  # the seed sits in the folded advanced section
    # before publishing, the planner sees what the plan does to the register (issue 12 §7)
    assert 'href="/register/rebinding/1"' in html and html.index("发布前检查") < html.index('data-action="publish"')
    report = _as(client, "planner").get("/register/rebinding/1")
    assert report.status_code == 200 and "网格长" in report.get_data(as_text=True)


@pytest.mark.parametrize(("plan", "rollback"), [(3, False), (4, True)])
def test_published_page_has_no_edit_tools(client: FlaskClient, seeded: dict, plan: int, rollback: bool) -> None:
    html = _as(client, "planner").get(f"/plans/{plan}").get_data(as_text=True)
    assert 'id="wg-toolbar"' in html and "另存为草稿" in html and "不能直接编辑" in html
    for tool in ('data-tool="box"', 'data-action="move"', 'data-action="undo"', 'data-action="publish"',
                 'data-action="repartition"', "leaflet-geoman.js", "发布前检查"):
        assert tool not in html, tool
    assert ('data-action="rollback"' in html) is rollback  # only when another plan was active before


@pytest.mark.parametrize("role", ["viewer", "worker"])
def test_workers_and_viewers_see_published_plans_only(client: FlaskClient, seeded: dict, role: str) -> None:
    c = _as(client, role)
    for path in ("/plans/1", "/plans/2", "/plans/1/diff/3", "/plans/3/diff/2"):
        r = c.get(path)
        assert r.status_code == 404 and "尚未发布" in r.get_data(as_text=True), path
    r = c.get("/plans/3")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert_offline(html)
    assert "已发布丙" in html and "户数" in html and "wanggePlannerConfig" in html
    for hidden in ('id="wg-toolbar"', "leaflet-geoman.js", '"canEdit": true', "导出", "/export?format="):
        assert hidden not in html, hidden
    assert c.get("/plans/3/diff/4").status_code == 200


def test_missing_plan_is_a_chinese_404(client: FlaskClient, seeded: dict) -> None:
    r = _as(client, "viewer").get("/plans/99")
    assert r.status_code == 404 and "方案 #99 不存在" in r.get_data(as_text=True)
    assert _as(client, "viewer").get("/plans/3/diff/99").status_code == 404


def test_diff_page_names_both_versions(client: FlaskClient, seeded: dict) -> None:
    html = _as(client, "planner").get("/plans/1/diff/2").get_data(as_text=True)
    assert "方案对比" in html and "#1 测试方案甲" in html and "#2 测试方案乙" in html
    assert 'id="wg-toolbar"' not in html


def test_unavailable_basemap_falls_back_with_a_notice(app: Flask, client: FlaskClient, seeded: dict) -> None:
    app.config["WANGGE"]["basemap"] = "tianditu"
    app.config["WANGGE"]["tianditu_tk"] = ""
    html = _as(client, "viewer").get("/plans/3").get_data(as_text=True)
    assert "底图无法显示" in html and "tianditu_tk" in html


def test_context_layers_per_bbox(client: FlaskClient, seeded: dict) -> None:
    streets = seeded["streets"]
    c = _as(client, "viewer")
    everything = c.get("/api/context/streets.geojson").get_json()["features"]
    assert len(everything) == len(streets)
    minx, miny, maxx, maxy = streets.geometry.iloc[0].bounds
    some = c.get(f"/api/context/streets.geojson?bbox={minx},{miny},{maxx},{maxy}").get_json()["features"]
    assert 1 <= len(some) < len(everything)
    major = c.get("/api/context/streets.geojson?major=1").get_json()["features"]
    assert {f["properties"]["road_class"] for f in major} <= {"major", "secondary", "rail", "water"}
    assert len(major) == int(streets["road_class"].isin(["major", "secondary", "rail", "water"]).sum())
    compounds = c.get("/api/context/compounds.geojson").get_json()["features"]
    assert len(compounds) == len(seeded["compounds"])


def test_context_layer_errors(client: FlaskClient, seeded: dict) -> None:
    c = _as(client, "viewer")
    r = c.get("/api/context/streets.geojson?bbox=1,2,3")
    assert r.status_code == 400 and "bbox" in r.get_json()["error"]["message"]
    assert r.get_json()["error"]["field"] == "bbox"
    r = c.get("/api/context/buildings.geojson")
    error = r.get_json()["error"]
    assert r.status_code == 404 and "buildings" in error["message"] and "streets" in error["fix"]
