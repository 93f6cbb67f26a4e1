"""Benchmark: the slow pages as users meet them, server time and browser time to drawn.

Runs on an instance built by ``make run`` (the demo: 3,000 buildings, 367 grids), the app
created in this process with the worktree's code. For each page:

- **server**: the first request of the process (``cold``: caches empty) and the median of
  ``--repeat`` further requests (``warm``), wall and CPU seconds (``time.process_time``, the
  figure to compare on a loaded machine), and the answer's size;
- **browser**: headless Chromium (``/usr/bin/chromium``) at 1280×800 loads the page from a
  werkzeug server in this process; ``drawn`` is the time from navigation start until the
  page's ``load`` event has fired and the map has painted its layers (a Leaflet overlay
  canvas or SVG with content), two animation frames later; ``busy`` is how long the page's
  main thread worked meanwhile (Chromium's ``TaskDuration``: CPU, steadier on a loaded machine).

Usage::

    .venv/bin/python bench/pages.py [--instance instance] [--repeat 5] [--no-browser] [--code DIR]

Before and after in one go: ``git archive <base> | tar -x -C /tmp/base``, copy
``webmap/static/vendor`` into it, then run once with ``--code /tmp/base`` and once without.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "wangge-demo-2026"
#: (who, path) of each page measured.
PAGES: tuple[tuple[str | None, str], ...] = (
    ("planner", "/map"),
    ("planner", "/access"),
    ("planner", "/party"),
    (None, "/party/public"),
)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: Resolves with ms since navigation start once the map has painted (two frames after load).
DRAWN_JS = """() => new Promise((done) => {
  const painted = () => document.querySelector(
      '.leaflet-overlay-pane canvas, .leaflet-overlay-pane svg path, .leaflet-marker-pane *');
  const check = () => {
    if (document.readyState === 'complete' && painted()) {
      requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now())));
    } else { setTimeout(check, 10); }
  };
  check();
})"""


def _app(instance: Path, code: Path = ROOT) -> Any:
    sys.path.insert(0, str(code))
    os.environ["WANGGE_INSTANCE_PATH"] = str(instance.resolve())
    from api import create_app

    return create_app({"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False,
                       "WANGGE": {"login_delay_s": 0.0}})


def _timed(client: Any, path: str) -> tuple[float, float, int, int]:
    wall, cpu = time.perf_counter(), time.process_time()
    answer = client.get(path)
    return time.perf_counter() - wall, time.process_time() - cpu, answer.status_code, len(answer.data)


def server_times(app: Any, repeat: int) -> list[dict[str, Any]]:
    """Cold and warm server time of every page, in a fresh test client per user."""
    rows = []
    for user, path in PAGES:
        client = app.test_client()
        if user:
            client.post("/login", data={"username": user, "password": PASSWORD})
        cold = _timed(client, path)
        warm = [_timed(client, path) for _ in range(repeat)]
        rows.append({"page": path, "user": user or "-", "status": cold[2], "kb": cold[3] / 1024,
                     "cold_wall": cold[0], "cold_cpu": cold[1],
                     "warm_wall": statistics.median(w[0] for w in warm),
                     "warm_cpu": statistics.median(w[1] for w in warm)})
    return rows


def _main_thread_ms(cdp: Any) -> float:
    """Milliseconds the page's main thread has been busy (Chromium's ``TaskDuration``): its CPU cost,
    far less sensitive to a loaded machine than the wall-clock time to drawn."""
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return 1000.0 * float(metrics["TaskDuration"])


def browser_times(app: Any, repeat: int) -> dict[str, tuple[float, float]]:
    """Median ms to drawn and main-thread ms per page in headless Chromium (server caches warm)."""
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    out: dict[str, tuple[float, float]] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            for user, path in PAGES:
                context = browser.new_context(base_url=url, viewport={"width": 1280, "height": 800})
                page = context.new_page()
                if user:
                    page.goto("/login")
                    page.fill("input[name=username]", user)
                    page.fill("input[name=password]", PASSWORD)
                    with page.expect_navigation():
                        page.click("button[type=submit]")
                times, busy = [], []
                for _ in range(repeat):
                    cdp = context.new_cdp_session(page)
                    page.goto(path, wait_until="commit")
                    cdp.send("Performance.enable")
                    times.append(page.evaluate(DRAWN_JS))
                    busy.append(_main_thread_ms(cdp))
                    cdp.detach()
                out[path] = (statistics.median(times), statistics.median(busy))
                context.close()
            browser.close()
    finally:
        server.shutdown()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instance", type=Path, default=ROOT / "instance")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--code", type=Path, default=ROOT,
                        help="Checkout whose code to time (e.g. `git archive BASE | tar -x -C DIR` for the figures before)")
    args = parser.parse_args(argv)
    app = _app(args.instance, args.code.resolve())
    print(f"code: {args.code.resolve()}")
    rows = server_times(app, args.repeat)
    drawn = {} if args.no_browser else browser_times(app, max(1, args.repeat // 2))
    print(f"{'page':<15}{'status':>7}{'KB':>8}{'cold wall':>11}{'cold cpu':>10}{'warm wall':>11}"
          f"{'warm cpu':>10}{'drawn ms':>10}{'busy ms':>9}")
    for r in rows:
        shown = drawn.get(r["page"])
        cells = ("-", "-") if shown is None else (f"{shown[0]:.0f}", f"{shown[1]:.0f}")
        print(f"{r['page']:<15}{r['status']:>7}{r['kb']:>8.0f}{r['cold_wall']:>11.3f}{r['cold_cpu']:>10.3f}"
              f"{r['warm_wall']:>11.3f}{r['warm_cpu']:>10.3f}{cells[0]:>10}{cells[1]:>9}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
