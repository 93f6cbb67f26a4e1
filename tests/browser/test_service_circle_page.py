"""A viewer opens the 15-minute service circle page, switches category and sees the circles."""

from __future__ import annotations

import pytest

from tests.browser.conftest import SCREENSHOTS

pytestmark = pytest.mark.browser

# A path the canvas renderer projected and will draw has non-empty _parts.
DRAWN_JS = """(key) => {
    const layer = window.wanggeLayers[key];
    if (!layer || !window.wanggeMap.hasLayer(layer)) return 0;
    return layer.getLayers().filter(l => l._parts && l._parts.length > 0).length;
}"""
UNCOVERED_JS = """() => window.wanggeLayers.buildings.getLayers()
    .filter(l => l.feature.properties.state === "未覆盖").length"""


def _open(page, query: str = "") -> None:
    page.goto("/access" + query)
    page.wait_for_function("() => window.wanggeLayers && window.wanggeLayers.isochrones")


def test_viewer_switches_category_and_sees_isochrones(logged_in_page) -> None:
    page = logged_in_page("viewer")
    page.locator(".wg-nav a", has_text="生活圈").click()
    page.wait_for_url("**/access")
    page.wait_for_function("() => window.wanggeLayers && window.wanggeLayers.isochrones")
    first = page.locator("#wg-category").input_value()
    assert page.evaluate(DRAWN_JS, "isochrones") >= 1
    options = page.locator("#wg-category option").evaluate_all("os => os.map(o => o.value)")
    target = "convenience_store" if first != "convenience_store" else options[-1]
    assert target in options
    with page.expect_navigation():
        page.locator("#wg-category").select_option(target)
    page.wait_for_function("() => window.wanggeLayers && window.wanggeLayers.isochrones")
    assert f"category={target}" in page.url and "level=" not in page.url
    assert page.locator("#wg-category").input_value() == target
    label = page.locator("#wg-category option:checked").inner_text()
    drawn = page.evaluate(DRAWN_JS, "isochrones")
    assert drawn >= 1 and page.evaluate(DRAWN_JS, "zones") >= 1
    legend = page.locator(".wg-access-legend")
    assert legend.is_visible()
    text = legend.inner_text()
    for word in (label, "步行服务圈（沿道路）", "未覆盖楼栋", "覆盖住户比例"):
        assert word in text, word
    uncovered = page.evaluate(UNCOVERED_JS)
    assert page.locator('[data-num="uncovered"]').inner_text() == str(uncovered)
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "access_viewer.png"))


def test_screening_mode_is_labelled_and_overstates(logged_in_page) -> None:
    page = logged_in_page("viewer")
    _open(page, "?category=kindergarten&level=300")
    with page.expect_navigation():
        page.locator("#wg-mode").select_option("euclidean")
    page.wait_for_function("() => window.wanggeLayers && window.wanggeLayers.isochrones")
    assert "直线距离筛查，仅供参考" in page.locator(".wg-access-screening").inner_text()
    assert "直线距离圆（仅供筛查）" in page.locator(".wg-access-legend").inner_text()
    over = page.locator('[data-num="overstatement"]').inner_text()
    assert over.endswith("个百分点") and float(over.split()[0]) >= 0
    page.screenshot(path=str(SCREENSHOTS / "access_screening.png"))
