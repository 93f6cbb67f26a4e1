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
5. ``open311 load`` (optional, ``--load-seconds``): the real app on loopback, through gunicorn
   (the production path, ``--server gunicorn``, default when it is installed) or the werkzeug
   development server of ``wangge serve``; 200 requests/s of mixed Open311 POST (30 %) and GET;
   p50/p99, errors. Bar: p99 < 100 ms, 0 errors over 60 s.
6. ``kill -9`` (optional, with the load): the server's whole process group is killed mid-load and
   restarted; every acknowledged service_request_id must be in the database.

Wall times on a shared machine are inflated by other work: every timed step also reports the
CPU seconds of the bench process and the load average when it finished.

Usage::

    .venv/bin/python bench/incidents.py --buildings 10000 --cases 100000 --load-seconds 10   # quick
    .venv/bin/python bench/incidents.py                                                       # 100 k b, 1 M cases, 60 s
    .venv/bin/python bench/incidents.py --reuse bench/out/prepared-100000.db --skip-bulk      # the load only
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out" / "incidents"
REPO = Path(__file__).resolve().parents[1]
#: Seconds of light load before the measured Open311 load (worker start-up is not the bar).
WARMUP_S = 10.0
sys.path.insert(0, str(REPO))


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_command(port: int, server: str, workers: int) -> list[str]:
    """The production path (gunicorn workers on the app factory) or the development server."""
    if server == "gunicorn":
        return [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", "4", "--bind",
                f"127.0.0.1:{port}", "--graceful-timeout", "5", "--log-level", "warning", "api:create_app()"]
    return [sys.executable, "-c", "from api.cli import main; main()", "serve", "--port", str(port)]


def _start_server(folder: Path, port: int, server: str = "dev", workers: int = 3) -> subprocess.Popen[bytes]:
    env = {**os.environ, "WANGGE_SECRET_KEY": "bench", "WANGGE_INSTANCE_PATH": str(folder / "instance"),
           "WANGGE_DATABASE_URL": f"sqlite:///{folder / 'wangge.db'}", "PYTHONPATH": str(REPO)}
    # Own process group: kill -9 takes the whole server (master and workers), as a crash would.
    proc = subprocess.Popen(_server_command(port, server, workers), env=env, cwd=str(REPO), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/open311/v2/services.json", timeout=1).read()
            return proc
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError(f"the {server} server did not start")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def _api_key(folder: Path) -> tuple[str, float, float]:
    from api.db import dispose, session_scope
    from api.grids.service import active_grids
    from api.incidents.keys import create_key

    app = _app(folder)
    with app.app_context(), session_scope() as s:
        key = create_key(s, f"bench-{time.time_ns()}")
        p = active_grids(s).geometry.iloc[0].representative_point()
    dispose(app)
    return key, p.x, p.y


class _Load:
    """Open-loop load: one request every 1/rate s over *threads* workers; latencies and acknowledged ids."""

    def __init__(self, base: str, key: str, lon: float, lat: float) -> None:
        self.base, self.key, self.lon, self.lat = base, key, lon, lat
        self.lat_ms: list[float] = []
        self.errors: list[str] = []
        self.acked: list[int] = []
        self.lock = threading.Lock()

    def one(self, i: int) -> None:
        post = i % 10 < 3
        t = time.perf_counter()
        try:
            if post:
                body = urllib.parse.urlencode({"api_key": self.key, "service_code": "SJ-0103", "description": f"bench {i}",
                                               "lat": self.lat, "long": self.lon}).encode()
                with urllib.request.urlopen(f"{self.base}/requests.json", data=body, timeout=5) as r:
                    rid = int(json.loads(r.read())[0]["service_request_id"])
                with self.lock:
                    self.acked.append(rid)
            else:
                path = "requests.json?page_size=20" if i % 2 else "services.json"
                urllib.request.urlopen(f"{self.base}/{path}", timeout=5).read()
        except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
            with self.lock:
                reason = getattr(exc, "reason", None) or getattr(exc, "code", None)
                self.errors.append(f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__)
            return
        with self.lock:
            self.lat_ms.append((time.perf_counter() - t) * 1000)

    def run(self, rate: float, seconds: float, stop: threading.Event | None = None) -> None:
        threads: list[threading.Thread] = []
        start, i = time.perf_counter(), 0
        while time.perf_counter() - start < seconds and not (stop and stop.is_set()):
            target = start + i / rate
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            th = threading.Thread(target=self.one, args=(i,), daemon=True)
            th.start()
            threads.append(th)
            i += 1
        for th in threads:
            th.join(timeout=10)


def load(folder: Path, rate: float, seconds: float, server: str = "dev", workers: int = 3) -> dict[str, Any]:
    key, lon, lat = _api_key(folder)
    port = _free_port()
    proc = _start_server(folder, port, server, workers)
    try:
        # Warm-up (not counted): every worker builds its active-grid index on its first POST.
        _Load(f"http://127.0.0.1:{port}/open311/v2", key, lon, lat).run(min(rate, 20.0), WARMUP_S)
        runner = _Load(f"http://127.0.0.1:{port}/open311/v2", key, lon, lat)
        runner.run(rate, seconds)
    finally:
        _stop(proc)
    lat_ms = sorted(runner.lat_ms)
    p99 = lat_ms[int(0.99 * (len(lat_ms) - 1))] if lat_ms else float("nan")
    return {"server": server if server == "dev" else f"gunicorn {workers} workers x 4 threads", "rate": rate,
            "seconds": seconds, "load_avg": round(os.getloadavg()[0], 1), "requests": len(lat_ms) + len(runner.errors), "errors": len(runner.errors),
            "p50_ms": round(statistics.median(lat_ms), 1) if lat_ms else None, "p99_ms": round(p99, 1),
            "posted": len(runner.acked), "error_kinds": dict(collections.Counter(runner.errors))}


def kill9(folder: Path, rate: float, seconds: float, server: str = "dev", workers: int = 3) -> dict[str, Any]:
    """Kill -9 the server mid-load; after a restart every acknowledged id must be stored."""
    from sqlalchemy import func, select

    from api.db import dispose, session_scope
    from api.incidents.models import IncidentCase

    key, lon, lat = _api_key(folder)
    port = _free_port()
    proc = _start_server(folder, port, server, workers)
    runner = _Load(f"http://127.0.0.1:{port}/open311/v2", key, lon, lat)
    stop = threading.Event()
    th = threading.Thread(target=runner.run, args=(rate, seconds, stop))
    th.start()
    time.sleep(seconds / 2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    stop.set()
    th.join()
    _stop(_start_server(folder, port, server, workers))
    app = _app(folder)
    with app.app_context(), session_scope() as s:
        found = set(s.scalars(select(IncidentCase.id).where(IncidentCase.id.in_(runner.acked))))
        total = s.scalar(select(func.count()).select_from(IncidentCase))
    dispose(app)
    return {"acknowledged": len(runner.acked), "stored": len(found), "lost": len(set(runner.acked) - found),
            "errors_after_kill": len(runner.errors), "rows": total}


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


def map_view(folder: Path, server: str = "dev", workers: int = 3, repeats: int = 5) -> dict[str, Any]:
    """Time to interactive of the incident map of one street office in headless Chromium.

    From navigation start to the page's ``data-loaded="1"`` (grids of the view shaded and the
    view's cases drawn as clustered markers), read in the page's clock; the server is warmed
    first (each worker builds its active-grid index on its first request, not the bar).
    """
    from playwright.sync_api import sync_playwright

    box, street, user = _street_office_view(folder)
    port = _free_port()
    proc = _start_server(folder, port, server, workers)
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
            warm = 2 * workers  # the first visits warm the workers (which one answers is the kernel's choice)
            for i in range(repeats + warm):
                page.goto(f"/incidents/map?bbox={box}")
                page.wait_for_function("() => window.__wgLoadedAt !== undefined", timeout=120_000)
                if i >= warm:
                    times.append(float(page.evaluate("window.__wgLoadedAt")))
                    parts.append(page.evaluate(_PARTS))
            shown = int(page.get_attribute("#wg-incident-map", "data-count") or 0)
            truncated = "仅显示最新部分" in (page.text_content("#wg-map-count") or "")
            browser.close()
    finally:
        _stop(proc)
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


def _has_gunicorn() -> bool:
    import importlib.util

    return importlib.util.find_spec("gunicorn") is not None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--buildings", type=int, default=100_000)
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--load-seconds", type=float, default=60.0, help="Open311 load duration (0 = skip load and kill -9).")
    ap.add_argument("--rate", type=float, default=200.0, help="Open311 requests per second.")
    ap.add_argument("--folder", type=Path, default=OUT)
    ap.add_argument("--server", choices=["gunicorn", "dev"], default="gunicorn" if _has_gunicorn() else "dev",
                    help="Serve the load through gunicorn (the production path; default when installed) or the "
                         "werkzeug development server of `wangge serve`.")
    ap.add_argument("--workers", type=int, default=3, help="gunicorn worker processes.")
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
        results["load"] = load(args.folder, args.rate, args.load_seconds, args.server, args.workers)
        print("open311 load", results["load"], flush=True)
        results["kill9"] = kill9(args.folder, args.rate, min(args.load_seconds, 20), args.server, args.workers)
        print("kill -9", results["kill9"], flush=True)
    (args.folder / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    _print_table(results, args.cases)


def _print_table(results: dict[str, Any], cases: int) -> None:
    """The bars with wall time, CPU seconds of this process and the load average (a shared machine)."""
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
                  f"p50 {ld['p50_ms']} ms, p99 {ld['p99_ms']} ms, {ld['errors']} errors of {ld['requests']}", "—",
                  ld["load_avg"], "p99 < 100 ms, 0 errors", ld["p99_ms"] < 100 and ld["errors"] == 0),
                 ("kill -9 mid-load", f"{k['lost']} of {k['acknowledged']} acknowledged lost", "—", "—", "0 lost",
                  k["lost"] == 0)]
    print("\n| step | measured | CPU | load avg | bar | met |\n|---|---|---|---|---|---|")
    for name, measured, cpu, load_avg, bar, ok in rows:
        print(f"| {name} | {measured} | {cpu} | {load_avg} | {bar} | {'yes' if ok else 'NO'} |")


if __name__ == "__main__":
    main()
