"""Bad and hostile input on the operations routes: a 4xx naming the problem and the fix, nothing written.

Open311 POST fields, the worker's report form with photos, register uploads, patrol intake,
device binding and visits, resident edits: oversized, wrong type, malformed JSON, NUL and
other control characters, very long strings, out-of-range or non-finite coordinates,
negative and unknown ids. Row counts are compared before and after every refused request;
accepted hostile text must be stored and shown back intact.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from api.db import session_scope
from tests.api.attack_helpers import World, attack_world, grid_point

#: Tables a refused request must leave as they were.
TABLES = ("incident_cases", "incident_events", "incident_photos", "register_residents", "register_households",
          "patrol_fixes", "patrol_devices", "patrol_visits", "register_staff")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with attack_world(tmp_path_factory.mktemp("attack_input")) as w:
        yield w


def _counts(world: World) -> dict[str, int]:
    from sqlalchemy import table

    with world.app.app_context(), session_scope() as s:
        return {t: int(s.scalar(select(func.count()).select_from(table(t)))) for t in TABLES}


def _error(r: Any) -> str:
    data = r.get_data(as_text=True)
    if r.is_json:
        body = r.get_json()
        if isinstance(body, dict) and "problems" in body:  # a refused import: every bad row
            return " ".join(f"第 {p['row']} 行 {p['column']} {p['problem']} {p['fix']}" for p in body["problems"])
        err = body["error"] if isinstance(body, dict) else body[0]
        return " ".join(str(v) for v in (err.values() if isinstance(err, dict) else [err]))
    return data


def _open311(world: World, **fields: str) -> Any:
    lon, lat = grid_point(world)
    form = {"api_key": world.api_key, "service_code": _category(world), "lat": str(lat), "long": str(lon),
            "description": "井盖缺失"} | fields
    return world.clients["anonymous"].post("/open311/v2/requests.json", data=form)


def _category(world: World) -> str:
    from api.incidents.models import IncidentCase

    with world.app.app_context(), session_scope() as s:
        return str(s.scalar(select(IncidentCase.category).where(IncidentCase.id == world.cases["worker"])))


#: Open311 POST fields that must be refused: (fields, words the message must hold).
BAD_OPEN311: list[tuple[dict[str, str], str]] = [
    ({"lat": "nan"}, "经纬度"), ({"long": "inf"}, "经纬度"), ({"lat": "91"}, "纬度 -90~90"),
    ({"long": "-181"}, "经度 -180~180"), ({"lat": "1e308"}, "超出范围"), ({"lat": "北纬30"}, "lat"),
    ({"service_code": ""}, "service_code"), ({"service_code": "<script>"}, "service_code"),
    ({"description": "坏\x00字"}, "NUL"), ({"description": "长" * 20_001}, "问题描述过长"),
]


@pytest.mark.parametrize(("fields", "words"), BAD_OPEN311)
def test_open311_post_refuses_bad_fields_and_writes_nothing(world: World, fields: dict[str, str], words: str) -> None:
    before = _counts(world)
    r = _open311(world, **fields)
    assert 400 <= r.status_code < 500, (fields, r.status_code, r.get_data()[:300])
    assert words in _error(r), (fields, _error(r))
    assert _counts(world) == before


def test_open311_keeps_hostile_text_intact_and_xml_well_formed(world: World) -> None:
    from xml.etree import ElementTree

    text = '"><img src=x onerror=alert(1)>\u202e ]]> & <![CDATA[ x ]]> =HYPERLINK("x")'
    r = _open311(world, description=text, address_string="'; DROP TABLE x; --")
    assert r.status_code == 201, r.get_data()[:300]
    rid = r.get_json()[0]["service_request_id"]
    got = world.clients["anonymous"].get(f"/open311/v2/requests/{rid}.json").get_json()[0]
    assert got["description"] == text
    xml = world.clients["anonymous"].get(f"/open311/v2/requests/{rid}.xml").get_data()
    assert ElementTree.fromstring(xml).find(".//description").text == text


def _png(size: tuple[int, int] = (8, 8)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, "#336").save(buf, format="PNG")
    return buf.getvalue()


#: Photos the worker's report form must refuse: (file name, bytes, words the page must say).
BAD_PHOTOS: list[tuple[str, bytes, str]] = [
    ("x.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "照片"),
    ("x.html", b"<script>alert(1)</script>", "照片"),
    ("x.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "照片"),
]


@pytest.mark.parametrize(("name", "data", "words"), BAD_PHOTOS)
def test_report_form_refuses_photos_that_are_not_images(world: World, name: str, data: bytes, words: str) -> None:
    lon, lat = grid_point(world)
    before = _counts(world)
    r = world.clients["worker"].post("/incidents/new", data={
        "category": _category(world), "description": "井盖", "lon": str(lon), "lat": str(lat),
        "photos": (io.BytesIO(data), name)}, content_type="multipart/form-data")
    assert 400 <= r.status_code < 500, (name, r.status_code)
    assert words in r.get_data(as_text=True)
    assert _counts(world) == before


def test_a_hostile_photo_file_name_is_stored_as_data_not_as_a_path(world: World) -> None:
    from api.incidents.models import IncidentPhoto

    lon, lat = grid_point(world)
    name = '../../"><img src=x onerror=alert(1)>.png'
    r = world.clients["worker"].post("/incidents/new", data={
        "category": _category(world), "description": "井盖", "lon": str(lon), "lat": str(lat),
        "photos": (io.BytesIO(_png()), name)}, content_type="multipart/form-data")
    assert r.status_code in (200, 201, 302, 303), r.get_data()[:300]
    with world.app.app_context(), session_scope() as s:
        photo = s.scalars(select(IncidentPhoto).order_by(IncidentPhoto.id.desc())).first()
        stored = {c: getattr(photo, c) for c in photo.__table__.columns.keys()}
    assert not [v for k, v in stored.items() if isinstance(v, str) and "../" in v and k not in ("filename", "name")]
    got = world.clients["worker"].get(f"/incidents/photos/{photo.id}")
    assert got.status_code == 200 and got.mimetype.startswith("image/")
    assert got.headers.get("X-Content-Type-Options") == "nosniff"


#: Register uploads that must be refused: (file name, bytes, status, words).
BAD_UPLOADS: list[tuple[str, bytes, int, str]] = [
    ("x.exe", b"MZ\x90\x00", 400, ".xlsx"),
    ("x.xlsx", b"PK\x03\x04 not really a workbook", 400, "Excel"),
    ("x.csv", "姓名,身份证号,楼栋编号,门牌\n张\x00三,1,nope,1\n".encode("gbk"), 422, "第 2 行"),
    ("x.csv", ("姓名,身份证号,楼栋编号,门牌\n" + "长" * 5000 + ",1,nope,1\n").encode("gb18030"), 422, "第 2 行"),
    ("x.csv", b"\xff\xfe\x00garbage\x81", 400, "UTF-8"),
    ("x.csv", "姓名,身份证号,楼栋编号,门牌,与户主关系\n张三,1,nope,1,".encode() + "长".encode() * 33 + b"\n", 422,
     "relation 超过 32 个字（33 个字）"),
]


@pytest.mark.parametrize(("name", "data", "status", "words"), BAD_UPLOADS)
def test_register_upload_refuses_bad_files_and_writes_nothing(world: World, name: str, data: bytes, status: int,
                                                              words: str) -> None:
    before = _counts(world)
    r = world.clients["planner"].post("/api/register/import", data={"kind": "residents", "file": (io.BytesIO(data), name)},
                                      content_type="multipart/form-data")
    assert r.status_code == status, (name, r.status_code, r.get_data()[:300])
    assert words in _error(r), _error(r)[:500]
    assert _counts(world) == before


def test_oversized_upload_is_413_with_a_fix(world: World) -> None:
    limit = int(world.app.config["WANGGE"]["max_upload_mb"])
    before = _counts(world)
    big = b"a," * (limit * 1024 * 1024 // 2 + 1024)
    # encoded in memory: the test client would spool it to a temporary file the 413 never reads nor closes
    boundary, body = encode_multipart({"kind": "residents", "file": FileStorage(io.BytesIO(big), "x.csv")})
    r = world.clients["planner"].post("/api/register/import", data=body,
                                      content_type=f"multipart/form-data; boundary={boundary}")
    assert r.status_code == 413 and "MB" in _error(r), r.get_data()[:300]
    assert _counts(world) == before


#: JSON bodies the write routes must refuse: (method path, body, words).
BAD_JSON: list[tuple[str, Any, str]] = [
    ("/api/patrol/visits", b"{bad json", "JSON"),
    ("/api/patrol/visits", b"[1, 2]", "JSON"),
    ("/api/patrol/visits", {"keyperson_id": -1}, "-1"),
    ("/api/patrol/visits", {"keyperson_id": "1; drop"}, "keyperson_id"),
    ("/api/patrol/visits", {"keyperson_id": 10**30}, "不存在"),
    ("/api/patrol/visits", {"keyperson_id": "{kp}", "lon": "nan", "lat": "1"}, "lon"),
    ("/api/patrol/visits", {"keyperson_id": "{kp}", "lon": 500, "lat": 1}, "lon"),
    ("/api/patrol/visits", {"keyperson_id": "{kp}", "note": {"a": [1]}}, "note"),
    ("/api/patrol/devices", {"device_id": "x" * 5000, "username": "worker"}, "device_id"),
    ("/api/patrol/devices", {"device_id": "a\x00b", "username": "worker"}, "NUL"),
    ("/api/patrol/devices", {"device_id": ["a"], "username": "worker"}, "device_id"),
    ("/api/patrol/devices", {"device_id": "new-1", "username": "worker", "label": {"x": 1}}, "label"),
    ("/api/register/residents/{res}", {"name": "张\x00三"}, "NUL"),
    ("/api/register/residents/{res}", {"name": ["张三"]}, "姓名"),
    ("/api/register/residents/{res}", {"relation": "长" * 5000}, "关系"),
]


@pytest.mark.parametrize(("path", "body", "words"), BAD_JSON)
def test_json_write_routes_refuse_bad_bodies_and_write_nothing(world: World, path: str, body: Any, words: str) -> None:
    path = path.format(res=world.residents["A"])
    if isinstance(body, dict):
        body = {k: (world.keypersons["A"] if v == "{kp}" else v) for k, v in body.items()}
    before = _counts(world)
    client = world.clients["admin"]
    r = (client.post(path, data=body, content_type="application/json") if isinstance(body, bytes)
         else client.post(path, json=body))
    assert 400 <= r.status_code < 500, (path, body if not isinstance(body, dict) else list(body), r.status_code,
                                        r.get_data()[:300])
    assert words in _error(r), (path, _error(r))
    assert _counts(world) == before


#: Tracker fixes (OsmAnd query) that must be refused with a 4xx: (query, words).
BAD_FIXES: list[tuple[dict[str, str], str]] = [
    ({"id": "unknown-device"}, "unknown-device"),
    ({"id": "a\x00b"}, "NUL"),
    ({"id": "x" * 5000}, "100 个字符"),
    ({"lat": "nan"}, "lat"), ({"lon": "inf"}, "lon"),
    ({"timestamp": "-99999999999999"}, "timestamp"), ({"timestamp": "1e400"}, "timestamp"),
    ({"timestamp": "明天"}, "timestamp"),
]


@pytest.mark.parametrize(("query", "words"), BAD_FIXES)
def test_tracker_intake_refuses_bad_fixes_and_stores_none(world: World, query: dict[str, str], words: str) -> None:
    lon, lat = grid_point(world)
    q = {"id": world.device, "lat": str(lat), "lon": str(lon), "timestamp": "1764990000"} | query
    before = _counts(world)["patrol_fixes"]
    r = world.clients["anonymous"].get("/api/patrol/osmand", query_string=q)
    assert 400 <= r.status_code < 500, (query, r.status_code, r.get_data()[:300])
    assert words in _error(r), (query, _error(r)[:300])
    assert _counts(world)["patrol_fixes"] == before
