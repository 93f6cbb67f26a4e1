"""A viewer asks /access for K new sites: numbered markers on the map, households each adds; also on a phone."""

from __future__ import annotations

import pytest

from tests.browser.conftest import SCREENSHOTS

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
SITES_JS = """() => window.wanggeLayers.suggested.getLayers().map(l => ({
    name: l.feature.properties.name, adds: l.feature.properties.adds,
    drawn: window.wanggeMap.hasLayer(l) && !!l._point}))"""


def _suggest(page, k: int) -> list[dict]:
    page.goto("/access?category=kindergarten&level=300")
    page.wait_for_function("() => window.wanggeLayers && window.wanggeLayers.isochrones")
    page.get_by_label("新增服务点个数").fill(str(k))
    with page.expect_navigation():
        page.get_by_role("button", name="建议新址").click()
    page.wait_for_function("() => window.wanggeLayers && window.wanggeLayers.suggested", timeout=60_000)
    return page.evaluate(SITES_JS)


def test_viewer_sees_suggested_sites_with_households_each_adds(logged_in_page) -> None:
    page = logged_in_page("viewer")
    sites = _suggest(page, 2)
    assert "suggest=2" in page.url and 1 <= len(sites) <= 2
    assert all(s["drawn"] for s in sites)
    items = page.locator(".wg-suggest-sites li").all_inner_texts()
    assert len(items) == len(sites)
    for site, item in zip(sorted(sites, key=lambda s: s["name"]), items, strict=True):
        assert item.startswith(site["name"].split("（")[0]) and site["adds"].replace(" 户", "") in item
    added = sum(int(s["adds"].split()[0].replace(",", "")) for s in sites)
    assert page.locator('[data-num="newly_covered"]').inner_text() == f"{added:,}"
    assert "建议新址" in page.locator(".wg-access-legend").inner_text()
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "access_suggest.png"))


def test_suggest_on_a_phone(logged_in_page) -> None:
    page = logged_in_page("viewer")
    page.set_viewport_size(PHONE)
    _suggest(page, 1)
    width = page.evaluate("() => window.wanggeMap.getContainer().getBoundingClientRect().width")
    assert width >= PHONE["width"] - 1
    button = page.get_by_role("button", name="建议新址")
    button.scroll_into_view_if_needed()  # the panel scrolls on a phone; the page does not
    box = button.bounding_box()
    assert box is not None and box["x"] + box["width"] <= PHONE["width"] and box["y"] + box["height"] <= PHONE["height"]
    on_top = page.evaluate("([x, y]) => document.elementFromPoint(x, y).id",
                           [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2])
    assert on_top == "wg-suggest-button"  # nothing (map, legend) covers it
    page.screenshot(path=str(SCREENSHOTS / "access_suggest_phone.png"))
