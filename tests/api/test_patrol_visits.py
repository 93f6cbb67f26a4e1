"""Key-person visits: due / overdue / done per grid, own grids only, masked, audited."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import func, select

from api.cli import main
from api.db import session_scope
from api.models import AuditEntry
from api.patrol.models import PatrolVisit
from api.register.crypto import cipher_for
from api.register.importer import import_sheet
from api.register.models import KeyPerson, Resident
from geo.register.idnumber import id_check_char
from tests.api.attack_helpers import ID_RE
from tests.api.plans_helpers import login
from tests.api.register_helpers import published_app


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from api.grids.service import active_grids, buildings_of_grid

    with published_app(tmp_path_factory.mktemp("patrol_visits"), 600) as app:
        clients = {r: login(app, r) for r in ("viewer", "worker", "planner", "admin")}
        ids = [b + id_check_char(b) for b in (f"32010219600101{i:03d}" for i in range(2))]
        with app.app_context(), session_scope() as s:
            a, b = active_grids(s)["key"].tolist()[:2]
            ba, bb = buildings_of_grid(s, a)[0], buildings_of_grid(s, b)[0]
            c, settings = cipher_for(app.instance_path, app.config["WANGGE"]), app.config["WANGGE"]
            import_sheet(s, "residents", pd.DataFrame({"姓名": ["甲一", "乙一"], "身份证号": ids,
                                                       "联系电话": ["13811112222", "13955556666"],
                                                       "楼栋编号": [ba, bb], "单元": "1", "门牌": "101"}),
                         cipher=c, settings=settings, user="test")
            import_sheet(s, "keypersons", pd.DataFrame({"姓名": ["甲一", "乙一"], "身份证号": ids,
                                                        "类别": ["独居老人", "残疾人"], "风险等级": ["4", "1"]}),
                         cipher=c, settings=settings, user="test")
            import_sheet(s, "staff", pd.DataFrame({"姓名": ["王网格"], "联系电话": ["13700000000"], "角色": ["网格员"],
                                                   "网格编码": [a], "账号": ["worker"]}), cipher=c, settings=settings,
                         user="test")
            kps = {s.get(Resident, k.resident_id).name: (k.id, k.visit_days) for k in s.scalars(select(KeyPerson))}
        yield {"app": app, "c": clients, "A": a, "B": b, "kp": kps, "home": ba}


def visits_count(app: Any) -> int:
    with app.app_context(), session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(PatrolVisit)))


def test_worker_sees_own_grid_due_list_masked_and_audited(world: dict[str, Any]) -> None:
    r = world["c"]["worker"].get("/api/patrol/visits")
    assert r.status_code == 200, r.data
    body = r.get_json()
    assert body["grids"] == [world["A"]]
    assert [(x["name"], x["status"], x["last_visit"]) for x in body["rows"]] == [("甲一", "overdue", None)]
    assert not ID_RE.search(r.get_data()) and "13811112222" not in r.get_data(as_text=True)
    with world["app"].app_context(), session_scope() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "patrol.visits_view", AuditEntry.username == "worker")) >= 1


def test_access_follows_the_register(world: dict[str, Any]) -> None:
    assert world["c"]["worker"].get(f"/api/patrol/visits?grid={world['B']}").status_code == 403
    assert world["c"]["viewer"].get(f"/api/patrol/visits?grid={world['A']}").status_code == 403
    assert world["c"]["planner"].get(f"/api/patrol/visits?grid={world['B']}").status_code == 200
    assert world["c"]["planner"].get("/api/patrol/visits").status_code == 400
    assert world["c"]["planner"].get("/api/patrol/visits?grid=nope").status_code == 404
    before = visits_count(world["app"])
    kp_b = world["kp"]["乙一"][0]
    r = world["c"]["worker"].post("/api/patrol/visits", json={"keyperson_id": kp_b, "note": "上门"})
    assert r.status_code == 403 and "不是您负责的网格" in r.get_json()["error"]["message"]
    assert visits_count(world["app"]) == before


def test_route_of_own_grid_passes_the_due_building_and_is_audited(world: dict[str, Any], tmp_path: Any) -> None:
    from api.grids.service import buildings_of_grid

    w = world["c"]["worker"]
    with world["app"].app_context(), session_scope() as s:
        own = set(buildings_of_grid(s, world["A"]))
    due = w.get("/api/patrol/route?due_only=1")
    assert due.status_code == 200, due.data
    body = due.get_json()
    assert [(x["order"], x["reason"]) for x in body["stops"]] == [(1, "due")]  # 甲一's building, overdue
    assert body["stops"][0]["building_id"] in own
    full = w.get("/api/patrol/route").get_json()
    ids = [x["building_id"] for x in full["stops"]]
    assert set(ids) | set(full["unreachable"]) == own and len(set(ids)) == len(ids)
    assert full["path"]["type"] == "LineString" and full["length_m"] > 0
    assert full["lower_bound_m"] <= full["length_m"] and full["minutes"] == pytest.approx(full["length_m"] / 60, abs=0.1)
    assert full["stops"][-1]["cumulative_m"] <= full["length_m"]
    x = full["stops"][0]
    started = w.get(f"/api/patrol/route?lon={x['lon']}&lat={x['lat']}").get_json()
    assert started["stops"][0]["building_id"] == x["building_id"]
    assert w.get(f"/api/patrol/route?grid={world['B']}").status_code == 403
    r = w.get("/api/patrol/route?lon=121.4")
    assert r.status_code == 400 and "同时提供 lon 和 lat" in r.get_json()["error"]["message"]
    assert world["c"]["planner"].get("/api/patrol/route?grid=nope").status_code == 404
    with world["app"].app_context(), session_scope() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "patrol.route_view", AuditEntry.username == "worker")) >= 3
    out = tmp_path / "route.geojson"
    runner = world["app"].test_cli_runner()
    res = runner.invoke(main, ["patrol", "route", "--grid", world["A"], "--due-only", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "1 个点" in res.output and "待走访" in res.output
    assert '"reason": "due"' in out.read_text("utf-8")
    res = runner.invoke(main, ["patrol", "route", "--grid", "nope"])
    assert res.exit_code == 1 and "没有生效的网格 nope" in res.output


def test_a_stop_near_a_due_household_proposes_a_visit_the_worker_confirms(world: dict[str, Any]) -> None:
    import geopandas as gpd
    from shapely.geometry import Point

    from api.workspace import load_layer

    app, w = world["app"], world["c"]["worker"]
    r = world["c"]["admin"].post("/api/patrol/devices", json={"device_id": "dwell-phone", "username": "worker"})
    assert r.status_code == 201, r.data
    with app.app_context(), session_scope() as s:
        b, streets = load_layer(s, "buildings"), load_layer(s, "streets")
    home = b.loc[b["building_id"] == world["home"]]
    metric = home.estimate_utm_crs()
    door = home.to_crs(metric).geometry.iloc[0].exterior.interpolate(0)
    lines = streets.to_crs(metric).geometry
    street = lines.iloc[int(lines.distance(door).argmin())]
    at = street.project(door)
    # Walk 90 m along the nearest street, stay 6 minutes at the door (a fix every 10 s, 1 m jitter), walk away.
    path = [street.interpolate(at - 90 + 10 * k) for k in range(10)]
    path += [Point(door.x + (k % 2), door.y + (k % 3)) for k in range(37)]
    path += [Point(door.x + 10 * k, door.y + 50) for k in range(1, 10)]
    lonlat = gpd.GeoSeries(path, crs=metric).to_crs(4326)
    t0 = pd.Timestamp("2024-05-06 10:00", tz="Asia/Shanghai")
    for k, p in enumerate(lonlat):
        q = {"id": "dwell-phone", "lat": f"{p.y:.7f}", "lon": f"{p.x:.7f}", "accuracy": "5",
             "timestamp": str(int((t0 + pd.Timedelta(seconds=10 * k)).timestamp()))}
        assert world["c"]["viewer"].get("/api/patrol/osmand", query_string=q).status_code == 200
    day = w.get("/api/patrol/my?date=2024-05-06").get_json()
    kp_a = world["kp"]["甲一"][0]
    assert [(x["keyperson_id"], x["building_id"]) for x in day["proposed_visits"]] == [(kp_a, world["home"])]
    stay = day["proposed_visits"][0]
    # the stay, plus the approach fixes within patrol_dwell_radius_m of it
    assert 6.0 <= stay["minutes"] <= 6.5 and stay["start"].startswith("2024-05-06T02:01")
    summary = day["summary"]
    assert 0 < summary["street_walked_m"] < summary["street_total_m"]
    # A stop shorter than patrol_dwell_min_s proposes nothing.
    app.config["WANGGE"]["patrol_dwell_min_s"] = 400
    try:
        assert w.get("/api/patrol/my?date=2024-05-06").get_json()["proposed_visits"] == []
    finally:
        app.config["WANGGE"]["patrol_dwell_min_s"] = 300
    r = w.post("/api/patrol/visits", json={"keyperson_id": kp_a, "lon": stay["lon"], "lat": stay["lat"],
                                           "note": "停留确认"})
    assert r.status_code == 201, r.data
    assert w.get("/api/patrol/my?date=2024-05-06").get_json()["proposed_visits"] == []


def test_recorded_visit_makes_the_person_done(world: dict[str, Any]) -> None:
    kp_a, days = world["kp"]["甲一"]
    w = world["c"]["worker"]
    r = w.post("/api/patrol/visits", json={"keyperson_id": kp_a, "note": "身体良好", "lon": 121.49, "lat": 31.25})
    assert r.status_code == 201, r.data
    assert r.get_json()["grid"] == world["A"]
    row = w.get("/api/patrol/visits").get_json()["rows"][0]
    assert row["last_visit"] is not None
    assert row["status"] == ("done" if days > 3 else "due")


def _jpeg(colour: str = "red") -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "JPEG")
    return out.getvalue()


def test_visit_with_photo_note_and_check_in_then_the_photo_per_role(world: dict[str, Any]) -> None:
    """Deliver 4: a visit carries a note, a photo and a check-in location; the photo is shown per role, audited."""
    import io

    kp_a, kp_b = world["kp"]["甲一"][0], world["kp"]["乙一"][0]
    w, planner = world["c"]["worker"], world["c"]["planner"]
    photo = _jpeg()
    r = w.post("/api/patrol/visits", content_type="multipart/form-data", data={
        "keyperson_id": str(kp_a), "note": "门口交谈", "lon": "121.49", "lat": "31.25",
        "photo": (io.BytesIO(photo), "visit.jpg")})
    assert r.status_code == 201, r.data
    url = r.get_json()["photo_url"]
    with world["app"].app_context(), session_scope() as s:
        v = s.get(PatrolVisit, r.get_json()["id"])
        assert (v.note, v.lon, v.lat, v.photo_type) == ("门口交谈", 121.49, 31.25, "image/jpeg")
    got = w.get(url)
    assert got.status_code == 200 and got.data == photo and got.mimetype == "image/jpeg"
    assert planner.get(url).data == photo
    assert world["c"]["viewer"].get(url).status_code == 403
    # a visit in grid B (recorded by the planner): the worker of grid A may not see its photo
    other = planner.post("/api/patrol/visits", content_type="multipart/form-data", data={
        "keyperson_id": str(kp_b), "photo": (io.BytesIO(_jpeg("blue")), "b.jpg")}).get_json()["photo_url"]
    refused = w.get(other)
    assert refused.status_code == 403 and "不是您负责的网格" in refused.get_json()["error"]["message"]
    assert w.get("/api/patrol/visits/999999/photo").status_code == 404
    with world["app"].app_context(), session_scope() as s:
        seen = s.scalars(select(AuditEntry.username).where(AuditEntry.action == "patrol.visit_photo_view")).all()
    assert sorted(seen) == ["planner", "worker"]  # each photo shown is audited


@pytest.mark.parametrize(("files", "message"), [
    ([(b"not a picture", "a.jpg")], "不是可识别的图片"),
    ([(b"x", "1.jpg"), (b"y", "2.jpg")], "最多 1 张照片"),
])
def test_bad_visit_photos_are_refused_and_nothing_is_written(world: dict[str, Any], files: list[Any],
                                                             message: str) -> None:
    import io

    before = visits_count(world["app"])
    data: dict[str, Any] = {"keyperson_id": str(world["kp"]["甲一"][0]),
                            "photo": [(io.BytesIO(b), n) for b, n in files]}
    r = world["c"]["worker"].post("/api/patrol/visits", content_type="multipart/form-data", data=data)
    assert r.status_code == 400 and message in r.get_json()["error"]["message"]
    assert r.get_json()["error"]["field"] == "photo" and visits_count(world["app"]) == before


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"note": "x"}, 400, "需要 keyperson_id"),
    ({"keyperson_id": 999999}, 404, "重点人员 999999 不存在"),
    ({"keyperson_id": "KP", "lon": 1}, 400, "需要 keyperson_id"),
    ({"keyperson_id": 0, "lon": "east"}, 400, "lon='east' 不是数字"),
])
def test_bad_visit_requests(world: dict[str, Any], body: dict[str, Any], status: int, message: str) -> None:
    r = world["c"]["worker"].post("/api/patrol/visits", json=body)
    assert r.status_code == status and message in r.get_json()["error"]["message"]


def test_check_in_needs_both_coordinates(world: dict[str, Any]) -> None:
    kp_a = world["kp"]["甲一"][0]
    r = world["c"]["worker"].post("/api/patrol/visits", json={"keyperson_id": kp_a, "lon": 121.49})
    assert r.status_code == 400 and "同时提供经度 lon 和纬度 lat" in r.get_json()["error"]["message"]


def test_visit_history_newest_first_masked_with_distance_photo_and_access(world: dict[str, Any]) -> None:
    """Deliver 4: 走访记录 of a grid, newest first: worker, masked key person, note, check-in distance, photo."""
    import io

    import geopandas as gpd
    from shapely.geometry import Point

    from api.workspace import load_layer

    app, w, planner = world["app"], world["c"]["worker"], world["c"]["planner"]
    kp_a, kp_b = world["kp"]["甲一"][0], world["kp"]["乙一"][0]
    with app.app_context(), session_scope() as s:
        b = load_layer(s, "buildings")
    home = b.loc[b["building_id"] == world["home"]]
    metric = home.estimate_utm_crs()
    foot = home.to_crs(metric).geometry.iloc[0]
    spot = Point(foot.bounds[2] + 30, foot.centroid.y)  # 30 m east of the footprint's easternmost point, or more
    expected = foot.distance(spot)
    ll = gpd.GeoSeries([spot], crs=metric).to_crs(4326).iloc[0]
    first = w.post("/api/patrol/visits", content_type="multipart/form-data", data={
        "keyperson_id": str(kp_a), "note": "门口交谈", "lon": f"{ll.x:.8f}", "lat": f"{ll.y:.8f}",
        "photo": (io.BytesIO(_jpeg("green")), "h.jpg")}).get_json()
    hostile = "<img src=x onerror=alert(1)>"
    second = w.post("/api/patrol/visits", json={"keyperson_id": kp_a, "note": hostile}).get_json()
    assert planner.post("/api/patrol/visits", json={"keyperson_id": kp_b, "note": "B 网格"}).status_code == 201

    r = w.get("/api/patrol/visits/history")
    assert r.status_code == 200, r.data
    body = r.get_json()
    assert body["grids"] == [world["A"]]
    rows = body["rows"]
    assert [x["id"] for x in rows[:2]] == [second["id"], first["id"]]  # newest first
    assert [x["at"] for x in rows] == sorted((x["at"] for x in rows), reverse=True)
    assert {x["grid"] for x in rows} == {world["A"]} and "B 网格" not in r.get_data(as_text=True)
    new, old = rows[0], rows[1]
    assert (new["note"], new["worker"], new["name"], new["category"]) == (hostile, "worker", "甲一", "独居老人")
    assert new["distance_m"] is None and new["photo_url"] is None and new["lon"] is None
    assert expected >= 30 and old["distance_m"] == pytest.approx(expected, abs=0.5)
    assert old["photo_url"] == first["photo_url"] and w.get(old["photo_url"]).status_code == 200
    assert len(new["at_local"]) == 16 and new["at_local"][:4].isdigit()
    assert not ID_RE.search(r.get_data()) and "13811112222" not in r.get_data(as_text=True)
    assert new["id_masked"] and "*" in new["id_masked"]

    # access as the visit lists: own grids for workers, every grid for supervisors, nothing for viewers
    refused = w.get(f"/api/patrol/visits/history?grid={world['B']}")
    assert refused.status_code == 403 and "不是您负责的网格" in refused.get_json()["error"]["message"]
    assert world["c"]["viewer"].get(f"/api/patrol/visits/history?grid={world['A']}").status_code == 403
    other = planner.get(f"/api/patrol/visits/history?grid={world['B']}").get_json()["rows"]
    assert other[0]["note"] == "B 网格" and other[0]["name"] == "乙一" and other[0]["worker"] == "planner"
    assert planner.get("/api/patrol/visits/history").status_code == 400
    missing = planner.get("/api/patrol/visits/history?grid=nope")
    assert missing.status_code == 404 and "nope" in missing.get_json()["error"]["message"]
    app.config["WANGGE"]["patrol_visit_history_limit"] = 1
    try:
        assert [x["id"] for x in w.get("/api/patrol/visits/history").get_json()["rows"]] == [second["id"]]
    finally:
        app.config["WANGGE"]["patrol_visit_history_limit"] = 200
    with app.app_context(), session_scope() as s:
        seen = s.scalars(select(AuditEntry.target).where(AuditEntry.action == "patrol.visit_history_view",
                                                         AuditEntry.username == "worker")).all()
    assert seen.count(f"grid:{world['A']}") >= 2  # each read; a refused one rolls back with its audit row
