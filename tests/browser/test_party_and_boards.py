"""The party map (/party) on a desktop (1280×800) and a phone (390×844): the map is on screen with its
grid polygons drawn, the coverage panel is reachable, and tooltips show names as text, never as markup.
And batch printing of notice boards from /boards/batch: start, progress, refusals, download."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from tests.browser.conftest import PASSWORD, SCREENSHOTS, Traffic, login, serving, watched_page

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
#: A branch name with markup in it: the tooltip must show these characters, not make bold text.
HOSTILE = "<b>红旗</b>网格党支部"

#: Boxes of the map and the panel, the number of grid polygons Leaflet drew inside the map's view,
#: and whether the canvas holds any painted (non-transparent) pixel.
STATE_JS = """() => {
    const box = (el) => { const r = el.getBoundingClientRect(); return {x: r.left, y: r.top, w: r.width, h: r.height}; };
    const m = window.wanggePartyMap, view = m.getBounds();
    let polygons = 0;
    m.eachLayer((l) => { if (l.feature && l.getBounds && view.intersects(l.getBounds())) polygons += 1; });
    const canvas = document.querySelector(".wg-party-map .leaflet-overlay-pane canvas");
    const px = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0;
    for (let i = 3; i < px.length; i += 4 * 17) if (px[i] > 0) painted += 1;
    return {map: box(m.getContainer()), panel: box(document.querySelector(".wg-party-side")),
            open: document.querySelector(".wg-party-panel").open, polygons, painted};
}"""

#: Screen point (page coordinates) of a [lat, lon] on the party map.
POINT_JS = """([lat, lon]) => {
    const m = window.wanggePartyMap, c = m.latLngToContainerPoint([lat, lon]);
    const r = m.getContainer().getBoundingClientRect();
    return {x: r.left + c.x, y: r.top + c.y};
}"""


@pytest.fixture(scope="module")
def party_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A live app with a published plan, households with two centre households in grid A and its branch."""
    from api.db import session_scope
    from api.grids.service import active_grids, buildings_of_grid
    from api.party.service import link_households
    from api.register.crypto import cipher_for
    from api.register.importer import import_sheet
    from api.users import create_user
    from geo.register.synthetic import synthetic_residents
    from tests.api.register_helpers import published_app
    from webmap.assets.install import install_assets

    install_assets()
    with published_app(tmp_path_factory.mktemp("party_browser"), 600) as app:
        with app.app_context(), session_scope() as s:
            create_user(s, "p_planner", PASSWORD, role="planner")
            create_user(s, "p_admin", PASSWORD, role="admin")
            grids = active_grids(s)
            grid = str(grids.loc[grids["households"] > 0, "key"].iloc[0])
            other = grids[grids["key"] != grid].iloc[0]
            inside = {str(k): g.representative_point() for k, g in zip(grids["key"], grids.geometry, strict=True)}
            buildings = buildings_of_grid(s, grid)[:4]
            c, settings = cipher_for(app.instance_path, app.config["WANGGE"]), app.config["WANGGE"]
            people = synthetic_residents(pd.DataFrame({"building_id": buildings, "households": 6}), seed=5)
            people["党员中心户"] = ["是" if i in (0, 12) else "否" for i in range(len(people))]
            import_sheet(s, "residents", people, cipher=c, settings=settings, user="test")
            import_sheet(s, "party", pd.DataFrame({"组织类型": ["社区党委", "网格党支部"],
                                                   "组织名称": ["测试社区党委", HOSTILE], "上级组织": ["", "测试社区党委"],
                                                   "网格编码": ["", grid], "书记": ["", "陈书记"]}),
                         cipher=c, settings=settings, user="test")
            import_sheet(s, "staff", pd.DataFrame({"姓名": ["王网格长", "李网格员"], "联系电话": ["13700000001", "13700000002"],
                                                   "角色": ["网格长", "网格员"], "网格编码": [grid, grid]}),
                         cipher=c, settings=settings, user="test")
            community = str(grids.loc[grids["key"] == grid, "community_id"].iloc[0])
            in_community = int((grids["community_id"].astype(str) == community).sum())
        with app.app_context(), session_scope() as s:
            linked = len(link_households(s, settings=settings, min_links=1, max_links=15).links)
        with serving(app) as url:
            yield {"url": url, "app": app, "grid": grid, "grids": len(grids),
                   "linked": linked, "community": community, "in_community": in_community, "cell_at": [inside[grid].y, inside[grid].x], "other": str(other["key"]),
                   "other_at": [inside[str(other["key"])].y, inside[str(other["key"])].x]}


def _open_party_map(browser, server: dict[str, Any], viewport: dict[str, int], traffic: Traffic, **device):
    context, page = watched_page(browser, server["url"], viewport, traffic, **device)
    login(page, "p_planner")
    page.goto("/party")
    page.wait_for_function("() => window.wanggePartyMap && document.querySelector('.leaflet-overlay-pane canvas')")
    page.wait_for_timeout(300)  # Leaflet paints the canvas on the next animation frame
    return context, page


def _on_screen(box: dict[str, float], viewport: dict[str, int]) -> bool:
    return box["w"] > 0 and box["h"] > 0 and box["x"] >= 0 and box["y"] >= 0 \
        and box["x"] + box["w"] <= viewport["width"] + 1 and box["y"] + box["h"] <= viewport["height"] + 1


def _tooltip_at(page, lat_lon: list[float]) -> tuple[str, int]:
    """Text of the tooltip shown when hovering *lat_lon*, and how many <b> elements it holds."""
    point = page.evaluate(POINT_JS, lat_lon)
    page.mouse.move(point["x"], point["y"])
    tooltip = page.locator(".leaflet-tooltip").last
    tooltip.wait_for(state="visible", timeout=5_000)
    return tooltip.inner_text(), tooltip.locator("b").count()


def _check_tooltips(page, server: dict[str, Any]) -> None:
    """The branch marker shows its name as text (markup characters, no element); a grid shows code and name."""
    text, bold = _tooltip_at(page, server["cell_at"])
    assert HOSTILE in text and "陈书记" in text and bold == 0, text
    page.mouse.move(0, 0)
    text, _ = _tooltip_at(page, server["other_at"])
    assert "网格编码" in text and server["other"] in text and "中心户结对" in text, text


def test_party_map_on_a_desktop(browser, party_server: dict[str, Any]) -> None:
    traffic = Traffic()
    context, page = _open_party_map(browser, party_server, DESKTOP, traffic)
    try:
        state = page.evaluate(STATE_JS)
        # Panel on the left, map filling the rest of the screen below the bar.
        assert state["open"] is True and _on_screen(state["panel"], DESKTOP), state
        assert state["map"]["x"] >= state["panel"]["x"] + state["panel"]["w"] - 1, state
        assert state["map"]["w"] >= 0.6 * DESKTOP["width"] and state["map"]["h"] >= DESKTOP["height"] - 60, state
        assert state["polygons"] >= 1 and state["painted"] > 0, state
        assert page.locator(".wg-party-side").inner_text().count("个网格有网格党支部或党小组") == 1
        _check_tooltips(page, party_server)
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "party_map_1280.png"))
    finally:
        context.close()
    assert traffic.foreign() == [] and traffic.page_errors == []


def test_party_map_on_a_phone(browser, party_server: dict[str, Any]) -> None:
    traffic = Traffic()
    context, page = _open_party_map(browser, party_server, PHONE, traffic, is_mobile=True, has_touch=True)
    try:
        state = page.evaluate(STATE_JS)
        # The map comes first and takes most of the screen; the panel is folded to one line below it.
        assert _on_screen(state["map"], PHONE) and state["map"]["w"] >= PHONE["width"] - 2, state
        assert state["map"]["h"] >= 0.6 * PHONE["height"], state
        assert state["open"] is False and state["panel"]["y"] >= state["map"]["y"] + state["map"]["h"] - 1, state
        assert _on_screen(state["panel"], PHONE), state
        assert state["polygons"] >= 1 and state["painted"] > 0, state
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"page is {width} px wide on a {PHONE['width']} px phone"
        _check_tooltips(page, party_server)
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "party_map_390.png"))
        # A tap opens the panel below the map; the map keeps at least a third of the screen.
        page.locator(".wg-party-panel summary").tap()
        opened = page.evaluate(STATE_JS)
        assert opened["open"] is True and opened["map"]["h"] >= PHONE["height"] / 3, opened
        assert "没有党组织的网格" in page.locator(".wg-party-side").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "party_map_390_panel.png"))
    finally:
        context.close()
    assert traffic.foreign() == [] and traffic.page_errors == []


def test_batch_printing_page_runs_the_job_and_offers_the_downloads(browser, party_server: dict[str, Any]) -> None:
    """An admin prints the boards of one community: progress, the grids refused with what they lack, the ZIP."""
    traffic = Traffic()
    context, page = watched_page(browser, party_server["url"], DESKTOP, traffic)
    try:
        login(page, "p_admin")
        page.goto("/boards")
        page.get_by_role("link", name="批量打印公示牌").click()
        page.wait_for_url("**/boards/batch")
        assert page.locator('select[name="community"]').is_disabled()
        page.get_by_label("按社区").check()
        page.locator('select[name="community"]').select_option(party_server["community"])
        page.locator('select[name="size"]').select_option("A4")
        page.get_by_role("button", name="开始批量打印").click()
        page.locator("#wg-batch-job[data-state='done']").wait_for(timeout=120_000)
        assert page.locator(".progress-bar").inner_text() == "100%"
        assert "完成：1 块公示牌" in page.locator(".wg-job-message").inner_text()
        refused = page.locator(".wg-batch-refused").inner_text()
        assert f"{party_server['in_community'] - 1} 个网格缺少必填内容" in refused and "缺少网格长" in refused
        link = page.locator("a[data-file='boards.zip']")
        assert link.inner_text() == "下载 ZIP（全部文件）"
        answer = page.request.get(link.get_attribute("href"))
        assert answer.status == 200 and answer.headers["content-type"] == "application/zip"
        assert page.locator("a[data-file='boards-all.pdf']").count() == 1
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "boards_batch_1280.png"), full_page=True)
    finally:
        context.close()
    assert traffic.foreign() == [] and traffic.page_errors == []


def test_staff_form_on_a_phone(browser, party_server: dict[str, Any]) -> None:
    """An admin edits a grid leader's duties at 390×844: the page fits the screen, the change is saved."""
    traffic = Traffic()
    context, page = watched_page(browser, party_server["url"], PHONE, traffic, is_mobile=True, has_touch=True)
    try:
        login(page, "p_admin")
        page.goto(f"/register/staff?grid={party_server['grid']}")
        leader = page.locator("details", has_text="王网格长")
        assert "137****0001" in leader.locator("summary").inner_text()
        leader.locator("summary").tap()
        leader.get_by_label("职责").fill("统筹网格内各项工作、联系党员中心户")
        with page.expect_navigation():
            leader.get_by_role("button", name="保存").tap()
        assert "已保存：网格长 王网格长" in page.locator(".wg-staff-message").inner_text()
        width = page.evaluate("() => document.documentElement.scrollWidth")
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "register_staff_390.png"), full_page=True)
        page.locator("details", has_text="王网格长").locator("summary").tap()
        assert page.locator("details", has_text="王网格长").get_by_label("职责").input_value() \
            == "统筹网格内各项工作、联系党员中心户"
    finally:
        context.close()
    assert width <= PHONE["width"], f"page is {width} px wide on a {PHONE['width']} px phone"
    assert traffic.foreign() == [] and traffic.page_errors == []


def test_board_list_selection_survives_pages_and_prints_as_one_batch(browser, party_server: dict[str, Any]) -> None:
    """On a phone an admin ticks grids on two pages, the ticks survive paging, and a filtered selection
    prints as one batch whose progress the batch page shows (the list was one 35,000 px page)."""
    app, traffic = party_server["app"], Traffic()
    size = app.config["WANGGE"]["list_page_size"]
    app.config["WANGGE"]["list_page_size"] = 3
    context, page = watched_page(browser, party_server["url"], PHONE, traffic)
    try:
        login(page, "p_admin")
        page.goto("/boards")
        # one card per grid: every download link lies on the screen (they were cut off at its right edge)
        cut = page.evaluate("""() => Array.from(document.querySelectorAll('.wg-board-table a'),
            (a) => a.getBoundingClientRect().right).filter((right) => right > innerWidth + 0.5).length""")
        assert cut == 0 and page.locator(".wg-board-table a", has_text="A3竖 PDF").first.is_visible()
        count = page.locator(".wg-board-count")
        assert count.inner_text() == "已选 0 个网格" and page.get_by_role("button", name="打印所选").is_disabled()
        first = page.locator(".wg-board-pick").first.get_attribute("value")
        page.locator(".wg-board-pick").first.check()
        page.get_by_role("link", name="下一页").click()
        page.wait_for_url("**page=2*")
        assert page.locator(".wg-board-pick").count() == 3 and count.inner_text() == "已选 1 个网格"
        page.locator(".wg-board-pick").nth(1).check()
        assert count.inner_text() == "已选 2 个网格"
        page.get_by_role("link", name="上一页").click()
        assert page.locator(f'.wg-board-pick[value="{first}"]').is_checked()
        width = page.evaluate("() => document.documentElement.scrollWidth")
        bar = page.locator("#wg-board-selection").bounding_box()
        page.get_by_role("button", name="清除选择").click()
        assert count.inner_text() == "已选 0 个网格"
        page.get_by_label("状态").select_option("ready")
        page.get_by_role("button", name="筛选", exact=True).click()
        page.wait_for_url("**status=ready*")
        page.get_by_role("button", name="选择全部 1 个筛选结果").click()
        assert count.inner_text() == "已选 1 个网格"
        page.get_by_role("button", name="打印所选").click()
        page.wait_for_url("**/boards/batch?job=*")
        page.locator("#wg-batch-job[data-state='done']").wait_for(timeout=120_000)
        assert "完成：1 块公示牌" in page.locator(".wg-job-message").inner_text()
        assert page.locator("a[data-file='boards.zip']").count() == 1
    finally:
        app.config["WANGGE"]["list_page_size"] = size
        context.close()
    assert width <= PHONE["width"], f"the board list is {width} px wide on a {PHONE['width']} px phone"
    assert bar is not None and bar["y"] + bar["height"] <= PHONE["height"] + 1  # the selection bar sticks on screen
    assert traffic.foreign() == [] and traffic.page_errors == []
