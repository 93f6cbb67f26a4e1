"""Benchmark: incidents at district scale.

1. ``prepare`` (not a bar): a synthetic district of N buildings, partitioned and published.
2. ``locate+insert``: C synthetic cases (random points in the grids, random categories, a
   year of report times) located by point-in-polygon on the active plan
   (:func:`api.incidents.intake.locate_points`), SLA due times from the working-day calendar,
   inserted with one report event each, in one transaction. Bar: 1 M cases < 60 s.
3. ``metrics``: 结案率/按期结案率/返工率/延期率/mean handling time for a year by grid, on a
   lifecycle-filled copy of those cases, both ways in the same run: every case read into pandas
   (before) and one ``GROUP BY`` in the database (:func:`api.incidents.metrics.metrics_in_db`,
   after). Bar: < 2 s.
4. ``open311 load`` (optional, ``--load-seconds``): the real app on loopback, served by
   ``wangge serve --prod`` (gunicorn with ``server_workers`` x ``server_threads``, the production
   path; ``--workers``/``--threads`` to try other shapes) or the development server
   (``--server dev``); 200 requests/s of mixed Open311 POST (30 %, at random points in the grids,
   random categories) and GET, sent open-loop by ``bench/openloop.py`` (latency from each
   request's due time; one connection per request unless ``--keep-alive``); p50/p99, errors, the
   CPU per request of the server's processes and of the client. Bar: p99 < 100 ms, 0 errors over 60 s.
5. ``kill -9`` (optional, with the load): the server's whole process group is killed mid-load and
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
import os
import shutil
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
    dispose(app)
    return {"cases": n_cases, "located": int(where["grid_code"].notna().sum()), "index_s": round(t_index, 2),
            "locate_s": round(t_locate - t_index, 2), "cases_insert_s": round(t_cases - t_locate, 1),
            "events_insert_s": round(total - t_cases, 1), "total_s": round(total, 1),
            "cpu_s": round(time.process_time() - c0, 1), "load_avg": os.getloadavg()[0]}


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


def metrics(folder: Path, *, in_db: bool = True) -> dict[str, Any]:
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
            "load_avg": round(os.getloadavg()[0], 1), "closure_rate_median": float(np.nanmedian(table["closure_rate"]))}


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
        results["metrics_before"] = metrics(args.folder, in_db=False)
        print("metrics (pandas, before)", results["metrics_before"], flush=True)
        results["metrics"] = metrics(args.folder)
        print("metrics (database)", results["metrics"], flush=True)
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
