"""The residents' page: report without login, tracking code, status by code only, nothing personal shown back,
hostile input, rate limits, CSP (no inline script without the nonce)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import func, select

from api.db import session_scope
from api.incidents import cases as svc
from api.incidents.models import IncidentCase, PublicCode
from api.incidents.public import CODE_ALPHABET
from api.models import User
from tests.api.plans_helpers import login
from tests.api.register_helpers import grid_point, published_app, serve_first_grid

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>{{ 7*7 }}'
STAFF_PHONE = "13800009876"
RESIDENT_PHONE = "13912345678"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    with published_app(tmp_path_factory.mktemp("incident_public"), 600) as app:
        login(app, "admin")
        login(app, "worker")
        serve_first_grid(app, "worker", name="张网格", phone=STAFF_PHONE)
        yield app


def _report(client: FlaskClient, app: Flask, **extra: object) -> tuple[int, str]:
    x, y = grid_point(app)
    data = {"category": "SJ-0102", "description": "楼下垃圾三天没人清运", "lon": str(x), "lat": str(y), **extra}
    r = client.post("/report", data=data, content_type="multipart/form-data")
    return r.status_code, r.get_data(as_text=True)


def _code(page: str) -> str:
    found = re.search(r'id="wg-public-code">([A-Z0-9]+)<', page)
    assert found, page[:500]
    return found.group(1)


def test_form_needs_no_login_and_every_script_is_local_or_nonced(app: Flask) -> None:
    r = app.test_client().get("/report")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "我要反映问题" in page
    nonce = re.search(r"'nonce-([^']+)'", r.headers["Content-Security-Policy"]).group(1)
    for tag in re.findall(r"<script[^>]*>", page):
        assert 'src="/static/' in tag or f'nonce="{nonce}"' in tag, tag
    assert not re.search(r"https?://", page)
    grids = app.test_client().get("/report/grids.geojson")
    assert grids.status_code == 200 and '"open"' not in grids.get_data(as_text=True)


def test_report_gives_a_code_and_the_code_shows_status_only(app: Flask) -> None:
    resident = app.test_client()
    status, page = _report(resident, app, phone=RESIDENT_PHONE, address="幸福小区3号楼")
    assert status == 201
    code = _code(page)
    assert len(code) == app.config["WANGGE"]["public_code_length"] and set(code) <= set(CODE_ALPHABET)
    with app.app_context(), session_scope() as s:
        case = s.get(IncidentCase, s.scalar(select(PublicCode.case_id).where(PublicCode.code == code)))
        assert (case.source, case.reporter, case.reporter_contact, case.grid_code is not None) == (
            "public", None, RESIDENT_PHONE, True)
        admin = s.scalar(select(User).where(User.username == "admin"))
        svc.act(s, case.id, "accept", user=admin, settings=app.config["WANGGE"])
        svc.act(s, case.id, "dispatch", user=admin, settings=app.config["WANGGE"], reason="请网格员张网格尽快处理")
        case_id = case.id
    timeline = re.search(r'id="wg-timeline">(.*?)</ol>', login(app, "admin").get(f"/incidents/{case_id}")
                         .get_data(as_text=True), re.S).group(1)
    assert "居民上报" in timeline and "public" not in timeline  # the channel in Chinese, not its code
    typed = code.lower()[:4] + "-" + code.lower()[4:]
    r = app.test_client().get("/report/track", query_string={"code": typed})
    shown = r.get_data(as_text=True)
    assert r.status_code == 200 and "处理中" in shown and "派遣处理" in shown and "暴露垃圾" in shown
    for secret in (STAFF_PHONE, RESIDENT_PHONE, "worker", "张网格", "楼下垃圾", "幸福小区"):
        assert secret not in shown, secret


def test_another_residents_code_opens_only_that_report(app: Flask) -> None:
    _, first = _report(app.test_client(), app, description="第一位居民：路灯不亮")
    _, second = _report(app.test_client(), app, category="SJ-0201", description="第二位居民：小广告")
    a, b = _code(first), _code(second)
    assert a != b
    page = app.test_client().get("/report/track", query_string={"code": b}).get_data(as_text=True)
    assert "小广告" in page and "暴露垃圾" not in page


@pytest.mark.parametrize(("code", "status", "needle"), [
    ("ABCDEFGHJK", 404, "没有这个查询码"), ("short", 400, "查询码格式不对"), (HOSTILE, 400, "查询码格式不对"),
    ("' OR 1=1 --", 400, "查询码格式不对"), ("0OIL1" * 2, 400, "查询码格式不对"),
])
def test_bad_codes_get_a_message_not_an_error(app: Flask, code: str, status: int, needle: str) -> None:
    r = app.test_client().get("/report/track", query_string={"code": code})
    page = r.get_data(as_text=True)
    assert r.status_code == status and needle in page
    assert "<script>alert" not in page and "<img src=x" not in page


@pytest.mark.parametrize(("form", "needle"), [
    ({"category": "XX-1"}, "未知的事件类别"), ({"lon": "东经121"}, "位置不是数字"), ({"lon": "", "lat": ""}, "没有位置"),
    ({"lon": "500", "lat": "31"}, "超出范围"), ({"description": HOSTILE, "category": "XX-2"}, "未知的事件类别"),
])
def test_hostile_and_incomplete_reports_are_refused_and_nothing_written(app: Flask, form: dict[str, str],
                                                                        needle: str) -> None:
    with app.app_context(), session_scope() as s:
        before = s.scalar(select(func.count()).select_from(IncidentCase))
    status, page = _report(app.test_client(), app, **form)
    assert status == 400 and needle in page
    assert "<script>alert" not in page and "&lt;script&gt;" in page if "description" in form else True
    with app.app_context(), session_scope() as s:
        assert s.scalar(select(func.count()).select_from(IncidentCase)) == before


def test_photo_is_optional_and_checked(app: Flask) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 40)).save(buf, "JPEG")
    status, page = _report(app.test_client(), app, photos=(io.BytesIO(buf.getvalue()), "p.jpg"))
    assert status == 201
    with app.app_context(), session_scope() as s:
        cid = s.scalar(select(PublicCode.case_id).where(PublicCode.code == _code(page)))
        from api.incidents.models import IncidentPhoto

        assert s.scalar(select(func.count()).select_from(IncidentPhoto).where(IncidentPhoto.case_id == cid)) == 1
    status, page = _report(app.test_client(), app, photos=(io.BytesIO(b"MZ\x90\x00 not an image"), "x.jpg"))
    assert status == 400 and "照片" in page


def test_reports_are_rate_limited_per_client(app: Flask) -> None:
    app.config["WANGGE"]["public_report_max_per_day"] = 2
    try:
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = "10.9.9.9"
        codes = [_report(client, app)[0] for _ in range(3)]
        assert codes == [201, 201, 429]
        assert client.get("/report/track").status_code == 200  # lookups are limited separately
    finally:
        app.config["WANGGE"]["public_report_max_per_day"] = 20
