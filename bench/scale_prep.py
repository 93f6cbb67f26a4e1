"""The prepared city of ``bench/scale.py``: built once per size and seed, cached under ``bench/out/``.

Preparing a city costs minutes at 1 M buildings (import, partition, db copy, the plan
snapshots); the measurements that follow cost far less. So the preparation runs once and
is kept, keyed by buildings and seed (a city cached before a newer migration is upgraded
when a run opens its copy), in ``bench/out/scale-cache/`` or ``$WANGGE_SCALE_CACHE``:

- ``bench/out/scale-cache/n<N>_s<seed>/sqlite/`` the SQLite workspace file and its
  instance folder, ``meta.json`` the plan ids, bbox, users and the preparation's timings;
- ``bench/out/scale-cache/pgdata/`` one PostgreSQL cluster (kept between runs, started on a
  free port for each run) holding a template database per prepared city.

A run copies the SQLite file and creates its PostGIS database ``TEMPLATE`` the cached one
(a file copy), so writes of one run never reach the next. ``--rebuild`` prepares again.

The prepared city: the synthetic district imported, partitioned (plan A), plan A
published (the active grids workers, incidents and patrol use), a draft copy (plan B, the
planners' working copy), both plans' state snapshots stored, accounts ``planner``,
``viewer``, ``worker`` and patrol devices ``bench-0`` … bound to ``worker``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: Where prepared cities are kept (``WANGGE_SCALE_CACHE`` overrides, e.g. another checkout's cache).
CACHE = Path(os.environ.get("WANGGE_SCALE_CACHE") or ROOT / "bench" / "out" / "scale-cache")
PASSWORD = "grid2026plan"
DEVICES = 50

__all__ = ["CACHE", "PASSWORD", "DEVICES", "prepared_city", "pg_cluster", "run_databases"]


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall seconds, CPU seconds of this process, result."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


# ---- the PostgreSQL cluster kept between runs ----------------------------------------

def _pg_run(cmd: list[str]) -> None:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)


def _running_port(data: Path) -> int | None:
    """Port of the cluster in *data* when another run already started it."""
    pid_file = data / "postmaster.pid"
    if not pid_file.exists():
        return None
    lines = pid_file.read_text().splitlines()
    try:
        os.kill(int(lines[0]), 0)
    except (ProcessLookupError, ValueError, PermissionError):
        return None
    return int(lines[3])


@contextmanager
def pg_cluster(url: str | None, port: int) -> Iterator[str]:
    """The server URL: *url* when given, else the cached cluster, started on *port* (and stopped after)
    unless another run already has it running."""
    if url:
        yield url
        return
    from tests.pgserver import server_bin, start_server

    folder, bindir = CACHE / "pgdata", server_bin()
    assert bindir is not None, "PostgreSQL server not installed (scripts/system-deps.sh)"
    running = _running_port(folder / "data")
    if running is not None:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{running}/postgres"
        return
    if not (folder / "data").exists():
        folder.mkdir(parents=True, exist_ok=True)
        start_server(folder, port)
    else:
        _pg_run([str(bindir / "pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "log"), "-w", "start", "-o",
                 f"-k {folder} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
                 "-c full_page_writes=off -c max_connections=400"])
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        _pg_run([str(bindir / "pg_ctl"), "-D", str(folder / "data"), "-m", "fast", "-w", "stop"])


def _admin(server: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_exec(server: str, *sql: str) -> None:
    import psycopg

    with psycopg.connect(_admin(server), autocommit=True) as conn:
        for q in sql:
            conn.execute(q)  # type: ignore[arg-type]


def _db_url(server: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(server).set(database=name).render_as_string(hide_password=False)


@contextmanager
def run_databases(city: dict[str, Any], server: str | None, work: Path) -> Iterator[dict[str, str]]:
    """Fresh copies of the prepared city for one run: ``{"SQLite": url, "PostGIS": url}`` (removed after;
    SQLite only without *server*)."""
    sq = work / "sqlite"
    shutil.copytree(Path(city["dir"]) / "sqlite", sq)
    if server is None:
        yield {"SQLite": f"sqlite:///{sq / 'wangge.db'}"}
        return
    name = f"run_{city['key']}"
    _pg_exec(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
             f'CREATE DATABASE "{name}" TEMPLATE "{city["pg_template"]}"')
    try:
        yield {"SQLite": f"sqlite:///{sq / 'wangge.db'}", "PostGIS": _db_url(server, name)}
    finally:
        _pg_exec(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---- preparing a city -----------------------------------------------------------------

def _app(instance: Path, url: str) -> Any:
    from api import create_app

    return create_app({"INSTANCE_PATH": str(instance), "DATABASE_URL": url, "WTF_CSRF_ENABLED": False})


def _login(app: Any, role: str) -> Any:
    from tests.api.plans_helpers import login

    return login(app, role)


def _partition(app: Any) -> int:
    planner = _login(app, "planner")
    job_id = planner.post("/api/plans/partition", json={"name": "规模方案"}).get_json()["job_id"]
    while True:  # a poll may meet the job's own big write (503 busy on SQLite): poll again
        r = planner.get(f"/api/jobs/{job_id}")
        job = r.get_json() if r.status_code == 200 else {"state": "running"}
        if job["state"] not in ("queued", "running"):
            break
        time.sleep(1.0)
    if job["state"] != "done":
        raise SystemExit(f"partition failed: {job}")
    return int(job["plan_id"])


def _publish_and_copy(app: Any, plan: int) -> int:
    planner = _login(app, "planner")
    version = planner.get(f"/api/plans/{plan}").get_json()["version"]
    r = planner.post(f"/api/plans/{plan}/publish", json={"version": version})
    if r.status_code != 200:
        raise SystemExit(f"publish failed: {r.status_code} {r.get_data(as_text=True)[:300]}")
    r = planner.post(f"/api/plans/{plan}/versions", json={"name": "规模方案（草稿）"})
    if r.status_code != 201:
        raise SystemExit(f"copy failed: {r.status_code} {r.get_data(as_text=True)[:300]}")
    return int(r.get_json()["id"])


def _accounts(app: Any) -> None:
    from api.db import session_scope
    from api.patrol.store import bind_device

    for role in ("planner", "viewer", "worker", "admin"):
        _login(app, role)
    with app.app_context(), session_scope() as s:
        for i in range(DEVICES):
            bind_device(s, f"bench-{i}", "worker", by="bench")


def _snapshots(app: Any, plans: list[int]) -> None:
    planner = _login(app, "planner")
    for plan in plans:  # the first display read builds the state and stores its snapshot
        r = planner.get(f"/api/plans/{plan}/grids.geojson?display=1")
        if r.status_code != 200:
            raise SystemExit(f"plan {plan} grids: {r.status_code}")
    saver = app.extensions.get("wangge.plan_snapshots")
    if saver is not None:  # stored now: the app is disposed next, which drops what is pending
        saver.flush()


def _bbox(app: Any) -> list[float]:
    from api import db
    from api.workspace import workspace_stats

    with app.app_context(), db.session_scope(write=False) as s:
        return list(workspace_stats(s)["bbox"])


def _grids(app: Any, plan_a: int, plan_b: int) -> dict[str, Any]:
    """Codes of the published grids (a sample) and the draft plan's grid ids per community."""
    from sqlalchemy import select

    from api import db
    from api.models import PlanGrid

    with app.app_context(), db.session_scope(write=False) as s:
        codes = sorted(str(c) for c in s.scalars(select(PlanGrid.code).where(PlanGrid.plan_version_id == plan_a)))
        by_comm: dict[str, list[str]] = {}
        for comm, grid in s.execute(select(PlanGrid.community_id, PlanGrid.grid_id)
                                    .where(PlanGrid.plan_version_id == plan_b)):
            by_comm.setdefault(str(comm), []).append(str(grid))
    return {"grid_codes": codes[:: max(1, len(codes) // 500)], "communities": sorted(by_comm),
            "community_grids": by_comm}


def _step(timings: dict[str, Any], label: str, fn: Callable[[], Any]) -> Any:
    wall, cpu, out = _timed(fn)
    timings[label] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "load": os.getloadavg()[0]}
    print(f"  {label}: {wall:,.1f} s (CPU of this process {cpu:,.1f} s)", flush=True)
    return out


def _import(app: Any, prepared: Any) -> None:
    from api import db
    from api.workspace import import_workspace

    with app.app_context(), db.session_scope() as s:
        import_workspace(s, prepared, user="bench", sources={"kind": "synthetic"})


def _copy(source: Any, target: Any) -> None:
    from api import db
    from api.dbcopy import copy_database

    report = copy_database(db.get_db(source).engine, db.get_db(target).engine, force=True)
    if not report.equal:
        raise SystemExit("db copy: checksums differ")


def _build_sqlite(folder: Path, n: int, seed: int, key: str) -> dict[str, Any]:
    """The SQLite city: import, accounts, partition, publish, draft copy, snapshots; its meta."""
    from api import db
    from geo.prepare import prepare_layers
    from geo.synthetic import synthetic_district

    timings: dict[str, Any] = {}
    prepared = _step(timings, "synthetic + prepare", lambda: prepare_layers(synthetic_district(n, seed=seed).layers))
    sq = folder / "sqlite"
    sq_app = _app(sq / "instance", f"sqlite:///{sq / 'wangge.db'}")
    _step(timings, "import: SQLite", lambda: _import(sq_app, prepared))
    prepared = None  # free the layers before the partition
    _accounts(sq_app)
    plan_a = _step(timings, "partition (job)", lambda: _partition(sq_app))
    plan_b = _step(timings, "publish + draft copy", lambda: _publish_and_copy(sq_app, plan_a))
    _step(timings, "plan state build + snapshot (both plans)", lambda: _snapshots(sq_app, [plan_a, plan_b]))
    bbox, grids = _bbox(sq_app), _grids(sq_app, plan_a, plan_b)
    db.dispose(sq_app)
    return {"buildings": n, "seed": seed, "key": key, "plan_a": plan_a, "plan_b": plan_b, "bbox": bbox, **grids,
            "pg_template": None, "timings": timings,
            "prepared_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cores": os.cpu_count()}


def _build_postgis(folder: Path, meta: dict[str, Any], server: str) -> dict[str, Any]:
    """The PostGIS city: the import timed into a scratch database, then ``db copy`` of the SQLite city."""
    from api import db
    from geo.prepare import prepare_layers
    from geo.synthetic import synthetic_district

    key, timings = meta["key"], dict(meta["timings"])
    template, scratch = f"tpl_{key}", f"scratch_{key}"
    prepared = prepare_layers(synthetic_district(meta["buildings"], seed=meta["seed"]).layers)
    _pg_exec(server, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)', f'CREATE DATABASE "{scratch}"')
    scratch_app = _app(folder / "pg-instance", _db_url(server, scratch))
    _step(timings, "import: PostGIS", lambda: _import(scratch_app, prepared))
    db.dispose(scratch_app)  # timed only: the PostGIS city is the db copy of the SQLite one, below
    prepared = None
    partial = f"{template}_partial"  # renamed once complete: an interrupted copy is never reused
    _pg_exec(server, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)',
             f'DROP DATABASE IF EXISTS "{partial}" WITH (FORCE)', f'CREATE DATABASE "{partial}"')
    sq = folder / "sqlite"
    sq_app = _app(sq / "instance", f"sqlite:///{sq / 'wangge.db'}")
    pg_app = _app(folder / "pg-instance", _db_url(server, partial))
    _step(timings, "db copy SQLite -> PostGIS", lambda: _copy(sq_app, pg_app))
    db.dispose(sq_app)
    db.dispose(pg_app)
    _pg_exec(server, f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)',
             f'ALTER DATABASE "{partial}" RENAME TO "{template}"')
    return {**meta, "pg_template": template, "timings": timings}


def _template_exists(server: str, name: str | None) -> bool:
    import psycopg

    if not name:
        return False
    with psycopg.connect(_admin(server), autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def prepared_city(n: int, seed: int, server: str | None, *, rebuild: bool = False) -> dict[str, Any]:
    """The cached city of *n* buildings, built now where missing (or all again with *rebuild*).

    The SQLite city is kept as soon as it is complete (``meta.json``); the PostGIS one is added
    when *server* is given and its template database is missing. Returns the meta plus ``dir``.
    """
    # not keyed by the schema: a cached city made before a newer migration is upgraded when opened
    key = f"n{n}_s{seed}"
    folder = CACHE / key
    meta_file = folder / "meta.json"
    meta = json.loads(meta_file.read_text()) if meta_file.exists() and not rebuild else None
    if meta is None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        print(f"{n:,} buildings: preparing the city once into {folder}", flush=True)
        meta = _build_sqlite(folder, n, seed, key)
        meta_file.write_text(json.dumps(meta, indent=1, ensure_ascii=False))
    else:
        print(f"{n:,} buildings: prepared city reused from {folder} ({meta['prepared_at']})", flush=True)
    if server is not None and not _template_exists(server, meta.get("pg_template")):
        print(f"{n:,} buildings: adding the PostGIS city", flush=True)
        meta = _build_postgis(folder, meta, server)
        meta_file.write_text(json.dumps(meta, indent=1, ensure_ascii=False))
    return {**meta, "dir": str(folder)}
