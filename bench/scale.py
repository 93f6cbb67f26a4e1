"""City scale on SQLite and PostGIS side by side (issue 17 §6): one run, one table per size.

    .venv/bin/python bench/scale.py --buildings 100000 1000000        # the issue's figures
    .venv/bin/python bench/scale.py --buildings 20000 --seconds 20    # a quick look
    .venv/bin/python bench/scale.py --buildings 1000000 --rebuild     # prepare the 1 M city again

**Preparation (once, cached).** Each size's city is prepared once and kept under
``bench/out/scale-cache/`` (``bench/scale_prep.py``: synthetic street office of seed 42,
imported into SQLite and into PostGIS (COPY), partitioned, published, a draft copy made,
both plans' state snapshots stored, ``wangge db copy`` SQLite → PostGIS with its checksum
comparison). Those steps' timings are measured then and printed from the cache with the
machine load of that moment. A run starts from fresh copies of the prepared databases
(SQLite file copied, PostGIS ``CREATE DATABASE … TEMPLATE``), so no run sees another's writes.

**Measured in each run, per backend:**

- **bbox read**: the published plan's buildings of a sixteenth of the district, by the bbox
  columns (both), and on PostGIS by the GiST index (``geometry && envelope``);
- **point-in-grid** for ``--points`` random points: the published grids in
  ``geo.activegrids.GridIndex`` (STRtree, both backends), and on PostGIS in SQL (points
  COPYed into a temporary table with a GiST index, joined with ``ST_Covers``);
- **plan page**: ``wangge serve --prod`` (gunicorn, ``--workers`` × ``--threads``, one job
  process) started on the database; the draft plan's page and what it loads before it is
  drawn: without a community (a city-size plan opens on its communities' overview: the card
  and ``/communities``), for one community (the card and its grids), and the whole city's
  grids as the API serves them: the first request after start (cold, from the stored
  snapshot) and the median of 3 later ones (warm);
- **load**: ``--clients`` people for ``--seconds`` on loopback against the same server, with
  a think time of mean ``--think`` seconds between requests: 60 % grid workers on phones
  (patrol fixes, grid of their position, the buildings and cases of a 400 m view, now and
  then a new case), 30 % supervisors reading the visible area of the map (1.5 km: buildings,
  streets, cases, a grid's card, the case list), 10 % planners on one community of the draft
  plan (its grids, its buildings, the plan's card, a rename now and then, rarely a CSV export
  of the whole plan); details in ``bench/scale_load.py``. p50/p99 of all answers and per
  kind, requests/s, 4xx (409 lost races excluded), 5xx and unanswered.

The clients run in this process on the same 2 cores as the server: the figures include
their cost. Prints ``os.getloadavg()`` before and after: the machine is shared, so figures
are only comparable within a run. PostgreSQL: ``--pg-url`` (a server; databases are created
and dropped in it), else the cluster kept in ``bench/out/scale-cache/pgdata``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import load  # noqa: E402  (bench/load.py: free ports)
import scale_load  # noqa: E402
import scale_prep  # noqa: E402


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _app(instance: Path, url: str) -> Any:
    from api import create_app

    return create_app({"INSTANCE_PATH": str(instance), "DATABASE_URL": url, "WTF_CSRF_ENABLED": False})


def _sixteenth(bbox: list[float]) -> tuple[float, float, float, float]:
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
        out["bbox read: bbox columns"], gdf = _timed(lambda: load_layer(s, "buildings", bbox=box))
        if s.get_bind().dialect.name == "postgresql":
            env = func.ST_MakeEnvelope(*box, 4326)
            stmt = select(Building.building_id, type_coerce(Building.geometry, WKB)).where(Building.geometry.op("&&")(env))
            out["bbox read: GiST &&"], rows = _timed(lambda: s.execute(stmt).all())
    out["bbox read: rows"] = len(gdf)
    return out


def _points(bbox: list[float], n: int) -> tuple[np.ndarray, np.ndarray]:
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


#: Points in a temporary table with a GiST index, analysed, then joined grid by grid: each
#: grid's polygon is tested against its candidate points one after the other, so PostGIS
#: prepares it once (its prepared-geometry cache keys on the repeated argument).
_PG_LOCATE = (
    "SELECT count(DISTINCT p.id) FROM plan_grids g JOIN pts p ON g.geometry && p.geom AND ST_Covers(g.geometry, p.geom) "
    "WHERE g.plan_version_id = %s")


def _postgis_locate(app: Any, plan: int, xs: np.ndarray, ys: np.ndarray, *, explain: bool) -> tuple[float, int]:
    from api import db

    def run() -> int:
        with app.app_context(), db.session_scope(write=False) as s:
            conn = s.connection()
            conn.exec_driver_sql("CREATE TEMP TABLE pts (id integer, geom geometry(Point, 4326)) ON COMMIT DROP")
            cursor = conn.connection.driver_connection.cursor()
            with cursor, cursor.copy("COPY pts (id, geom) FROM STDIN") as copy:
                for i, x, y in zip(range(len(xs)), xs.tolist(), ys.tolist(), strict=True):
                    copy.write_row((i, f"SRID=4326;POINT({x!r} {y!r})"))
            conn.exec_driver_sql("CREATE INDEX ON pts USING gist (geom)")
            conn.exec_driver_sql("ANALYZE pts")
            if explain:
                plan_text = conn.exec_driver_sql("EXPLAIN " + _PG_LOCATE, (plan,)).scalars().all()
                print("  EXPLAIN point-in-grid:\n    " + "\n    ".join(plan_text), flush=True)
            return int(conn.exec_driver_sql(_PG_LOCATE, (plan,)).scalar_one())

    return _timed(run)


def _database_figures(backend: str, app: Any, city: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    fig = _bbox_reads(app, _sixteenth(city["bbox"]))
    xs, ys = _points(city["bbox"], args.points)
    fig["point-in-grid: GridIndex"], fig["points in a grid"] = _grid_index_locate(app, city["plan_a"], xs, ys)
    if backend == "PostGIS":
        fig["point-in-grid: PostGIS SQL"], inside = _postgis_locate(app, city["plan_a"], xs, ys, explain=True)
        if inside != fig["points in a grid"]:
            print(f"  note: PostGIS SQL placed {inside:,} points, GridIndex {fig['points in a grid']:,} "
                  "(a point on an edge shared by two grids: GridIndex picks one)", flush=True)
    return fig


def _plan_rules(app: Any, city: dict[str, Any]) -> float:
    """Store the plans' grid rules where the cached city predates them (migration 0009; the
    partition job stores them now): once per run copy, before the server starts, so the plan
    card counts them instead of loading the whole plan; the published plan's state is stored too
    (a city cached without it). The draft, an unedited copy, takes the published plan's rules.
    The wall seconds it took."""
    from sqlalchemy import select, update

    from api import db
    from api.models import PlanGrid, PlanVersion
    from api.plans.summary import plan_summary

    def run() -> None:
        with app.app_context():
            s = db.get_session()
            plan_summary(s, s.get(PlanVersion, city["plan_a"]), app.config["WANGGE"])
            s.commit()
            saver = app.extensions.get("wangge.plan_snapshots")
            if saver is not None:
                saver.flush()
            draft = s.get(PlanVersion, city["plan_b"])
            if draft.version_counter == 1 and draft.parent_id == city["plan_a"]:
                src = PlanGrid.__table__.alias("src")
                s.execute(update(PlanGrid.__table__).where(PlanGrid.plan_version_id == city["plan_b"],
                                                           PlanGrid.violations.is_(None))
                          .values(violations=select(src.c.violations).where(
                              src.c.plan_version_id == city["plan_a"],
                              src.c.grid_id == PlanGrid.__table__.c.grid_id).scalar_subquery()))
                s.commit()
            plan_summary(s, s.get(PlanVersion, city["plan_b"]), app.config["WANGGE"])
            s.commit()

    return _timed(run)[0]


def _page_times(base: str, city: dict[str, Any]) -> dict[str, float]:
    planner = scale_load.login(base, "planner")
    plan, community = city["plan_b"], city["communities"][len(city["communities"]) // 2]
    # what each page loads before it is drawn: a city-size plan opens on its communities
    # (planner_overview_min_grids), a community page on its grids; the whole city's grids are
    # still there for the API (a small plan's page, exports) and timed as such
    pages = {"whole city (overview)": [f"/plans/{plan}", f"/api/plans/{plan}", f"/api/plans/{plan}/communities"],
             "one community": [f"/plans/{plan}?community_id={community}", f"/api/plans/{plan}",
                               f"/api/plans/{plan}/grids.geojson?display=1&community_id={community}"],
             "whole-city grids (API)": [f"/api/plans/{plan}/grids.geojson?display=1"]}

    def visit(paths: list[str]) -> float:
        t0 = time.perf_counter()
        for p in paths:
            r = planner.get(base + p, timeout=900)
            if r.status_code != 200:
                raise SystemExit(f"{p}: {r.status_code}")
        return time.perf_counter() - t0

    out: dict[str, float] = {}
    for name, paths in pages.items():
        out[f"plan page, {name}: cold"] = visit(paths)
        out[f"plan page, {name}: warm"] = statistics.median(visit(paths) for _ in range(3))
    return out


def _backend(backend: str, url: str, work: Path, city: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    from api import db

    instance = work / backend / "instance"
    instance.parent.mkdir(parents=True, exist_ok=True)
    if backend == "SQLite":
        instance = work / "sqlite" / "instance"
    print(f"{backend}: reads and point-in-grid", flush=True)
    app = _app(instance, url)
    fig = _database_figures(backend, app, city, args)
    fig["plan rules stored (city cached before 0009)"] = _plan_rules(app, city)
    db.dispose(app)
    log = ROOT / "bench" / "out" / f"scale-serve-{city['buildings']}-{backend}.log"
    print(f"{backend}: serve --prod ({args.workers} × {args.threads}), log {log}", flush=True)
    started = time.perf_counter()
    with scale_load.served(url, instance, workers=args.workers, threads=args.threads, log=log) as base:
        fig["serve --prod: ready"] = time.perf_counter() - started
        fig.update(_page_times(base, city))
        print(f"{backend}: {args.clients} clients × {args.seconds:.0f} s", flush=True)
        tally, elapsed = scale_load.run_clients(base, city, args.clients, args.seconds, args.think)
    fig["load"] = scale_load.summary(tally, elapsed)
    return fig


def _cell(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.3f}" if v < 1 else f"{v:,.2f}" if v < 1000 else f"{v:,.0f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _row(label: str, a: Any, b: Any) -> str:
    ratio = ""
    if isinstance(a, float) and isinstance(b, float) and a > 0 and b > 0:
        ratio = f"{b / a:.2f}×"
    return f"| {label} | {_cell(a)} | {_cell(b)} | {ratio} |"


def _prep_rows(city: dict[str, Any]) -> list[str]:
    t = city["timings"]

    def wall(label: str) -> float | None:
        return t[label]["wall_s"] if label in t else None

    def load_at(label: str) -> str:
        return f"{t[label]['load']:.1f}" if label in t else "—"

    rows = [f"| prepared {city['prepared_at']} (machine load then, per step) | | | |",
            _row(f"import (load {load_at('import: SQLite')} / {load_at('import: PostGIS')})",
                 wall("import: SQLite"), wall("import: PostGIS"))]
    for label in ("partition (job)", "publish + draft copy", "plan state build + snapshot (both plans)"):
        rows.append(_row(f"{label}, SQLite (load {load_at(label)})", wall(label), None))
    copy = "db copy SQLite -> PostGIS"
    rows.append(_row(f"db copy SQLite → PostGIS (load {load_at(copy)})", None, wall(copy)))
    return rows


def _table(city: dict[str, Any], sq: dict[str, Any], pg: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [f"\n### {city['buildings']:,} buildings, {args.points:,} points, {args.clients} clients × "
             f"{args.seconds:.0f} s, think {args.think:g} s, serve --prod {args.workers} × {args.threads}\n",
             "| figure (seconds unless named) | SQLite | PostGIS | PostGIS / SQLite |", "|---|---|---|---|",
             *_prep_rows(city)]
    keys = [k for k in dict.fromkeys([*sq, *pg]) if k != "load"]
    lines += [_row(k, sq.get(k), pg.get(k)) for k in keys]
    for k in ("requests", "per_s", "p50", "p99", "4xx", "5xx", "no answer"):
        a, b = sq["load"][k], pg["load"][k]
        lines.append(_row(f"load: {k}", a, b))
    lines += ["", "| load, per kind: p50 / p99 s (requests) | SQLite | PostGIS |", "|---|---|---|"]
    for kind in sorted(set(sq["load"]["kinds"]) | set(pg["load"]["kinds"])):
        cells = []
        for fig in (sq, pg):
            k = fig["load"]["kinds"].get(kind)
            cells.append("—" if k is None else f"{k['p50']:.3f} / {k['p99']:.3f} ({k['requests']:,}; "
                         + ", ".join(f"{s}×{n}" for s, n in k["answers"].items()) + ")")
        lines.append(f"| {kind} | {cells[0]} | {cells[1]} |")
    for fig, name in ((sq, "SQLite"), (pg, "PostGIS")):
        for e in fig["load"]["error examples"]:
            lines.append(f"- {name} no answer: {e}")
    return "\n".join(lines)


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[1:]))
    ap.add_argument("--buildings", type=int, nargs="+", default=[100_000], help="city sizes (default 100000)")
    ap.add_argument("--seed", type=int, default=42, help="synthetic city seed (default 42)")
    ap.add_argument("--points", type=int, default=1_000_000, help="points of the point-in-grid figure")
    ap.add_argument("--clients", type=int, default=200, help="concurrent people of the load (default 200)")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the load per backend (default 60)")
    ap.add_argument("--think", type=float, default=3.0, help="mean pause of a person between requests, s (default 3)")
    ap.add_argument("--workers", type=int, default=2, help="serve --prod web worker processes (default 2)")
    ap.add_argument("--threads", type=int, default=8, help="threads per web worker (default 8)")
    ap.add_argument("--backends", nargs="+", default=["SQLite", "PostGIS"], choices=["SQLite", "PostGIS"])
    ap.add_argument("--pg-url", default=None, help="PostgreSQL server URL (default: the cached cluster)")
    ap.add_argument("--rebuild", action="store_true", help="prepare the cities again instead of reusing the cache")
    ap.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    return ap.parse_args()


def main() -> None:
    args = _args()
    os.environ.setdefault("WANGGE_SECRET_KEY", "bench-scale")
    print(f"load average before: {os.getloadavg()}; {os.cpu_count()} cores", flush=True)
    results: dict[str, Any] = {}
    postgis = "PostGIS" in args.backends
    with scale_prep.pg_cluster(args.pg_url, load._free_port()) if postgis else nullcontext(None) as server:
        for n in args.buildings:
            city = scale_prep.prepared_city(n, args.seed, server, rebuild=args.rebuild)
            with tempfile.TemporaryDirectory(prefix="wangge-scale-") as d, \
                    scale_prep.run_databases(city, server, Path(d)) as urls:
                figs = {b: _backend(b, urls[b], Path(d), city, args) for b in args.backends}
            empty: dict[str, Any] = {"load": {k: None for k in ("requests", "per_s", "p50", "p99", "4xx", "5xx",
                                                                "no answer")} | {"kinds": {}, "error examples": []}}
            print(_table(city, figs.get("SQLite", empty), figs.get("PostGIS", empty), args), flush=True)
            results[str(n)] = {"prep": city["timings"], **figs}
            print(f"load average now: {os.getloadavg()}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str))


if __name__ == "__main__":
    main()
