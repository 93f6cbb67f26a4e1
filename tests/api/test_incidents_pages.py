"""Incident pages: roles, phone report with photos (type/size checks, EXIF, thumbnails), case page actions,
hostile text escaped, CSRF, inbox, queue, map GeoJSON."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import shapely
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select

from api.db import session_scope
from api.grids.service import active_grids
from api.incidents.models import IncidentCase, IncidentPhoto
from tests.api.plans_helpers import login
from tests.api.register_helpers import grid_point, published_app, serve_first_grid

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    with published_app(tmp_path_factory.mktemp("incident_pages"), 600) as app:
        yield app


@pytest.fixture(scope="module")
def clients(app: Flask) -> dict[str, FlaskClient]:
    out = {role: login(app, role) for role in ("admin", "planner", "worker", "viewer")}
    serve_first_grid(app, "worker", name="王网格", phone="13800000000")
    return out


def _jpeg(gps: tuple[float, float] | None = None, size: tuple[int, int] = (800, 600)) -> bytes:
    img = Image.new("RGB", size, (200, 120, 40))
    exif = Image.Exif()
    if gps is not None:
        lon, lat = gps

        def dms(v: float) -> tuple[float, float, float]:
            d = int(v)
            m = int((v - d) * 60)
            return (float(d), float(m), (v - d - m / 60) * 3600)

        exif[0x8825] = {1: "N", 2: dms(lat), 3: "E", 4: dms(lon)}
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


@pytest.mark.parametrize(("role", "path", "status"), [
    ("viewer", "/incidents", 200), ("viewer", "/incidents/map", 200), ("viewer", "/incidents/new", 403),
    ("viewer", "/incidents/queue", 403), ("viewer", "/incidents/inbox", 403), ("worker", "/incidents/queue", 403),
    ("worker", "/incidents/new", 200), ("worker", "/incidents/inbox", 200), ("planner", "/incidents/queue", 200),
    ("admin", "/incidents/new", 200), ("viewer", "/api/incidents/grids", 200),
])
def test_pages_by_role(clients: dict[str, FlaskClient], role: str, path: str, status: int) -> None:
    assert clients[role].get(path).status_code == status


def test_report_form_opens_at_the_point_of_the_link(clients: dict[str, FlaskClient]) -> None:
    """The patrol map's "report here" link: ?lon=&lat= fill the form's point; junk is ignored, not a 500."""
    page = clients["worker"].get("/incidents/new?lon=120.6020459&lat=31.2884198").get_data(as_text=True)
    assert 'id="wg-lon" value="120.6020459"' in page and 'id="wg-lat" value="31.2884198"' in page
    for query in ("lon=abc&lat=31", "lon=nan&lat=nan", "lon=500&lat=31", "lon=120.6"):
        r = clients["worker"].get(f"/incidents/new?{query}")
        assert r.status_code == 200 and 'id="wg-lon" value=""' in r.get_data(as_text=True), query


def test_anonymous_users_are_sent_to_login(app: Flask) -> None:
    r = app.test_client().get("/incidents")
    assert r.status_code in (302, 401)


def test_report_with_photo_exif_thumbnail_and_hostile_text(app: Flask, clients: dict[str, FlaskClient]) -> None:
    x, y = grid_point(app)
    data = {"category": "SJ-0102", "description": HOSTILE, "lon": "", "lat": "",
            "photos": [(io.BytesIO(_jpeg((x, y))), "现场.jpg")]}
    r = clients["worker"].post("/incidents/new", data=data, content_type="multipart/form-data")
    assert r.status_code == 302, r.data[:500]
    case_id = int(r.headers["Location"].rsplit("/", 1)[1])
    with app.app_context(), session_scope() as s:
        case = s.get(IncidentCase, case_id)
        photo = s.scalar(select(IncidentPhoto).where(IncidentPhoto.case_id == case_id))
        assert case.lon == pytest.approx(x, abs=1e-5) and case.grid_code is not None  # located from the EXIF GPS
        assert (photo.content_type, photo.lon is not None) == ("image/jpeg", True)
        thumb = Path(app.instance_path) / "incident_photos" / photo.thumb_path
    with Image.open(thumb) as t:
        assert max(t.size) == app.config["WANGGE"]["incident_thumbnail_px"]
    for role in ("worker", "admin"):
        page = clients[role].get(f"/incidents/{case_id}").get_data(as_text=True)
        assert "<script>alert" not in page and "&lt;script&gt;alert" in page
        assert "（网格员上报）" in page and "（worker" not in page  # the channel in Chinese, not its code
        assert "onerror=alert" not in page.replace("&lt;img src=x onerror=alert(1)&gt;", "")
    listing = clients["admin"].get("/incidents").get_data(as_text=True)
    assert "<script>alert" not in listing
    assert clients["viewer"].get(f"/incidents/photos/{photo.id}/thumb").status_code == 200
    assert clients["viewer"].get(f"/incidents/photos/{photo.id}/other").status_code == 404


@pytest.mark.parametrize(("photos", "needle"), [
    ([(b"not a picture at all", "a.jpg")], "不是可识别的图片"),
    ([(b"GIF89a" + b"\x00" * 40, "a.gif")], "不是可识别的图片"),
    ([(b"x", f"{i}.jpg") for i in range(7)], "照片最多 6 张，收到 7 张"),
])
def test_bad_photos_are_refused_and_nothing_is_written(app: Flask, clients: dict[str, FlaskClient],
                                                       photos: list[tuple[bytes, str]], needle: str) -> None:
    x, y = grid_point(app)
    with app.app_context(), session_scope() as s:
        before = len(s.scalars(select(IncidentCase.id)).all())
    data = {"category": "SJ-0102", "description": "x", "lon": str(x), "lat": str(y),
            "photos": [(io.BytesIO(b), n) for b, n in photos]}
    r = clients["worker"].post("/incidents/new", data=data, content_type="multipart/form-data")
    assert r.status_code == 400 and needle in r.get_data(as_text=True)
    with app.app_context(), session_scope() as s:
        assert len(s.scalars(select(IncidentCase.id)).all()) == before


def test_too_large_photo_is_refused(app: Flask, clients: dict[str, FlaskClient]) -> None:
    app.config["WANGGE"]["incident_photo_max_mb"] = 0.001
    try:
        x, y = grid_point(app)
        data = {"category": "SJ-0102", "description": "x", "lon": str(x), "lat": str(y),
                "photos": [(io.BytesIO(_jpeg(size=(400, 400))), "big.jpg")]}
        r = clients["worker"].post("/incidents/new", data=data, content_type="multipart/form-data")
        assert r.status_code == 400 and "超过 0.001 MB；请压缩后重试" in r.get_data(as_text=True)
    finally:
        app.config["WANGGE"]["incident_photo_max_mb"] = 10.0


def test_missing_location_and_required_photo_messages(app: Flask, clients: dict[str, FlaskClient]) -> None:
    r = clients["worker"].post("/incidents/new", data={"category": "SJ-0103", "description": "路面脏"})
    assert r.status_code == 400 and "没有位置" in r.get_data(as_text=True)
    x, y = grid_point(app)
    r = clients["worker"].post("/incidents/new", data={"category": "BJ-0101", "description": "井盖缺失",
                                                        "lon": str(x), "lat": str(y)})
    assert r.status_code == 400 and "必须填写：现场照片" in r.get_data(as_text=True)


def _act(client: FlaskClient, case_id: int, action: str, **form: str) -> str:
    r = client.post(f"/incidents/{case_id}/act", data={"action": action, **form})
    assert r.status_code == 302
    return client.get(f"/incidents/{case_id}").get_data(as_text=True)


def test_workflow_through_the_pages_with_inbox_queue_and_refusals(app: Flask, clients: dict[str, FlaskClient]) -> None:
    x, y = grid_point(app)
    r = clients["worker"].post("/incidents/new", data={"category": "SJ-0103", "description": "油污", "lon": str(x),
                                                        "lat": str(y)})
    cid = int(r.headers["Location"].rsplit("/", 1)[1])
    assert f'data-case="{cid}"' in clients["planner"].get("/incidents/queue").get_data(as_text=True)
    page = _act(clients["worker"], cid, "accept")
    assert "未能办理：网格员不能受理" in page
    _act(clients["admin"], cid, "accept")
    page = _act(clients["admin"], cid, "dispatch")
    assert "已派遣" in page and "worker" in page
    assert f'data-case="{cid}"' in clients["worker"].get("/incidents/inbox").get_data(as_text=True)
    _act(clients["worker"], cid, "start")
    page = _act(clients["worker"], cid, "feedback", reason="已清理 <b>完毕</b>")
    assert "已清理 &lt;b&gt;完毕&lt;/b&gt;" in page
    page = _act(clients["admin"], cid, "verify_pass")
    assert re.search(r'id="wg-case-state">已结案<', page)
    assert f'data-case="{cid}"' not in clients["worker"].get("/incidents/inbox").get_data(as_text=True)
    r = clients["viewer"].post(f"/incidents/{cid}/act", data={"action": "evaluate", "rating": "5"})
    assert r.status_code == 403


def test_pending_location_case_is_placed_by_hand(app: Flask, clients: dict[str, FlaskClient]) -> None:
    r = clients["worker"].post("/incidents/new", data={"category": "SJ-0103", "description": "远处", "lon": "100",
                                                        "lat": "20"})
    cid = int(r.headers["Location"].rsplit("/", 1)[1])
    assert "待定位" in clients["worker"].get(f"/incidents/{cid}").get_data(as_text=True)
    clients["admin"].post(f"/incidents/{cid}/locate", data={"lon": "100", "lat": "20"})
    assert "不在任何生效网格内" in clients["admin"].get(f"/incidents/{cid}").get_data(as_text=True)
    x, y = grid_point(app)
    clients["admin"].post(f"/incidents/{cid}/locate", data={"lon": str(x), "lat": str(y)})
    with app.app_context(), session_scope() as s:
        case = s.get(IncidentCase, cid)
        assert case.grid_code is not None and case.locate_how == "manual"


def test_geojson_bbox_and_filters(app: Flask, clients: dict[str, FlaskClient]) -> None:
    x, y = grid_point(app)
    fc = clients["viewer"].get(f"/api/incidents/geojson?bbox={x - 0.01},{y - 0.01},{x + 0.01},{y + 0.01}").get_json()
    assert fc["features"] and all(abs(f["geometry"]["coordinates"][0] - x) <= 0.01 for f in fc["features"])
    closed = clients["viewer"].get("/api/incidents/geojson?state=closed").get_json()
    assert {f["properties"]["state"] for f in closed["features"]} == {"closed"}
    assert clients["viewer"].get("/api/incidents/geojson?bbox=1,2,x,4").status_code == 400


def test_forms_need_the_csrf_token(app: Flask, clients: dict[str, FlaskClient]) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        r = clients["worker"].post("/incidents/new", data={"category": "SJ-0103", "description": "x", "lon": "1",
                                                            "lat": "1"})
        assert r.status_code == 400 and "安全令牌" in r.get_data(as_text=True)
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


def test_grid_outlines_carry_open_case_counts(app: Flask, clients: dict[str, FlaskClient]) -> None:
    fc = clients["viewer"].get("/api/incidents/grids").get_json()
    counts = {f["properties"]["key"]: f["properties"]["open"] for f in fc["features"]}
    with app.app_context(), session_scope() as s:
        rows = s.execute(select(IncidentCase.grid_code, IncidentCase.state)).all()
    expected: dict[str, int] = {}
    for grid, state in rows:
        if grid is not None and state in ("reported", "accepted", "dispatched", "handling", "feedback"):
            expected[grid] = expected.get(grid, 0) + 1
    assert {k: v for k, v in counts.items() if v} == expected and sum(expected.values()) > 0


def test_grid_outlines_of_a_view_are_the_grids_it_touches_with_the_same_counts(
        app: Flask, clients: dict[str, FlaskClient]) -> None:
    whole = {f["properties"]["key"]: f["properties"] for f in clients["viewer"].get("/api/incidents/grids").get_json()["features"]}
    with app.app_context(), session_scope() as s:
        grids = active_grids(s)
    busy = max(whole, key=lambda k: whole[k]["open"])
    x0, y0, x1, y1 = grids.loc[grids["key"] == busy].geometry.iloc[0].buffer(-1e-5).bounds
    box = f"{x0},{y0},{x1},{y1}"
    fc = clients["viewer"].get("/api/incidents/grids", query_string={"bbox": box}).get_json()
    got = {f["properties"]["key"]: f["properties"] for f in fc["features"]}
    expected = set(grids.loc[grids.intersects(shapely.box(x0, y0, x1, y1)), "key"])
    assert set(got) == expected and busy in got and len(got) < len(whole)
    assert all((got[k]["open"], got[k]["count"]) == (whole[k]["open"], whole[k]["count"]) for k in got)
    # The filters give the same counts in the view as district-wide (they are kept off other indexes there).
    for args in ({"state": "open"}, {"category": "SJ-0102", "days": "30"}, {"source": "worker", "state": "reported"}):
        district = {f["properties"]["key"]: f["properties"]["count"]
                    for f in clients["viewer"].get("/api/incidents/grids", query_string=args).get_json()["features"]}
        view = {f["properties"]["key"]: f["properties"]["count"] for f in clients["viewer"].get(
            "/api/incidents/grids", query_string={**args, "bbox": box}).get_json()["features"]}
        assert view == {k: district[k] for k in view}, args
        assert args != {"state": "open"} or view[busy] == whole[busy]["open"] > 0
    for bad in ("1,2,3", "1,2,x,4", "3,2,1,4", "nan,1,2,3"):
        r = clients["viewer"].get("/api/incidents/grids", query_string={"bbox": bad})
        assert r.status_code == 400 and r.get_json()["error"]["field"] == "bbox", bad


def test_grid_choropleth_counts_and_rates_per_thousand_households_follow_the_filters(
        app: Flask, clients: dict[str, FlaskClient]) -> None:
    fc = clients["viewer"].get("/api/incidents/grids", query_string={"category": "SJ-0102"}).get_json()
    props = {f["properties"]["key"]: f["properties"] for f in fc["features"]}
    with app.app_context(), session_scope() as s:
        rows = s.execute(select(IncidentCase.grid_code).where(IncidentCase.category == "SJ-0102")).scalars().all()
        households = dict(zip(active_grids(s)["key"], active_grids(s)["households"], strict=True))
    expected: dict[str, int] = {}
    for grid in rows:
        if grid is not None:
            expected[grid] = expected.get(grid, 0) + 1
    assert {k: p["count"] for k, p in props.items() if p["count"]} == expected and expected
    for key, n in expected.items():
        assert props[key]["rate"] == (round(1000 * n / households[key], 2) if households[key] else None)
    other = clients["viewer"].get("/api/incidents/grids", query_string={"category": "XX-NONE"}).get_json()
    assert sum(f["properties"]["count"] for f in other["features"]) == 0


def test_heatmap_script_is_the_one_bundled_with_folium_and_served_locally(clients: dict[str, FlaskClient]) -> None:
    import folium

    page = clients["viewer"].get("/incidents/map").get_data(as_text=True)
    assert '<script src="/vendor/folium/leaflet-heat.js"></script>' in page and "每千户案件数" in page
    r = clients["viewer"].get("/vendor/folium/leaflet-heat.js")
    bundled = (Path(folium.__file__).parent / "templates" / "leaflet_heat.min.js").read_bytes()
    assert r.status_code == 200 and r.data == bundled and b"heatLayer" in r.data
    assert clients["viewer"].get("/vendor/folium/pa7_hm.min.js").status_code == 404
    assert clients["viewer"].get("/vendor/folium/..%2Fapp.py").status_code == 404


def test_queue_counts_every_case_though_it_lists_the_first(app: Flask, clients: dict[str, FlaskClient],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The queue listed 200 cases a section and titled them "(200)" whatever the real number."""
    from api.incidents import queries

    x, y = grid_point(app)
    for i in range(3):
        r = clients["worker"].post("/incidents/new", data={"category": "SJ-0103", "description": f"油污{i}",
                                                            "lon": str(x), "lat": str(y)})
        assert r.status_code == 302
    with app.app_context(), session_scope() as s:
        waiting = queries.supervisor_queue_counts(s)["new"]
    assert waiting >= 3
    monkeypatch.setattr(queries, "QUEUE_SHOWN", 2)
    page = clients["planner"].get("/incidents/queue").get_data(as_text=True)
    section = page[page.index('id="queue-new"'):page.index('id="queue-pending_location"')]
    assert f"待受理（{waiting}）" in section and section.count("data-case=") == 2
    assert f"共 {waiting} 件，这里列出编号最小的 2 件" in section
