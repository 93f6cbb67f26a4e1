"""我的网格 on a phone (390×844): the worker's grid on the offline map, staff and counts, nothing leaves the machine."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

from tests.browser.conftest import PASSWORD, SCREENSHOTS, Traffic, login, serving, watched_page

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def register_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A live app with a published plan, a worker serving its first grid and residents there."""
    from api.db import session_scope
    from api.grids.service import active_grids, buildings_of_grid
    from api.register.crypto import cipher_for
    from api.register.importer import import_sheet
    from api.users import create_user
    from geo.register.synthetic import synthetic_residents
    from tests.api.register_helpers import published_app
    from webmap.assets.install import install_assets

    install_assets()
    with published_app(tmp_path_factory.mktemp("register_browser"), 600) as app:
        with app.app_context(), session_scope() as s:
            create_user(s, "m_worker", PASSWORD, role="worker", display_name="测试网格员")
            grid = active_grids(s)["key"].iloc[0]
            buildings = buildings_of_grid(s, grid)[:5]
            c, settings = cipher_for(app.instance_path, app.config["WANGGE"]), app.config["WANGGE"]
            people = synthetic_residents(pd.DataFrame({"building_id": buildings, "households": 4}), seed=3)
            import_sheet(s, "residents", people, cipher=c, settings=settings, user="test")
            import_sheet(s, "keypersons", pd.DataFrame({"姓名": people["姓名"][:2], "身份证号": people["身份证号"][:2],
                                                        "类别": "独居老人", "风险等级": "3"}),
                         cipher=c, settings=settings, user="test")
            import_sheet(s, "staff", pd.DataFrame({"姓名": ["王网格", "李网格"], "联系电话": ["13700000001", "13700000002"],
                                                   "角色": ["网格长", "网格员"], "网格编码": [grid, grid],
                                                   "账号": ["", "m_worker"]}), cipher=c, settings=settings, user="test")
        with serving(app) as url:
            yield url, 4 * len(buildings)  # 4 households per building


def test_my_grid_on_a_phone(browser, register_server: tuple[str, int]) -> None:
    url, households = register_server
    traffic = Traffic()
    context, page = watched_page(browser, url, PHONE, traffic, is_mobile=True, has_touch=True)
    try:
        login(page, "m_worker")
        page.goto("/register/my")
        page.wait_for_selector(".wg-my-map[data-loaded='1']", timeout=15_000)
        section = page.locator(".wg-my-grid")
        assert section.count() == 1
        assert int(section.locator(".wg-households").inner_text()) == households
        assert int(section.locator(".wg-keypersons").inner_text()) == 2
        staff = section.locator(".wg-my-staff").inner_text()
        assert "网格长 王网格 137****0001" in staff and "网格员 李网格" in staff
        assert page.locator(".wg-my-map path.leaflet-interactive").count() >= 1
        width = page.evaluate("() => document.documentElement.scrollWidth")
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "register_my_grid_390.png"), full_page=True)
        page.locator("text=居民名册").first.click()
        page.wait_for_url("**/register?grid=*")
        assert page.locator(".wg-reg-table tbody tr").count() > 0
    finally:
        context.close()
    assert width <= PHONE["width"], f"page is {width} px wide on a {PHONE['width']} px phone"
    assert traffic.foreign() == [] and traffic.page_errors == []
