"""The workspace map page and /api/health (api.views)."""

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
    assert "底图无法显示，已改用无底图" in html and "tianditu_tk" in html
    assert_offline(html)


def test_health(client: FlaskClient) -> None:
    r = client.get("/api/health")
    assert r.status_code == 200 and r.json == {"status": "ok", "database": "ok"}
