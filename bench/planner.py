"""Benchmark of the planner map page (issue 4): prints a table.

    .venv/bin/python bench/planner.py                  # 20 k buildings, 3 cold loads, 20 moves
    .venv/bin/python bench/planner.py --buildings 5000 --loads 1 --moves 5

Builds a synthetic street office (``geo.synthetic.synthetic_district``, seed 42), prepares
and imports it into a fresh SQLite workspace, serves the real app (``create_app``) on a
loopback port and drives headless Debian Chromium (Playwright) as a planner: the partition
runs through ``POST /api/plans/partition`` (a background job, polled), then the plan page
is loaded cold (cache off) ``--loads`` times. **Time to interactive** = the page's
``window.wanggePlannerReady`` (ms since navigation start: grids drawn and table filled);
**bytes** = sum of ``encodedDataLength`` of every response of that navigation (Chrome
DevTools protocol), including those that finish after the ready mark while the page
settles (network idle). **Edit round trip**: ``--moves`` moves of one building into a
neighbouring grid, each undone; ``server_ms`` from the answer and the client's fetch time.
Bars (issue 4): < 2 s, < 5 MB, edit < 300 ms.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "bench2026plan"

#: Runs in the page: *n* moves of a building into a neighbouring grid (each undone).
MOVES_JS = """async (n) => {
  const P = window.wanggePlanner, S = P.state, csrf = document.querySelector('meta[name="csrf-token"]').content;
  const post = async (path, body) => {
    const t0 = performance.now();
    const r = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
                                 body: JSON.stringify(body)});
    return {status: r.status, body: await r.json(), ms: performance.now() - t0};
  };
  const planId = document.location.pathname.split("/").pop();
  let version = S.version;
  const out = [];
  const grids = Array.from(S.grids.values()).filter(g => !g.props.locked && g.props.buildings > 1);
  for (let i = 0; i < grids.length && out.length < n; i += Math.max(1, Math.floor(grids.length / (3 * n)))) {
    const g = grids[i], b = g.layer.getBounds().pad(0.02);
    const nb = Array.from(S.grids.values()).find(o => o !== g && o.props.community_id === g.props.community_id
                                                      && b.intersects(o.layer.getBounds()));
    if (!nb) continue;
    const fc = await (await fetch(`/api/plans/${planId}/buildings.geojson?grid_id=${encodeURIComponent(g.props.grid_id)}`)).json();
    if (!fc.features.length) continue;
    const near = nb.label;
    const centre = (f) => L.geoJSON(f).getBounds().getCenter();
    const f = fc.features.reduce((a, x) => near.distanceTo(centre(x)) < near.distanceTo(centre(a)) ? x : a);
    const r = await post(`/api/plans/${planId}/edits`, {op: "move", building_ids: [f.properties.building_id],
                                                          to_grid: nb.props.grid_id, version, confirm: true});
    if (r.status !== 200) continue;
    version = r.body.version;
    out.push({server_ms: r.body.server_ms, client_ms: r.ms});
    const u = await post(`/api/plans/${planId}/undo`, {version});
    if (u.status === 200) version = u.body.version;
  }
  return out;
}"""


def _workspace(n: int, db: Path) -> Any:
    from api import create_app
    from api.db import session_scope
    from api.users import create_user
    from api.workspace import import_workspace
    from geo.prepare import prepare_layers
    from geo.synthetic import LABEL, synthetic_district

    os.environ.setdefault("WANGGE_SECRET_KEY", "bench-secret")
    app = create_app({"INSTANCE_PATH": str(db.parent / "instance"), "DATABASE_URL": f"sqlite:///{db}"})
    d = synthetic_district(n, seed=42)
    layers = {k: getattr(d, k) for k in ("communities", "buildings", "streets", "compounds", "service_points")}
    t0 = time.perf_counter()
    prepared = prepare_layers(layers, settings=app.config["WANGGE"])
    with app.app_context(), session_scope() as s:
        import_workspace(s, prepared if hasattr(prepared, "layers") else SimpleNamespace(layers=layers, report=None),
                         user="bench", sources={"kind": "synthetic"}, note=LABEL)
        create_user(s, "bench_planner", PASSWORD, role="planner")
    print(f"workspace: {n:,} buildings prepared and imported in {time.perf_counter() - t0:.1f} s", flush=True)
    return app


def _serve(app: Any) -> tuple[str, Any]:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


def _partition(page: Any) -> tuple[int, float]:
    body = {"name": "基准测试方案", "min_households": 300, "max_households": 500, "target_households": 400,
            "micro": False, "seed": 42}
    t0 = time.perf_counter()
    job = page.evaluate("""async (body) => {
      const csrf = document.querySelector('meta[name="csrf-token"]').content;
      const r = await fetch("/api/plans/partition", {method: "POST", headers: {"Content-Type": "application/json",
                            "X-CSRFToken": csrf}, body: JSON.stringify(body)});
      return r.json();
    }""", body)
    while True:
        state = page.evaluate("async (id) => (await fetch(`/api/jobs/${id}`)).json()", job["job_id"])
        if state["state"] in ("done", "failed", "cancelled"):
            break
        time.sleep(0.5)
    if state["state"] != "done":
        raise SystemExit(f"partition job {state['state']}: {state.get('message')}")
    return int(state["plan_id"]), time.perf_counter() - t0


def _cold_load(context: Any, url: str) -> tuple[float, int, int]:
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    sizes: list[int] = []
    cdp.on("Network.loadingFinished", lambda e: sizes.append(int(e["encodedDataLength"])))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    try:
        page.wait_for_function("() => window.wanggePlannerReady", timeout=60_000)
    except Exception:
        raise SystemExit(f"plan page not ready: {page.locator('#wg-messages').inner_text()!r} {errors}") from None
    ready = float(page.evaluate("window.wanggePlannerReady"))
    page.wait_for_load_state("networkidle")
    grids = int(page.evaluate("window.wanggePlanner.state.grids.size"))
    page.close()
    return ready, sum(sizes), grids


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--buildings", type=int, default=20_000)
    parser.add_argument("--loads", type=int, default=3)
    parser.add_argument("--moves", type=int, default=20)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from webmap.assets.install import install_assets

    install_assets()
    with tempfile.TemporaryDirectory(prefix="wangge-bench-planner-") as tmp:
        app = _workspace(args.buildings, Path(tmp) / "wangge.db")
        base, server = _serve(app)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            context = browser.new_context(base_url=base, viewport={"width": 1400, "height": 900}, locale="zh-CN")
            page = context.new_page()
            page.goto("/login?next=/plans")  # not /map: the workspace map embeds every building
            page.get_by_label("用户名").fill("bench_planner")
            page.get_by_label("密码").fill(PASSWORD)
            with page.expect_navigation():
                page.get_by_role("button", name="登录").click()
            plan_id, partition_s = _partition(page)
            loads = [_cold_load(context, f"{base}/plans/{plan_id}") for _ in range(args.loads)]
            page.goto(f"/plans/{plan_id}")
            page.wait_for_function("() => window.wanggePlannerReady", timeout=60_000)
            moves = page.evaluate(MOVES_JS, args.moves)
            browser.close()
        server.shutdown()
    ready = statistics.median(r for r, _, _ in loads)
    mb = statistics.median(b for _, b, _ in loads) / 1e6
    server_ms = statistics.median(m["server_ms"] for m in moves) if moves else float("nan")
    client_ms = statistics.median(m["client_ms"] for m in moves) if moves else float("nan")
    rows = [
        ("buildings", f"{args.buildings:,}", ""),
        ("grids", f"{loads[0][2]:,}", ""),
        ("partition job (API, incl. polling)", f"{partition_s:.1f} s", ""),
        (f"navigation → interactive (median of {len(loads)} cold loads)", f"{ready / 1000:.2f} s", "< 2 s"),
        ("bytes transferred (median)", f"{mb:.2f} MB", "< 5 MB"),
        (f"edit round trip, server_ms (median of {len(moves)} moves)", f"{server_ms:.0f} ms", "< 300 ms"),
        ("edit round trip, client fetch (median)", f"{client_ms:.0f} ms", ""),
    ]
    print(f"\nplanner page bench — {platform.node()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure'.ljust(width)} | value | bar |\n|{'-' * (width + 2)}|---|---|")
    for name, value, bar in rows:
        print(f"| {name.ljust(width)} | {value} | {bar} |")
    print("all loads (ready s, MB): " + ", ".join(f"({r / 1000:.2f}, {b / 1e6:.2f})" for r, b, _ in loads))


if __name__ == "__main__":
    main()
