"""Every page of the bar keeps the bar: on a phone each page still shows its links and logout."""

from __future__ import annotations

import pytest

from tests.browser.conftest import ROLE_USERS, login

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}

#: The first page link and the logout button, each wholly inside the viewport (or None).
BAR_JS = """() => { const inside = (el) => { if (!el) return false; const r = el.getBoundingClientRect();
        return r.width > 0 && r.height > 0 && r.left >= 0 && r.right <= innerWidth && r.top >= 0 && r.bottom <= innerHeight; };
    return {links: document.querySelectorAll(".wg-nav a").length,
            first: inside(document.querySelector(".wg-nav a")), logout: inside(document.querySelector(".wg-logout button"))}; }"""


def test_every_page_keeps_its_links_on_a_phone(page) -> None:
    """A planner on a phone can leave any page of the bar (the plans pages once hid the links)."""
    page.set_viewport_size(PHONE)
    login(page, ROLE_USERS["planner"])
    hrefs = page.eval_on_selector_all(".wg-nav a", "els => els.map(e => e.getAttribute('href'))")
    assert len(hrefs) >= 5
    missing = []
    for href in hrefs:
        page.goto(href, wait_until="domcontentloaded")
        bar = page.evaluate(BAR_JS)
        if bar != {"links": len(hrefs), "first": True, "logout": True}:
            missing.append((href, bar))
    assert missing == []
