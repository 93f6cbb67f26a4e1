"""One error path across the app (api.errors): every blueprint's bad input gets the same shape.

JSON ``{"error": {code, message, fix, field}}`` for /api and JSON requests, the Chinese
error page for HTML; geo's English command-line wording (``--crs``, ``--layer``...) never
reaches a web response.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.auth import ROLE_LABELS
from api.db import session_scope
from api.models import PlanVersion
from api.users import create_user
from api.workspace import import_workspace
from tests.webmap.factories import make_layers

PASSWORD = "grid2026plan"
#: A command-line option in a message (``--crs``, ``--layer buildings=甲``) or a ``wangge`` command.
CLI_WORDING = re.compile(r"(?<![\w-])--[a-z]|wangge [a-z]")
CJK = re.compile(r"[\u4e00-\u9fff]")

#: (blueprint, method, path, body, status, field): bad requests, one or more per blueprint.
BAD_JSON_REQUESTS = [
    ("plans_api", "GET", "/api/plans/999", None, 404, None),
    ("plans_api", "POST", "/api/plans/partition", "not json", 400, None),
    ("plans_api", "POST", "/api/plans/partition", {"min_households": -3}, 400, None),
    ("plan_pages", "GET", "/api/context/rivers.geojson", None, 404, "kind"),
    ("plan_pages", "GET", "/api/context/streets.geojson?bbox=1,2", None, 400, "bbox"),
    ("jobs_api", "GET", "/api/jobs?limit=0", None, 400, "limit"),
    ("grids", "GET", "/api/grids/locate?lon=x&lat=31", None, 400, "lon"),
    ("grids", "GET", "/api/grids/locate?lon=121", None, 400, "lat"),
    ("grids", "GET", "/api/grids/NO-SUCH-GRID", None, 404, None),
    ("access_pages", "GET", "/api/access/summary?category=nope", None, 400, "category"),
    ("access_pages", "GET", "/api/access/summary?mode=fly", None, 400, "mode"),
    ("access_pages", "GET", "/api/access/suggest?category=nope&k=x", None, 400, None),
    ("imports_pages", "POST", "/api/imports", [1, 2], 400, None),
    ("imports_pages", "POST", "/api/imports", {"upload_id": "nope"}, 404, "upload_id"),
    ("imports_pages", "GET", "/api/imports/jobs/nope", None, 404, None),
    ("register", "GET", "/api/register/grids/NO-SUCH/export?format=doc", None, None, None),
    ("patrol", "GET", "/api/patrol/coverage?from=yesterday", None, 400, "from"),
    ("patrol", "GET", "/api/patrol/alerts?at=2024-05-06T10:00:00", None, 400, "at"),
    ("patrol", "POST", "/api/patrol/devices", {"device_id": "d1"}, 400, "username"),
    ("incidents", "GET", "/api/incidents/geojson?bbox=west,2,3,4", None, 400, "bbox"),
    ("register", "POST", "/api/register/residents/1/unmask", {"reason": "x"}, None, None),
    ("app", "GET", "/api/no-such-route", None, 404, None),
    ("app", "DELETE", "/api/health", None, 405, None),
]


@pytest.fixture
def seeded(app: Flask) -> Flask:
    with app.app_context(), session_scope() as s:
        import_workspace(s, SimpleNamespace(layers=make_layers(60), report=None), user="test",
                         sources={"test": "factories"}, note="合成示例数据（测试）")
        for role in ("admin", "planner", "viewer"):
            create_user(s, f"u_{role}", PASSWORD, role=role)
        s.add(PlanVersion(name="草稿", author="u_planner", settings={}))
    return app


def _login(client: FlaskClient, role: str) -> FlaskClient:
    assert client.post("/login", data={"username": f"u_{role}", "password": PASSWORD}).status_code == 302
    return client


def _send(client: FlaskClient, method: str, path: str, body: object) -> object:
    if isinstance(body, str):
        return client.open(path, method=method, data=body, content_type="application/json")
    return client.open(path, method=method, json=body) if body is not None else client.open(path, method=method)


def _assert_error_shape(r, status: int | None, field: str | None) -> dict:
    assert r.status_code >= 400 and (status is None or r.status_code == status), (r.status_code, r.data[:300])
    assert r.is_json, r.data[:300]
    error = r.get_json()["error"]
    assert {"code", "message", "fix", "field"} <= set(error), error
    assert re.fullmatch(r"[a-z][a-z0-9_]*", error["code"]), error
    assert CJK.search(error["message"]) and CJK.search(error["fix"]), error
    assert error["field"] == field or field is None, error
    return error


@pytest.mark.parametrize(("blueprint", "method", "path", "body", "status", "field"), BAD_JSON_REQUESTS,
                         ids=[f"{b}:{m} {p}" for b, m, p, *_ in BAD_JSON_REQUESTS])
def test_bad_input_on_every_blueprint_has_one_shape(seeded: Flask, blueprint: str, method: str, path: str,
                                                    body: object, status: int | None, field: str | None) -> None:
    client = _login(seeded.test_client(), "admin")
    r = _send(client, method, path, body)
    _assert_error_shape(r, status, field)
    assert not CLI_WORDING.search(r.get_data(as_text=True)), r.get_data(as_text=True)


def test_page_routes_answer_json_when_asked(seeded: Flask) -> None:
    """A page route (boards) refuses a bad option with the same shape to a client that accepts JSON."""
    client = _login(seeded.test_client(), "admin")
    r = client.get("/boards/G1.pdf?size=A9", headers={"Accept": "application/json"})
    assert _assert_error_shape(r, 400, "size")["code"] == "bad_option"


def test_a_role_refusal_has_the_shape_and_names_the_role(seeded: Flask) -> None:
    r = _login(seeded.test_client(), "viewer").post("/api/plans/partition", json={})
    error = _assert_error_shape(r, 403, None)
    assert error["code"] == "forbidden" and f"当前角色：{ROLE_LABELS['viewer']}" in error["message"]


def test_html_pages_show_the_chinese_error_page(seeded: Flask) -> None:
    client = _login(seeded.test_client(), "viewer")
    for path, status, words in [("/plans/999", 404, "方案 #999 不存在"), ("/access?mode=fly", 400, "不可用"),
                                ("/no-such-page", 404, "找不到 /no-such-page")]:
        r = client.get(path, headers={"Accept": "text/html"})
        html = r.get_data(as_text=True)
        assert r.status_code == status and r.mimetype == "text/html", path
        assert words in html and "处理办法：" in html and 'class="wg-error-page"' in html, path
    html = client.get("/access?mode=fly").get_data(as_text=True)
    assert "出错的项：<code>mode</code>" in html


def test_a_json_request_to_a_page_gets_json(seeded: Flask) -> None:
    client = _login(seeded.test_client(), "viewer")
    r = client.get("/plans/999", headers={"Accept": "application/json"})
    assert _assert_error_shape(r, 404, None)["code"] == "plan_not_found"


def test_geo_read_errors_reach_the_web_in_chinese_without_cli_options(seeded: Flask) -> None:
    """A file geo cannot read: English with ``--layer``/``--crs`` on the CLI, Chinese with form fields here."""
    import io

    client = _login(seeded.test_client(), "planner")
    broken = io.BytesIO(b"SQLite format 3\x00 but not really a GeoPackage")
    r = client.post("/api/imports/uploads", data={"buildings": (broken, "楼栋.gpkg")},
                    content_type="multipart/form-data")
    error = _assert_error_shape(r, None, None)
    assert error["code"] in ("read_error", "empty_file", "unreadable_file"), error
    assert not CLI_WORDING.search(r.get_data(as_text=True))


@pytest.mark.parametrize(("form", "words"), [
    ({"username": "u_planner", "role": "worker", "password": "grid2026plan"}, "已存在"),
    ({"username": "new1", "role": "chief", "password": "grid2026plan"}, "角色 'chief' 无效"),
    ({"username": "new2", "role": "worker", "password": "short"}, "密码至少"),
])
def test_user_admin_refusals_are_chinese_without_cli_commands(seeded: Flask, form: dict, words: str) -> None:
    r = _login(seeded.test_client(), "admin").post("/admin/users", data=form)
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and words in html.replace("&#39;", "'")
    assert not CLI_WORDING.search(html) and "password must" not in html
