"""我的巡查 on a phone (390×844): own grid, today's track, visited buildings, one-tap visit; nothing leaves the machine."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from tests.browser.conftest import PASSWORD, SCREENSHOTS, Traffic, login, serving

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DEVICE = "browser-phone-1"


def _midday_zone() -> str:
    """A fixed-offset zone where it is now about noon (``Etc/GMT-8`` is UTC+8, POSIX signs).

    The module posts "today's" fixes minutes before the pages read "today": run near midnight in
    Asia/Shanghai (16:00 UTC), the pages and the test's own reads fell on two different days.
    """
    offset = (12 - datetime.now(UTC).hour + 11) % 24 - 11  # -11 … +12 hours, local hour 12
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


def _walk_today(app, grid: str) -> int:
    """Post today's fixes through the intake, walking over the first three buildings' centroids."""
    from api.db import session_scope
    from api.grids.service import buildings_of_grid
    from api.workspace import load_layer

    with app.app_context(), session_scope() as s:
        ids = buildings_of_grid(s, grid)[:3]
        b = load_layer(s, "buildings")
    pts = b.set_index("building_id").loc[ids].geometry.representative_point()
    lon = np.interp(np.linspace(0, 2, 31), [0, 1, 2], pts.x.to_numpy())
    lat = np.interp(np.linspace(0, 2, 31), [0, 1, 2], pts.y.to_numpy())
    tz = ZoneInfo(app.config["WANGGE"]["patrol_timezone"])
    now = datetime.now(tz)
    start = max(now.replace(hour=0, minute=1, second=0, microsecond=0), now - timedelta(minutes=10))
    # First a 6-minute stay at the key household's building (a fix every 10 s), then the walk.
    stay = 37
    lon = np.concatenate([np.full(stay, pts.x.iloc[0]), lon])
    lat = np.concatenate([np.full(stay, pts.y.iloc[0]), lat])
    seconds = np.concatenate([10 * np.arange(stay), 10 * stay + 2 * np.arange(len(lon) - stay)])
    client = app.test_client()
    for k in range(len(lon)):
        t = int((start + timedelta(seconds=int(seconds[k]))).timestamp())
        r = client.get("/api/patrol/osmand", query_string={"id": DEVICE, "lat": lat[k], "lon": lon[k], "timestamp": t,
                                                            "accuracy": 5})
        assert r.status_code == 200, r.data
    return len(ids)


def _report_in(app, grid: str) -> None:
    """One open incident at the grid's fourth building: the worker map shows it."""
    from api.db import session_scope
    from api.grids.service import buildings_of_grid
    from api.incidents.intake import Intake, report_case
    from api.workspace import load_layer

    with app.app_context(), session_scope() as s:
        bid = buildings_of_grid(s, grid)[3]
        b = load_layer(s, "buildings")
        p = b.loc[b["building_id"] == bid].geometry.representative_point().iloc[0]
        case, _ = report_case(s, Intake("SJ-0201", "楼道小广告", p.x, p.y, source="public"),
                              settings=app.config["WANGGE"])
        assert case.grid_code == grid


@pytest.fixture(scope="module")
def patrol_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, Any]]:
    from api.db import session_scope
    from api.grids.service import active_grids, buildings_of_grid
    from api.patrol.store import bind_device
    from api.register.crypto import cipher_for
    from api.register.importer import import_sheet
    from api.users import create_user
    from geo.register.synthetic import synthetic_residents
    from tests.api.register_helpers import published_app
    from webmap.assets.install import install_assets

    install_assets()
    # the walk's 6-minute stay at the first building is a stationary alert at 5 minutes
    zone = _midday_zone()
    all_day = {"patrol_shift_start": "00:00", "patrol_shift_end": "24:00", "patrol_alert_stationary_min": 5,
               "patrol_timezone": zone, "display_timezone": zone, "incident_timezone": zone}
    with published_app(tmp_path_factory.mktemp("patrol_browser"), 600, settings=all_day) as app:
        with app.app_context(), session_scope() as s:
            create_user(s, "p_worker", PASSWORD, role="worker", display_name="巡查网格员")
            create_user(s, "p_super", PASSWORD, role="planner", display_name="巡查督导员")
            grid = active_grids(s)["key"].iloc[0]
            c, settings = cipher_for(app.instance_path, app.config["WANGGE"]), app.config["WANGGE"]
            people = synthetic_residents(pd.DataFrame({"building_id": buildings_of_grid(s, grid)[:2], "households": 2}),
                                         seed=5)
            import_sheet(s, "residents", people, cipher=c, settings=settings, user="test")
            import_sheet(s, "keypersons", pd.DataFrame({"姓名": people["姓名"][:1], "身份证号": people["身份证号"][:1],
                                                        "类别": "独居老人", "风险等级": "3"}),
                         cipher=c, settings=settings, user="test")
            import_sheet(s, "staff", pd.DataFrame({"姓名": ["李网格"], "联系电话": ["13700000002"], "角色": ["网格员"],
                                                   "网格编码": [grid], "账号": ["p_worker"]}),
                         cipher=c, settings=settings, user="test")
            bind_device(s, DEVICE, "p_worker", by="test")
        walked = _walk_today(app, grid)
        _report_in(app, grid)
        with serving(app) as url:
            yield url, walked, app


def _visit_notes(app) -> list[tuple[str | None, str | None]]:
    """(note, photo content type) of every visit, oldest first."""
    from sqlalchemy import select

    from api.db import session_scope
    from api.patrol.models import PatrolVisit

    with app.app_context(), session_scope() as s:
        return [tuple(r) for r in s.execute(select(PatrolVisit.note, PatrolVisit.photo_type).order_by(PatrolVisit.id))]


def _jpeg() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), "green").save(out, "JPEG")
    return out.getvalue()


def _open(browser, url: str, user: str, **options) -> tuple:
    """A fresh context logged in as *user*, recording requests and page errors."""
    traffic = Traffic()
    # the session's shared browser (tests/browser/conftest.py): a second Playwright in one process fails
    context = browser.new_context(base_url=url, locale="zh-CN", **options)
    page = context.new_page()
    page.on("request", lambda r: traffic.requests.append(r.url))
    page.on("pageerror", lambda e: traffic.page_errors.append(str(e)))
    login(page, user)
    return context, page, traffic


def test_patrol_map_on_a_phone(browser, patrol_server: tuple[str, int, Any]) -> None:
    url, walked, app = patrol_server
    context, page, traffic = _open(browser, url, "p_worker", viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page.goto("/patrol/my")
        page.wait_for_selector("#patrol-my[data-loaded='1'][data-visits-loaded='1']", timeout=20_000)
        root = page.locator("#patrol-my")
        day = page.evaluate("() => fetch('/api/patrol/my').then(r => r.json())")
        assert int(root.get_attribute("data-visited")) == day["summary"]["buildings_visited"] >= walked
        assert int(root.get_attribute("data-buildings")) == day["summary"]["buildings_total"] > walked
        assert len(day["tracks"]) >= 1 and len(day["grids"]) == 1
        assert "今日已巡" in page.locator("#patrol-summary").inner_text()
        assert page.locator(".leaflet-container canvas").count() >= 1
        page.wait_for_selector("#patrol-my[data-route-stops]", timeout=20_000)
        route = page.evaluate("() => fetch('/api/patrol/route').then(r => r.json())")
        assert root.get_attribute("data-route-stops") == str(len(route["stops"])) != "0"
        assert page.locator(".wg-route-stop").count() == len(route["stops"])
        assert page.locator(".wg-route-stop").first.inner_text() == "1"
        assert f"约 {int(route['minutes'] + 0.5)} 分钟" in page.locator("#patrol-route").inner_text()
        visits = page.locator(".wg-visit")
        assert visits.count() == 1 and "从未走访" in visits.first.inner_text()
        width = page.evaluate("() => document.documentElement.scrollWidth")
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "patrol_my_390.png"), full_page=True)
        assert "走过街巷" in page.locator("#patrol-summary").inner_text()
        page.wait_for_selector("#patrol-my[data-incidents]", timeout=20_000)
        assert root.get_attribute("data-incidents") == "1"
        proposed = page.locator(".wg-proposed")
        assert proposed.count() == len(day["proposed_visits"]) == 1 and "停留" in proposed.first.inner_text()
        proposed.first.get_by_role("button", name="确认走访").tap()
        page.wait_for_selector(".wg-visit-done", timeout=15_000)
        assert "已确认对" in page.locator("#patrol-msg").inner_text() and page.locator(".wg-proposed").count() == 0
        note = "门口交谈，身体尚好<img src=x onerror=window.pwned=1>"
        page.locator("#patrol-visit-note").fill(note)
        page.locator("#patrol-visit-photo").set_input_files({"name": "visit.jpg", "mimeType": "image/jpeg",
                                                             "buffer": _jpeg()})
        page.locator(".wg-visit").first.get_by_role("button", name="记录走访").tap()
        page.wait_for_function("() => document.getElementById('patrol-msg').textContent.includes('已记录对')",
                               timeout=15_000)
        assert _visit_notes(app)[-1] == (note, "image/jpeg")
        assert page.locator("#patrol-visit-note").input_value() == ""
        # 走访记录: newest first, the note as text (never markup), the photo as a thumbnail of the photo route
        page.wait_for_function("() => (document.querySelector('#patrol-history tbody tr') || {}).textContent"
                               " && document.querySelector('#patrol-history tbody tr').textContent.includes('门口交谈')",
                               timeout=15_000)
        newest = page.locator("#patrol-history tbody tr").first
        assert note in newest.inner_text()
        history = page.evaluate("() => fetch('/api/patrol/visits/history').then(r => r.json())")["rows"]
        assert root.get_attribute("data-history") == str(len(history)) and history[0]["note"] == note
        assert history[0]["at_local"] in newest.inner_text()
        thumb = newest.locator("img.wg-visit-thumb")
        assert thumb.get_attribute("src") == history[0]["photo_url"]
        page.wait_for_function("() => document.querySelector('#patrol-history img.wg-visit-thumb').naturalWidth > 0",
                               timeout=15_000)
        assert page.evaluate("() => window.pwned") is None
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        # one tap opens the incident form at where the worker stands (no GPS here: today's last fix)
        last = day["tracks"][-1]["geometry"]["coordinates"][-1]
        page.get_by_role("button", name="在此上报事件").tap()
        page.wait_for_url("**/incidents/new?lon=*", timeout=15_000)
        assert float(page.locator("#wg-lon").input_value()) == pytest.approx(last[0], abs=1e-6)
        assert float(page.locator("#wg-lat").input_value()) == pytest.approx(last[1], abs=1e-6)
        page.wait_for_selector("#wg-report-map[data-loaded='1']", timeout=15_000)
        assert "已选位置" in page.locator("#wg-point-label").inner_text()
    finally:
        context.close()
    assert width <= PHONE["width"], f"page is {width} px wide on a {PHONE['width']} px phone"
    assert traffic.foreign() == [] and traffic.page_errors == []


def test_supervisor_choropleth_positions_and_time_slider(browser, patrol_server: tuple[str, int, Any]) -> None:
    url, _, app = patrol_server
    zone = ZoneInfo(app.config["WANGGE"]["patrol_timezone"])
    # a browser in UTC+14 (the server's zone is at most UTC+12): the page's days are still the
    # display_timezone's, not the browser's
    context, page, traffic = _open(browser, url, "p_super", viewport={"width": 1280, "height": 900},
                                   timezone_id="Pacific/Kiritimati")
    try:
        page.goto("/patrol")
        root = page.locator("#patrol-sup")
        today = datetime.now(ZoneInfo(page.locator('meta[name="wangge-timezone"]').get_attribute("content"))).date()
        assert page.locator("#track-form input[type=date]").input_value() == today.isoformat()
        page.wait_for_selector("#patrol-sup[data-positions]", timeout=20_000)
        assert root.get_attribute("data-positions") == "1"  # p_worker sent fixes today
        page.wait_for_selector("#patrol-sup[data-alerts]", timeout=30_000)
        alerts = page.evaluate("() => fetch('/api/patrol/alerts').then(r => r.json())")["alerts"]
        assert root.get_attribute("data-alerts") == str(len(alerts))
        assert page.locator("#alerts-table tbody tr").count() == len(alerts)
        stay = page.locator("#alerts-table tbody tr", has_text="长时间停留")
        assert stay.count() == 1 and "p_worker" in stay.inner_text()
        # shown in the patrol time zone, not the browser's
        start = next(a for a in alerts if a["kind"] == "stationary")["start"]
        local = datetime.fromisoformat(start).astimezone(zone).strftime("%H:%M")
        assert local in stay.inner_text()
        assert page.locator("#track-form input[type=date]").input_value() == datetime.now(zone).date().isoformat()
        assert page.locator("path.leaflet-interactive[fill='#e74c3c'], .leaflet-overlay-pane canvas").count() >= 1
        # the page opens on today's coverage (grids drawn, ranking filled) before any click
        page.wait_for_selector("#patrol-sup[data-choropleth]", timeout=30_000)
        assert page.locator("#coverage-rank tbody tr").count() >= 1
        page.locator("#coverage-form button").click()
        page.wait_for_selector("#patrol-sup[data-choropleth]", timeout=30_000)
        assert int(root.get_attribute("data-choropleth")) >= 1
        assert page.locator("#coverage-rank tbody tr").count() >= 1
        # the key persons of the best-covered grid (p_worker's): listed with their visit status
        key = page.locator("#coverage-rank tbody tr").first.locator("td").nth(1).inner_text()
        page.locator("#visits-form input[name=grid]").fill(key)
        page.locator("#visits-form button").click()
        page.wait_for_selector("#patrol-sup[data-visits]", timeout=20_000)
        rows = page.evaluate(f"() => fetch('/api/patrol/visits?grid={key}').then(r => r.json())")["rows"]
        assert root.get_attribute("data-visits") == str(len(rows)) == "1"
        shown = page.locator("#visits-table tbody tr").first.inner_text()
        assert rows[0]["name"] in shown and {"overdue": "已逾期", "due": "待走访", "done": "已走访"}[rows[0]["status"]] in shown
        # and the grid's 走访记录 below, newest first, as the history route gives it
        page.wait_for_selector("#patrol-sup[data-history]", timeout=20_000)
        past = page.evaluate(f"() => fetch('/api/patrol/visits/history?grid={key}').then(r => r.json())")["rows"]
        assert root.get_attribute("data-history") == str(len(past))
        if past:
            assert past[0]["at_local"] in page.locator("#visit-history tbody tr").first.inner_text()
        page.locator("#track-form select").select_option("p_worker")
        page.locator("#track-form button").click()
        page.wait_for_selector("#patrol-sup[data-track-shown]", timeout=20_000)
        total = int(root.get_attribute("data-track-shown"))
        assert total >= 60 and page.locator("#track-time").is_enabled()
        page.locator("#track-time").fill("10")
        page.wait_for_function("() => document.getElementById('patrol-sup').dataset.trackShown === '11'")
        assert page.locator("#track-time-label").inner_text() != "—"
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "patrol_supervisor.png"), full_page=True)
    finally:
        context.close()
    assert traffic.foreign() == [] and traffic.page_errors == []
