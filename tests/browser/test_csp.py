"""Every page works under the strict Content-Security-Policy (api.security) in a real browser.

The page fixture reports each ``securitypolicyviolation`` event as a console message; this
test visits every page, checks the map drew (Leaflet panes and layers present) and fails on
any violation, e.g. an inline script without the request's nonce.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import PASSWORD, ROLE_USERS, LiveServer, Traffic, login
from tests.browser.test_planner import _any_plan

pytestmark = pytest.mark.browser

MAP_DRAWN = """() => document.querySelectorAll('.leaflet-map-pane .leaflet-overlay-pane canvas, '
    + '.leaflet-map-pane .leaflet-overlay-pane path').length"""


def _visit(page, path: str, traffic: Traffic, *, map_page: bool) -> None:
    response = page.goto(path)
    assert response is not None and response.ok, path
    csp = response.headers["content-security-policy"]
    assert "'nonce-" in csp and "frame-ancestors 'none'" in csp, path
    page.wait_for_load_state("load")
    if map_page:
        assert page.locator(".leaflet-pane.leaflet-map-pane").count() == 1, path
        page.wait_for_function(MAP_DRAWN)
    page.wait_for_timeout(300)  # late scripts (fetch callbacks) get their chance to violate
    assert traffic.csp_violations == [], path


def test_every_page_works_under_the_csp(page, browser, live_server: LiveServer, traffic: Traffic) -> None:
    _visit(page, "/login", traffic, map_page=False)
    plan_id = _any_plan(browser, live_server)
    login(page, ROLE_USERS["planner"], PASSWORD)
    page.wait_for_url("**/map")
    for path, map_page in (("/map", True), ("/plans", False), (f"/plans/{plan_id}", True),
                           (f"/plans/{plan_id}/diff/{plan_id}", True), ("/access", True)):
        _visit(page, path, traffic, map_page=map_page)
    page.goto(f"/plans/{plan_id}")
    page.wait_for_function("() => window.wanggePlannerReady && document.body.dataset.ready", timeout=30_000)
    assert page.evaluate("() => window.wanggePlanner.state.grids.size") > 0
    assert traffic.csp_violations == []


def test_inline_script_without_nonce_is_blocked(page, live_server: LiveServer, traffic: Traffic) -> None:
    """The policy really bites: a script injected as markup does not run and is reported."""
    page.goto("/login")
    ran = page.evaluate("""() => { const d = document.createElement('div');
        d.innerHTML = '<img src=x onerror="window.__pwned = 1">'; document.body.appendChild(d);
        return new Promise((r) => setTimeout(() => r(window.__pwned === 1), 300)); }""")
    assert ran is False
    assert any("script-src" in v for v in traffic.csp_violations)
    traffic.csp_violations.clear()  # the violation was the point of this test
