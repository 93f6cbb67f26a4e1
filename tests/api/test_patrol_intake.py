"""Live intake as the apps send it (OsmAnd query GET/POST, Traccar Client JSON), devices, tracks, coverage."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from flask import Flask
from sqlalchemy import delete, func, select

from api.cli import main
from api.db import session_scope
from api.models import AuditEntry, User
from api.patrol.models import PatrolFix
from api.register.models import Staff
from tests.api.plans_helpers import login
from tests.api.register_helpers import published_app

DEVICE = "862531040123456"
T0 = datetime(2024, 5, 6, 1, 0, tzinfo=UTC)  # 09:00 in Beijing


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from api.grids.service import active_grids, buildings_of_grid
    from api.workspace import load_layer

    with published_app(tmp_path_factory.mktemp("patrol"), 600) as app:
        admin, worker = login(app, "admin"), login(app, "worker")
        other = login(app, "planner")
        with app.app_context(), session_scope() as s:
            grids = active_grids(s)
            key = grids["key"].iloc[0]
            ids = buildings_of_grid(s, key)
            b = load_layer(s, "buildings")
            b = b.loc[b["building_id"].isin(ids)].to_crs(b.estimate_utm_crs())
            wid = s.scalar(select(User.id).where(User.username == "worker"))
            s.add(Staff(name="网格员甲", phone="13800000000", role="grid_worker", grid_code=key, user_id=wid))
        r = admin.post("/api/patrol/devices", json={"device_id": DEVICE, "username": "worker"})
        assert r.status_code == 201, r.data
        target = b.iloc[0]
        centre = gpd_point_lonlat(target.geometry.centroid, b.crs)
        yield {"app": app, "admin": admin, "worker": worker, "planner": other, "grid": key, "building": target,
               "lonlat": centre, "n_buildings": len(b), "anon": app.test_client()}


def gpd_point_lonlat(point: Any, crs: Any) -> tuple[float, float]:
    import geopandas as gpd

    p = gpd.GeoSeries([point], crs=crs).to_crs(4326).iloc[0]
    return float(p.x), float(p.y)


def count_fixes(app: Flask, **where: Any) -> int:
    with app.app_context(), session_scope() as s:
        stmt = select(func.count()).select_from(PatrolFix)
        for k, v in where.items():
            stmt = stmt.where(getattr(PatrolFix, k) == v)
        return int(s.scalar(stmt))


def osmand_query(lon: float, lat: float, t: datetime, **extra: Any) -> dict[str, Any]:
    return {"id": DEVICE, "lat": f"{lat:.7f}", "lon": f"{lon:.7f}", "timestamp": str(int(t.timestamp())),
            "speed": "0.5", "bearing": "90.0", "altitude": "48.0", "accuracy": "6.0", "batt": "87.0", **extra}


def test_osmand_get_with_csrf_on_is_stored_with_its_grid(world: dict[str, Any]) -> None:
    app, (lon, lat) = world["app"], world["lonlat"]
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        r = world["anon"].get("/api/patrol/osmand", query_string=osmand_query(lon, lat, T0))
        # Traccar Client (Android, classic protocol): POST with the fields in the query, empty body
        r2 = world["anon"].post("/api/patrol/osmand", query_string=osmand_query(lon, lat, T0 + timedelta(seconds=10)),
                                data=b"", content_type="application/x-www-form-urlencoded")
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert (r.status_code, r.data, r2.status_code) == (200, b"", 200)
    with app.app_context(), session_scope() as s:
        fix = s.scalar(select(PatrolFix).where(PatrolFix.t == T0))
        assert fix is not None and fix.source == "osmand" and fix.grid_code == world["grid"]
        assert (fix.accuracy, fix.battery, fix.bearing) == (6.0, 87.0, 90.0)
        assert fix.plan_version_id is not None


def traccar_body(lon: float, lat: float, t: datetime) -> dict[str, Any]:
    return {"location": {"timestamp": t.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                         "coords": {"latitude": lat, "longitude": lon, "accuracy": 4.8, "speed": 1.1,
                                    "heading": 180.0, "altitude": 50.2},
                         "is_moving": True, "odometer": 1520.4, "event": "motionchange",
                         "battery": {"level": 0.62, "is_charging": False},
                         "activity": {"type": "walking"}, "extras": {}},
            "device_id": DEVICE}


def test_traccar_client_json_single_and_batch(world: dict[str, Any]) -> None:
    app, (lon, lat) = world["app"], world["lonlat"]
    t1 = T0 + timedelta(minutes=1)
    r = world["anon"].post("/api/patrol/osmand", json=traccar_body(lon, lat, t1))
    assert r.status_code == 200, r.data
    batch = {"device_id": DEVICE, "location": [traccar_body(lon, lat, t1 + timedelta(seconds=s))["location"]
                                               for s in (10, 20, 30)]}
    assert world["anon"].post("/api/patrol/osmand", json=batch).status_code == 200
    with app.app_context(), session_scope() as s:
        fix = s.scalar(select(PatrolFix).where(PatrolFix.t == t1))
        assert fix.source == "traccar" and fix.battery == pytest.approx(62.0) and fix.accuracy == 4.8
    assert count_fixes(app, source="traccar") == 4


def test_retries_are_stored_once_and_late_fixes_take_their_place(world: dict[str, Any]) -> None:
    app, (lon, lat) = world["app"], world["lonlat"]
    base = T0 + timedelta(minutes=5)
    order = [3, 0, 2, 1, 3]  # buffered offline, sent out of order, last one retried
    for k in order:
        q = osmand_query(lon + 0.00001 * k, lat, base + timedelta(seconds=10 * k))
        assert world["anon"].get("/api/patrol/osmand", query_string=q).status_code == 200
    assert count_fixes(app, device_id=DEVICE) >= 4
    r = world["worker"].get("/api/patrol/track", query_string={"date": "2024-05-06"})
    assert r.status_code == 200
    times = [t for s in r.get_json()["sessions"] for t in s["times"]]
    assert times == sorted(times) and len(times) == len(set(times))
    mine = [t for t in times if base.isoformat()[:16] in t]
    assert len(mine) == 4


def test_unknown_device_refused_and_listed(world: dict[str, Any]) -> None:
    q = osmand_query(*world["lonlat"], T0) | {"id": "stranger-01"}
    r = world["anon"].get("/api/patrol/osmand", query_string=q)
    assert r.status_code == 403
    assert "设备 stranger-01 未绑定网格员" in r.get_json()["error"]["message"]
    assert count_fixes(world["app"], device_id="stranger-01") == 0
    listing = world["admin"].get("/api/patrol/devices").get_json()
    assert [u["device_id"] for u in listing["unknown"]] == ["stranger-01"]
    assert listing["unknown"][0]["attempts"] == 1
    assert [d["device_id"] for d in listing["devices"]] == [DEVICE]
    assert world["worker"].get("/api/patrol/devices").status_code == 403


def test_devices_page_lists_refused_devices_and_binds_them(world: dict[str, Any]) -> None:
    """The 巡查设备 page the refusal message points admins to: listed, bound from the list, then accepted."""
    t = datetime(2023, 1, 10, 1, 0, tzinfo=UTC)
    q = osmand_query(*world["lonlat"], t) | {"id": "stranger-02"}
    assert world["anon"].get("/api/patrol/osmand", query_string=q).status_code == 403
    page = world["admin"].get("/patrol/devices").get_data(as_text=True)
    unknown = page.split('id="unknown-devices"')[1].split("</table>")[0]
    assert "stranger-02" in unknown and "/api/patrol/osmand" in page
    r = world["admin"].post("/patrol/devices", data={"action": "bind", "device_id": "stranger-02", "username": "worker",
                                                     "label": "红米"})
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "已把设备 stranger-02 绑定给 worker" in page
    assert "stranger-02" not in page.split('id="unknown-devices"')[1].split("</table>")[0]
    assert "红米" in page.split('id="bound-devices"')[1]
    assert world["anon"].get("/api/patrol/osmand", query_string=q).status_code == 200
    assert count_fixes(world["app"], device_id="stranger-02") == 1
    with world["app"].app_context(), session_scope() as s:  # the other tests count every stored fix
        s.execute(delete(PatrolFix).where(PatrolFix.device_id == "stranger-02"))
    bad = world["admin"].post("/patrol/devices", data={"action": "bind", "device_id": "x-1", "username": "nobody"})
    assert bad.status_code == 400 and "没有用户 nobody" in bad.get_data(as_text=True)
    empty = world["admin"].post("/patrol/devices", data={"action": "bind", "device_id": " ", "username": "worker"})
    assert empty.status_code == 400 and "缺少设备标识 id" in empty.get_data(as_text=True)
    assert world["worker"].get("/patrol/devices").status_code == 403
    assert world["planner"].get("/patrol/devices").status_code == 403


@pytest.mark.parametrize(("query", "message"), [
    ({"lat": "39.9", "lon": "116.3", "timestamp": "1714957200"}, "缺少设备标识 id"),
    ({"id": DEVICE, "lat": "abc", "lon": "116.3", "timestamp": "1714957200"}, "参数 lat='abc' 不是数字"),
    ({"id": DEVICE, "lon": "116.3", "timestamp": "1714957200"}, "缺少参数 lat"),
    ({"id": DEVICE, "lat": "39.9", "lon": "116.3", "timestamp": "soon"}, "时间 timestamp='soon' 无法识别"),
    ({"id": DEVICE, "lat": "39.9", "lon": "116.3"}, "缺少参数 timestamp"),
])
def test_bad_requests_get_400_naming_the_field(world: dict[str, Any], query: dict[str, str], message: str) -> None:
    r = world["anon"].get("/api/patrol/osmand", query_string=query)
    assert r.status_code == 400
    assert message in r.get_json()["error"]["message"]


def test_bad_traccar_json_gets_400(world: dict[str, Any]) -> None:
    r = world["anon"].post("/api/patrol/osmand", data=b"{not json", content_type="application/json")
    assert r.status_code == 400 and "不是 JSON 对象" in r.get_json()["error"]["message"]
    r = world["anon"].post("/api/patrol/osmand", json={"device_id": DEVICE, "location": {"timestamp": "x"}})
    assert r.status_code == 400 and "location.coords" in r.get_json()["error"]["message"]


def test_tracks_are_own_only_and_audited(world: dict[str, Any]) -> None:
    app = world["app"]
    assert world["worker"].get("/api/patrol/track", query_string={"date": "2024-05-06", "user": "planner"}).status_code == 403
    r = world["planner"].get("/api/patrol/track", query_string={"date": "2024-05-06", "user": "worker"})
    assert r.status_code == 200 and r.get_json()["sessions"]
    with app.app_context(), session_scope() as s:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.action == "patrol.track_view")).all()
        assert {(a.username, a.target) for a in rows} >= {("planner", "user:worker")}
    assert world["anon"].get("/api/patrol/track?date=2024-05-06").status_code == 401


def test_coverage_counts_the_visited_building(world: dict[str, Any], tmp_path: Path) -> None:
    r = world["planner"].get("/api/patrol/coverage", query_string={"from": "2024-05-06", "to": "2024-05-06"})
    assert r.status_code == 200, r.data
    body = r.get_json()
    row = next(x for x in body["rows"] if x["grid"] == world["grid"])
    assert row["buildings_visited"] >= 1 and row["buildings_total"] == world["n_buildings"]
    assert row["street_total_m"] > 0 and 0 <= row["street_walked_m"] <= row["street_total_m"]
    assert row["street_share"] == pytest.approx(row["street_walked_m"] / row["street_total_m"])
    assert body["fixes_in"] == count_fixes(world["app"])
    # Grids nobody walked have no first/last visit: null in strict JSON, not NaN.
    json.loads(r.get_data(as_text=True), parse_constant=lambda c: pytest.fail(f"{c} in the coverage JSON"))
    idle = [x for x in body["rows"] if x["buildings_visited"] == 0]
    assert idle and all(x["first_visit"] is None and x["last_visit"] is None for x in idle)
    by_worker = world["planner"].get("/api/patrol/coverage", query_string={
        "from": "2024-05-06", "to": "2024-05-06", "by": "worker"}).get_json()["rows"]
    assert [(x["worker"], x["buildings_visited"]) for x in by_worker] == [("worker", row["buildings_visited"])]
    assert world["worker"].get("/api/patrol/coverage?from=2024-05-06&to=2024-05-06").status_code == 403
    bad = world["planner"].get("/api/patrol/coverage", query_string={"from": "2024-05-06", "to": "x"})
    assert bad.status_code == 400 and "不是日期" in bad.get_json()["error"]["message"]


def test_cli_import_and_coverage(world: dict[str, Any], tmp_path: Path) -> None:
    app, (lon, lat) = world["app"], world["lonlat"]
    csv = tmp_path / "walk.csv"
    t = pd.date_range("2024-05-07 09:00", periods=20, freq="10s")
    pd.DataFrame({"经度": lon + 0.00001 * pd.RangeIndex(20), "纬度": lat, "时间": t.strftime("%Y-%m-%d %H:%M:%S")}).to_csv(
        csv, index=False)
    runner = app.test_cli_runner()
    r = runner.invoke(main, ["patrol", "import", "--worker", "worker", str(csv)])
    assert r.exit_code == 0, r.output
    assert "stored 20 fixes, skipped 0" in r.output
    again = runner.invoke(main, ["patrol", "import", "--worker", "worker", str(csv)])
    assert "stored 0 fixes, skipped 20" in again.output
    out = tmp_path / "cov.xlsx"
    r = runner.invoke(main, ["patrol", "coverage", "--from", "2024-05-07", "--to", "2024-05-07", "--by", "day",
                            "-o", str(out)])
    assert r.exit_code == 0, r.output
    sheet = pd.read_excel(out, engine="calamine")
    row = sheet.loc[sheet["网格"].astype(str) == str(world["grid"])].iloc[0]
    assert row["已巡楼栋"] >= 1 and row["楼栋总数"] == world["n_buildings"]
    bad = runner.invoke(main, ["patrol", "import", "--worker", "nobody", str(csv)])
    assert bad.exit_code != 0 and "没有用户 nobody" in bad.output and "wangge users create" in bad.output


def test_cli_coverage_per_week_and_month_with_the_unvisited_buildings(world: dict[str, Any], tmp_path: Path) -> None:
    """Deliver 3: coverage per worker and week / grid and month, and the unvisited buildings listed."""
    runner = world["app"].test_cli_runner()
    weeks, month, whole, missed = (tmp_path / n for n in ("weeks.csv", "month.xlsx", "whole.csv", "missed.csv"))
    span = ["--from", "2024-05-01", "--to", "2024-05-31"]
    r = runner.invoke(main, ["patrol", "coverage", *span, "--by", "worker", "--period", "week", "-o", str(weeks),
                             "--unvisited", str(missed)])
    assert r.exit_code == 0, r.output
    w = pd.read_csv(weeks, dtype={"网格员": str})
    assert list(w["周期起始日"]) == ["2024-04-29", "2024-05-06", "2024-05-13", "2024-05-20", "2024-05-27"]
    assert (w["网格员"] == "worker").all() and w.loc[1, "已巡楼栋"] >= 1
    r = runner.invoke(main, ["patrol", "coverage", *span, "--by", "worker", "-o", str(whole)])
    total = pd.read_csv(whole).iloc[0]
    gone = pd.read_csv(missed, dtype=str)
    assert len(gone) == total["楼栋总数"] - total["已巡楼栋"] > 0 and (gone["网格员"] == "worker").all()
    assert set(gone["网格"]) == {str(world["grid"])} and gone["楼栋编号"].is_unique
    r = runner.invoke(main, ["patrol", "coverage", *span, "--period", "month", "-o", str(month)])
    assert r.exit_code == 0, r.output
    m = pd.read_excel(month, engine="calamine")
    row = m.loc[m["网格"].astype(str) == str(world["grid"])]
    assert len(row) == 1 and str(row["周期起始日"].iloc[0])[:10] == "2024-05-01"
    assert row["已巡楼栋"].iloc[0] == total["已巡楼栋"]
    bad = runner.invoke(main, ["patrol", "coverage", *span, "-o", str(whole), "--unvisited", str(tmp_path / "x.txt")])
    assert bad.exit_code != 0 and "use a .csv or .xlsx" in bad.output


def test_coverage_api_per_week(world: dict[str, Any]) -> None:
    q = {"from": "2024-05-01", "to": "2024-05-14", "by": "worker", "period": "week"}
    rows = world["planner"].get("/api/patrol/coverage", query_string=q).get_json()["rows"]
    assert [r["period"] for r in rows] == ["2024-04-29", "2024-05-06", "2024-05-13"]
    bad = world["planner"].get("/api/patrol/coverage", query_string={**q, "period": "year"})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "period"


def test_pages_by_role(world: dict[str, Any]) -> None:
    sup = world["planner"].get("/patrol")
    assert sup.status_code == 200 and "查看覆盖率排名" in sup.get_data(as_text=True)
    assert "<option>worker</option>" in sup.get_data(as_text=True)
    assert world["worker"].get("/patrol").status_code == 403
    my = world["worker"].get("/patrol/my")
    assert my.status_code == 200 and "待走访重点人员" in my.get_data(as_text=True)
    assert "https://" not in my.get_data(as_text=True) and "http://" not in my.get_data(as_text=True)
    day = world["worker"].get("/api/patrol/my?date=2024-05-06").get_json()
    assert [g["properties"]["key"] for g in day["grids"]] == [world["grid"]]
    assert day["summary"]["buildings_total"] == world["n_buildings"] and day["summary"]["buildings_visited"] >= 1


def test_concurrent_intake_on_loopback_loses_nothing(world: dict[str, Any]) -> None:
    """8 phones posting at once to a threaded server: every fix acknowledged is stored, once."""
    import threading
    import urllib.request
    from urllib.parse import urlencode

    from werkzeug.serving import make_server

    app, (lon, lat) = world["app"], world["lonlat"]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    day = datetime(2024, 5, 8, 2, 0, tzinfo=UTC)
    acked: list[int] = []
    failures: list[str] = []

    def phone(k: int) -> None:
        for i in range(25):
            q = osmand_query(lon, lat, day + timedelta(seconds=100 * k + 2 * i))
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/api/patrol/osmand?{urlencode(q)}",
                                            timeout=30) as r:
                    acked.append(r.status)
            except Exception as exc:  # noqa: BLE001 - every failure is reported below
                failures.append(repr(exc))

    try:
        phones = [threading.Thread(target=phone, args=(k,)) for k in range(8)]
        for p in phones:
            p.start()
        for p in phones:
            p.join()
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert failures == [] and acked == [200] * 200
    with app.app_context(), session_scope() as s:
        n = s.scalar(select(func.count()).select_from(PatrolFix).where(PatrolFix.t >= day,
                                                                        PatrolFix.t < day + timedelta(hours=1)))
    assert n == 200


def test_geofence_alerts_for_supervisors(world: dict[str, Any]) -> None:
    lon, lat = world["lonlat"]
    day = datetime(2024, 5, 9, 1, 0, tzinfo=UTC)  # 09:00 Beijing; walks 5 minutes inside the grid
    for i in range(10):
        q = osmand_query(lon + 0.00002 * i, lat, day + timedelta(seconds=30 * i))
        assert world["anon"].get("/api/patrol/osmand", query_string=q).status_code == 200
    r = world["planner"].get("/api/patrol/alerts", query_string={"at": "2024-05-09T10:00:00+08:00"})
    assert r.status_code == 200, r.data
    rows = [a for a in r.get_json()["alerts"] if a["worker"] == "worker"]
    assert [a["kind"] for a in rows] == ["silent"]  # inside the grid and moving: only the silence
    assert rows[0]["end"].startswith("2024-05-09T02:00") and rows[0]["start"].startswith("2024-05-09T01:04:30")
    assert rows[0]["minutes"] == 55.5 and abs(rows[0]["lon"] - (lon + 0.00018)) < 1e-6
    early = world["planner"].get("/api/patrol/alerts", query_string={"at": "2024-05-09T09:10:00+08:00"}).get_json()
    assert [a for a in early["alerts"] if a["worker"] == "worker" and a["kind"] == "silent"] == []
    assert world["worker"].get("/api/patrol/alerts").status_code == 403
    bad = world["planner"].get("/api/patrol/alerts", query_string={"at": "2024-05-06T10:00:00"})
    assert bad.status_code == 400 and "需要带时区" in bad.get_json()["error"]["message"]


def test_cli_purge_keeps_recent_fixes(world: dict[str, Any]) -> None:
    app = world["app"]
    runner = app.test_cli_runner()
    before = count_fixes(app)
    recent = datetime.now(UTC) - timedelta(days=1)
    with app.app_context(), session_scope() as s:
        wid = s.scalar(select(User.id).where(User.username == "worker"))
        s.add(PatrolFix(user_id=wid, source="file", t=recent, lon=116.3, lat=39.9))
    r = runner.invoke(main, ["patrol", "purge", "--days", "30"])
    assert r.exit_code == 0, r.output
    assert f"deleted {before} fixes older than 30 days" in r.output
    assert count_fixes(app) == 1


def test_osmand_app_template_with_hdop_and_milliseconds(world: dict[str, Any]) -> None:
    """OsmAnd's online-tracking URL: ?id=&lat={0}&lon={1}&timestamp={2}&hdop={3}&altitude={4}&speed={5} (ms)."""
    lon, lat = world["lonlat"]
    t = datetime(2024, 5, 10, 1, 0, 0, 250_000, tzinfo=UTC)
    q = {"id": DEVICE, "lat": lat, "lon": lon, "timestamp": int(t.timestamp() * 1000), "hdop": 12.0,
         "altitude": 44.0, "speed": 0.8}
    assert world["anon"].get("/api/patrol/osmand", query_string=q).status_code == 200
    with world["app"].app_context(), session_scope() as s:
        fix = s.scalar(select(PatrolFix).where(PatrolFix.t == t))
        assert fix is not None and fix.accuracy == 12.0 and fix.altitude == 44.0


def test_cli_demo_tracks(world: dict[str, Any], tmp_path: Path) -> None:
    runner = world["app"].test_cli_runner()
    r = runner.invoke(main, ["patrol", "demo", "--days", "2", "--until", "2024-04-02"])
    assert r.exit_code == 0, r.output
    n = int(r.output.split("worker: ")[1].split(" ")[0])
    assert n > 0 and count_fixes(world["app"], device_id="demo") == n
    out = tmp_path / "demo.csv"
    r = runner.invoke(main, ["patrol", "coverage", "--from", "2024-04-01", "--to", "2024-04-02", "--by", "day",
                             "-o", str(out)])
    assert r.exit_code == 0, r.output
    sheet = pd.read_csv(out, encoding="utf-8-sig")
    mine = sheet.loc[sheet["网格"].astype(str) == str(world["grid"])]
    assert len(mine) == 2 and (mine["楼栋覆盖率"] >= 0.5).all()


def test_demo_tracks_stop_at_now(world: dict[str, Any]) -> None:
    """The demo's last day is walked only up to now: no fix in the future (the cleaning would drop it)."""
    from api.patrol.demo import demo_tracks

    app, day = world["app"], date(2024, 3, 12)
    tz = ZoneInfo(app.config["WANGGE"]["patrol_timezone"])
    that_day = (PatrolFix.device_id == "demo") & (PatrolFix.t >= datetime(2024, 3, 11, 16, tzinfo=UTC)) & (
        PatrolFix.t < datetime(2024, 3, 12, 16, tzinfo=UTC))  # the local (UTC+8) day
    with app.app_context(), session_scope() as s:
        whole = demo_tracks(s, settings=app.config["WANGGE"], days=1, until=day, seed=7)["worker"]
    with app.app_context(), session_scope() as s:
        lo, hi = s.execute(select(func.min(PatrolFix.t), func.max(PatrolFix.t)).where(that_day)).one()
        s.execute(delete(PatrolFix).where(that_day))
    now = lo + (hi - lo) / 2
    with app.app_context(), session_scope() as s:
        part = demo_tracks(s, settings=app.config["WANGGE"], days=1, until=day, seed=7, now=now)["worker"]
    with app.app_context(), session_scope() as s:
        last = s.scalar(select(func.max(PatrolFix.t)).where(that_day))
        again = demo_tracks(s, settings=app.config["WANGGE"], days=3, until=day, seed=8)["worker"]
        days = {t.astimezone(tz).date() for t in s.scalars(select(PatrolFix.t).where(
            PatrolFix.device_id == "demo", PatrolFix.t >= datetime(2024, 3, 9, tzinfo=UTC),
            PatrolFix.t < datetime(2024, 3, 13, tzinfo=UTC)))}
    assert 0 < part < whole and lo <= last <= now
    # a later run adds the two missing days only: the walked day keeps its one walk
    assert again > 0 and count_fixes(app, device_id="demo") - again >= part
    with app.app_context(), session_scope() as s:
        assert s.scalar(select(func.count()).select_from(PatrolFix).where(that_day)) == part
    assert days == {date(2024, 3, 10), date(2024, 3, 11), date(2024, 3, 12)}


def test_last_positions_for_supervisors_only(world: dict[str, Any]) -> None:
    app = world["app"]
    now = datetime.now(UTC).replace(microsecond=0)
    lon, lat = world["lonlat"]
    for k, dt in enumerate((timedelta(minutes=20), timedelta(minutes=5), timedelta(minutes=12))):
        q = osmand_query(lon + 0.0001 * k, lat, now - dt)
        assert world["anon"].get("/api/patrol/osmand", query_string=q).status_code == 200
    r = world["planner"].get("/api/patrol/positions?hours=1")
    assert r.status_code == 200, r.data
    rows = r.get_json()["workers"]
    assert [(x["username"], x["t"]) for x in rows] == [("worker", (now - timedelta(minutes=5)).isoformat())]
    assert rows[0]["lon"] == pytest.approx(lon + 0.0001) and rows[0]["grid"] == world["grid"]
    assert world["worker"].get("/api/patrol/positions").status_code == 403
    for value in ("0", "²", "1e3", "745"):  # '²'.isdigit() is True, int('²') fails
        bad = world["planner"].get("/api/patrol/positions", query_string={"hours": value})
        assert bad.status_code == 400 and f"hours={value!r}" in bad.get_json()["error"]["message"]
    with app.app_context(), session_scope() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "patrol.positions_view")) >= 1


def test_demo_gives_register_grid_workers_accounts_until_enough_serve(world: dict[str, Any]) -> None:
    """Several demo workers (one per grid) so the supervisor's ranking ranks something; last: it adds a worker."""
    from api.grids.service import active_grids
    from api.patrol.demo import ensure_demo_workers
    from api.users import DEMO_PASSWORD, verify_password

    app = world["app"]
    with app.app_context(), session_scope() as s:
        other = [g for g in active_grids(s)["key"] if g != world["grid"]][:2]
        s.add_all([Staff(name=f"网格员{k}", phone=f"1390000000{k}", role="grid_worker", grid_code=g)
                   for k, g in enumerate([other[0], other[0], other[1]])])
        s.add(Staff(name="网格长乙", phone="13900000009", role="grid_leader", grid_code=other[1]))
    with app.app_context(), session_scope() as s:
        made = ensure_demo_workers(s, 2)
    with app.app_context(), session_scope() as s:
        assert made == ["worker2"] and ensure_demo_workers(s, 2) == []
        user = s.scalars(select(User).where(User.username == "worker2")).one()
        linked = s.scalars(select(Staff).where(Staff.user_id == user.id)).all()
        assert verify_password(user, DEMO_PASSWORD) and user.role == "worker"
        assert [(x.grid_code, x.role) for x in linked] == [(other[0], "grid_worker")]
    r = app.test_cli_runner().invoke(main, ["patrol", "demo", "--days", "1", "--until", "2024-02-01", "--workers", "3"])
    assert r.exit_code == 0, r.output
    assert "worker3" in r.output and "worker2: " in r.output and "worker: " in r.output
