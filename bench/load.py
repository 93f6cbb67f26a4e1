"""Load on loopback (issue 16): concurrent clients through map reads, exports, edits and saves.

    .venv/bin/python bench/load.py                          # 200 clients, 60 s, 1,500 buildings
    .venv/bin/python bench/load.py --clients 50 --seconds 20

Builds a synthetic street office (``geo.synthetic``, seed 42) in a fresh SQLite workspace
under a temporary folder, partitions it once, then serves the app from a **separate
process** (werkzeug, threaded, like ``wangge serve``) so the clients' threads do not share
its interpreter. Each client is a thread with its own HTTP session that loops until the
time is up, choosing by weight:

- ``map``: what the planner map loads: the grids (``grids.geojson?display=1``), or the
  plan's buildings or the streets of a random view (``?bbox=…``, a sixteenth of the district);
- ``export``: the plan as CSV (an audited read);
- ``edit``: rename a random grid with the version it last saw; a 409 hands back the
  current version, which the next edit uses (conflicts are expected, never 5xx);
- ``save``: save a named copy of the plan (``POST …/versions``).

It prints p50/p99 per kind, answers per status, errors (no answer), the 5xx count, and
checks every acknowledged write afterwards: each 200 edit is in the plan's edit history,
each grid carries the name of its last acknowledged rename, each 201 save is a stored
version with all grids, each 200 export left one audit row. Exit status 1 on any 5xx or
missing write. CSRF is off (as in the other benches); logins are one per role.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "grid2026plan"
WEIGHTS = {"map": 5, "export": 2, "edit": 2, "save": 1}


def _config(tmp: Path) -> dict[str, Any]:
    # bench/scale.py runs the same clients against PostgreSQL through WANGGE_BENCH_DATABASE_URL.
    url = os.environ.get("WANGGE_BENCH_DATABASE_URL") or f"sqlite:///{tmp / 'wangge.db'}"
    return {"INSTANCE_PATH": str(tmp / "instance"), "DATABASE_URL": url, "WTF_CSRF_ENABLED": False}


def _prepare(tmp: Path, n_buildings: int) -> tuple[int, tuple[float, float, float, float]]:
    """Workspace, users and one partitioned plan in *tmp*; the plan id and the workspace bbox."""
    from api import create_app, db
    from api.workspace import workspace_stats
    from tests.api.plans_helpers import login, seed_district, wait_job

    app = create_app(_config(tmp))
    seed_district(app, n_buildings)
    planner = login(app, "planner")
    login(app, "viewer")
    job = wait_job(planner, planner.post("/api/plans/partition", json={"name": "压测方案"}).get_json()["job_id"],
                   timeout=600)
    if job["state"] != "done":
        raise SystemExit(f"partition failed: {job}")
    with app.app_context(), db.session_scope(write=False) as s:
        bbox = workspace_stats(s)["bbox"]
    db.dispose(app)
    return int(job["plan_id"]), bbox


def _serve(tmp: Path, port: int) -> None:
    """Child process: the app on 127.0.0.1:*port*, threaded, until killed."""
    import logging

    from werkzeug.serving import make_server

    from api import create_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request would be the bench
    server = make_server("127.0.0.1", port, create_app(_config(tmp)), threaded=True)
    print("serving", flush=True)
    server.serve_forever()


@dataclass
class Tally:
    """What the clients saw (appended from many threads; list.append is atomic)."""

    samples: list[tuple[str, int, float]] = field(default_factory=list)  # kind, status (0: no answer), s
    errors: list[str] = field(default_factory=list)
    edits: list[tuple[int, str, str]] = field(default_factory=list)  # version, grid, name
    saves: list[int] = field(default_factory=list)
    exports: int = 0


def _session(url: str, role: str) -> Any:
    import requests

    s = requests.Session()
    r = s.post(f"{url}/login", data={"username": role, "password": PASSWORD}, allow_redirects=False, timeout=300)
    if r.status_code != 302:
        raise SystemExit(f"login as {role} failed: {r.status_code} {r.text[:200]}")
    return s


def _clone(session: Any) -> Any:
    import requests

    s = requests.Session()
    s.cookies.update(session.cookies)
    return s


class Client:
    """One simulated user: a loop of weighted requests until *deadline*."""

    def __init__(self, n: int, url: str, plan: int, grids: list[str], bbox: tuple[float, ...],
                 viewer: Any, planner: Any, tally: Tally, deadline: float) -> None:
        self.n, self.url, self.plan, self.grids, self.bbox = n, url, plan, grids, bbox
        self.viewer, self.planner, self.tally, self.deadline = _clone(viewer), _clone(planner), tally, deadline
        self.rng = random.Random(n)
        self.version = 1
        self.count = 0

    def _call(self, kind: str, method: str, path: str, session: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            r = session.request(method, f"{self.url}{path}", timeout=300, **kw)
        except Exception as exc:  # noqa: BLE001 - a bench counts every failure, whatever its type
            self.tally.samples.append((kind, 0, time.perf_counter() - t0))
            self.tally.errors.append(f"{kind}: {type(exc).__name__}: {exc}"[:200])
            return None
        self.tally.samples.append((kind, r.status_code, time.perf_counter() - t0))
        return r

    def _map(self) -> None:
        pick = self.rng.randrange(3)
        if pick == 0:
            self._call("map", "GET", f"/api/plans/{self.plan}/grids.geojson?display=1", self.viewer)
            return
        minx, miny, maxx, maxy = self.bbox
        w, h = (maxx - minx) / 4, (maxy - miny) / 4
        x, y = minx + self.rng.random() * 3 * w, miny + self.rng.random() * 3 * h
        path = (f"/api/plans/{self.plan}/buildings.geojson" if pick == 1 else "/api/context/streets.geojson")
        self._call("map", "GET", f"{path}?bbox={x},{y},{x + w},{y + h}", self.viewer)

    def _export(self) -> None:
        r = self._call("export", "GET", f"/api/plans/{self.plan}/export?format=csv", self.viewer)
        if r is not None and r.status_code == 200:
            self.tally.exports += 1

    def _edit(self) -> None:
        grid, name = self.rng.choice(self.grids), f"压测{self.n}-{self.count}"
        r = self._call("edit", "POST", f"/api/plans/{self.plan}/edits", self.planner,
                       json={"op": "rename", "grid_id": grid, "name": name, "version": self.version})
        if r is None:
            return
        if r.status_code == 200:
            self.version = r.json()["version"]
            self.tally.edits.append((self.version, grid, name))
        elif r.status_code == 409:
            self.version = r.json()["error"].get("version", self.version)

    def _save(self) -> None:
        r = self._call("save", "POST", f"/api/plans/{self.plan}/versions", self.planner,
                       json={"name": f"压测版本{self.n}-{self.count}"})
        if r is not None and r.status_code == 201:
            self.tally.saves.append(int(r.json()["id"]))

    def run(self) -> None:
        kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
        while time.monotonic() < self.deadline:
            self.count += 1
            getattr(self, f"_{self.rng.choices(kinds, weights)[0]}")()


def _run_clients(url: str, plan: int, grids: list[str], bbox: tuple[float, ...], n: int,
                 seconds: float) -> Tally:
    tally = Tally()
    viewer, planner = _session(url, "viewer"), _session(url, "planner")
    deadline = time.monotonic() + seconds
    clients = [Client(i, url, plan, grids, bbox, viewer, planner, tally, deadline) for i in range(n)]
    threads = [threading.Thread(target=c.run, name=f"client-{c.n}") for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tally


def _check_writes(tmp: Path, plan: int, tally: Tally, exports_before: int) -> list[str]:
    """Problems with the acknowledged writes (empty: every one is stored)."""
    from sqlalchemy import func, select

    from api import create_app, db
    from api.models import AuditEntry, PlanEdit, PlanGrid, PlanVersion

    app = create_app(_config(tmp))
    problems: list[str] = []
    with app.app_context(), db.session_scope(write=False) as s:
        names = {e.payload["request"]["name"] for e in s.scalars(select(PlanEdit).where(PlanEdit.plan_version_id == plan))}
        lost = [n for _, _, n in tally.edits if n not in names]
        if lost:
            problems.append(f"{len(lost)} acknowledged edit(s) missing from the history, e.g. {lost[:3]}")
        last: dict[str, tuple[int, str]] = {}
        for version, grid, name in tally.edits:
            if version > last.get(grid, (0, ""))[0]:
                last[grid] = (version, name)
        stored = dict(s.execute(select(PlanGrid.grid_id, PlanGrid.name).where(PlanGrid.plan_version_id == plan)).all())
        wrong = [g for g, (_, name) in last.items() if stored.get(g) != name]
        if wrong:
            problems.append(f"{len(wrong)} grid(s) without their last acknowledged name, e.g. {wrong[:3]}")
        n_grids = len(stored)
        counts = dict(s.execute(select(PlanGrid.plan_version_id, func.count()).where(
            PlanGrid.plan_version_id.in_(tally.saves)).group_by(PlanGrid.plan_version_id)).all())
        found = set(s.scalars(select(PlanVersion.id).where(PlanVersion.id.in_(tally.saves))))
        if found != set(tally.saves) or any(counts.get(v) != n_grids for v in tally.saves):
            problems.append(f"{len(set(tally.saves) - found)} acknowledged save(s) missing or incomplete")
        audited = s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "plan.export"))
        if audited - exports_before != tally.exports:
            problems.append(f"{tally.exports} exports answered 200 but {audited - exports_before} audited")
    db.dispose(app)
    return problems


def _table(tally: Tally, seconds: float) -> str:
    rows = ["| kind | requests | p50 (s) | p99 (s) | answers | errors |", "|---|---|---|---|---|---|"]
    by_kind: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for kind, status, dt in tally.samples:
        by_kind[kind].append((status, dt))
    for kind in WEIGHTS:
        got = by_kind.get(kind, [])
        times = sorted(dt for _, dt in got)
        q = statistics.quantiles(times, n=100) if len(times) > 1 else times * 99 or [float("nan")] * 99
        answers = ", ".join(f"{c}×{n}" for c, n in sorted(Counter(s for s, _ in got if s).items()))
        rows.append(f"| {kind} | {len(got)} | {q[49]:.2f} | {q[98]:.2f} | {answers} | "
                    f"{sum(1 for s, _ in got if s == 0)} |")
    total = len(tally.samples)
    rows.append(f"\n{total} requests in {seconds:.0f} s ({total / seconds:.1f}/s); "
                f"5xx: {sum(1 for _, s, _ in tally.samples if s >= 500)}; no answer: {len(tally.errors)}; "
                f"acknowledged: {len(tally.edits)} edits, {len(tally.saves)} saves, {tally.exports} exports")
    return "\n".join(rows)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "serving" not in line:
        raise SystemExit(f"server did not start: {line!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--buildings", type=int, default=1500)
    ap.add_argument("--serve", nargs=2, metavar=("DIR", "PORT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("WANGGE_SECRET_KEY", "bench-load")
    if args.serve:
        _serve(Path(args.serve[0]), int(args.serve[1]))
        return
    with tempfile.TemporaryDirectory(prefix="wangge-load-") as d:
        tmp = Path(d)
        t0 = time.perf_counter()
        plan, bbox = _prepare(tmp, args.buildings)
        print(f"workspace of {args.buildings:,} buildings and plan {plan} ready in {time.perf_counter() - t0:.1f} s")
        exports_before, grids = _baseline(tmp, plan)
        port = _free_port()
        proc = subprocess.Popen([sys.executable, __file__, "--serve", str(tmp), str(port)], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
        try:
            _wait_ready(proc)
            started = time.perf_counter()
            tally = _run_clients(f"http://127.0.0.1:{port}", plan, grids, bbox, args.clients, args.seconds)
            elapsed = time.perf_counter() - started
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            if proc.stdout is not None:
                proc.stdout.close()
        print(f"\n{args.clients} clients, {args.seconds:.0f} s, SQLite, {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores\n")
        print(_table(tally, elapsed))
        for e in sorted(set(tally.errors))[:5]:
            print("  error:", e)
        problems = _check_writes(tmp, plan, tally, exports_before)
        print("\nacknowledged writes: " + ("all present" if not problems else "; ".join(problems)))
        if problems or any(s >= 500 for _, s, _ in tally.samples):
            raise SystemExit(1)


def _baseline(tmp: Path, plan: int) -> tuple[int, list[str]]:
    """Export audit rows so far and the plan's grid ids (read before the load starts)."""
    from sqlalchemy import func, select

    from api import create_app, db
    from api.models import AuditEntry, PlanGrid

    app = create_app(_config(tmp))
    with app.app_context(), db.session_scope(write=False) as s:
        n = s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "plan.export"))
        grids = sorted(s.scalars(select(PlanGrid.grid_id).where(PlanGrid.plan_version_id == plan)))
    db.dispose(app)
    return int(n), grids


if __name__ == "__main__":
    main()
