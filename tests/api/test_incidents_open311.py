"""Open311 GeoReport v2 conformance in JSON and XML: every endpoint and error code.

Reads are also checked with a third-party client from PyPI (``georeport``) against a live
loopback server; POST with our own client (form-encoded, as the spec has it).
"""

from __future__ import annotations

import sqlite3
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.serving import make_server

from api.db import session_scope
from api.grids.service import active_grids
from api.incidents import cases as svc
from api.incidents.intake import Intake, report_case
from api.incidents.keys import create_key, revoke_key
from api.incidents.models import IncidentCase, IncidentCategory
from api.incidents.tables import load_categories
from api.models import User
from api.register.models import Staff
from api.users import create_user
from tests.api.register_helpers import published_app

FORMATS = ["json", "xml"]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    with published_app(tmp_path_factory.mktemp("open311"), 600) as app:
        yield app


@pytest.fixture(scope="module")
def world(app: Flask) -> dict[str, Any]:
    """An API key, a dispatched case, a closed case and a rejected one."""
    settings = app.config["WANGGE"]
    with app.app_context(), session_scope() as s:
        grids = active_grids(s)
        p = grids.geometry.iloc[0].representative_point()
        create_user(s, "center", "Wangge-test-2026!", role="admin")
        li = create_user(s, "li", "Wangge-test-2026!", role="worker")
        s.add(Staff(name="李网格", phone="13900000000", role="grid_worker", grid_code=grids["key"].iloc[0], user_id=li.id))
        key = create_key(s, "app-test")
        revoked = create_key(s, "revoked")
        revoke_key(s, "revoked")
        ids = [report_case(s, Intake(code, text, p.x, p.y, photos=1), settings=settings)[0].id
               for code, text in (("SJ-0102", "垃圾"), ("SJ-0103", "油污"), ("SJ-0201", "广告"))]
    with app.app_context(), session_scope() as s:
        center, li = (s.scalar(select(User).where(User.username == n)) for n in ("center", "li"))
        for cid in ids[:2]:
            svc.act(s, cid, "accept", user=center, settings=settings)
            svc.act(s, cid, "dispatch", user=center, settings=settings)
        svc.act(s, ids[1], "start", user=li, settings=settings)
        svc.act(s, ids[1], "feedback", user=li, settings=settings, reason="已冲洗干净")
        svc.act(s, ids[1], "verify_pass", user=center, settings=settings)
        svc.act(s, ids[2], "reject", user=center, settings=settings, reason="不属于城市管理范围")
        token = s.get(IncidentCase, ids[0]).token
    return {"key": key, "revoked": revoked, "open": ids[0], "closed": ids[1], "rejected": ids[2], "token": token, "point": (p.x, p.y)}


def _parse(r: Any, fmt: str) -> Any:
    """Body as Python: JSON as is; XML as a list (repeated children) or dict of text."""
    if fmt == "json":
        assert r.mimetype == "application/json"
        return r.get_json()
    assert r.mimetype == "text/xml"
    root = ET.fromstring(r.data)

    def conv(e: ET.Element) -> Any:
        kids = list(e)
        if not kids:
            return e.text
        tags = [k.tag for k in kids]
        if len(set(tags)) == 1 and e.tag in ("services", "service_requests", "errors", "endpoints", "formats",
                                              "attributes"):
            return [conv(k) for k in kids]
        return {k.tag: conv(k) for k in kids}

    out = conv(root)
    return [] if out is None else out


def _get(client: FlaskClient, path: str, fmt: str, **params: Any) -> tuple[int, Any]:
    r = client.get(f"/open311/v2/{path}.{fmt}", query_string=params)
    return r.status_code, _parse(r, fmt)


def _post(client: FlaskClient, fmt: str, **form: Any) -> tuple[int, Any]:
    r = client.post(f"/open311/v2/requests.{fmt}", data=form)
    return r.status_code, _parse(r, fmt)


def _error(body: Any, code: int, needle: str) -> None:
    assert isinstance(body, list) and len(body) == 1
    assert str(body[0]["code"]) == str(code) and needle in body[0]["description"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_discovery_and_services(app: Flask, fmt: str) -> None:
    c = app.test_client()
    status, body = _get(c, "discovery", fmt)
    assert status == 200 and body["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert body["endpoints"][0]["url"].endswith("/open311/v2/")
    assert set(body["endpoints"][0]["formats"]) == {"text/xml", "application/json"}
    status, services = _get(c, "services", fmt)
    assert status == 200 and len(services) >= 40
    row = next(s for s in services if s["service_code"] == "BJ-0101")
    assert row["service_name"] == "井盖" and str(row["metadata"]).lower() == "false" and row["type"] == "realtime"
    status, definition = _get(c, "services/SJ-0102", fmt)
    assert status == 200 and definition["service_code"] == "SJ-0102"
    status, body = _get(c, "services/XX-0000", fmt)
    assert status == 404
    _error(body, 404, "service_code XX-0000 not found")


@pytest.mark.parametrize("fmt", FORMATS)
def test_get_requests_maps_states_and_times(app: Flask, world: dict[str, Any], fmt: str) -> None:
    c = app.test_client()
    status, body = _get(c, "requests", fmt)
    assert status == 200
    by_id = {r["service_request_id"]: r for r in body}
    opened, closed, rejected = (by_id[str(world[k])] for k in ("open", "closed", "rejected"))
    assert (opened["status"], closed["status"], rejected["status"]) == ("open", "closed", "closed")
    assert rejected["status_notes"] == "不属于城市管理范围" and closed["status_notes"] == "已冲洗干净"
    assert opened["status_notes"] == "已派遣" and opened["agency_responsible"] == "环卫所"
    for field in ("requested_datetime", "updated_datetime", "expected_datetime"):
        value = datetime.fromisoformat(opened[field])
        assert value.utcoffset() is not None and opened[field].endswith("+08:00")
    assert rejected["expected_datetime"] in (None, "")
    assert float(opened["lat"]) == pytest.approx(world["point"][1])
    assert "reporter" not in opened and "13900000000" not in str(body)


@pytest.mark.parametrize("fmt", FORMATS)
def test_get_requests_filters_and_pages(app: Flask, world: dict[str, Any], fmt: str) -> None:
    c = app.test_client()
    _, body = _get(c, "requests", fmt, status="open")
    assert {r["status"] for r in body} == {"open"} and str(world["open"]) in {r["service_request_id"] for r in body}
    _, body = _get(c, "requests", fmt, service_code="SJ-0103")
    assert [r["service_request_id"] for r in body] == [str(world["closed"])]
    _, body = _get(c, "requests", fmt, service_request_id=f"{world['open']},{world['rejected']}")
    assert sorted(r["service_request_id"] for r in body) == sorted([str(world["open"]), str(world["rejected"])])
    _, page1 = _get(c, "requests", fmt, page_size=2)
    _, page2 = _get(c, "requests", fmt, page_size=2, page=2)
    ids = [r["service_request_id"] for r in page1] + [r["service_request_id"] for r in page2]
    assert len(page1) == 2 and len(ids) == len(set(ids)) >= 3
    _, none = _get(c, "requests", fmt, start_date="2000-01-01T00:00:00Z", end_date="2000-02-01T00:00:00+08:00")
    assert none == []


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("params", "needle"), [
    ({"status": "pending"}, "status must be open or closed"),
    ({"start_date": "yesterday"}, "start_date 'yesterday' is not a W3C datetime"),
    ({"end_date": "2026-01-01T00:00:00"}, "has no offset"),
    ({"start_date": "2026-02-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"}, "end_date is before start_date"),
    ({"page_size": "100000"}, "page_size must be a whole number from 1 to 500"),
    ({"page": "0"}, "page must be a whole number"),
    ({"service_request_id": "1,x"}, "service_request_id must be numbers"),
])
def test_get_requests_bad_parameters_are_400(app: Flask, fmt: str, params: dict[str, str], needle: str) -> None:
    status, body = _get(app.test_client(), "requests", fmt, **params)
    assert status == 400
    _error(body, 400, needle)


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_request_and_tokens(app: Flask, world: dict[str, Any], fmt: str) -> None:
    c = app.test_client()
    status, body = _get(c, f"requests/{world['open']}", fmt)
    assert status == 200 and isinstance(body, list) and body[0]["service_request_id"] == str(world["open"])
    status, body = _get(c, "requests/987654", fmt)
    assert status == 404
    _error(body, 404, "service_request_id 987654 not found")
    status, body = _get(c, f"tokens/{world['token']}", fmt)
    assert status == 200 and body[0] == {"service_request_id": str(world["open"]), "token": world["token"]}
    status, body = _get(c, "tokens/no-such-token", fmt)
    assert status == 404
    _error(body, 404, "token no-such-token not found")
    status, body = _get(c, "nowhere", fmt)
    assert status == 404
    _error(body, 404, "/open311/v2/nowhere.")


def test_unknown_format_is_400_in_json(app: Flask) -> None:
    r = app.test_client().get("/open311/v2/services.html")
    assert r.status_code == 400
    _error(r.get_json(), 400, "unknown format 'html'")


@pytest.mark.parametrize("fmt", FORMATS)
def test_post_creates_a_located_case_readable_afterwards(app: Flask, world: dict[str, Any], fmt: str) -> None:
    c = app.test_client()
    x, y = world["point"]
    status, body = _post(c, fmt, api_key=world["key"], service_code="SJ-0102", lat=str(y), long=str(x),
                         description="<script>alert(1)</script> 路边垃圾", email="a@example.org",
                         media_url="http://example.org/a.jpg")
    assert status == 201
    rid = body[0]["service_request_id"]
    assert "附近有" in body[0]["service_notice"]  # the fixture's open SJ-0102 case is at the same point
    with app.app_context(), session_scope() as s:
        case = s.get(IncidentCase, int(rid))
        grid = active_grids(s)["key"].iloc[0]
        assert (case.source, case.reporter, case.grid_code, case.state) == ("open311", "open311:app-test", grid,
                                                                             "reported")
    status, got = _get(c, f"requests/{rid}", fmt)
    assert got[0]["status"] == "open" and got[0]["description"].startswith("<script>")
    if fmt == "xml":
        r = c.get(f"/open311/v2/requests/{rid}.xml")
        assert b"<script>" not in r.data and b"&lt;script&gt;" in r.data


def _count(app: Flask) -> int:
    with app.app_context(), session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(IncidentCase)))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("form", "code", "needle"), [
    ({"service_code": "SJ-0102", "lat": "31", "long": "121"}, 403, "api_key missing or invalid"),
    ({"api_key": "wrong", "service_code": "SJ-0102", "lat": "31", "long": "121"}, 403, "api_key missing or invalid"),
    ({"api_key": "REVOKED", "service_code": "SJ-0102", "lat": "31", "long": "121"}, 403, "api_key missing"),
    ({"api_key": "KEY", "lat": "31", "long": "121"}, 400, "service_code is required"),
    ({"api_key": "KEY", "service_code": "XX-1234", "lat": "31", "long": "121"}, 404, "service_code XX-1234 not found"),
    ({"api_key": "KEY", "service_code": "SJ-0102", "lat": "north", "long": "121"}, 400, "lat 'north' is not a number"),
    ({"api_key": "KEY", "service_code": "SJ-0102", "description": "x"}, 400, "a location is required"),
    ({"api_key": "KEY", "service_code": "SJ-0102", "lat": "95", "long": "121", "description": "x"}, 400, "超出范围"),
    ({"api_key": "KEY", "service_code": "SJ-0102", "lat": "31", "long": "121"}, 400, "必须填写：问题描述"),
])
def test_post_errors_write_nothing(app: Flask, world: dict[str, Any], fmt: str, form: dict[str, str], code: int,
                                   needle: str) -> None:
    if form.get("api_key") in ("KEY", "REVOKED"):
        form = {**form, "api_key": world["key" if form["api_key"] == "KEY" else "revoked"]}
    before = _count(app)
    status, body = _post(app.test_client(), fmt, **form)
    assert status == code
    _error(body, code, needle)
    assert _count(app) == before


@pytest.mark.sqlite_only(reason="a second connection holds SQLite's one write lock")
def test_post_refusals_never_wait_for_the_write_lock(app: Flask, world: dict[str, Any]) -> None:
    """Key, category and form are checked in reads: a busy database delays only the INSERT of a good report."""
    other = sqlite3.connect(app.config["DATABASE_URL"].removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer (a job, another server process) holds the database
    try:
        t0 = time.perf_counter()
        refused = [_post(app.test_client(), "json", **form)[0] for form in (
            {"api_key": "wrong", "service_code": "SJ-0102", "lat": "31", "long": "121"},
            {"api_key": world["key"], "service_code": "XX-1234", "lat": "31", "long": "121"},
            {"api_key": world["key"], "service_code": "SJ-0102", "lat": "31", "long": "121"})]
        waited = time.perf_counter() - t0
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert refused == [403, 404, 400]
    assert waited < 5.0  # the write lock would have kept them db_busy_timeout_s (30 s), then 503


def test_a_category_table_changed_elsewhere_is_served_at_once(app: Flask, world: dict[str, Any]) -> None:
    """Categories are rebuilt from their rows when the rows change (e.g. loaded by another process)."""
    def names() -> dict[str, str]:
        return {x["service_code"]: x["service_name"] for x in app.test_client().get("/open311/v2/services.json").get_json()}

    old = names()["SJ-0201"]
    try:
        with app.app_context(), session_scope() as s:
            s.get(IncidentCategory, "SJ-0201").minor_name = "张贴小广告"
        assert names()["SJ-0201"] == "张贴小广告"
        with app.app_context(), session_scope(write=False) as s:
            load_categories(s).pop("SJ-0201")  # a caller's copy: the next caller still gets every category
            assert "SJ-0201" in load_categories(s)
    finally:
        with app.app_context(), session_scope() as s:
            s.get(IncidentCategory, "SJ-0201").minor_name = old
    assert names()["SJ-0201"] == old


@pytest.fixture(scope="module")
def live(app: Flask, world: dict[str, Any]) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/open311/v2"
    server.shutdown()
    thread.join()


@pytest.mark.parametrize("fmt", FORMATS)
def test_third_party_client_reads_everything(live: str, world: dict[str, Any], fmt: str) -> None:
    from georeport import GeoReport

    client = GeoReport(live, output_format=fmt)
    services = client.get_service_list()
    assert "SJ-0102" in {s["service_code"] for s in services}
    assert client.get_service_definition("SJ-0102")["service_code"] == "SJ-0102"
    requests = client.get_service_requests(status="closed")
    requests = requests if isinstance(requests, list) else [requests]
    assert {r["status"] for r in requests} == {"closed"}
    one = client.get_service_request(str(world["open"]))
    one = one[0] if isinstance(one, list) else one
    assert (one["service_request_id"], one["status"], one["service_code"]) == (str(world["open"]), "open", "SJ-0102")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("DELETE", "requests", "GET, HEAD, OPTIONS, POST"), ("PUT", "services", "GET, HEAD, OPTIONS"),
    ("POST", "services/SJ-0102", "GET, HEAD, OPTIONS"), ("PATCH", "discovery", "GET, HEAD, OPTIONS"),
])
def test_wrong_method_is_405_in_the_open311_error_shape(app: Flask, fmt: str, method: str, path: str,
                                                       allowed: str) -> None:
    r = app.test_client().open(f"/open311/v2/{path}.{fmt}", method=method)
    assert r.status_code == 405 and r.headers["Allow"] == allowed
    _error(_parse(r, fmt), 405, f"method {method} is not allowed")
