"""A user logs in and sees the workspace map, offline, in Chinese."""

from __future__ import annotations

import numpy as np
import pytest

from tests.browser.conftest import SCREENSHOTS, LiveServer, Traffic

pytestmark = pytest.mark.browser

COUNT_JS = """() => Object.fromEntries(Object.entries(window.wanggeLayers).map(
    ([k, layer]) => [k, layer.getLayers().length]))"""
# A path the canvas renderer projected and will draw has non-empty _parts.
DRAWN_JS = """(key) => {
    const layer = window.wanggeLayers[key];
    return window.wanggeMap.hasLayer(layer)
        ? layer.getLayers().filter(l => l._parts && l._parts.length > 0).length : 0;
}"""


def test_viewer_sees_map_with_every_layer(logged_in_page, live_server: LiveServer) -> None:
    page = logged_in_page("viewer")
    counts = page.evaluate(COUNT_JS)
    expected = {k: len(g) for k, g in live_server.layers.items()}
    expected["community_names"] = expected["communities"]
    # street segments are drawn as one feature per street name and class (joined end to end)
    streets = live_server.layers["streets"]
    expected["streets"] = len(streets[["name", "road_class"]].fillna("").drop_duplicates())
    assert counts == expected and expected["streets"] < len(streets) / 10
    assert page.evaluate(DRAWN_JS, "buildings") == expected["buildings"]
    # buildings reach the page packed (webmap.packed): unpacked, each has its outline where it is
    got = np.asarray(page.evaluate("""() => window.wanggeLayers.buildings.getLayers().map((l) => {
        const b = l.getBounds(); return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; })"""))
    want = live_server.layers["buildings"].geometry.bounds.to_numpy()
    nearest = np.abs(got[:, None, :] - want[None, :, :]).max(axis=2).min(axis=1)
    assert len(got) == len(want) and nearest.max() < 1e-5
    assert page.evaluate(DRAWN_JS, "communities") == expected["communities"]
    assert page.locator(".leaflet-overlay-pane canvas").count() >= 1  # prefer_canvas
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "map_viewer.png"))


def test_legend_layer_control_and_stats_are_chinese(logged_in_page, live_server: LiveServer) -> None:
    page = logged_in_page("viewer")
    legend = page.locator(".wg-legend")
    assert legend.is_visible()
    for text in ("图例", "社区边界", "楼栋户数", "道路", "服务点"):
        assert text in legend.inner_text()
    control = page.locator(".leaflet-control-layers").inner_text()
    for name in ("无底图", "社区", "小区", "道路", "楼栋（按户数）", "服务点"):
        assert name in control
    bar = page.locator(".wg-topbar").inner_text()
    assert "工作区地图" in bar and "只读用户" in bar and "退出登录" in bar
    assert page.locator('[data-stat="buildings"]').inner_text() == f"{len(live_server.layers['buildings'])}"
    assert page.locator('[data-stat="communities"]').inner_text() == f"{len(live_server.layers['communities'])}"
    assert live_server.label in page.locator(".wg-data-label").inner_text()


def test_layers_toggle_from_the_layer_control(logged_in_page) -> None:
    page = logged_in_page("planner")
    assert "规划员" in page.locator(".wg-user").inner_text()
    page.locator(".leaflet-control-layers label", has_text="楼栋（按户数）").locator("input").uncheck()
    assert page.evaluate("() => window.wanggeMap.hasLayer(window.wanggeLayers.buildings)") is False


def test_everything_loads_from_this_server(logged_in_page, traffic: Traffic, live_server: LiveServer) -> None:
    page = logged_in_page("worker")
    page.wait_for_load_state("networkidle")
    vendor = [u for u in traffic.requests if "/static/vendor/" in u]
    assert any(u.endswith("/leaflet/leaflet.js") for u in vendor)
    assert any(u.endswith("/leaflet/leaflet.css") for u in vendor)
    assert traffic.failed == []
    assert traffic.foreign() == []
    assert all(u.startswith(live_server.url) or u.startswith("data:") for u in traffic.requests)


HOVER_JS = """() => {
    const map = window.wanggeMap;
    const centre = map.getCenter();
    const b = window.wanggeLayers.buildings.getLayers()
        .filter(l => l.feature.properties.hh !== "无")
        .reduce((best, l) => centre.distanceTo(l.getBounds().getCenter())
            < centre.distanceTo(best.getBounds().getCenter()) ? l : best);
    const p = map.latLngToContainerPoint(b.getBounds().getCenter());
    const box = map.getContainer().getBoundingClientRect();
    return {x: box.left + p.x, y: box.top + p.y, name: b.feature.properties.name, hh: b.feature.properties.hh};
}"""


def test_building_tooltip_shows_households(logged_in_page) -> None:
    page = logged_in_page("viewer")
    page.evaluate("() => { window.wanggeMap.setZoom(window.wanggeMap.getZoom() + 2); }")
    page.wait_for_timeout(400)
    target = page.evaluate(HOVER_JS)
    page.mouse.move(target["x"], target["y"])
    tooltip = page.locator(".leaflet-tooltip")
    tooltip.wait_for(state="visible")
    text = tooltip.inner_text()
    assert "楼栋" in text and "户数" in text and target["name"] in text and target["hh"] in text
    page.screenshot(path=str(SCREENSHOTS / "map_tooltip.png"))


#: Each page link of the bar, and whether it lies wholly inside the nav's visible box.
NAV_VISIBLE_JS = """() => { const nav = document.querySelector(".wg-nav").getBoundingClientRect();
    return Array.from(document.querySelectorAll(".wg-nav a"), (a) => { const r = a.getBoundingClientRect();
        return [a.textContent, r.left >= nav.left - 0.5 && r.right <= nav.right + 0.5 && r.right <= innerWidth]; }); }"""


def test_every_page_link_shows_on_a_laptop_map(logged_in_page) -> None:
    """On a 1366 px laptop the workspace counts give way to the admin's page links, none scrolled away."""
    page = logged_in_page("admin")
    page.set_viewport_size({"width": 1366, "height": 820})
    links = page.evaluate(NAV_VISIBLE_JS)
    assert len(links) >= 10 and all(ok for _, ok in links), links
    assert page.locator(".wg-logout button").is_visible()
    # each count shows whole or not at all (wrapped below the clipped bar), never cut in half
    cut = page.evaluate("""() => { const box = document.querySelector(".wg-stats").getBoundingClientRect();
        return Array.from(document.querySelectorAll(".wg-stats li"), (li) => li.getBoundingClientRect())
            .filter((r) => r.top < box.bottom && (r.right > box.right + 0.5 || r.bottom > box.bottom + 0.5)).length; }""")
    assert cut == 0
