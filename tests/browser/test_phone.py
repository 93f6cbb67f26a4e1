"""The workspace map and the service-circle page on a phone (390×844): map, controls, legends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.workspace_map import NO_ACTIVE_PLAN
from tests.browser.conftest import PASSWORD, ROLE_USERS, SCREENSHOTS, LiveServer, Traffic

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}

#: Size of the map and of the controls a user needs, in CSS pixels of the viewport.
BOXES_JS = """() => {
    const box = (el) => { if (!el) return null; const r = el.getBoundingClientRect();
        return {x: r.left, y: r.top, w: r.width, h: r.height}; };
    return {
        map: box(window.wanggeMap.getContainer()),
        logout: box(document.querySelector(".wg-logout button")),
        // each page link of the role (on a phone: in the list 菜单 opens)
        nav: Array.from(document.querySelectorAll(".wg-nav a"), (a) => {
            a.scrollIntoView({block: "nearest", inline: "nearest"}); return box(a); }),
        legend: box(document.querySelector(".wg-legend")),
        legendOpen: document.querySelector(".wg-legend details").open,
        zoom: box(document.querySelector(".leaflet-control-zoom")),
        layers: box(document.querySelector(".leaflet-control-layers")),
        layersOpen: document.querySelector(".leaflet-control-layers")
            .classList.contains("leaflet-control-layers-expanded"),
    };
}"""


@pytest.fixture
def phone(browser, live_server: LiveServer, traffic: Traffic, request: pytest.FixtureRequest) -> Iterator[object]:
    """A phone-sized page logged in as a viewer."""
    context = browser.new_context(base_url=live_server.url, viewport=PHONE, locale="zh-CN",
                                  is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    page.on("pageerror", lambda e: traffic.page_errors.append(str(e)))
    page.goto("/login")
    page.get_by_label("用户名").fill(ROLE_USERS["viewer"])
    page.get_by_label("密码").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="登录").click()
    yield page
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"phone_{request.node.name}.png"))
    context.close()
    assert traffic.page_errors == []


def _inside(box: dict, *, width: int = PHONE["width"], height: int = PHONE["height"]) -> bool:
    return box["w"] > 0 and box["h"] > 0 and box["x"] >= 0 and box["y"] >= 0 \
        and box["x"] + box["w"] <= width and box["y"] + box["h"] <= height


def _check_phone_layout(page) -> dict:
    b = page.evaluate(BOXES_JS)
    assert b["map"]["w"] >= PHONE["width"] - 2, b["map"]  # the whole width
    assert _inside(b["logout"]), b["logout"]
    assert page.locator(".wg-logout button").is_visible()
    # Every page is reachable: 菜单 opens all the bar's links on screen, and closes again.
    page.get_by_role("button", name="菜单").tap()
    nav = page.evaluate(BOXES_JS)["nav"]
    assert len(nav) >= 3 and all(_inside(n) for n in nav), nav
    page.get_by_role("button", name="菜单").tap()
    assert _inside(b["zoom"]) and _inside(b["layers"]) and _inside(b["legend"])
    # The legend starts folded to its title and opens on a tap.
    assert b["legendOpen"] is False and b["legend"]["h"] < 60, b["legend"]
    page.locator(".wg-legend summary").tap()
    opened = page.evaluate(BOXES_JS)
    assert opened["legendOpen"] is True and opened["legend"]["h"] > 100
    assert opened["legend"]["h"] <= 0.5 * PHONE["height"] and _inside(opened["legend"])
    page.locator(".wg-legend summary").tap()
    return b


def test_workspace_map_is_usable_on_a_phone(phone) -> None:
    page = phone
    page.wait_for_url("**/map")
    page.wait_for_function("() => window.wanggeLayers && window.wanggeLayers.buildings")
    b = _check_phone_layout(page)
    assert b["map"]["h"] >= 0.85 * (PHONE["height"] - 48), b["map"]
    # The legend says which plan's grids are shown, or that none is published yet.
    page.locator(".wg-legend summary").tap()
    legend = page.locator(".wg-legend").inner_text()
    has_grids = page.evaluate("() => Boolean(window.wanggeLayers.grids)")
    assert "网格方案" in legend and ("生效方案：" in legend if has_grids else NO_ACTIVE_PLAN in legend), legend
    page.locator(".wg-legend summary").tap()
    # The layer list starts folded, opens on a tap of its button, folds on a tap on the map.
    assert b["layersOpen"] is False and b["layers"]["w"] < 60
    page.locator(".leaflet-control-layers-toggle").tap()
    assert page.evaluate(BOXES_JS)["layersOpen"] is True
    assert page.locator(".leaflet-control-layers label", has_text="楼栋（按户数）").is_visible()
    page.mouse.click(PHONE["width"] / 2, PHONE["height"] - 200)
    assert page.evaluate(BOXES_JS)["layersOpen"] is False


def test_access_page_is_usable_on_a_phone(phone) -> None:
    page = phone
    page.goto("/access")
    page.wait_for_function("() => window.wanggeLayers && window.wanggeLayers.buildings")
    b = _check_phone_layout(page)
    form = page.evaluate("""() => { const r = document.querySelector(".wg-access-panel").getBoundingClientRect();
        return {x: r.left, y: r.top, w: r.width, h: r.height}; }""")
    assert _inside(form) and page.locator("#wg-category").is_visible()
    # Form above the map, not over it: the map keeps at least half of the screen.
    assert b["map"]["y"] >= form["y"] + form["h"] - 1 and b["map"]["h"] >= 0.5 * PHONE["height"], (form, b["map"])
