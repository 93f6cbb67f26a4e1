"""Incidents on a phone (390×844): a worker reports with a pin on the map, the centre accepts and
dispatches, the worker handles and feeds back, the centre verifies and closes. Hostile text never runs,
no page overflows sideways, nothing leaves the machine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.conftest import CSP_LISTENER, PASSWORD, SCREENSHOTS, Traffic, login, serving

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
HOSTILE = '<img src=x onerror="alert(1)">油污<script>alert(2)</script>'


@pytest.fixture(scope="module")
def incident_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, float, float]]:
    from api.db import session_scope
    from api.grids.service import active_grids
    from api.register.models import Staff
    from api.users import create_user
    from tests.api.register_helpers import published_app
    from webmap.assets.install import install_assets

    install_assets()
    with published_app(tmp_path_factory.mktemp("incident_browser"), 600) as app:
        app.config["WTF_CSRF_ENABLED"] = True
        with app.app_context(), session_scope() as s:
            worker = create_user(s, "i_worker", PASSWORD, role="worker", display_name="测试网格员")
            create_user(s, "i_admin", PASSWORD, role="admin", display_name="指挥中心")
            grids = active_grids(s)
            s.add(Staff(name="李网格", phone="13700000009", role="grid_worker", grid_code=grids["key"].iloc[0],
                        user_id=worker.id))
            p = grids.geometry.iloc[0].representative_point()
        with serving(app) as url:
            yield url, p.x, p.y


def _no_overflow(page) -> None:  # type: ignore[no-untyped-def]
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1, f"{page.url} is {width}px wide"


def _tap_report_map(page, lon: float, lat: float) -> None:  # type: ignore[no-untyped-def]
    """Once the report form's map has loaded (no sideways scroll), a finger's tap on it at *lon*, *lat*."""
    page.wait_for_selector("#wg-report-map[data-loaded='1']", timeout=15_000)
    _no_overflow(page)
    page.evaluate("([lat, lon]) => window.wanggeReportMap.setView([lat, lon], 17)", [lat, lon])
    pt = page.evaluate("([lat, lon]) => window.wanggeReportMap.latLngToContainerPoint([lat, lon])", [lat, lon])
    page.locator("#wg-report-map").tap(position={"x": pt["x"], "y": pt["y"]})


def _act(page, label: str, reason: str = "") -> None:  # type: ignore[no-untyped-def]
    page.select_option("#wg-action", label=label)
    if reason:
        page.fill("#wg-act-form input[name=reason]", reason)
    with page.expect_navigation():
        page.click("#wg-act-submit")
    assert page.locator(".wg-inc-error").count() == 0, page.locator(".wg-inc-error").all_inner_texts()


def test_report_dispatch_handle_close_on_a_phone(browser, incident_server: tuple[str, float, float]) -> None:  # type: ignore[no-untyped-def]
    # The session's Chromium (conftest ``browser``): a second sync_playwright in one process fails.
    url, lon, lat = incident_server
    traffic, dialogs = Traffic(), []
    contexts = []
    pages = {}
    for who in ("i_worker", "i_admin"):
        context = browser.new_context(base_url=url, viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True)
        contexts.append(context)
        pg = context.new_page()
        pg.on("request", lambda r: traffic.requests.append(r.url))
        pg.on("pageerror", lambda e: traffic.page_errors.append(str(e)))
        pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        login(pg, who)
        pages[who] = pg
    worker, admin = pages["i_worker"], pages["i_admin"]
    try:
        worker.goto("/incidents/new")
        _tap_report_map(worker, lon, lat)
        assert abs(float(worker.input_value("#wg-lon")) - lon) < 1e-4
        worker.fill("#wg-cat-search", "道路不洁")
        worker.select_option("#wg-category", "SJ-0103")
        worker.fill("textarea[name=description]", HOSTILE)
        with worker.expect_navigation():
            worker.click("#wg-report-form button[type=submit]")
        assert "已上报，案件编号" in worker.inner_text(".wg-inc-flash")
        case_url = worker.url
        assert worker.inner_text("#wg-case-desc") == HOSTILE  # shown as text, not markup
        _no_overflow(worker)

        admin.goto(case_url)
        _act(admin, "受理")
        _act(admin, "派遣")
        assert admin.inner_text("#wg-case-state") == "已派遣"

        worker.goto("/incidents/inbox")
        _no_overflow(worker)
        # one card per case on a phone: the description gets the row's width, not a character a line
        desc = worker.evaluate("() => document.querySelector('.wg-inc-desc').getBoundingClientRect().width")
        assert desc > PHONE["width"] * 0.6, desc
        worker.click(f"tr[data-case='{case_url.rsplit('/', 1)[1]}'] a")
        _act(worker, "签收处置")
        _act(worker, "处置反馈", reason="已冲洗路面")
        assert worker.inner_text("#wg-case-state") == "已反馈待核查"

        admin.goto(case_url)
        _act(admin, "核查通过结案")
        assert admin.inner_text("#wg-case-state") == "已结案"
        steps = admin.locator("#wg-timeline li b").all_inner_texts()
        assert steps == ["上报", "受理", "派遣", "签收处置", "处置反馈", "核查通过结案"]
        _no_overflow(admin)

        admin.goto("/incidents/map")
        admin.wait_for_selector("#wg-incident-map[data-loaded='1']", timeout=15_000)
        assert int(admin.get_attribute("#wg-incident-map", "data-count")) >= 1
        admin.check("#wg-heat")  # Leaflet.heat (bundled with folium, served locally) draws the cases of the view
        admin.wait_for_selector("#wg-incident-map[data-heat]:not([data-heat=''])", timeout=10_000)
        assert admin.locator("#wg-incident-map canvas.leaflet-heatmap-layer").count() == 1
        admin.select_option("#wg-shade", "rate")
        admin.wait_for_selector("#wg-incident-map[data-shade='rate']", timeout=10_000)
        assert "每千户" in admin.inner_text("#wg-shade-hint")
        _no_overflow(admin)

        worker.goto("/notifications")
        assert "新派遣案件" in worker.inner_text("main")
        _no_overflow(worker)
    except Exception:
        SCREENSHOTS.mkdir(exist_ok=True)
        worker.screenshot(path=str(SCREENSHOTS / "incidents_worker.png"), full_page=True)
        admin.screenshot(path=str(SCREENSHOTS / "incidents_admin.png"), full_page=True)
        raise
    finally:
        for context in contexts:
            context.close()
    assert dialogs == [], f"hostile text ran as script: {dialogs}"
    assert traffic.foreign() == [], traffic.foreign()[:5]
    assert traffic.page_errors == [], traffic.page_errors[:5]


def test_a_resident_reports_without_login_and_tracks_by_code(browser, incident_server: tuple[str, float, float]) -> None:  # type: ignore[no-untyped-def]
    url, lon, lat = incident_server
    traffic, dialogs, console = Traffic(), [], []
    context = browser.new_context(base_url=url, viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True)
    context.add_init_script(CSP_LISTENER)
    pg = context.new_page()
    pg.on("request", lambda r: traffic.requests.append(r.url))
    pg.on("pageerror", lambda e: traffic.page_errors.append(str(e)))
    pg.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        pg.goto("/report")
        _tap_report_map(pg, lon, lat)
        pg.fill("#wg-cat-search", "暴露垃圾")
        pg.select_option("#wg-category", "SJ-0102")
        pg.fill("textarea[name=description]", HOSTILE)
        with pg.expect_navigation():
            pg.click("#wg-report-form button[type=submit]")
        code = pg.inner_text("#wg-public-code")
        assert len(code) == 10
        _no_overflow(pg)
        pg.goto(pg.get_attribute("a:has-text('查看处理进度')", "href"))
        assert "已提交，待受理" in pg.inner_text("#wg-public-status")
        assert "油污" not in pg.inner_text("main")  # the description is not shown back
        _no_overflow(pg)
    except Exception:
        SCREENSHOTS.mkdir(exist_ok=True)
        pg.screenshot(path=str(SCREENSHOTS / "incidents_public.png"), full_page=True)
        raise
    finally:
        context.close()
    assert dialogs == [] and traffic.page_errors == [], (dialogs, traffic.page_errors)
    assert traffic.foreign() == [] and console == [], (traffic.foreign()[:5], console[:5])


VIEW_JS = """() => { const m = window.wanggeReportMap, b = m.getBounds();
    return {w: b.getWest(), s: b.getSouth(), e: b.getEast(), n: b.getNorth(), zoom: m.getZoom(),
            lat: m.getCenter().lat, lon: m.getCenter().lng}; }"""


def _report_view(browser, url: str, who: str, **device) -> tuple[dict, str]:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=url, viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True,
                                  **device)
    try:
        pg = context.new_page()
        login(pg, who)
        pg.goto("/incidents/new")
        pg.wait_for_selector("#wg-report-map[data-loaded='1']", timeout=15_000)
        if "geolocation" in device:
            pg.wait_for_function("() => window.wanggeReportMap.getZoom() >= 17", timeout=10_000)
        return pg.evaluate(VIEW_JS), pg.get_attribute("#wg-report-map", "data-view") or ""
    finally:
        context.close()


def test_report_map_opens_on_the_workers_own_grid_then_where_the_phone_is(
        browser, incident_server: tuple[str, float, float]) -> None:  # type: ignore[no-untyped-def]
    url, lon, lat = incident_server
    district, seen = _report_view(browser, url, "i_admin")  # no grid of its own: the whole district
    assert seen == "all"
    own, seen = _report_view(browser, url, "i_worker")
    assert seen == "own" and own["w"] <= lon <= own["e"] and own["s"] <= lat <= own["n"]
    own_area = (own["e"] - own["w"]) * (own["n"] - own["s"])
    assert own_area < (district["e"] - district["w"]) * (district["n"] - district["s"]) / 4
    here, _ = _report_view(browser, url, "i_worker", geolocation={"latitude": lat, "longitude": lon},
                           permissions=["geolocation"])
    assert here["zoom"] >= 17 and abs(here["lat"] - lat) < 1e-4 and abs(here["lon"] - lon) < 1e-4


def test_patrol_before_any_track_says_what_to_do_and_paints_no_grid_red(
        browser, incident_server: tuple[str, float, float]) -> None:  # type: ignore[no-untyped-def]
    url, _, _ = incident_server
    for viewport in (PHONE, {"width": 1280, "height": 800}):
        context = browser.new_context(base_url=url, viewport=viewport, locale="zh-CN")
        try:
            pg = context.new_page()
            login(pg, "i_admin")
            pg.goto("/patrol")
            pg.wait_for_selector("#patrol-sup[data-choropleth]", timeout=30_000)
            empty = pg.locator("#patrol-empty")
            assert empty.is_visible() and "还没有巡查轨迹" in empty.inner_text()
            link = empty.get_by_role("link", name="绑定设备 / 导入轨迹")
            assert link.is_visible() and link.get_attribute("href") == "/patrol/devices"
            root = pg.locator("#patrol-sup")
            assert int(root.get_attribute("data-choropleth") or 0) >= 1 and root.get_attribute("data-measured") == "0"
            assert pg.evaluate("() => document.documentElement.scrollWidth") <= viewport["width"] + 1
        finally:
            context.close()
