"""Benchmark: incidents at district scale.

1. ``prepare`` (not a bar): a synthetic district of N buildings, partitioned and published.
2. ``locate+insert``: C synthetic cases (random points in the grids, random categories, a
   year of report times) located by point-in-polygon on the active plan
   (:func:`api.incidents.intake.locate_points`), SLA due times from the working-day calendar,
   inserted with one report event each, in one transaction. Bar: 1 M cases < 60 s. Checked (not
   timed): every case and event stored, and 2,000 sampled cases' grids equal to a shapely test.
3. ``metrics``: 结案率/按期结案率/返工率/延期率/mean handling time for a year by grid, on a
   lifecycle-filled copy of those cases, both ways in the same run: every case read into pandas
   (before) and one ``GROUP BY`` in the database (:func:`api.incidents.metrics.metrics_in_db`,
   after), and the two tables compared (counts and rates equal). Bar: < 2 s.
4. ``incident map`` (``--map-runs``): headless Chromium opens the incident map on a street office's
   view (its area at the screen's shape, centred on it) and times, in the page's clock, navigation
   start to ``data-loaded="1"``: the view's grids shaded and its cases drawn as clustered markers
   (the server warmed first; median of the runs). Bar: < 1 s.
5. ``open311 load`` (optional, ``--load-seconds``): the real app on loopback, served by
   ``wangge serve --prod`` (gunicorn with ``server_workers`` x ``server_threads``, the production
   path; ``--workers``/``--threads`` to try other shapes) or the development server
   (``--server dev``); 200 requests/s of mixed Open311 POST (30 %, at random points in the grids,
   random categories) and GET, sent open-loop by ``bench/openloop.py`` (latency from each
   request's due time; one connection per request unless ``--keep-alive``); p50/p99, errors, the
   CPU per request of the server's processes and of the client. Bar: p99 < 100 ms, 0 errors over 60 s.
6. ``kill -9`` (optional, with the load): the server's whole process group is killed mid-load and
   restarted; every acknowledged service_request_id must be in the database.

Wall times on a shared machine are inflated by other work: every timed step also reports the
CPU seconds of the bench process and the load average when it finished.

Usage::

    .venv/bin/python bench/incidents.py --buildings 10000 --cases 100000 --load-seconds 10   # quick
    .venv/bin/python bench/incidents.py                                                       # 100 k b, 1 M cases, 60 s
    .venv/bin/python bench/incidents.py --reuse bench/out/prepared-100000.db --skip-bulk      # the load only
    .venv/bin/python bench/incidents.py --buildings 3000 --skip-bulk --load-seconds 60        # the load on a small district
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out" / "incidents"
REPO = Path(__file__).resolve().parents[1]
#: Seconds of light load before the measured Open311 load (worker start-up is not the bar).
WARMUP_S = 10.0
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))  # openloop, prodserver


def _app(folder: Path) -> Any:
    os.environ.setdefault("WANGGE_SECRET_KEY", "bench")
    os.environ.pop("WANGGE_DATABASE_URL", None)
    from api import create_app

    return create_app({"INSTANCE_PATH": str(folder / "instance"), "DATABASE_URL": f"sqlite:///{folder / 'wangge.db'}",
                       "WTF_CSRF_ENABLED": False})


def prepare(n_buildings: int, folder: Path, reuse: Path | None = None) -> dict[str, Any]:
    """Workspace + published plan (the tests' own helpers: the same district the tests use, bigger).

    The prepared database is kept as ``prepared-<N>.db`` beside the folder; ``--reuse`` copies
    it back instead of partitioning again (the steps after it start from the same state).
    """
    from api.db import dispose, session_scope
    from api.grids.service import active_grids
    from tests.api.plans_helpers import seed_district
    from tests.api.register_helpers import publish_partition

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    t0 = time.perf_counter()
    snapshot = folder.parent / f"prepared-{n_buildings}.db"
    if reuse is not None or snapshot.exists():
        shutil.copyfile(reuse or snapshot, folder / "wangge.db")
    else:
        app = _app(folder)
        seed_district(app, n_buildings)
        publish_partition(app)
        dispose(app)
        shutil.copyfile(folder / "wangge.db", snapshot)
    app = _app(folder)
    with app.app_context(), session_scope() as s:
        grids = len(active_grids(s))
    dispose(app)
    return {"setup_s": round(time.perf_counter() - t0, 1), "grids": grids}


def locate_insert(folder: Path, n_cases: int) -> dict[str, Any]:
    """Locate and insert *n_cases* synthetic reports (timed from the points to the commit)."""
    import numpy as np
    import pandas as pd

    from api.db import dispose, session_scope
    from api.grids.service import load_active
    from api.incidents.bulk import insert_cases, insert_events, new_tokens
    from api.incidents.intake import locate_points
    from api.incidents.tables import load_calendar, load_categories
    from geo.incidents.synthetic import random_points_in
    from geo.incidents.workcalendar import due_times

    app = _app(folder)
    settings = app.config["WANGGE"]
    rng = np.random.default_rng(7)
    with app.app_context(), session_scope() as s:
        grids = load_active(s, settings=settings).grids
        cats = list(load_categories(s).values())
    lon, lat = random_points_in(grids, rng.integers(0, len(grids), n_cases), rng)
    cat = [cats[i] for i in rng.integers(0, len(cats), n_cases)]
    reported = pd.Series(pd.Timestamp.now(tz="UTC") - pd.to_timedelta(rng.uniform(0, 365 * 24, n_cases), unit="h"))
    c0 = time.process_time()
    t0 = time.perf_counter()
    tokens = new_tokens(n_cases)  # timed: every case needs one
    with app.app_context(), session_scope() as s:
        active = load_active(s, settings=settings)
        t_index = time.perf_counter() - t0
        where = locate_points(active, lon, lat, settings=settings)
        t_locate = time.perf_counter() - t0
        dispatched = reported + pd.Timedelta(hours=2)
        due = due_times(dispatched, [c.limit_value for c in cat], [c.limit_unit for c in cat], load_calendar(s, settings))
        frame = pd.DataFrame({"token": tokens, "source": "worker", "category": [c.code for c in cat],
                              "description": "bench", "lon": lon, "lat": lat, "state": "dispatched",
                              "limit_value": [c.limit_value for c in cat], "limit_unit": [c.limit_unit for c in cat],
                              "reported_at": reported, "dispatched_at": dispatched, "due_at": due,
                              "assignee": "bench_worker", "synthetic": True})
        for col in ("grid_code", "plan_version_id", "community_id", "locate_how"):
            frame[col] = where[col].to_numpy()
        ids = insert_cases(s, frame)
        t_cases = time.perf_counter() - t0
        insert_events(s, pd.DataFrame({"case_id": ids.to_numpy(), "action": "report", "actor": "bench",
                                       "role": "reporter", "at": reported, "from_state": "",
                                       "to_state": "reported"}))
    total = time.perf_counter() - t0
    cpu = time.process_time() - c0
    stored = _check_located(app, grids, lon, lat, where, ids.to_numpy(), rng)
    dispose(app)
    return {"cases": n_cases, "stored": stored, "located": int(where["grid_code"].notna().sum()), "index_s": round(t_index, 2),
            "locate_s": round(t_locate - t_index, 2), "cases_insert_s": round(t_cases - t_locate, 1),
            "events_insert_s": round(total - t_cases, 1), "total_s": round(total, 1),
            "cpu_s": round(cpu, 1), "load_avg": round(os.getloadavg()[0], 1)}


def _check_located(app: Any, grids: Any, lon: Any, lat: Any, where: Any, ids: Any, rng: Any, sample: int = 2000) -> int:
    """Not timed: every case and event stored, and a sample's stored grid equal to a plain shapely test
    (the grid whose polygon covers the point; none when no polygon does). Raises on a mismatch."""
    import shapely
    from sqlalchemy import func, select

    from api.db import session_scope
    from api.incidents.models import IncidentCase, IncidentEvent

    with app.app_context(), session_scope(write=False) as s:
        cases = s.scalar(select(func.count()).select_from(IncidentCase))
        events = s.scalar(select(func.count()).select_from(IncidentEvent))
        pick = rng.choice(len(ids), size=min(sample, len(ids)), replace=False)
        stored = dict(s.execute(select(IncidentCase.id, IncidentCase.grid_code)
                                .where(IncidentCase.id.in_(ids[pick].tolist()))).all())
    if cases < len(ids) or events < len(ids):
        raise AssertionError(f"stored {cases} cases and {events} events for {len(ids)} reports")
    geoms = grids.geometry.to_numpy()
    for i in pick:
        covering = grids["key"].to_numpy()[shapely.covers(geoms, shapely.Point(lon[i], lat[i]))].tolist()
        got = stored[int(ids[i])]
        if (got is None and covering) or (got is not None and got not in covering):
            raise AssertionError(f"case {ids[i]} at ({lon[i]}, {lat[i]}): stored grid {got}, shapely says {covering}")
    return int(cases)


def _fill_lifecycle(folder: Path) -> None:
    """~93 % closed, most before the due time, ~8 % reworked: a plausible year (not timed)."""
    from sqlalchemy import text

    from api.db import dispose, session_scope

    app = _app(folder)
    with app.app_context(), session_scope() as s:
        s.execute(text("UPDATE incident_cases SET closed_at = CASE WHEN id % 100 < 93 THEN "
                       "datetime(dispatched_at, '+' || ((id * 7919) % 96) || ' hours') END, "
                       "rework_count = CASE WHEN id % 13 = 0 THEN 1 ELSE 0 END"))
    dispose(app)


def metrics(folder: Path, *, in_db: bool = True) -> tuple[dict[str, Any], Any]:
    """A year of metrics by grid: counted by the database (``in_db``), or every case read into pandas (before)."""
    import numpy as np
    import pandas as pd

    from api.db import dispose, session_scope
    from api.incidents.cases import cases_frame
    from api.incidents.metrics import metrics_in_db
    from geo.incidents.metrics import incident_metrics

    app = _app(folder)
    now = pd.Timestamp.now(tz="UTC")
    start = now - pd.Timedelta(days=365)
    c0 = time.process_time()
    t0 = time.perf_counter()
    with app.app_context(), session_scope(write=False) as s:
        if in_db:
            table = metrics_in_db(s, start=start, end=now, by="grid_code")
        else:
            frame = cases_frame(s, columns=("grid_code", "dispatched_at", "due_at", "closed_at", "rework_count",
                                            "extension_count"))
            table = incident_metrics(frame, start=start, end=now, by="grid_code")
    total = time.perf_counter() - t0
    dispose(app)
    return {"how": "database GROUP BY" if in_db else "pandas (read every case)", "groups": len(table),
            "due": int(table["due"].sum()), "total_s": round(total, 2), "cpu_s": round(time.process_time() - c0, 2),
            "load_avg": round(os.getloadavg()[0], 1), "closure_rate_median": float(np.nanmedian(table["closure_rate"]))}, table


def _same_metrics(db: Any, pandas: Any) -> bool:
    """The database's table equals the pandas definitions (counts and rates exactly, mean hours to 0.01)."""
    import numpy as np

    counts = ["due", "closed", "on_time", "reworked", "extended", "closure_rate", "on_time_rate", "rework_rate",
              "extension_rate"]
    if list(db.index) != list(pandas.index) or not np.array_equal(db[counts].to_numpy(), pandas[counts].to_numpy(),
                                                                   equal_nan=True):
        raise AssertionError("metrics: the database and the pandas definitions differ")
    return bool(np.allclose(db["mean_handling_hours"], pandas["mean_handling_hours"], atol=0.011, equal_nan=True))


def _client_data(folder: Path, n_points: int = 2000) -> tuple[str, list[tuple[float, float]], list[str]]:
    """A new API key, random points inside random active grids, and the category codes (POSTs spread like reports)."""
    import numpy as np

    from api.db import dispose, session_scope
    from api.grids.service import active_grids
    from api.incidents.keys import create_key
    from api.incidents.tables import load_categories
    from geo.incidents.synthetic import random_points_in

    app = _app(folder)
    with app.app_context(), session_scope() as s:
        key = create_key(s, f"bench-{time.time_ns()}")
        grids = active_grids(s)
        codes = sorted(load_categories(s))
    dispose(app)
    rng = np.random.default_rng(11)
    lon, lat = random_points_in(grids, rng.integers(0, len(grids), n_points), rng)
    return key, list(zip(lon.tolist(), lat.tolist(), strict=True)), codes


def _mix(key: str, points: list[tuple[float, float]], codes: list[str]) -> Any:
    """Request *i* of the Open311 mix: 30 % POST requests, 35 % GET requests (a page of 20), 35 % GET services."""
    from openloop import Request

    def make(i: int) -> Request:
        if i % 10 < 3:
            lon, lat = points[i % len(points)]
            body = urllib.parse.urlencode({"api_key": key, "service_code": codes[i % len(codes)],
                                           "description": f"bench {i}", "lat": lat, "long": lon,
                                           "media_url": f"https://photos.example/{i}.jpg",
                                           "address_string": f"测试路 {i} 号"}).encode()
            return Request("POST", "/open311/v2/requests.json", body)
        return Request("GET", "/open311/v2/requests.json?page_size=20" if i % 2 else "/open311/v2/services.json")

    return make


def _acked(results: list[Any]) -> list[int]:
    """service_request_id of every POST answered 201."""
    return [int(json.loads(r.body)[0]["service_request_id"]) for r in results if r.status == 201]


def load(folder: Path, rate: float, seconds: float, server: str = "prod", workers: int | None = None,
         threads: int | None = None, keep_alive: bool = False) -> dict[str, Any]:
    """The Open311 mix at *rate* for *seconds* on a freshly started server (after a warm-up)."""
    import openloop
    import prodserver

    key, points, codes = _client_data(folder)
    srv = prodserver.start(folder, server=server, workers=workers, threads=threads,
                           probe="/open311/v2/services.json")
    try:
        # Warm-up (not counted): every worker builds its active-grid index on its first POST.
        openloop.run("127.0.0.1", srv.port, _mix(key, points, codes), rate=min(rate, 50.0), seconds=WARMUP_S)
        cpu0 = srv.cpu_s()
        done = openloop.run("127.0.0.1", srv.port, _mix(key, points, codes), rate=rate, seconds=seconds,
                            keep_alive=keep_alive)
        server_cpu = srv.cpu_s() - cpu0
    finally:
        prodserver.stop(srv)
    out = {"server": srv.shape, "rate": rate, "seconds": seconds, "load_avg": round(os.getloadavg()[0], 1),
           **openloop.summary(done), "posted": len(_acked(done.results)),
           "server_cpu_ms_per_request": round(server_cpu * 1000 / max(len(done.results), 1), 2)}
    return out


def kill9(folder: Path, rate: float, seconds: float, server: str = "prod", workers: int | None = None,
          threads: int | None = None) -> dict[str, Any]:
    """Kill -9 the server mid-load; after a restart every acknowledged id must be stored."""
    import openloop
    import prodserver
    from sqlalchemy import func, select

    from api.db import dispose, session_scope
    from api.incidents.models import IncidentCase

    key, points, codes = _client_data(folder)
    srv = prodserver.start(folder, server=server, workers=workers, threads=threads,
                           probe="/open311/v2/services.json")
    stop = threading.Event()
    done: list[Any] = []
    th = threading.Thread(target=lambda: done.append(openloop.run(
        "127.0.0.1", srv.port, _mix(key, points, codes), rate=rate, seconds=seconds, stop=stop)))
    th.start()
    time.sleep(seconds / 2)
    prodserver.stop(srv, kill=True)
    stop.set()
    th.join()
    prodserver.stop(prodserver.start(folder, server=server, workers=workers, threads=threads,
                                     probe="/open311/v2/services.json"))
    acked = _acked(done[0].results)
    app = _app(folder)
    with app.app_context(), session_scope() as s:
        found = set(s.scalars(select(IncidentCase.id).where(IncidentCase.id.in_(acked))))
        total = s.scalar(select(func.count()).select_from(IncidentCase))
    dispose(app)
    return {"acknowledged": len(acked), "stored": len(found), "lost": len(set(acked) - found),
            "errors_after_kill": sum(1 for r in done[0].results if r.status != 201 and r.error), "rows": total}


#: Chromium as the browser tests start it (no network, no sandbox in containers).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: Records, in the page's own clock (ms since navigation start), when the map marks its view drawn.
_LOADED_PROBE = """new MutationObserver((changes, obs) => {
  const el = document.getElementById("wg-incident-map");
  if (el && el.dataset.loaded === "1") { window.__wgLoadedAt = performance.now(); obs.disconnect(); }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ["data-loaded"]});"""


#: Where the time went, in the page's clock: page parsed, the view's grids and cases received.
_PARTS = """(() => {
  const res = performance.getEntriesByType("resource");
  const end = (part) => Math.max(0, ...res.filter((r) => r.name.includes(part)).map((r) => r.responseEnd));
  return {dom_ms: performance.getEntriesByType("navigation")[0].domContentLoadedEventEnd,
          grids_received_ms: end("/api/incidents/grids"), cases_received_ms: end("/api/incidents/geojson")};
})()"""


def _street_office_view(folder: Path) -> tuple[str, str, str]:
    """A typical street office's map view and a map user.

    The middle 街道 (in code order): a view of its area at the screen's shape (1400x900), centred
    on its communities' bounding box (the synthetic offices are long strips: their own box would
    show a much larger area at that screen shape).
    """
    from sqlalchemy import text

    from api.db import dispose, session_scope
    from api.users import create_user

    app = _app(folder)
    with app.app_context(), session_scope() as s:
        boxes = s.execute(text("SELECT street_name, min(minx), min(miny), max(maxx), max(maxy) FROM communities "
                               "GROUP BY street_id ORDER BY street_id")).all()
        name, x0, y0, x1, y1 = boxes[len(boxes) // 2]
        area = s.execute(text("SELECT sum(area_m2) FROM plan_grids WHERE community_id IN "
                              "(SELECT community_id FROM communities WHERE street_name = :n) AND plan_version_id IN "
                              "(SELECT max(plan_version_id) FROM plan_grids)"), {"n": name}).scalar() or 0.0
        shrink = math.cos(math.radians((y0 + y1) / 2))
        h_m = math.sqrt(area * 900 / 1400) if area else (y1 - y0) * 111_320
        w_deg, h_deg = h_m * 1400 / 900 / (111_320 * shrink), h_m / 111_320
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        box = (cx - w_deg / 2, cy - h_deg / 2, cx + w_deg / 2, cy + h_deg / 2)
        user = f"bench_map_{time.time_ns()}"
        create_user(s, user, "bench-map-2026", role="planner")
    dispose(app)
    return ",".join(f"{v:.6f}" for v in box), name, user


def map_view(folder: Path, server: str = "prod", workers: int | None = None, repeats: int = 5) -> dict[str, Any]:
    """Time to interactive of the incident map of one street office in headless Chromium.

    From navigation start to the page's ``data-loaded="1"`` (grids of the view shaded and the
    view's cases drawn as clustered markers), read in the page's clock; the server is warmed
    first (each worker builds its active-grid index on its first request, not the bar).
    """
    import prodserver
    from playwright.sync_api import sync_playwright

    box, street, user = _street_office_view(folder)
    srv = prodserver.start(folder, server=server, workers=workers, probe="/open311/v2/services.json")
    port, warm = srv.port, 2 * (workers or 2)  # visits to warm every worker (server_workers: 2)
    times: list[float] = []
    parts: list[dict[str, float]] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_context(base_url=f"http://127.0.0.1:{port}", viewport={"width": 1400, "height": 900}, locale="zh-CN").new_page()
            page.add_init_script(_LOADED_PROBE)
            # Straight to the incident map after logging in (the default landing page is the workspace map).
            page.goto(f"/login?next=/incidents/map?bbox={box}")
            page.get_by_label("用户名").fill(user)
            page.get_by_label("密码").fill("bench-map-2026")
            with page.expect_navigation(timeout=120_000):
                page.get_by_role("button", name="登录").click()
            for i in range(repeats + warm):  # the first visits warm the workers (which one answers is the kernel's choice)
                page.goto(f"/incidents/map?bbox={box}")
                page.wait_for_function("() => window.__wgLoadedAt !== undefined", timeout=120_000)
                if i >= warm:
                    times.append(float(page.evaluate("window.__wgLoadedAt")))
                    parts.append(page.evaluate(_PARTS))
            shown = int(page.get_attribute("#wg-incident-map", "data-count") or 0)
            truncated = "仅显示最新部分" in (page.text_content("#wg-map-count") or "")
            browser.close()
    finally:
        prodserver.stop(srv)
    return {"street_office": street, "bbox": box, "cases_drawn": shown, "truncated": truncated,
            "grids_in_view": _grids_in(folder, box), "median_ms": round(statistics.median(times)),
            "max_ms": round(max(times)), "runs": len(times), "load_avg": round(os.getloadavg()[0], 1),
            **{k: round(statistics.median(p[k] for p in parts)) for k in parts[0]}}


def _grids_in(folder: Path, box: str) -> int:
    import shapely

    from api.db import dispose, session_scope
    from api.grids.service import active_grids

    app = _app(folder)
    with app.app_context(), session_scope(write=False) as s:
        grids = active_grids(s)
    dispose(app)
    return int(grids.intersects(shapely.box(*map(float, box.split(",")))).sum())



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--buildings", type=int, default=100_000)
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--load-seconds", type=float, default=60.0, help="Open311 load duration (0 = skip load and kill -9).")
    ap.add_argument("--rate", type=float, default=200.0, help="Open311 requests per second.")
    ap.add_argument("--folder", type=Path, default=OUT)
    ap.add_argument("--server", choices=["prod", "dev"], default="prod",
                    help="Serve the load with `wangge serve --prod` (gunicorn, the production path) or the "
                         "werkzeug development server of `wangge serve`.")
    ap.add_argument("--workers", type=int, default=None, help="web worker processes (default: server_workers).")
    ap.add_argument("--threads", type=int, default=None, help="threads per web worker (default: server_threads).")
    ap.add_argument("--keep-alive", action="store_true", help="reuse connections (default: one per request).")
    ap.add_argument("--map-runs", type=int, default=5, help="Timed incident-map loads in Chromium (0 = skip).")
    ap.add_argument("--skip-bulk", action="store_true", help="Only the Open311 load and kill -9 (on --reuse's database).")
    ap.add_argument("--reuse", type=Path, default=None, help="Copy this prepared database instead of preparing one.")
    args = ap.parse_args()
    results: dict[str, Any] = {"buildings": args.buildings}
    results["prepare"] = prepare(args.buildings, args.folder, args.reuse)
    print("prepare", results["prepare"], flush=True)
    if not args.skip_bulk:
        results["locate_insert"] = locate_insert(args.folder, args.cases)
        print("locate+insert", results["locate_insert"], flush=True)
        _fill_lifecycle(args.folder)
        results["metrics_before"], want = metrics(args.folder, in_db=False)
        print("metrics (pandas, before)", results["metrics_before"], flush=True)
        results["metrics"], got = metrics(args.folder)
        results["metrics"]["equal_to_pandas"] = _same_metrics(got, want)
        print("metrics (database)", results["metrics"], flush=True)
    if args.map_runs > 0:
        results["map"] = map_view(args.folder, args.server, args.workers, args.map_runs)
        print("incident map", results["map"], flush=True)
    if args.load_seconds > 0:
        results["load"] = load(args.folder, args.rate, args.load_seconds, args.server, args.workers, args.threads,
                               args.keep_alive)
        print("open311 load", results["load"], flush=True)
        results["kill9"] = kill9(args.folder, args.rate, min(args.load_seconds, 20), args.server, args.workers,
                                 args.threads)
        print("kill -9", results["kill9"], flush=True)
    (args.folder / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    _print_table(results, args.cases)


def _print_table(results: dict[str, Any], cases: int) -> None:
    """The bars with wall time, CPU seconds (of this process; per request under load) and the load average."""
    rows = []
    if "locate_insert" in results:
        li, mb, m = results["locate_insert"], results["metrics_before"], results["metrics"]
        rows += [(f"locate + insert {cases:,} cases", f"{li['total_s']} s", f"{li['cpu_s']} s", li["load_avg"],
                  "< 60 s per 1 M", li["total_s"] * 1e6 / cases < 60),
                 ("metrics by grid, pandas (before)", f"{mb['total_s']} s", f"{mb['cpu_s']} s", mb["load_avg"], "< 2 s",
                  mb["total_s"] < 2),
                 ("metrics by grid, database (after)", f"{m['total_s']} s", f"{m['cpu_s']} s", m["load_avg"], "< 2 s",
                  m["total_s"] < 2)]
    if "map" in results:
        mp = results["map"]
        rows.append((f"incident map, {mp['street_office']} view ({mp['grids_in_view']} grids, {mp['cases_drawn']} cases "
                     "drawn), Chromium", f"median {mp['median_ms']} ms, max {mp['max_ms']} ms", "—", mp["load_avg"],
                     "< 1 s to interactive", mp["median_ms"] < 1000))
    if "load" in results:
        ld, k = results["load"], results["kill9"]
        rows += [(f"Open311 {ld['rate']:g}/s for {ld['seconds']:g} s ({ld['server']})",
                  f"p50 {ld['p50_ms']} ms, p99 {ld['p99_ms']} ms, {ld['errors']} errors of {ld['requests']}",
                  f"server {ld['server_cpu_ms_per_request']} ms, client {ld['client_cpu_ms_per_request']} ms per request",
                  ld["load_avg"], "p99 < 100 ms, 0 errors", ld["p99_ms"] < 100 and ld["errors"] == 0),
                 ("kill -9 mid-load", f"{k['lost']} of {k['acknowledged']} acknowledged lost", "—", "—", "0 lost",
                  k["lost"] == 0)]
    print("\n| step | measured | CPU | load avg | bar | met |\n|---|---|---|---|---|---|")
    for name, measured, cpu, load_avg, bar, ok in rows:
        print(f"| {name} | {measured} | {cpu} | {load_avg} | {bar} | {'yes' if ok else 'NO'} |")


if __name__ == "__main__":
    main()
