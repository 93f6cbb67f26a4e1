"""The workspace map page and /api/health (api.workspace_map)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.db import session_scope
from api.users import create_user
from api.workspace import import_workspace
from tests.webmap.factories import make_layers
from webmap.offline import assert_offline

PASSWORD = "grid2026plan"
N_BUILDINGS = 80
NO_ACTIVE = "尚无已发布的网格方案"


@pytest.fixture
def viewer(app: Flask, client: FlaskClient) -> FlaskClient:
    with app.app_context(), session_scope() as s:
        create_user(s, "viewer", PASSWORD, role="viewer", display_name="王小明")
    client.post("/login", data={"username": "viewer", "password": PASSWORD})
    return client


@pytest.fixture
def seeded(app: Flask) -> dict:
    layers = make_layers(N_BUILDINGS)
    with app.app_context(), session_scope() as s:
        import_workspace(s, SimpleNamespace(layers=layers, report=None), user="test",
                         sources={"test": "factories"}, note="合成示例数据（测试）")
    return layers


def test_root_redirects_to_map(client: FlaskClient) -> None:
    r = client.get("/")
    assert r.status_code == 302 and r.location == "/map"


def test_map_needs_login(client: FlaskClient) -> None:
    r = client.get("/map")
    assert r.status_code == 302 and r.location.startswith("/login?next=/map")


def test_map_page_shows_workspace(viewer: FlaskClient, seeded: dict) -> None:
    r = viewer.get("/map")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert_offline(html)
    for text in ("工作区地图", "王小明", "只读用户", "退出登录", "合成示例数据（测试）"):
        assert text in html, text
    assert f'data-stat="buildings">{N_BUILDINGS}<' in html
    assert 'data-stat="communities">2<' in html
    households = int(seeded["buildings"]["households"].fillna(0).sum())
    assert f'data-stat="households">{households:,}<' in html
    assert html.count("<html") == 1 and "window.wanggeLayers" in html
    assert 'name="csrf-token"' in html


def test_empty_workspace_explains_what_to_do(viewer: FlaskClient) -> None:
    html = viewer.get("/map").get_data(as_text=True)
    assert "工作区还没有数据" in html and "wangge demo" in html


def test_bad_basemap_setting_falls_back_to_blank(app: Flask, viewer: FlaskClient, seeded: dict) -> None:
    app.config["WANGGE"]["basemap"] = "tianditu"
    html = viewer.get("/map").get_data(as_text=True)
    assert "底图无法显示，已改用无底图：天地图底图需要密钥，尚未设置" in html and "tianditu_tk" in html
    assert "needs a Tianditu key" not in html  # the English text of geo/webmap stays in the log
    assert_offline(html)


def test_health(client: FlaskClient) -> None:
    r = client.get("/api/health")
    assert r.status_code == 200 and r.json == {"status": "ok", "database": "ok"}


def _store_plan(app: Flask, name: str, grid_names: list[str], *, active: bool) -> int:
    """A plan version with one grid per name over the factory district (published if *active*)."""
    from shapely.geometry import box

    from api.models import PlanGrid, PlanVersion

    with app.app_context(), session_scope() as s:
        plan = PlanVersion(name=name, author="test", status="published" if active else "draft",
                           is_active=active, settings={})
        s.add(plan)
        s.flush()
        for i, gname in enumerate(grid_names):
            s.add(PlanGrid(plan_version_id=plan.id, grid_id=f"G{i}", community_id="C1",
                           code=f"3205080010010{i:02d}", name=gname, households=300 + 11 * i, buildings=5,
                           geometry=box(120.60 + 0.001 * i, 31.30, 120.601 + 0.001 * i, 31.301)))
        return plan.id


def _decoded(page: str) -> str:
    """*page* with the JSON ``\\uXXXX`` escapes of the embedded map data decoded."""
    import re

    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda g: chr(int(g.group(1), 16)), page)


def test_map_shows_the_published_plans_grids(app: Flask, viewer: FlaskClient, seeded: dict) -> None:
    hostile = '<img src=x onerror=alert(1)>"\'{{7*7}}'
    plan_id = _store_plan(app, f"方案{hostile}", ["东区网格", hostile], active=True)
    _store_plan(app, "草稿方案", ["草稿网格"], active=False)
    page = viewer.get("/map").get_data(as_text=True)
    text = _decoded(page)
    assert "网格（生效方案）" in text and '"grids":' in text
    for code, hh in (("320508001001000", "300"), ("320508001001001", "311")):
        assert f'"code": "{code}"' in text and f'"hh": "{hh}"' in text
    assert "东区网格" in text and "草稿网格" not in text  # drafts stay off the workspace map
    # The legend names the plan, escaped; the grid name is JSON data shown by the tooltip as text.
    assert f"生效方案：#{plan_id} 方案&lt;img src=x onerror=alert(1)&gt;&quot;&#x27;{{{{7*7}}}}（2 个网格）" in text
    assert "<img src=x" not in page


def test_map_says_when_no_plan_is_published(app: Flask, viewer: FlaskClient, seeded: dict) -> None:
    from api.workspace_map import NO_ACTIVE_PLAN

    _store_plan(app, "草稿方案", ["草稿网格"], active=False)
    text = _decoded(viewer.get("/map").get_data(as_text=True))
    assert NO_ACTIVE_PLAN in text and "网格（生效方案）" not in text and "草稿网格" not in text


def test_map_is_built_once_until_an_import_or_a_publish_changes_it(app: Flask, viewer: FlaskClient, seeded: dict,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The landing page of every role reuses the rendered map; a newly published plan shows at once."""
    import api.workspace_map as views

    built: list[int] = []
    real = views.map_parts
    monkeypatch.setattr(views, "map_parts", lambda *a, **k: built.append(1) or real(*a, **k))
    first = _decoded(viewer.get("/map").get_data(as_text=True))
    again = _decoded(viewer.get("/map").get_data(as_text=True))
    assert len(built) == 1 and NO_ACTIVE in first and NO_ACTIVE in again
    _store_plan(app, "新方案", ["新网格"], active=True)
    published = _decoded(viewer.get("/map").get_data(as_text=True))
    assert len(built) == 2 and "新网格" in published and NO_ACTIVE not in published
    with app.app_context(), session_scope() as s:  # a new import: the map is rebuilt from it
        import_workspace(s, SimpleNamespace(layers=make_layers(N_BUILDINGS), report=None), user="test",
                         sources={"test": "factories"}, note="第二次导入")
    assert "第二次导入" in viewer.get("/map").get_data(as_text=True) and len(built) == 3
