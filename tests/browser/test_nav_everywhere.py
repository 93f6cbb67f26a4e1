"""Every page of the bar keeps the bar: on a phone each page still reaches all its links and logout."""

from __future__ import annotations

import pytest

from tests.browser.conftest import ROLE_USERS, login

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}

#: How many page links there are, how many lie wholly inside the viewport, and whether the
#: 菜单 button and the logout button do.
BAR_JS = """() => { const inside = (el) => { if (!el) return false; const r = el.getBoundingClientRect();
        return r.width > 0 && r.height > 0 && r.left >= 0 && r.right <= innerWidth && r.top >= 0 && r.bottom <= innerHeight; };
    const links = [...document.querySelectorAll(".wg-nav a")];
    return {links: links.length, shown: links.filter(inside).length,
            menu: inside(document.querySelector(".wg-menu-btn")), logout: inside(document.querySelector(".wg-logout button"))}; }"""


@pytest.mark.parametrize("role", ["planner", "worker"])
def test_every_page_reaches_every_link_on_a_phone(page, role: str) -> None:
    """On a phone every link of the bar is reachable from every page (the worker's bar once cut
    上报事件 at the screen edge; the plans pages once hid the links): 菜单 opens them all on screen."""
    page.set_viewport_size(PHONE)
    login(page, ROLE_USERS[role])
    hrefs = page.eval_on_selector_all(".wg-nav a", "els => els.map(e => e.getAttribute('href'))")
    assert len(hrefs) >= 5
    missing = []
    for href in hrefs:
        page.goto(href, wait_until="domcontentloaded")
        closed = page.evaluate(BAR_JS)
        page.get_by_role("button", name="菜单").click()
        opened = page.evaluate(BAR_JS)
        if (closed["menu"], closed["logout"], opened) != (True, True, {"links": len(hrefs), "shown": len(hrefs),
                                                                       "menu": True, "logout": True}):
            missing.append((href, closed, opened))
    assert missing == []
    # The menu closes on Escape, and a link in it opens its page.
    page.keyboard.press("Escape")
    assert page.evaluate(BAR_JS)["shown"] == 0
    page.get_by_role("button", name="菜单").click()
    page.locator(".wg-nav a").last.click()
    page.wait_for_url(f"**{hrefs[-1]}")


def test_desktop_bar_shows_links_without_a_menu(page) -> None:
    """At 1366 px the links sit in the bar itself; the 菜单 button is for phones only."""
    page.set_viewport_size({"width": 1366, "height": 820})
    login(page, ROLE_USERS["worker"])
    bar = page.evaluate(BAR_JS)
    assert bar["menu"] is False and bar["logout"] is True
    assert bar["shown"] == bar["links"] >= 5
    assert page.locator('.wg-nav a[aria-current="page"]').count() == 1
