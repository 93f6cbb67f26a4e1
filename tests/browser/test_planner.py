"""Planner map app end to end: partition from the UI, move, undo, publish, export; viewers read only.

Runs the real app (tests/browser/conftest.py) with the JSON routes of api/plans. Screenshots
of the plan page (planner, viewer) and of the diff view go to ``screenshots/plan_*.png``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import PASSWORD, ROLE_USERS, SCREENSHOTS, LiveServer, Traffic, login

pytestmark = pytest.mark.browser

#: The plan the partition test made, for the tests after it (the live server is per session).
_MADE: dict[str, int] = {}

HOUSEHOLDS = """(g) => Number(document.querySelector(`tr[data-grid="${CSS.escape(g)}"] td[data-col="households"]`)
    .textContent.replace(/,/g, ""))"""
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
POST_AS_PAGE = """async ([path, body]) => {
  const r = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json",
      "X-CSRFToken": document.querySelector('meta[name="csrf-token"]').content}, body: JSON.stringify(body)});
  return {status: r.status, body: await r.json()};
}"""


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
    before = {g: page.evaluate(HOUSEHOLDS, g) for g in (grid, to)}
    page.get_by_role("button", name="移动所选楼栋").click()
    page.wait_for_function("() => window.wanggePlanner.lastEdit", timeout=20_000)
    after = {g: page.evaluate(HOUSEHOLDS, g) for g in (grid, to)}
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
    page.wait_for_function(f"([g, n]) => ({HOUSEHOLDS})(g) === n", arg=[grid, before[grid]], timeout=20_000)
    assert page.evaluate(HOUSEHOLDS, to) == before[to]

    page.get_by_role("button", name="发布").click()
    page.wait_for_function("() => document.querySelector('#wg-plan-status').textContent.includes('生效中')",
                           timeout=20_000)

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
    plan_id = _any_plan(browser, live_server)
    login(page, ROLE_USERS["viewer"])
    page.goto(f"/plans/{plan_id}")
    _wait_ready(page)
    assert page.locator("#wg-toolbar").count() == 0
    assert page.locator("#wg-partition-form").count() == 0
    assert page.locator("#wg-grid-table tbody tr").count() > 1
    assert "只读" in page.locator("#wg-summary").inner_text()
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
