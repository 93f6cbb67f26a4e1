"""City scale on SQLite and PostGIS side by side (issue 17 §6), one run, one table.

    .venv/bin/python bench/scale.py                                  # 100 k buildings, 1 M points, 200 clients
    .venv/bin/python bench/scale.py --buildings 100000 1000000 --seconds 30
    .venv/bin/python bench/scale.py --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

For each size: a synthetic street office (``geo.synthetic``, seed 42) is prepared once, then

- **import**: ``import_workspace`` into an empty SQLite file and an empty PostGIS database
  (COPY there); the same prepared layers, timed alone;
- **partition** on SQLite (the same engine on both; not a database figure), then
  **db copy** SQLite → PostGIS (``wangge db copy``, with its checksum comparison), so both
  backends hold the identical workspace and plan;
- **bbox read**: the plan's buildings of a sixteenth of the district, by the bbox columns
  (both), and on PostGIS by the GiST index (``geometry && envelope``);
- **point-in-grid** for P random points: grids loaded from the database into
  ``geo.activegrids.GridIndex`` (STRtree, both backends), and on PostGIS in SQL
  (points COPYed into a temporary table, joined with ``ST_Covers`` on the GiST index);
- **plan page**: the app served from its own process (werkzeug, threaded, like
  ``wangge serve``); the first request after start (cold) and the median of 3 later ones
  (warm) of the plan page and its grids;
- **load**: ``bench/load.py``'s clients (map reads, exports, edits, saves), C clients for
  S seconds on loopback: p50/p99 of all requests, requests/s, 5xx and unanswered.

It prints one table per size and ``os.getloadavg()`` before and after: the machine is
shared, so figures are only comparable within a run. PostgreSQL: ``--pg-url`` (a server;
databases are created and dropped in it), else a throwaway cluster like ``scripts/pg-test.sh``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import load  # noqa: E402  (bench/load.py: the clients and the served app)


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


@contextmanager
def _pg_server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from tests.pgserver import start_server, stop_server

    folder = Path(tempfile.mkdtemp(prefix="wangge-scale-pg-"))
    try:
        yield start_server(folder, load._free_port())
    finally:
        stop_server(folder)


@contextmanager
def _pg_database(server: str, name: str) -> Iterator[str]:
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _app(tmp: Path, url: str) -> Any:
    from api import create_app

    return create_app({"INSTANCE_PATH": str(tmp / "instance"), "DATABASE_URL": url, "WTF_CSRF_ENABLED": False})


def _import(app: Any, prepared: Any) -> float:
    from api import db
    from api.workspace import import_workspace

    with app.app_context(), db.session_scope() as s:
        return _timed(lambda: import_workspace(s, prepared, user="bench", sources={"kind": "synthetic"}))[0]


def _partition(app: Any) -> tuple[float, int]:
    from tests.api.plans_helpers import login

    planner = login(app, "planner")
    login(app, "viewer")
    t0 = time.perf_counter()
    job_id = planner.post("/api/plans/partition", json={"name": "规模方案"}).get_json()["job_id"]
    while True:  # a poll may meet the job's own big write (503 busy on SQLite): poll again
        r = planner.get(f"/api/jobs/{job_id}")
        job = r.get_json() if r.status_code == 200 else {"state": "running"}
        if job["state"] not in ("queued", "running"):
            break
        time.sleep(0.5)
    if job["state"] != "done":
        raise SystemExit(f"partition failed: {job}")
    return time.perf_counter() - t0, int(job["plan_id"])


def _bbox(app: Any) -> tuple[float, float, float, float]:
    from api import db
    from api.workspace import workspace_stats

    with app.app_context(), db.session_scope(write=False) as s:
        return workspace_stats(s)["bbox"]


def _sixteenth(bbox: tuple[float, ...]) -> tuple[float, float, float, float]:
    minx, miny, maxx, maxy = bbox
    w, h = (maxx - minx) / 4, (maxy - miny) / 4
    x, y = minx + 1.5 * w, miny + 1.5 * h
    return x, y, x + w, y + h


def _bbox_reads(app: Any, box: tuple[float, float, float, float]) -> dict[str, Any]:
    from sqlalchemy import func, select, type_coerce

    from api import db
    from api.models import WKB, Building
    from api.workspace import load_layer

    out: dict[str, Any] = {}
    with app.app_context(), db.session_scope(write=False) as s:
        out["bbox columns"], gdf = _timed(lambda: load_layer(s, "buildings", bbox=box))
        if s.get_bind().dialect.name == "postgresql":
            env = func.ST_MakeEnvelope(*box, 4326)
            stmt = select(Building.building_id, type_coerce(Building.geometry, WKB)).where(Building.geometry.op("&&")(env))
            out["GiST &&"], rows = _timed(lambda: s.execute(stmt).all())
            out["rows by GiST"] = len(rows)  # PostGIS index boxes are float4, rounded outward: a few more
    out["rows"] = len(gdf)
    return out


def _points(bbox: tuple[float, ...], n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    minx, miny, maxx, maxy = bbox
    return rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)


def _grid_index_locate(app: Any, plan: int, xs: np.ndarray, ys: np.ndarray) -> tuple[float, int]:
    import geopandas as gpd
    import shapely
    from sqlalchemy import select, type_coerce

    from api import db
    from api.models import WKB, PlanGrid
    from geo.activegrids import GridIndex

    def run() -> int:
        with app.app_context(), db.session_scope(write=False) as s:
            rows = s.execute(select(PlanGrid.grid_id, type_coerce(PlanGrid.geometry, WKB))
                             .where(PlanGrid.plan_version_id == plan)).all()
        grids = gpd.GeoDataFrame({"grid_id": [r[0] for r in rows]},
                                 geometry=shapely.from_wkb([bytes(r[1]) for r in rows]), crs=4326)
        found = GridIndex.from_grids(grids).grid_of_points(xs, ys, tolerance_m=0.0, nearest_fallback=False)
        return int(found["grid_id"].notna().sum())

    return _timed(run)


def _postgis_locate(app: Any, plan: int, xs: np.ndarray, ys: np.ndarray) -> tuple[float, int]:
    from api import db

    def run() -> int:
        with app.app_context(), db.session_scope(write=False) as s:
            conn = s.connection()
            conn.exec_driver_sql("CREATE TEMP TABLE pts (id integer, x float8, y float8) ON COMMIT DROP")
            cursor = conn.connection.driver_connection.cursor()
            with cursor, cursor.copy("COPY pts (id, x, y) FROM STDIN") as copy:
                for row in zip(range(len(xs)), xs.tolist(), ys.tolist(), strict=True):
                    copy.write_row(row)
            return int(conn.exec_driver_sql(
                "SELECT count(*) FROM pts p JOIN plan_grids g ON g.plan_version_id = %s "
                "AND ST_Covers(g.geometry, ST_SetSRID(ST_MakePoint(p.x, p.y), 4326))", (plan,)).scalar_one())

    return _timed(run)


@contextmanager
def _served(tmp: Path, url: str) -> Iterator[str]:
    port = load._free_port()
    env = {**os.environ, "WANGGE_BENCH_DATABASE_URL": url}
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "load.py"), "--serve", str(tmp), str(port)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env)
    try:
        load._wait_ready(proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        if proc.stdout is not None:
            proc.stdout.close()


def _page_times(base: str, plan: int) -> dict[str, float]:
    viewer = load._session(base, "planner")
    paths = [f"/plans/{plan}", f"/api/plans/{plan}/grids.geojson?display=1"]

    def visit() -> float:
        t0 = time.perf_counter()
        for p in paths:
            r = viewer.get(base + p, timeout=600)
            if r.status_code != 200:
                raise SystemExit(f"{p}: {r.status_code}")
        return time.perf_counter() - t0

    cold = visit()
    warm = statistics.median(visit() for _ in range(3))
    return {"plan page cold": cold, "plan page warm": warm}


def _load(base: str, tmp: Path, plan: int, bbox: tuple[float, ...], clients: int, seconds: float) -> dict[str, Any]:
    _, grids = load._baseline(tmp, plan)
    t0 = time.perf_counter()
    tally = load._run_clients(base, plan, grids, bbox, clients, seconds)
    elapsed = time.perf_counter() - t0
    times = sorted(dt for _, status, dt in tally.samples if status)
    q = statistics.quantiles(times, n=100) if len(times) > 1 else [float("nan")] * 99
    return {"requests": len(tally.samples), "per_s": len(tally.samples) / elapsed, "p50": q[49], "p99": q[98],
            "5xx": sum(1 for _, s, _ in tally.samples if s >= 500), "no answer": len(tally.errors)}


def _backend_figures(name: str, tmp: Path, url: str, prepared: Any, args: argparse.Namespace,
                     copy_from: Any | None) -> dict[str, Any]:
    from api import db
    from api.dbcopy import copy_database

    app = _app(tmp, url)
    fig: dict[str, Any] = {"import": _import(app, prepared)}
    if copy_from is None:
        fig["partition"], plan = _partition(app)
    else:
        seconds, report = _timed(lambda: copy_database(db.get_db(copy_from["app"]).engine, db.get_db(app).engine,
                                                      force=True))
        if not report.equal:
            raise SystemExit("db copy: checksums differ")
        fig["db copy"], plan = seconds, copy_from["plan"]
    bbox = _bbox(app)
    for key, value in _bbox_reads(app, _sixteenth(bbox)).items():
        fig[f"bbox read: {key}"] = value
    xs, ys = _points(bbox, args.points)
    fig["point-in-grid: GridIndex"], fig["points in a grid"] = _grid_index_locate(app, plan, xs, ys)
    if name == "PostGIS":
        fig["point-in-grid: PostGIS SQL"], inside = _postgis_locate(app, plan, xs, ys)
        if inside != fig["points in a grid"]:
            print(f"  note: PostGIS SQL placed {inside:,} points, GridIndex {fig['points in a grid']:,} "
                  "(points on shared edges count once per grid in SQL)")
    fig["_app"], fig["_plan"], fig["_bbox"] = app, plan, bbox
    return fig


def _serve_figures(tmp: Path, url: str, fig: dict[str, Any], args: argparse.Namespace) -> None:
    from api import db

    db.dispose(fig["_app"])
    os.environ["WANGGE_BENCH_DATABASE_URL"] = url
    with _served(tmp, url) as base:
        fig.update(_page_times(base, fig["_plan"]))
        fig["load"] = _load(base, tmp, fig["_plan"], fig["_bbox"], args.clients, args.seconds)


def _row(label: str, a: Any, b: Any) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return "—"
        if isinstance(v, float):
            return f"{v:,.2f}" if v < 1000 else f"{v:,.0f}"
        return f"{v:,}" if isinstance(v, int) else str(v)

    ratio = ""
    if isinstance(a, float) and isinstance(b, float) and a > 0 and b > 0 and "rows" not in label:
        ratio = f"{b / a:.2f}×"
    return f"| {label} | {cell(a)} | {cell(b)} | {ratio} |"


def _table(n: int, sq: dict[str, Any], pg: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [f"\n### {n:,} buildings, {args.points:,} points, {args.clients} clients × {args.seconds:.0f} s\n",
             "| figure (seconds unless named) | SQLite | PostGIS | PostGIS / SQLite |", "|---|---|---|---|"]
    keys = [k for k in dict.fromkeys([*sq, *pg]) if not k.startswith("_") and k != "load"]
    for k in keys:
        lines.append(_row(k, sq.get(k), pg.get(k)))
    for k in ("requests", "per_s", "p50", "p99", "5xx", "no answer"):
        a, b = sq["load"][k], pg["load"][k]
        lines.append(_row(f"load: {k}", float(a) if k in ("per_s", "p50", "p99") else a,
                          float(b) if k in ("per_s", "p50", "p99") else b))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--buildings", type=int, nargs="+", default=[100_000])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--pg-url", default=None, help="PostgreSQL server URL (default: a throwaway cluster)")
    args = ap.parse_args()
    os.environ.setdefault("WANGGE_SECRET_KEY", "bench-scale")
    from geo.prepare import prepare_layers
    from geo.synthetic import synthetic_district

    print(f"load average before: {os.getloadavg()}; {os.cpu_count()} cores")
    with _pg_server(args.pg_url) as server:
        for n in args.buildings:
            seconds, prepared = _timed(lambda n=n: prepare_layers(synthetic_district(n, seed=42).layers))
            print(f"{n:,} buildings prepared in {seconds:.1f} s (geo.prepare, shared by both backends)")
            with tempfile.TemporaryDirectory(prefix="wangge-scale-") as d, _pg_database(server, f"scale_{n}") as pg_url:
                tmp_sq, tmp_pg = Path(d) / "sqlite", Path(d) / "pg"
                sq = _backend_figures("SQLite", tmp_sq, f"sqlite:///{tmp_sq / 'wangge.db'}", prepared, args, None)
                pg = _backend_figures("PostGIS", tmp_pg, pg_url, prepared, args,
                                      {"app": sq["_app"], "plan": sq["_plan"]})
                _serve_figures(tmp_sq, f"sqlite:///{tmp_sq / 'wangge.db'}", sq, args)
                _serve_figures(tmp_pg, pg_url, pg, args)
                print(_table(n, sq, pg, args))
            print(f"load average now: {os.getloadavg()}")


if __name__ == "__main__":
    main()
