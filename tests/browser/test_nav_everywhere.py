"""Every page of the bar keeps the bar: on a phone each page still reaches all its links and logout; and every
page the bar reaches, for every role, fits a phone and a laptop, in Chinese, with no console error."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from api.users import DEMO_PASSWORD, DEMO_USERS
from tests.browser.conftest import ROLE_USERS, SCREENSHOTS, Traffic, login, serving, watched_page

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



def test_tablet_bar_puts_the_links_in_the_menu(page) -> None:
    """At 1024 px the admin's links did not fit beside brand, title and logout (the bar cut them):
    below 1280 px they sit in the 菜单 list, all on screen once it opens."""
    page.set_viewport_size({"width": 1024, "height": 768})
    login(page, ROLE_USERS["admin"])
    closed = page.evaluate(BAR_JS)
    assert closed["menu"] is True and closed["logout"] is True and closed["shown"] == 0
    page.get_by_role("button", name="菜单").click()
    opened = page.evaluate(BAR_JS)
    assert opened["shown"] == opened["links"] >= 9, opened

# --- The sweep: every page the bar reaches, for every role, at phone and laptop size -------------

#: Sizes every page must fit: a phone and a laptop.
SIZES = ({"width": 390, "height": 844}, {"width": 1280, "height": 800})
#: Pages a signed-out member of the public opens (the report form, its tracking page, the party map).
PUBLIC_PAGES = ("/login", "/report", "/report/track", "/party/public")
#: Links that are files or actions, not pages (downloads, exports, printable boards).
NOT_PAGES = re.compile(r"\.(pdf|png|svg|csv|xlsx|zip|geojson|json|gpx)$|/export|/logout$|/photos/")
#: Latin words allowed in the UI: the brand, file formats, standards and products named to users.
LATIN_WORDS = frozenset(w.casefold() for w in """Wangge Leaflet CSV XLSX XLS PDF PNG SVG JSON GeoJSON GeoPackage
    GPKG Shapefile SHP GPX KML PLT ZIP OSM OpenStreetMap EPSG WGS CGCS GCJ GPS UTC API URL Open OsmAnd Traccar
    Client Polsby Popper UTF GBK""".split())
#: Latin words of the fixture's own data: the demo accounts' user names, the demo seeding's actor and source,
#: the workspace's author and note.
DATA_WORDS = frozenset({*DEMO_USERS, "demo", "test", "district"})
#: What a page shows a user: visible text and the tooltips/labels of visible elements, the page's
#: size against the window, whether the bar's links fit, squeezed table cells, and the same-origin links.
PAGE_JS = r"""() => {
    const shown = (el) => { const r = el.getBoundingClientRect(), s = getComputedStyle(el);
        return r.width > 0 && r.height > 0 && s.visibility !== "hidden"; };
    const texts = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const el = n.parentElement;
        if (el && n.textContent.trim() && !el.closest("script, style, code, pre") && shown(el)) texts.push(n.textContent.trim());
    }
    for (const el of document.querySelectorAll("[title], [aria-label], [placeholder]")) {
        if (!shown(el)) continue;
        for (const a of ["title", "aria-label", "placeholder"]) if (el.getAttribute(a)) texts.push(el.getAttribute(a));
    }
    // table cells squeezed to a character or two a line (a phone table that should be cards)
    const squeezed = [...document.querySelectorAll("td, th")].filter((c) => {
        const r = c.getBoundingClientRect(), em = parseFloat(getComputedStyle(c).fontSize);
        return shown(c) && c.innerText.trim().length >= 3 && r.width < 2.5 * em && r.height > 3.5 * em;
    }).map((c) => c.innerText.trim().replace(/\s+/g, "").slice(0, 12));
    // map controls of different corners covering each other (the legend over the layer list)
    const corners = [...document.querySelectorAll(".leaflet-control")].filter(shown)
        .map((c) => ({corner: c.parentElement, r: c.getBoundingClientRect(), name: c.className.split(" ").slice(0, 2).join(".")}));
    const overlaps = [];
    for (const a of corners) for (const b of corners) {
        if (a.corner !== b.corner && a.name < b.name && a.r.left < b.r.right - 1 && b.r.left < a.r.right - 1
            && a.r.top < b.r.bottom - 1 && b.r.top < a.r.bottom - 1) overlaps.push(a.name + " / " + b.name);
    }
    const nav = document.querySelector(".wg-nav");
    const navShown = nav && getComputedStyle(nav).display !== "none";
    return {texts, squeezed, overlaps, pageWidth: document.documentElement.scrollWidth, window: document.documentElement.clientWidth,
            navCut: Boolean(navShown && nav.scrollWidth > nav.clientWidth + 1),
            links: [...document.querySelectorAll("a[href]")].filter((a) => a.origin === location.origin && !a.hasAttribute("download"))
                .map((a) => a.pathname)};
}"""


def _latin_words(texts: list[str]) -> set[str]:
    """Latin words of three letters or more that are not brand/format/standard names.

    Codes, user names and identifiers (with digits, ``_``, ``-``, ``.`` or ``:``) are data, not words.
    """
    tokens = {t for text in texts for t in re.split(r"[^A-Za-z0-9_.:/@-]+", text)}
    return {t for t in tokens if re.fullmatch(r"[A-Za-z]{3,}", t) and t.casefold() not in LATIN_WORDS
            and t not in DATA_WORDS}


def _pattern(path: str) -> str:
    """One page per route: /incidents/12 and /incidents/13 are the same page."""
    return re.sub(r"/\d+(?=/|$)", "/N", path)


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh demo app, as `make run` builds it, smaller: a published plan, the demo users, register,
    incidents and patrol tracks."""
    from api.db import session_scope
    from api.incidents.demo import demo_cases
    from api.patrol.demo import demo_tracks, ensure_demo_workers
    from api.register.crypto import cipher_for
    from api.register.demo import demo_people
    from api.users import ensure_demo_users
    from tests.api.register_helpers import published_app
    from webmap.assets.install import install_assets

    install_assets()
    with published_app(tmp_path_factory.mktemp("sweep"), 600, settings={"login_delay_s": 0.0}) as app:
        settings = app.config["WANGGE"]
        with app.app_context():
            with session_scope() as s:
                ensure_demo_users(s)
                demo_people(s, cipher=cipher_for(app.instance_path, settings), settings=settings, max_residents=3000)
                demo_cases(s, settings=settings, per_grid_week=0.2)
                ensure_demo_workers(s, 2)
            with session_scope() as s:
                demo_tracks(s, settings=settings, days=2)
        with serving(app) as url:
            yield url


def _check_page(page, path: str, console: list[str]) -> tuple[list[str], list[str]]:
    """(problems of *path* at each of :data:`SIZES`, same-origin links it shows).

    Loaded at the first size, then the window is resized: the page must fit both, as it must when a
    phone turns or a window is narrowed. A map page is loaded again at each size: its controls are
    laid out at load (folded on a phone, open on a laptop)."""
    console.clear()
    page.set_viewport_size(SIZES[0])
    response = page.goto(path, wait_until="networkidle")
    problems = []
    if response is None or response.status != 200:
        problems.append(f"{path}: answered {response and response.status} to a link this role is shown")
    has_map = page.locator(".leaflet-container").count() > 0
    for i, size in enumerate(SIZES):
        page.set_viewport_size(size)
        if i and has_map:
            page.reload(wait_until="networkidle")
        seen = page.evaluate(PAGE_JS)
        where = f"{path} at {size['width']} px"
        if seen["pageWidth"] > seen["window"]:
            problems.append(f"{where}: {seen['pageWidth']} px wide in a {seen['window']} px window (scrolls sideways)")
        if seen["navCut"]:
            problems.append(f"{where}: the bar cuts its page links")
        if seen["overlaps"]:
            problems.append(f"{where}: map controls cover each other: {seen['overlaps']}")
        if seen["squeezed"]:
            problems.append(f"{where}: table cells a character or two wide: {seen['squeezed'][:5]}")
        english = _latin_words(seen["texts"])
        if english:
            problems.append(f"{where}: untranslated words {sorted(english)}")
    problems += [f"{path}: console: {m}" for m in console]
    return problems, seen["links"]


@pytest.mark.parametrize("role", ["admin", "planner", "worker", "viewer", "public"])
def test_every_page_fits_and_speaks_chinese(browser, demo_url: str, traffic: Traffic, role: str) -> None:
    """Every page the bar reaches (and every page those link to), as *role*, at 390 and 1280 px:
    no sideways scroll, the bar's links whole, no table squeezed to a character a line, no map
    control over another, no console error (a failed request, a 403 behind a
    button), nothing fetched from another machine, no English words left in the UI."""
    context, page = watched_page(browser, demo_url, SIZES[0], traffic)
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    if role == "public":
        pages = list(PUBLIC_PAGES)
    else:
        login(page, role, DEMO_PASSWORD)
        pages = page.eval_on_selector_all(".wg-nav a", "els => els.map(e => e.pathname)") + ["/notifications"]
    problems: list[str] = []
    todo, done = list(pages), set()
    try:
        while todo:
            path = todo.pop(0)
            if _pattern(path) in done or NOT_PAGES.search(path):
                continue
            done.add(_pattern(path))
            found, links = _check_page(page, path, console)
            problems += found
            if path in pages:  # one level down from the bar's pages
                todo += [link for link in links if _pattern(link) not in done]
    finally:
        if problems:
            SCREENSHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"sweep_{role}.png"), full_page=True)
        context.close()
    print(f"{role}: {len(done)} pages")
    assert len(done) >= len(PUBLIC_PAGES)
    assert not problems, "\n".join(problems)
    assert traffic.foreign() == [] and traffic.page_errors == []
