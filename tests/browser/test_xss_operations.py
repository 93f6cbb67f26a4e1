"""Stored XSS on the operations pages in a real browser: register, incidents, patrol, party, boards.

The attack world (``tests/api/attack_helpers.py``) carries markup, script, ``javascript:`` URLs,
SVG, RTL overrides and formula text in every name, room, relation, note, staff duty, party
branch, incident description and address, reporter and device id. Each page is opened as
the role that sees the most of it; every popup and tooltip of every Leaflet map on the page
is opened; no dialog may open, no element or handler from the data may exist, no script
error may happen, and the hostile text must show as literal text.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.attack_helpers import World, attack_world
from tests.browser.conftest import serving
from tests.browser.test_xss import INJECTED_JS

pytestmark = pytest.mark.browser

#: Open every popup and tooltip of every Leaflet map on the page; the texts shown.
OPEN_ALL_JS = """() => {
    const texts = [];
    if (!window.L) return texts;
    const maps = Object.values(window).filter((v) => v instanceof L.Map);
    for (const map of maps) {
        const layers = [];
        map.eachLayer((l) => layers.push(l));
        for (const l of layers.slice(0, 400)) {
            if (l.getPopup && l.getPopup()) { l.openPopup(); texts.push(l.getPopup().getElement()?.textContent || ""); }
            if (l.getTooltip && l.getTooltip()) { l.openTooltip(); texts.push(l.getTooltip().getElement()?.textContent || ""); }
        }
    }
    return texts;
}"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    with attack_world(tmp_path_factory.mktemp("xss_operations")) as world, serving(world.app) as url:
        yield world, url


def _pages(world: World) -> dict[str, list[str]]:
    a, case = world.A, world.cases["worker"]
    staff = [f"/register?grid={a}", f"/register?grid={a}&tab=keypersons", f"/register/residents/{world.residents['A']}",
             f"/register/staff?grid={a}", "/register/my", "/incidents", f"/incidents/{case}",
             f"/incidents/{world.cases['public']}", f"/incidents/{world.cases['12345']}", "/incidents/map",
             "/incidents/queue", "/patrol", "/party", "/boards", f"/g/{a}", "/party/public", "/register/audit",
             "/notifications"]
    return {"admin": staff, "worker": ["/register/my", "/patrol/my", "/incidents/inbox", f"/incidents/{case}",
                                       "/party", f"/register?grid={a}"]}


def _login(page, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill("grid2026plan")
    with page.expect_navigation():
        page.get_by_role("button", name="登录").click()


@pytest.mark.parametrize("role", ["admin", "worker"])
def test_operations_pages_show_hostile_text_as_text(browser, served: tuple[World, str], role: str) -> None:
    world, base = served
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        _login(page, base, role)
        shown, opened = "", 0
        for url in _pages(world)[role]:
            response = page.goto(f"{base}{url}")
            assert response is not None and response.status < 500, (url, response and response.status)
            page.wait_for_load_state("load")
            texts = page.evaluate(OPEN_ALL_JS)
            found = page.evaluate(INJECTED_JS)
            assert found == [], f"{url}: markup from data: {found[:5]}"
            assert dialogs == [], f"{url}: dialogs: {dialogs}"
            assert errors == [], f"{url}: script errors: {errors[:3]}"
            shown += page.inner_text("body") + "\n".join(texts)
            opened += len(texts)
        assert opened > 0  # map popups and tooltips were really opened
        for literal in ('"><script>alert(2)</script>', "<img src=x onerror=alert(1)>", "javascript:alert(3)"):
            assert literal in shown, f"{literal!r} never shown as text"
    finally:
        context.close()
