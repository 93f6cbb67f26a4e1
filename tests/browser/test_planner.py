"""Planner map app end to end: partition from the UI, move, undo, publish, export; viewers read only.

Runs the real app (tests/browser/conftest.py) with the JSON routes of api/plans. Screenshots
of the plan page (planner, viewer) and of the diff view go to ``screenshots/plan_*.png``.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.browser.conftest import PASSWORD, ROLE_USERS, SCREENSHOTS, LiveServer, Traffic, login

pytestmark = pytest.mark.browser

#: The plan the partition test made, for the tests after it (the live server is per session).
_MADE: dict[str, int] = {}

#: A grid's households as its table row shows them (null while the row waits for the next frame).
HOUSEHOLDS = """(g) => { const td = document.querySelector(`tr[data-grid="${CSS.escape(g)}"] td[data-col="households"]`);
    return td ? Number(td.textContent.replace(/,/g, "")) : null; }"""
STATE_HOUSEHOLDS = "(g) => window.wanggePlanner.state.grids.get(g).props.households"
STATE_BUILDINGS = "(g) => window.wanggePlanner.state.grids.get(g).props.buildings"
PICK_BUILDING = """([gid, targets]) => {
  // the building of grid gid nearest to the outline of one of the target grids (a move must
  // go to a grid the building's cell borders): vertex distance, over every candidate target
  const P = window.wanggePlanner, map = P.map;
  const ls = P.buildingLayer.getLayers().filter(l => l.feature.properties.grid_id === gid
      && Number(l.feature.properties.households) > 0
      && map.getBounds().contains(l.getBounds()));
  let best = null;
  for (const to of targets) {
    const pts = P.state.grids.get(to).layer.getLatLngs().flat(3);
    for (const l of ls) {
      const c = l.getBounds().getCenter();
      const d = Math.min(...pts.map(q => c.distanceTo(q)));
      if (!best || d < best.d) best = {d, l, to};
    }
  }
  const p = map.latLngToContainerPoint(best.l.getBounds().getCenter());
  const box = map.getContainer().getBoundingClientRect();
  return {x: box.left + p.x, y: box.top + p.y, id: best.l.feature.properties.building_id, to: best.to};
}"""
PICK_SHARED = """([gid, targets]) => {
  // a building of grid gid whose unit (cell) holds other buildings, nearest to a target grid
  const P = window.wanggePlanner, map = P.map;
  const all = P.buildingLayer.getLayers();
  const per = new Map();
  for (const l of all) per.set(l.feature.properties.cell_id, (per.get(l.feature.properties.cell_id) || 0) + 1);
  const ls = all.filter(l => l.feature.properties.grid_id === gid && per.get(l.feature.properties.cell_id) > 1
      && map.getBounds().contains(l.getBounds()));
  let best = null;
  for (const to of targets) {
    const pts = P.state.grids.get(to).layer.getLatLngs().flat(3);
    for (const l of ls) {
      const d = Math.min(...pts.map(q => l.getBounds().getCenter().distanceTo(q)));
      if (!best || d < best.d) best = {d, l, to};
    }
  }
  if (!best) return null;
  const p = map.latLngToContainerPoint(best.l.getBounds().getCenter());
  const box = map.getContainer().getBoundingClientRect();
  const cells = new Set(all.filter(l => l.feature.properties.grid_id === gid).map(l => l.feature.properties.cell_id));
  return {x: box.left + p.x, y: box.top + p.y, id: best.l.feature.properties.building_id, to: best.to,
          unit: per.get(best.l.feature.properties.cell_id), whole: cells.size === 1,
          cell: best.l.feature.properties.cell_id};
}"""
#: Properties of a building as the map's building layer has them.
BUILDING_PROPS = """(b) => window.wanggePlanner.buildingLayer.getLayers()
  .find(l => l.feature.properties.building_id === b).feature.properties"""
POST_AS_PAGE = """async ([path, body]) => {
  const r = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json",
      "X-CSRFToken": document.querySelector('meta[name="csrf-token"]').content}, body: JSON.stringify(body)});
  return {status: r.status, body: await r.json()};
}"""


def _table_households(page, grid: str) -> int:
    """Households of *grid* read from the table (rows past the first screenful arrive a frame later)."""
    page.wait_for_function(f"(g) => ({HOUSEHOLDS})(g) !== null", arg=grid, timeout=10_000)
    return page.evaluate(HOUSEHOLDS, grid)


def _wait_ready(page) -> None:
    page.wait_for_function("() => window.wanggePlannerReady && document.body.dataset.ready", timeout=30_000)


def _partition_from_ui(page) -> int:
    page.goto("/plans")
    page.get_by_role("button", name="自动划分").click()
    page.get_by_label("方案名称").fill("浏览器测试方案")
    page.get_by_role("button", name="开始划分").click()
    page.locator("#wg-job").wait_for(state="visible")
    page.wait_for_url("**/plans/*", timeout=120_000)
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def test_planner_partitions_moves_undoes_publishes_exports(page, live_server: LiveServer,
                                                           traffic: Traffic, tmp_path: Path) -> None:
    login(page, ROLE_USERS["planner"])
    plan_id = _partition_from_ui(page)
    _MADE["plan"] = plan_id
    _wait_ready(page)
    assert any("/api/jobs/" in u for u in traffic.requests)  # the progress was polled
    rows = page.locator("#wg-grid-table tbody tr")
    assert rows.count() == page.evaluate("() => window.wanggePlanner.state.grids.size") > 1
    assert page.locator("#wg-toolbar").is_visible()

    # pick a grid with a neighbour, zoom to it from the table, click one of its buildings
    row = rows.nth(0)
    grid = row.get_attribute("data-grid")
    row.click()
    page.wait_for_function("(g) => window.wanggePlanner.buildingLayer.getLayers()"
                           ".some(l => l.feature.properties.grid_id === g)", arg=grid, timeout=20_000)
    assert "wg-selected" in (row.get_attribute("class") or "")
    options = page.locator("#wg-target option")
    targets = [v for i in range(options.count()) if (v := options.nth(i).get_attribute("value"))]
    assert targets and grid not in targets
    target = page.evaluate(PICK_BUILDING, [grid, targets])
    to = target["to"]
    page.mouse.click(target["x"], target["y"])
    assert "已选 1 栋楼" in page.locator("#wg-selection").inner_text()
    page.select_option("#wg-target", to)
    before = {g: _table_households(page, g) for g in (grid, to)}
    page.get_by_role("button", name="移动所选楼栋").click()
    # a building whose unit holds others (or whose grid would empty) asks first, listing them
    page.wait_for_function("() => window.wanggePlanner.lastEdit || document.querySelector('.wg-confirm')",
                           timeout=20_000)
    if page.locator(".wg-confirm").count():
        assert "尚未移动" in page.locator(".wg-confirm").inner_text()
        page.locator(".wg-confirm").get_by_role("button", name="确认移动").click()
        page.wait_for_function("() => window.wanggePlanner.lastEdit", timeout=20_000)
    after = {g: _table_households(page, g) for g in (grid, to)}
    moved = before[grid] - after[grid]
    assert moved > 0 and after[to] - before[to] == moved
    assert "移动楼栋完成" in page.locator("#wg-messages").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "plan_planner.png"))

    # save the moved state as a version, then undo on this one: the diff shows the building
    page.once("dialog", lambda d: d.accept("浏览器测试：移动一栋楼"))
    page.get_by_role("button", name="保存版本").click()
    link = page.locator("#wg-messages a").first
    link.wait_for()
    saved = int(link.get_attribute("href").rsplit("/", 1)[1])
    page.get_by_role("button", name="撤销").click()
    page.wait_for_function(f"([g, n]) => ({STATE_HOUSEHOLDS})(g) === n", arg=[grid, before[grid]], timeout=20_000)
    assert _table_households(page, to) == before[to]

    page.get_by_role("button", name="发布").click()
    # The page reloads after publishing: the status element is briefly absent.
    page.wait_for_function("() => (document.querySelector('#wg-plan-status')?.textContent || '').includes('生效中')",
                           timeout=20_000)
    _wait_ready(page)  # the page reloaded: a published plan shows no edit tools and no rollback
    assert "已发布" in page.locator("#wg-messages").inner_text()
    assert page.locator('#wg-toolbar [data-action="move"]').count() == 0
    assert page.locator('#wg-toolbar [data-tool="box"]').count() == 0
    assert page.locator('#wg-toolbar [data-action="rollback"]').count() == 0
    assert page.get_by_role("button", name="另存为草稿").is_visible()
    _MADE["published"] = plan_id

    page.locator("#wg-export-button").click()
    with page.expect_download() as download:
        page.locator('a[data-format="gpkg"]').click()
    path = tmp_path / "plan.gpkg"
    download.value.save_as(path)
    from geo.readers import read_layer

    exported = read_layer(path, kind="buildings", layer="buildings")
    assert set(exported["building_id"].astype(str)) == set(live_server.layers["buildings"]["building_id"].astype(str))

    page.goto(f"/plans/{plan_id}/diff/{saved}")
    _wait_ready(page)
    assert "栋楼换了网格" in page.locator("#wg-diff-count").inner_text()
    assert page.locator("#wg-diff-table tbody tr").count() >= 1
    assert target["id"] in page.locator("#wg-diff-table").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "plan_diff.png"))


def _published_plan(browser, live_server: LiveServer) -> int:
    """A published plan (the partition test's, else one made and published here)."""
    if "published" in _MADE:
        return _MADE["published"]
    plan_id = _any_plan(browser, live_server)
    context = browser.new_context(base_url=live_server.url)
    pg = context.new_page()
    login(pg, ROLE_USERS["planner"], PASSWORD)
    pg.goto(f"/plans/{plan_id}")
    version = pg.evaluate(f"async () => (await (await fetch('/api/plans/{plan_id}')).json()).version")
    assert pg.evaluate(POST_AS_PAGE, [f"/api/plans/{plan_id}/publish", {"version": version}])["status"] == 200
    context.close()
    _MADE["published"] = plan_id
    return plan_id


def _any_plan(browser, live_server: LiveServer) -> int:
    if "plan" in _MADE:
        return _MADE["plan"]
    context = browser.new_context(base_url=live_server.url)
    pg = context.new_page()
    login(pg, ROLE_USERS["planner"], PASSWORD)
    plan_id = _partition_from_ui(pg)
    context.close()
    _MADE["plan"] = plan_id
    return plan_id


def test_viewer_gets_the_map_read_only_and_403_from_edits(page, browser, live_server: LiveServer) -> None:
    plan_id = _published_plan(browser, live_server)
    login(page, ROLE_USERS["viewer"])
    page.goto(f"/plans/{plan_id}")
    _wait_ready(page)
    assert page.locator("#wg-toolbar").count() == 0
    assert page.locator("#wg-partition-form").count() == 0
    assert page.locator("#wg-grid-table tbody tr").count() > 1
    assert "只读" in page.locator("#wg-summary").inner_text()
    assert page.locator("#wg-export-button").count() == 0  # exports are planners'
    drafts = page.evaluate("async () => (await (await fetch('/api/plans')).json()).map(p => p.status)")
    assert drafts and set(drafts) == {"published"}
    assert page.evaluate("() => window.wanggeMap.pm === undefined")  # no Geoman for viewers
    version = page.evaluate(f"async () => (await (await fetch('/api/plans/{plan_id}')).json()).version")
    grid = page.locator("#wg-grid-table tbody tr").first.get_attribute("data-grid")
    for path, body in ((f"/api/plans/{plan_id}/edits", {"op": "lock", "grid_id": grid, "version": version}),
                       (f"/api/plans/{plan_id}/undo", {"version": version}),
                       (f"/api/plans/{plan_id}/publish", {"version": version}),
                       ("/api/plans/partition", {"name": "x", "min_households": 300, "max_households": 500,
                                                 "target_households": 400, "micro": False, "seed": 1})):
        answer = page.evaluate(POST_AS_PAGE, [path, body])
        assert answer["status"] == 403, path
        assert answer["body"]["error"]["code"] == "forbidden"
    page.locator("#wg-grid-table tbody tr").nth(2).click()
    page.wait_for_timeout(600)
    page.screenshot(path=str(SCREENSHOTS / "plan_viewer.png"))


def test_stale_version_shows_the_conflict_message(page, browser, live_server: LiveServer) -> None:
    source = _any_plan(browser, live_server)
    login(page, ROLE_USERS["planner"])
    page.goto("/plans")
    draft = page.evaluate(POST_AS_PAGE, [f"/api/plans/{source}/versions", {"name": "冲突测试", "message": "草稿"}])
    assert draft["status"] == 201, draft  # a fresh draft: the source may be published already
    plan_id = draft["body"]["id"]
    page.goto(f"/plans/{plan_id}")
    _wait_ready(page)
    grid = page.locator("#wg-grid-table tbody tr").first.get_attribute("data-grid")
    version = page.evaluate("() => window.wanggePlanner.state.version")
    # someone else edits: the page's version is now stale
    other = page.evaluate(POST_AS_PAGE, [f"/api/plans/{plan_id}/edits",
                                         {"op": "rename", "grid_id": grid, "name": "他人改名", "version": version}])
    assert other["status"] == 200, other
    page.locator(f'#wg-grid-table tbody tr[data-grid="{grid}"]').click()
    page.get_by_role("button", name="锁定").click()
    conflict = page.locator(".wg-conflict")
    conflict.wait_for()
    assert "方案已被" in conflict.inner_text() and "重新加载" in conflict.inner_text()
    with page.expect_navigation():
        conflict.get_by_role("button", name="重新加载").click()
    _wait_ready(page)
    assert "他人改名" in page.locator("#wg-grid-table").inner_text()


def _fresh_draft(page, browser, live_server: LiveServer, name: str) -> int:
    source = _any_plan(browser, live_server)
    login(page, ROLE_USERS["planner"])
    page.goto("/plans")
    draft = page.evaluate(POST_AS_PAGE, [f"/api/plans/{source}/versions", {"name": name, "message": "草稿"}])
    assert draft["status"] == 201, draft
    return draft["body"]["id"]


def test_refused_edits_show_the_reason_not_a_conflict(page, browser, live_server: LiveServer) -> None:
    plan_id = _fresh_draft(page, browser, live_server, "拒绝原因")
    page.goto(f"/plans/{plan_id}")
    _wait_ready(page)
    page.get_by_role("button", name="撤销").click()  # nothing to undo on a fresh draft
    msg = page.locator("#wg-messages .wg-msg-error").first
    msg.wait_for()
    assert "没有可撤销的编辑" in msg.inner_text() and "处理办法" in msg.inner_text()
    assert page.locator(".wg-conflict").count() == 0
    # the summary: the share is floored, never rounded up to 100 %; the counts step through grids
    share = page.locator('[data-kpi="in-range"]').inner_text()
    counts = page.evaluate("""() => { const g = Array.from(window.wanggePlanner.state.grids.values(), x => x.props)
        .filter(p => p.status !== 'exclusive'); return [g.filter(p => p.status === 'in').length, g.length]; }""")
    assert share == f"{math.floor(1000 * counts[0] / counts[1]) / 10:g}%"
    floor = "([a, b]) => window.wanggePlanner.floorPct(a, b)"
    assert [page.evaluate(floor, ab) for ab in ([997, 1000], [367, 368], [368, 368])] == ["99.7%", "99.7%", "100%"]
    out = page.locator('[data-kpi="out-of-range"] button')
    if counts[0] < counts[1]:
        out.click()
        selected = page.evaluate("() => window.wanggePlanner.state.selectedGrid")
        status = page.evaluate("(g) => window.wanggePlanner.state.grids.get(g).props.status", selected)
        assert status in ("under", "over")
        assert page.locator(f'#wg-grid-table tr.wg-selected[data-grid="{selected}"]').count() == 1
    page.locator('.wg-legend [data-status="in"]').click()
    picked = page.evaluate("() => window.wanggePlanner.state.selectedGrid")
    assert page.evaluate("(g) => window.wanggePlanner.state.grids.get(g).props.status", picked) == "in"
    scale = page.locator(".leaflet-control-scale").inner_text()
    assert "m" in scale and "ft" not in scale and "mi" not in scale
    page.locator("#wg-open-partition, [data-action='repartition']").first.click()
    assert not page.locator("#wg-partition-form [name=seed]").is_visible()  # folded under 高级
    page.locator("#wg-partition-form summary", has_text="高级").click()
    assert page.locator("#wg-partition-form [name=seed]").is_visible()


#: The data label of the demo workspace (`wangge demo`), longer than the test workspace's.
DEMO_LABEL = "合成演示数据 synthetic demo data: 合成示例数据 (synthetic)"


def _assert_phone_layout(page) -> None:
    box = page.locator(".wg-planner-map .folium-map").bounding_box()
    assert box and box["width"] > 300 and box["height"] > 250  # the map is on screen, full width
    logout = page.get_by_role("button", name="退出登录")
    assert logout.is_visible()
    lb = logout.bounding_box()
    assert lb and lb["x"] + lb["width"] <= 390
    legend = page.locator(".wg-legend").bounding_box()
    assert legend and legend["width"] * legend["height"] < 0.25 * box["width"] * box["height"]
    # the data label, as long as `wangge demo` writes it, stays clear of the folded legend
    page.locator(".wg-planner-map .wg-label").evaluate("(el, text) => { el.textContent = text; }", DEMO_LABEL)
    label = page.locator(".wg-planner-map .wg-label").bounding_box()
    assert label and (label["x"] + label["width"] <= legend["x"] or label["y"] + label["height"] <= legend["y"]
                      or legend["y"] + legend["height"] <= label["y"]), (label, legend)  # side by side, no overlap
    side = page.locator(".wg-side").bounding_box()  # the table sits below the map, full width
    assert side and side["y"] >= box["y"] + box["height"] - 1 and side["width"] >= 380


@pytest.mark.parametrize("role", ["planner", "viewer"])
def test_plan_page_on_a_phone(browser, live_server: LiveServer, role: str) -> None:
    plan_id = _published_plan(browser, live_server)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844},
                                  locale="zh-CN", is_mobile=True, has_touch=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    try:
        login(pg, ROLE_USERS[role])
        if role == "planner":
            draft = pg.evaluate(POST_AS_PAGE, [f"/api/plans/{plan_id}/versions", {"name": "手机", "message": ""}])
            plan_id = draft["body"]["id"]
        pg.goto(f"/plans/{plan_id}")
        _wait_ready(pg)
        _assert_phone_layout(pg)
        if role == "planner":
            for name in ("移动所选楼栋", "撤销", "保存版本", "发布"):
                control = pg.get_by_role("button", name=name)
                control.scroll_into_view_if_needed()
                assert control.is_visible(), name
        assert pg.locator(".wg-legend details").get_attribute("open") is None  # folded on phones
        pg.screenshot(path=str(SCREENSHOTS / f"plan_phone_{role}.png"))
        pg.goto("/plans")  # the list: logout on screen, the table scrolls sideways inside the page
        pg.locator("#wg-plan-list tbody tr[data-plan]").first.wait_for()
        assert pg.get_by_role("button", name="退出登录").is_visible()
        assert pg.evaluate("() => document.documentElement.scrollWidth") <= 390
        if role == "planner":  # the diff of the draft against the version it was copied from
            pg.goto(f"/plans/{_MADE['published']}/diff/{plan_id}")
            _wait_ready(pg)
            _assert_phone_layout(pg)
    finally:
        context.close()
    assert not errors, errors


def _zoom_to_grid(page, grid: str) -> list[str]:
    """Select and zoom to *grid*, wait for its buildings; the grids the target list offers."""
    page.evaluate("(g) => window.wanggePlanner.selectGrid(g, {zoom: true})", grid)
    page.wait_for_function("(g) => window.wanggePlanner.buildingLayer.getLayers()"
                           ".some(l => l.feature.properties.grid_id === g)", arg=grid, timeout=20_000)
    page.wait_for_timeout(300)
    options = page.locator("#wg-target option")
    return [v for j in range(options.count()) if (v := options.nth(j).get_attribute("value"))]


def test_moving_one_building_of_a_unit_moves_exactly_that_building(page, browser, live_server: LiveServer) -> None:
    plan_id = _fresh_draft(page, browser, live_server, "只移所选")
    page.goto(f"/plans/{plan_id}")
    _wait_ready(page)
    # grids holding a unit (cell) of several buildings, from the plan's buildings
    candidates = page.evaluate("""async (p) => {
        const fc = await (await fetch(`/api/plans/${p}/buildings.geojson`)).json();
        const cells = new Map(), grids = new Map();
        for (const f of fc.features) {
          const q = f.properties;
          cells.set(q.cell_id, (cells.get(q.cell_id) || 0) + 1);
          if (!grids.has(q.grid_id)) grids.set(q.grid_id, new Set());
          grids.get(q.grid_id).add(q.cell_id);
        }
        return Array.from(grids).filter(([g, cs]) => Array.from(cs).some(c => cells.get(c) > 1))
          .map(([g]) => g);
    }""", plan_id)
    pick = None
    for grid in candidates[:15]:
        targets = _zoom_to_grid(page, grid)
        pick = page.evaluate(PICK_SHARED, [grid, targets]) if targets else None
        if pick:
            break
    assert pick, f"no grid with a unit of several buildings and a neighbour among {len(candidates)} candidates"
    page.mouse.click(pick["x"], pick["y"])
    assert "已选 1 栋楼" in page.locator("#wg-selection").inner_text()
    households = page.evaluate(BUILDING_PROPS, pick["id"])["households"]
    page.select_option("#wg-target", pick["to"])
    before = {g: (page.evaluate(STATE_HOUSEHOLDS, g), page.evaluate(STATE_BUILDINGS, g)) for g in (grid, pick["to"])}
    page.get_by_role("button", name="移动所选楼栋").click()
    page.wait_for_function("() => window.wanggePlanner.lastEdit || document.querySelector('.wg-confirm')",
                           timeout=20_000)
    assert page.locator(".wg-confirm").count() == 0  # nothing else moves, so nothing to confirm
    page.screenshot(path=str(SCREENSHOTS / "plan_move_exact.png"))
    after = {g: (page.evaluate(STATE_HOUSEHOLDS, g), page.evaluate(STATE_BUILDINGS, g)) for g in before}
    assert after[pick["to"]] == (before[pick["to"]][0] + households, before[pick["to"]][1] + 1)
    assert after[grid] == (before[grid][0] - households, before[grid][1] - 1)  # the rest of the unit stays
    page.wait_for_function("([b, g]) => { const l = window.wanggePlanner.buildingLayer.getLayers()"
                           ".find(l => l.feature.properties.building_id === b); return l && l.feature.properties.grid_id === g; }",
                           arg=[pick["id"], pick["to"]], timeout=20_000)
    moved = page.evaluate(BUILDING_PROPS, pick["id"])
    assert moved["cell_id"] != pick["cell"]  # its own new unit, split from the old one
    assert "完成：完成" not in page.locator("#wg-messages").inner_text()
    page.get_by_role("button", name="撤销").click()
    page.wait_for_function("([g, n]) => window.wanggePlanner.state.grids.get(g).props.buildings === n",
                           arg=[grid, before[grid][1]], timeout=20_000)
    assert {g: (page.evaluate(STATE_HOUSEHOLDS, g), page.evaluate(STATE_BUILDINGS, g)) for g in before} == before


def test_a_move_that_deletes_a_grid_asks_first(page, browser, live_server: LiveServer) -> None:
    plan_id = _fresh_draft(page, browser, live_server, "删除前确认")
    page.goto(f"/plans/{plan_id}")
    _wait_ready(page)
    singles = page.evaluate("""() => Array.from(window.wanggePlanner.state.grids.values(), g => g.props)
        .filter(p => p.buildings === 1).map(p => p.grid_id)""")
    pick = None
    for grid in singles[:10]:
        targets = _zoom_to_grid(page, grid)
        pick = page.evaluate(PICK_BUILDING.replace("&& Number(l.feature.properties.households) > 0", ""),
                             [grid, targets]) if targets else None
        if pick:
            break
    assert pick, f"no one-building grid with a neighbour among {len(singles)}"
    page.mouse.click(pick["x"], pick["y"])
    page.select_option("#wg-target", pick["to"])
    page.get_by_role("button", name="移动所选楼栋").click()
    dialog = page.locator(".wg-confirm")
    dialog.wait_for()
    assert "将被删除" in dialog.inner_text() and "尚未移动" in dialog.inner_text()
    assert dialog.locator('[data-list="grids"] li').count() == 1
    dialog.get_by_role("button", name="取消").click()
    assert page.evaluate("(g) => window.wanggePlanner.state.grids.has(g)", grid)
    assert page.evaluate("() => window.wanggePlanner.lastEdit") is None  # nothing moved
    page.get_by_role("button", name="移动所选楼栋").click()
    page.locator(".wg-confirm").get_by_role("button", name="确认移动").click()
    page.wait_for_function("() => window.wanggePlanner.lastEdit", timeout=20_000)
    assert not page.evaluate("(g) => window.wanggePlanner.state.grids.has(g)", grid)  # gone, as the dialog said


def test_a_city_size_plan_opens_on_its_communities(page, live_server: LiveServer, traffic: Traffic) -> None:
    """Above planner_overview_min_grids the whole-plan page shows the communities (table and dots), never
    the city's grids; a row opens that community's grids only, with a way back."""
    plan_id = _published_plan(page.context.browser, live_server)
    settings = live_server.app.config["WANGGE"]
    old = settings["planner_overview_min_grids"]
    settings["planner_overview_min_grids"] = 1
    try:
        login(page, ROLE_USERS["planner"])
        page.goto(f"/plans/{plan_id}")
        _wait_ready(page)
        body = page.evaluate(f"async () => (await (await fetch('/api/plans/{plan_id}/communities')).json())")
        rows = page.locator("#wg-community-table tbody tr[data-community]")
        assert rows.count() == len(body["community_id"]) > 1
        assert page.evaluate("() => window.wanggeOverview.rows.length") == len(body["community_id"])
        assert page.locator('[data-kpi="communities"]').inner_text() == str(len(body["community_id"]))
        first = rows.nth(0).get_attribute("data-community")  # the most grids breaking rules first
        assert body["broken"][body["community_id"].index(first)] == max(body["broken"])
        page.screenshot(path=str(SCREENSHOTS / "plan_overview.png"))
        assert not [u for u in traffic.requests if "grids.geojson" in u]
        assert page.locator("#wg-toolbar").count() == 0

        page.fill("#wg-filter", first)
        assert rows.count() >= 1 and rows.nth(0).get_attribute("data-community") == first
        rows.nth(0).locator("td").nth(1).click()
        page.wait_for_url(f"**/plans/{plan_id}?community_id={first}")
        _wait_ready(page)
        grids = page.evaluate("() => Array.from(window.wanggePlanner.state.grids.values(), g => g.props.community_id)")
        assert grids and set(grids) == {first}
        assert len(grids) == body["grids"][body["community_id"].index(first)]
        assert page.locator("#wg-grid-table tbody tr").count() == len(grids)
        assert page.locator("#wg-toolbar").is_visible()
        whole = [u for u in traffic.requests if "grids.geojson" in u and "community_id=" not in u]
        assert not whole, whole
        page.locator("#wg-plan-crumb").click()  # back to the overview
        page.wait_for_url(f"**/plans/{plan_id}")
        _wait_ready(page)
        assert page.locator("#wg-community-table").is_visible()
        phone = page.context.browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844},
                                                 locale="zh-CN", is_mobile=True, has_touch=True)
        try:
            pg = phone.new_page()
            login(pg, ROLE_USERS["planner"])
            pg.goto(f"/plans/{plan_id}")
            _wait_ready(pg)
            _assert_phone_layout(pg)
            assert pg.evaluate("() => document.documentElement.scrollWidth") <= 390
            pg.locator("#wg-community-table").scroll_into_view_if_needed()
            pg.screenshot(path=str(SCREENSHOTS / "plan_overview_phone.png"), full_page=True)
        finally:
            phone.close()
    finally:
        settings["planner_overview_min_grids"] = old
    assert not traffic.page_errors, traffic.page_errors
