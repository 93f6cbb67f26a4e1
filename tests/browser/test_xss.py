"""Stored XSS (issue 16 §2) in a real browser: a workspace whose every name is hostile.

Every layer and text field of the workspace, the import note, the users' display names,
the plans' names and messages and every grid name carry markup, script, template and URL
syntax (``tests/webmap/hostile.py``). The test visits every page, hovers every feature
of every layer (and clicks some), and fails on any dialog, any element the data injected
into the page, or any console error; the hostile text must show as literal text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import pytest

from tests.browser.conftest import PASSWORD, SCREENSHOTS, Traffic, serving
from tests.databases import database_url_for
from tests.webmap.hostile import hostile, hostile_layers

pytestmark = pytest.mark.browser

N_BUILDINGS = 300
VIEWER = "x_viewer"
PLANNER = "x_planner"


@dataclass(frozen=True)
class HostileServer:
    url: str
    layers: dict[str, gpd.GeoDataFrame]
    plan_ids: tuple[int, int]  # (published, draft with other household bounds)
    grid_names: dict[int, list[str]]
    plan_names: tuple[str, str]
    label: str
    app: Any = None  # the served app (a test may change a setting for a while)


def _partition(app, bounds: tuple[int, int]):
    from api.db import session_scope
    from api.plans.jobs import _layers
    from geo.partition import partition_grids

    with app.app_context(), session_scope() as s:
        layers = _layers(s, None)
    return partition_grids(layers["buildings"], layers["communities"], streets=layers["streets"],
                           compounds=layers["compounds"], min_households=bounds[0],
                           max_households=bounds[1], target_households=sum(bounds) // 2, workers=1)


def _seed(app) -> tuple[dict[str, gpd.GeoDataFrame], tuple[int, int], dict[int, list[str]], tuple[str, str], str]:
    from api.db import session_scope
    from api.plans.store import publish, save_partition
    from api.users import create_user
    from api.workspace import import_workspace
    from geo.prepare import prepare_layers
    from geo.synthetic import synthetic_district

    layers = hostile_layers(synthetic_district(N_BUILDINGS, seed=11).layers)
    label = hostile("数据说明", 0)
    prepared = prepare_layers(layers, settings=app.config["WANGGE"])
    with app.app_context(), session_scope() as s:
        import_workspace(s, prepared, user=hostile("导入", 1), sources={"kind": "synthetic"}, note=label)
        create_user(s, VIEWER, PASSWORD, role="viewer", display_name=hostile("用户", 0))
        create_user(s, PLANNER, PASSWORD, role="planner", display_name=hostile("用户", 4))
    plan_names = (hostile("方案", 0), hostile("方案", 1))
    ids, grid_names = [], {}
    for k, bounds in enumerate(((300, 500), (150, 300))):  # different bounds: buildings move
        result = _partition(app, bounds)
        result.grids["name"] = [hostile("网格", i + k) for i in range(len(result.grids))]
        with app.app_context(), session_scope() as s:
            plan = save_partition(s, result, name=plan_names[k], author=hostile("作者", k), settings={},
                                  message=hostile("说明", k + 2))
            if k == 0:
                publish(s, plan, user=PLANNER)
            ids.append(plan.id)
            grid_names[plan.id] = result.grids["name"].tolist()
    return layers, (ids[0], ids[1]), grid_names, plan_names, label


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileServer]:
    from api import create_app, db
    from webmap.assets.install import install_assets

    install_assets()
    tmp = tmp_path_factory.mktemp("xss")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANGGE_SECRET_KEY", "xss-test-secret")
        app = create_app({"INSTANCE_PATH": str(tmp / "instance"),
                          "DATABASE_URL": database_url_for(tmp)})
    layers, plan_ids, grid_names, plan_names, label = _seed(app)
    try:
        with serving(app) as url:
            yield HostileServer(url, layers, plan_ids, grid_names,
                                plan_names, label, app=app)
    finally:
        db.dispose(app)


def _expected_error(text: str, url: str) -> bool:
    """Console errors no data causes: the browser's favicon probe and the 401 answer to a wrong
    password (Chromium logs every error status of a loaded resource, the page itself included)."""
    return text.startswith("Failed to load resource") and (
        url.endswith("/favicon.ico") or ("/login" in url and "(UNAUTHORIZED)" in text))


@dataclass
class Watch:
    """What the page did that hostile data could have caused."""

    dialogs: list[str]
    console_errors: list[str]
    traffic: Traffic


@pytest.fixture
def watched(browser, hostile_server: HostileServer, request: pytest.FixtureRequest):
    context = browser.new_context(base_url=hostile_server.url, viewport={"width": 1400, "height": 900},
                                  locale="zh-CN")
    page = context.new_page()
    watch = Watch([], [], Traffic())

    def on_dialog(dialog) -> None:
        watch.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda m: watch.console_errors.append(f"{m.text} ({m.location.get('url')})")
            if m.type == "error" and not _expected_error(m.text, m.location.get("url") or "") else None)
    page.on("pageerror", lambda e: watch.traffic.page_errors.append(str(e)))
    page.on("request", lambda r: watch.traffic.requests.append(r.url))
    yield page, watch
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()


#: Elements or attributes only injected markup makes: payload tags, inline handlers, script URLs.
INJECTED_JS = """() => {
    const found = [];
    const add = (what, els) => { for (const e of els) found.push(`${what}: ${e.outerHTML.slice(0, 120)}`); };
    add("img", document.querySelectorAll('img[src="x"]'));
    add("handler", document.querySelectorAll("[onerror], [onload]"));
    add("svg", document.querySelectorAll("svg[onload]"));
    add("js-url", document.querySelectorAll('a[href^="javascript:" i], [src^="javascript:" i]'));
    add("script", Array.from(document.querySelectorAll("script")).filter(
        (s) => /^\\s*alert\\(\\d\\)\\s*$/.test(s.textContent)));
    add("bold", Array.from(document.querySelectorAll("b")).filter((b) => b.textContent === "粗"));
    return found;
}"""

#: Hover every feature of every layer on the map (mouseover through Leaflet, as the pointer
#: does), read the tooltips it opens, close them. Returns [{props, tips}] per feature.
HOVER_ALL_JS = """(max) => {
    const map = window.wanggeMap, out = [], layers = [];
    map.eachLayer((l) => { if (l.feature && (l.getLatLng || l.getBounds)) layers.push(l); });
    for (const l of layers.slice(0, max)) {
        const ll = l.getLatLng ? l.getLatLng() : l.getBounds().getCenter();
        const ev = {latlng: ll, layerPoint: map.latLngToLayerPoint(ll),
                    containerPoint: map.latLngToContainerPoint(ll)};
        l.fire("mouseover", ev, true);
        const tips = Array.from(document.querySelectorAll(".leaflet-tooltip"), (t) => t.textContent);
        const props = Object.fromEntries(Object.entries(l.feature.properties || {})
            .filter(([, v]) => v === null || typeof v !== "object"));  // planner props hold layers
        out.push({props, tips});
        l.fire("mouseout", ev, true);
        map.eachLayer((x) => { if (x.closeTooltip) x.closeTooltip(); });
    }
    return out;
}"""


def _login(page, username: str) -> None:
    page.goto("/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="登录").click()


def _assert_clean(page, watch: Watch, where: str) -> None:
    injected = page.evaluate(INJECTED_JS)
    assert injected == [], f"{where}: markup from data in the page: {injected[:5]}"
    assert watch.dialogs == [], f"{where}: dialogs opened: {watch.dialogs[:5]}"
    assert watch.console_errors == [], f"{where}: console errors: {watch.console_errors[:5]}"
    assert watch.traffic.page_errors == [], f"{where}: JavaScript errors: {watch.traffic.page_errors[:5]}"
    assert watch.traffic.foreign() == [], f"{where}: requests left the machine: {watch.traffic.foreign()[:5]}"
    assert not [u for u in watch.traffic.requests if u.rstrip("/").endswith("/x")], f"{where}: <img src=x> loaded"


def _street_features(streets) -> int:
    """Streets are drawn one feature per name and class (unknown classes shown as minor roads)."""
    from webmap.styles import ROAD_STYLES

    known = streets["road_class"].where(streets["road_class"].isin(list(ROAD_STYLES)), "minor")
    return len(streets.assign(road_class=known)[["name", "road_class"]].fillna("").drop_duplicates())


def _hover_all(page, *, limit: int = 5000) -> list[dict]:
    hovered = page.evaluate(HOVER_ALL_JS, limit)
    assert hovered, "no feature on the map"
    return hovered


def _special(value: object) -> bool:
    """A value with characters that mean something in HTML, JS or Jinja."""
    return isinstance(value, str) and any(c in value for c in "<>{\"'&\\")


def _specials(values) -> int:
    return sum(_special(v) for v in values)


def _assert_literal(hovered: list[dict], field: str, *, at_least: int) -> int:
    """Every hovered feature whose *field* is hostile shows it literally in a tooltip."""
    shown = 0
    for h in hovered:
        value = h["props"].get(field)
        if _special(value):
            assert any(value in t for t in h["tips"]), f"{value!r} not shown literally: {h['tips']}"
            shown += 1
    assert shown >= at_least, f"only {shown} hostile {field!r} values shown"
    return shown


def _real_hover(page, key: str) -> str:
    """Move the real pointer onto the middle feature of window.wanggeLayers[key]; the tooltip text."""
    point = page.evaluate("""(key) => {
        const map = window.wanggeMap, ls = window.wanggeLayers[key].getLayers();
        const l = ls[Math.floor(ls.length / 2)];
        const ll = l.getLatLng ? l.getLatLng() : l.getBounds().getCenter();
        map.setView(ll, 18, {animate: false});
        const p = map.latLngToContainerPoint(ll), box = map.getContainer().getBoundingClientRect();
        return {x: box.left + p.x, y: box.top + p.y};
    }""", key)
    page.mouse.move(point["x"] - 3, point["y"] - 3)
    page.mouse.move(point["x"], point["y"], steps=3)
    page.mouse.click(point["x"], point["y"])
    tip = page.locator(".leaflet-tooltip").first
    tip.wait_for(state="visible", timeout=5000)
    return tip.text_content() or ""


def test_login_page_shows_a_hostile_username_as_text(watched) -> None:
    page, watch = watched
    bad = hostile("登录", 0) + hostile("登录", 1)
    page.goto("/login?next=javascript:alert(9)")
    page.get_by_label("用户名").fill(bad)
    page.get_by_label("密码").fill("wrong-password")
    page.get_by_role("button", name="登录").click()
    page.wait_for_load_state("networkidle")
    assert "/login" in page.url
    _assert_clean(page, watch, "/login")


def test_workspace_map_shows_every_hostile_name_as_text(watched, hostile_server: HostileServer) -> None:
    page, watch = watched
    _login(page, VIEWER)
    page.wait_for_function("() => window.wanggeLayers && window.wanggeLayers.grids")
    _assert_clean(page, watch, "/map on load")
    # The bar shows the hostile display name and import note literally.
    assert hostile("用户", 0) in page.locator(".wg-user-name").text_content()
    assert hostile_server.label in page.locator(".wg-data-label").text_content()
    names = page.locator(".wg-community-name").all_text_contents()
    assert sorted(names) == sorted(hostile_server.layers["communities"]["name"])
    legend = page.locator(".wg-legend").text_content()
    assert f"#{hostile_server.plan_ids[0]} {hostile_server.plan_names[0]}" in legend
    hostile_categories = [c for c in hostile_server.layers["service_points"]["category"] if c.startswith("类别")]
    assert all(c in legend for c in hostile_categories)

    hovered = _hover_all(page)
    counts = page.evaluate("() => Object.fromEntries(Object.entries(window.wanggeLayers).map(([k, l]) => [k, l.getLayers().length]))")
    expected = {k: len(g) for k, g in hostile_server.layers.items()}
    expected["community_names"] = expected["communities"]
    expected["grids"] = len(hostile_server.grid_names[hostile_server.plan_ids[0]])
    expected["streets"] = _street_features(hostile_server.layers["streets"])
    assert counts == expected
    # Every feature with a tooltip was hovered: buildings, communities, compounds, streets, points, grids.
    assert len(hovered) == sum(v for k, v in expected.items() if k != "community_names")
    names = [n for k in ("buildings", "communities", "compounds", "streets", "service_points")
             for n in hostile_server.layers[k]["name"]] + hostile_server.grid_names[hostile_server.plan_ids[0]]
    shown = _assert_literal(hovered, "name", at_least=_specials(names))
    _assert_literal(hovered, "kind", at_least=_specials(hostile_categories))  # hostile categories
    grid_tips = [h for h in hovered if "code" in h["props"]]
    assert sorted(h["props"]["name"] for h in grid_tips) == sorted(hostile_server.grid_names[hostile_server.plan_ids[0]])
    assert all(h["props"]["code"] in " ".join(h["tips"]) and h["props"]["hh"] in " ".join(h["tips"]) for h in grid_tips), grid_tips[:2]
    for key in ("buildings", "service_points", "streets"):
        assert _real_hover(page, key)
    _assert_clean(page, watch, f"/map after hovering {shown} hostile names")


def test_plan_pages_show_hostile_plan_and_grid_names_as_text(watched, hostile_server: HostileServer) -> None:
    page, watch = watched
    published, draft = hostile_server.plan_ids
    _login(page, PLANNER)
    page.goto("/plans")
    page.locator("#wg-plan-list tbody tr[data-plan]").first.wait_for()
    listed = page.locator("#wg-plan-list tbody").text_content()
    assert all(name in listed for name in hostile_server.plan_names)
    _assert_clean(page, watch, "/plans")

    page.goto(f"/plans/{published}")
    page.wait_for_function("() => document.body.dataset.ready === '1'")
    assert hostile_server.plan_names[0] in page.locator("#wg-summary").text_content()
    table = page.locator("#wg-grid-table tbody .wg-gname").all_text_contents()
    assert sorted(table) == sorted(hostile_server.grid_names[published])
    hovered = _hover_all(page)
    grids = [h for h in hovered if "grid_id" in h["props"] and "building_id" not in h["props"]]
    assert len(grids) == len(hostile_server.grid_names[published])
    _assert_literal(grids, "name", at_least=_specials(hostile_server.grid_names[published]))
    page.locator("#wg-grid-table tbody tr").first.click()  # select a grid from the table
    # Zoom onto the buildings: they load per view and carry hostile names too.
    page.evaluate("(z) => { window.wanggeMap.setView(window.wanggeMap.getCenter(), z, {animate: false}); }", 18)
    page.wait_for_function("() => window.wanggePlanner.buildingsLoaded")
    hovered = _hover_all(page)
    buildings = [h for h in hovered if "building_id" in h["props"]]
    assert buildings, "no building loaded at zoom 18"
    _assert_literal(buildings, "name", at_least=1)
    _assert_clean(page, watch, f"/plans/{published}")

    page.goto(f"/plans/{published}/diff/{draft}")
    page.wait_for_function("() => document.body.dataset.ready === '1'")
    side = page.locator(".wg-summary").text_content()
    assert all(name in side for name in hostile_server.plan_names)
    hovered = _hover_all(page)
    moved = [h for h in hovered if "from" in h["props"]]
    assert moved, page.locator("#wg-diff-count").text_content()
    assert all(h["props"]["building_id"] in " ".join(h["tips"]) for h in moved)
    page.locator("#wg-diff-table tbody tr").first.click()
    _assert_clean(page, watch, "diff page")


def test_access_page_shows_hostile_names_as_text(watched, hostile_server: HostileServer) -> None:
    page, watch = watched
    _login(page, VIEWER)
    page.goto("/access?category=bus_stop")
    page.wait_for_function("() => window.wanggeLayers && window.wanggeLayers.services")
    assert hostile_server.plan_names[0] in page.locator(".wg-access-note").text_content()
    hovered = _hover_all(page)
    _assert_literal([h for h in hovered if "pct" in h["props"]], "name",
                    at_least=_specials(hostile_server.grid_names[hostile_server.plan_ids[0]]))
    _assert_literal([h for h in hovered if "walk" not in h["props"] and "pct" not in h["props"]], "name", at_least=1)
    page.locator(".leaflet-control-layers").hover()
    _assert_clean(page, watch, "/access")


def test_plan_overview_shows_hostile_community_names_as_text(watched, hostile_server: HostileServer) -> None:
    """The overview of a city-size plan (its communities in a table and as dots) shows names literally."""
    page, watch = watched
    published = hostile_server.plan_ids[0]
    settings = hostile_server.app.config["WANGGE"]
    old = settings["planner_overview_min_grids"]
    settings["planner_overview_min_grids"] = 1
    try:
        _login(page, PLANNER)
        page.goto(f"/plans/{published}")
        page.wait_for_function("() => document.body.dataset.ready === '1'")
        names = hostile_server.layers["communities"]["name"].tolist()
        shown = page.locator("#wg-community-table tbody tr[data-community] td:first-child a").all_text_contents()
        assert sorted(shown) == sorted(names)
        dots = [h for h in _hover_all(page) if "grids" in h["props"]]  # not the outlines (no tooltip)
        assert len(dots) == len(names)
        _assert_literal(dots, "name", at_least=_specials(names))
        _assert_clean(page, watch, f"/plans/{published} (overview)")
    finally:
        settings["planner_overview_min_grids"] = old
