"""Benchmark of a cold plan page (issue 17 §2): the first request after a (re)start; prints a table.

    .venv/bin/python bench/plan_state.py                    # 20 k buildings, 3 fresh processes each way
    .venv/bin/python bench/plan_state.py --buildings 5000 --runs 1

Builds a synthetic street office (``geo.synthetic.synthetic_district``, seed 42) in a SQLite
workspace under ``bench/out/plan_state_<n>/`` (kept: later runs reuse it) and partitions it
once. Then, ``--runs`` times each way, a **fresh Python process** (nothing cached, as after a
restart or in a new web worker) builds the app and times the plan page's first shapes: ``GET
/api/plans/<id>`` then ``GET /api/plans/<id>/grids.geojson?display=1``, the two requests the
page waits for before it draws. "rebuilt" deletes the stored plan state first (the state is
built from the cells and stored); "stored" finds the state written by the previous run
(loaded from the database). Bar (issue 17 §2): cold page < 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "grid2026plan"  # tests.api.plans_helpers.login's

#: Runs in a fresh process: one cold page load, printed as JSON.
CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from api import create_app
from sqlalchemy import delete
app = create_app({"INSTANCE_PATH": sys.argv[1], "DATABASE_URL": sys.argv[2], "WTF_CSRF_ENABLED": False,
                  "SECRET_KEY": "bench"})
plan = int(sys.argv[3])
if sys.argv[4] == "rebuilt":
    from api.db import session_scope
    from api.plans.snapshot import PlanSnapshot
    with app.app_context(), session_scope() as s:
        s.execute(delete(PlanSnapshot))
boot = time.perf_counter() - t0
c = app.test_client()
r = c.post("/login", data={"username": "planner", "password": sys.argv[5]})
assert r.status_code == 302, r.status_code
t1 = time.perf_counter()
meta = c.get(f"/api/plans/{plan}")
t2 = time.perf_counter()
grids = c.get(f"/api/plans/{plan}/grids.geojson?display=1")
t3 = time.perf_counter()
assert meta.status_code == 200 and grids.status_code == 200, (meta.status_code, grids.status_code)
print(json.dumps({"boot_s": boot, "meta_s": t2 - t1, "grids_s": t3 - t2, "page_s": t3 - t1,
                  "grids": meta.get_json()["summary"]["grids"], "bytes": len(grids.data)}))
"""


def _workspace(folder: Path, n: int) -> tuple[str, int]:
    """(database URL, plan id) of a partitioned synthetic district, made once in *folder*."""
    url = f"sqlite:///{folder / 'wangge.db'}"
    done = folder / "plan.json"
    if done.exists():
        return url, int(json.loads(done.read_text())["plan"])
    from api import create_app, db
    from tests.api.plans_helpers import login, seed_district, wait_job

    os.environ["WANGGE_SECRET_KEY"] = "bench"
    app = create_app({"INSTANCE_PATH": str(folder / "instance"), "DATABASE_URL": url, "WTF_CSRF_ENABLED": False})
    t0 = time.perf_counter()
    seed_district(app, n)
    client = login(app, "planner")  # password tests.api.plans_helpers.PASSWORD
    job = wait_job(client, client.post("/api/plans/partition", json={"name": "bench"}).get_json()["job_id"],
                   timeout=3600)
    assert job["state"] == "done", job
    db.dispose(app)
    done.write_text(json.dumps({"plan": job["plan_id"]}))
    print(f"workspace: {n:,} buildings imported and partitioned in {time.perf_counter() - t0:.0f} s")
    return url, int(job["plan_id"])


def _cold(folder: Path, url: str, plan: int, how: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(folder / "instance"), url, str(plan), how, PASSWORD],
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                         check=False)
    if out.returncode != 0:
        raise SystemExit(f"cold load failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--buildings", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    folder = ROOT / "bench" / "out" / f"plan_state_{args.buildings}"
    folder.mkdir(parents=True, exist_ok=True)
    url, plan = _workspace(folder, args.buildings)
    rows = {}
    for how in ("rebuilt", "stored"):
        _cold(folder, url, plan, "rebuilt" if how == "rebuilt" else "stored")  # leaves a stored state behind
        rows[how] = [_cold(folder, url, plan, how) for _ in range(args.runs)]
    grids = rows["stored"][0]["grids"]
    print(f"\ncold plan page: {args.buildings:,} buildings, {grids:,} grids; Python {platform.python_version()}, "
          f"load {os.getloadavg()[0]:.1f}; median of {args.runs} fresh processes")
    print(f"{'plan state':<12}{'GET plan (s)':>14}{'GET grids (s)':>15}{'first shapes (s)':>18}{'< 2 s':>8}")
    for how, runs in rows.items():
        med = {k: statistics.median(r[k] for r in runs) for k in ("meta_s", "grids_s", "page_s")}
        print(f"{how:<12}{med['meta_s']:>14.2f}{med['grids_s']:>15.2f}{med['page_s']:>18.2f}"
              f"{'yes' if med['page_s'] < 2 else 'no':>8}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
