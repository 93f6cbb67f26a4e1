"""The app under a path prefix (``url_prefix = /wangge``, as behind ``location /wangge/`` of nginx):
every page, asset and script call stays under /wangge/ and answers (issue 17 §3)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.conftest import (
    CSP_LISTENER,
    PASSWORD,
    ROLE_USERS,
    VIEWPORT,
    _seed,
    _synthetic_layers,
    serving,
)

pytestmark = pytest.mark.browser

PREFIX = "/wangge"


@pytest.fixture(scope="module")
def prefixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """(server URL without the prefix, id of a partitioned plan) of an app served under /wangge."""
    from api import create_app, db
    from tests.api.plans_helpers import wait_job
    from webmap.assets.install import install_assets

    install_assets()
    tmp = tmp_path_factory.mktemp("subpath")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANGGE_SECRET_KEY", "subpath-test")
        app = create_app({"INSTANCE_PATH": str(tmp / "instance"), "DATABASE_URL": f"sqlite:///{tmp / 'w.db'}",
                          "WTF_CSRF_ENABLED": False,
                          "WANGGE": {"url_prefix": PREFIX, "login_delay_s": 0.0, "login_rate_limit": "1000 per minute"}})
    _seed(app, *_synthetic_layers())
    client = app.test_client()
    assert client.post(f"{PREFIX}/login", data={"username": ROLE_USERS["planner"], "password": PASSWORD}).status_code == 302
    job = wait_job(client, client.post(f"{PREFIX}/api/plans/partition", json={"name": "子路径"}).get_json()["job_id"])
    assert job["state"] == "done", job
    app.config["WTF_CSRF_ENABLED"] = True  # the browser sends its token like everywhere else
    try:
        with serving(app) as url:
            yield url, int(job["plan_id"])
    finally:
        db.dispose(app)


def test_pages_assets_and_api_calls_stay_under_the_prefix(browser, prefixed: tuple[str, int]) -> None:
    base, plan = prefixed
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    requests: list[str] = []
    bad: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("response", lambda r: bad.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    # requests still loading when the test moves to the next page are aborted by the browser: not failures
    page.on("requestfailed", lambda r: None if "ERR_ABORTED" in (r.failure or "") else bad.append(
        f"failed {r.url}: {r.failure}"))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.text.startswith("CSP violation") else None)
    try:
        page.goto(f"{base}{PREFIX}/login")
        page.get_by_label("用户名").fill(ROLE_USERS["planner"])
        page.get_by_label("密码").fill(PASSWORD)
        with page.expect_navigation():
            page.get_by_role("button", name="登录").click()
        page.wait_for_url(f"{base}{PREFIX}/map")
        page.wait_for_function("() => window.wanggeLayers && window.wanggeLayers.buildings")  # folium assets ran
        page.get_by_role("link", name="网格方案").click()
        page.wait_for_url(f"{base}{PREFIX}/plans**")
        page.goto(f"{base}{PREFIX}/plans/{plan}")
        page.wait_for_function("() => window.wanggePlannerReady", timeout=60_000)  # planner.js API calls
        assert page.evaluate("() => window.wanggePlanner.state.grids.size") > 3  # the grids came and are drawn
        page.goto(f"{base}{PREFIX}/import")
        # imports.js writes "/api/imports/..." itself: root.js sends such calls under the prefix
        status, url, body = page.evaluate("""async () => {
            const r = await fetch('/api/imports/uploads/' + 'f'.repeat(32) + '/columns?kind=buildings');
            return [r.status, r.url, await r.text()]; }""")
        assert (status, url.startswith(f"{base}{PREFIX}/api/imports/")) == (404, True)
        assert "upload_not_found" in body  # the app's own answer: the call reached the import routes
        page.goto(f"{base}{PREFIX}/party")
        page.wait_for_selector(".folium-map")
    finally:
        context.close()
    ours = [u for u in requests if u.startswith(base)]
    assert ours and [u for u in ours if not u.startswith(f"{base}{PREFIX}/")] == []
    assert [b for b in bad if "/columns?" not in b] == [] and errors == []
    assert any("/static/vendor/leaflet" in u for u in ours)
    assert any(f"/api/plans/{plan}/grids.geojson" in u for u in ours)

