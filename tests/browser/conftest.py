"""Browser harness: the real app on a loopback port, driven by headless Debian Chromium.

The app gets a temporary instance (SQLite in tmp), a seeded synthetic workspace and one
user per role. Every page records its requests: a request to any host that is not
loopback fails the test (the app must work on networks without internet), and so does
an uncaught JavaScript error. A failing test leaves ``screenshots/<test>.png``.
Playwright drives /usr/bin/chromium; never run ``playwright install``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import geopandas as gpd
import pytest

from tests.databases import database_url_for
from tests.live import serving

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).parent / "screenshots"
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
PASSWORD = "grid2026plan"
N_BUILDINGS = 1500
ROLE_USERS = {"admin": "b_admin", "planner": "b_planner", "worker": "b_worker", "viewer": "b_viewer"}
#: A user only the lock-out test may lock.
LOCKOUT_USER = "b_lockme"
VIEWPORT = {"width": 1400, "height": 900}
#: Reports every Content-Security-Policy violation of the page as a console message.
CSP_LISTENER = """document.addEventListener("securitypolicyviolation", (e) => console.error(
    "CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at "
    + e.sourceFile + ":" + e.lineNumber));"""


@dataclass(frozen=True)
class LiveServer:
    url: str
    layers: dict[str, gpd.GeoDataFrame]
    label: str
    #: the served Flask app (a test may change a setting in its config for a while)
    app: Any = None


@dataclass
class Traffic:
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)

    def foreign(self) -> list[str]:
        """Requests to hosts that are not loopback (data:/blob:/about: URLs are local)."""
        return [u for u in self.requests
                if urlsplit(u).scheme in ("http", "https", "ws", "wss")
                and (urlsplit(u).hostname or "") not in LOOPBACK]


def _synthetic_layers() -> tuple[dict[str, gpd.GeoDataFrame], str]:
    try:
        from geo.synthetic import LABEL, synthetic_district
    except ImportError:  # pragma: no cover - geo.synthetic is part of the project
        from tests.webmap.factories import make_layers

        return make_layers(N_BUILDINGS), "合成示例数据（测试）"
    district = synthetic_district(N_BUILDINGS, seed=7)
    names = ("communities", "buildings", "streets", "compounds", "service_points")
    return {k: getattr(district, k) for k in names}, LABEL


def _seed(app, layers: dict[str, gpd.GeoDataFrame], label: str) -> None:
    from api.db import session_scope
    from api.users import create_user
    from api.workspace import import_workspace

    try:
        from geo.prepare import prepare_layers

        prepared = prepare_layers(layers, settings=app.config["WANGGE"])
    except ImportError:  # the synthetic layers are canonical already
        prepared = SimpleNamespace(layers=layers, report=None)
    with app.app_context(), session_scope() as s:
        import_workspace(s, prepared, user="browser-test", sources={"kind": "synthetic"}, note=label)
        for role, name in ROLE_USERS.items():
            create_user(s, name, PASSWORD, role=role, display_name=f"测试{role}")
        create_user(s, LOCKOUT_USER, PASSWORD, role="viewer")


def watched_page(browser: Any, url: str, viewport: dict[str, int], traffic: Traffic, **device: Any) -> tuple[Any, Any]:
    """(context, page) of a new browser context on *url* whose requests and JS errors go to *traffic*."""
    context = browser.new_context(base_url=url, viewport=viewport, locale="zh-CN", **device)
    page = context.new_page()
    page.on("request", lambda r: traffic.requests.append(r.url))
    page.on("pageerror", lambda e: traffic.page_errors.append(str(e)))
    return context, page


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The real app (create_app) served by werkzeug on 127.0.0.1, a free port, in a thread."""
    from api import create_app, db
    from webmap.assets.install import install_assets

    install_assets()  # instant when the vendor folder is current
    tmp = tmp_path_factory.mktemp("browser")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANGGE_SECRET_KEY", "browser-test-secret")
        app = create_app({"INSTANCE_PATH": str(tmp / "instance"),
                          "DATABASE_URL": database_url_for(tmp),
                          # every test logs in from 127.0.0.1; throttling has its own tests
                          "WANGGE": {"login_delay_s": 0.0, "login_rate_limit": "1000 per minute"}})
    layers, label = _synthetic_layers()
    _seed(app, layers, label)
    try:
        with serving(app) as url:
            yield LiveServer(url=url, layers=layers, label=label, app=app)
    finally:
        db.dispose(app)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian chromium (`make system-deps`) to run browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def traffic() -> Traffic:
    return Traffic()


@pytest.fixture
def page(browser, live_server: LiveServer, traffic: Traffic, request: pytest.FixtureRequest):
    """A fresh page (own cookies) whose base URL is the live server; checks its traffic after the test."""
    context = browser.new_context(base_url=live_server.url, viewport=VIEWPORT, locale="zh-CN")
    pg = context.new_page()
    pg.on("request", lambda r: traffic.requests.append(r.url))
    pg.on("requestfailed", lambda r: traffic.failed.append(r.url))
    pg.on("pageerror", lambda e: traffic.page_errors.append(str(e)))
    context.add_init_script(CSP_LISTENER)
    pg.on("console", lambda m: traffic.csp_violations.append(m.text) if m.text.startswith("CSP violation") else None)
    yield pg
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        SCREENSHOTS.mkdir(exist_ok=True)
        pg.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    foreign = traffic.foreign()
    if foreign:
        pytest.fail(f"{len(foreign)} request(s) left the machine: {foreign[:10]}")
    if traffic.page_errors:
        pytest.fail(f"JavaScript errors on the page: {traffic.page_errors[:5]}")
    if traffic.csp_violations:
        pytest.fail(f"Content-Security-Policy violations: {traffic.csp_violations[:5]}")


def login(pg, username: str, password: str = PASSWORD) -> None:
    """Fill and submit the login form of *pg* as a user would."""
    pg.goto("/login")
    pg.get_by_label("用户名").fill(username)
    pg.get_by_label("密码").fill(password)
    with pg.expect_navigation():  # wait for the answer page, not the old one
        pg.get_by_role("button", name="登录").click()


@pytest.fixture
def logged_in_page(page) -> Callable[[str], object]:
    """``logged_in_page(role)``: the page, logged in as the test user of *role*, on /map."""

    def _as(role: str):
        login(page, ROLE_USERS[role])
        page.wait_for_url("**/map")
        page.wait_for_function("() => window.wanggeLayers && window.wanggeLayers.buildings")
        return page

    return _as
