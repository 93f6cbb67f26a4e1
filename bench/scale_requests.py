"""CPU per request kind of the city load (``bench/scale_load.py``), in process, on a prepared city.

Where does a request's time grow with the city rather than with the view? Each kind the
load sends is called through the WSGI app directly (no server, no client threads) on a
fresh copy of the cached city (``bench/scale_prep.py``): the first call (cold: caches and
plan states built) and the median of ``--repeat`` later ones (warm), CPU
(``time.process_time``) and wall seconds. ``--profile KIND`` prints the cProfile of that
kind's cold call and warm calls. SQLite only (the copy is a file).

    WANGGE_SCALE_CACHE=/work/scale-cache .venv/bin/python bench/scale_requests.py --buildings 100000
    WANGGE_SCALE_CACHE=/work/scale-cache .venv/bin/python bench/scale_requests.py --profile planner:grids
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import scale_prep  # noqa: E402

DEG_PER_M = 1 / 111_000


def _box(x: float, y: float, metres: float) -> str:
    dx, dy = metres / 2 * DEG_PER_M / math.cos(math.radians(y)), metres / 2 * DEG_PER_M
    return f"{x - dx:.6f},{y - dy:.6f},{x + dx:.6f},{y + dy:.6f}"


def _kinds(city: dict[str, Any], rng: random.Random) -> dict[str, tuple[str, Callable[[], tuple[str, str, Any]]]]:
    """Request kind -> (role, a function giving (method, path, form data)) as the load sends them."""
    minx, miny, maxx, maxy = city["bbox"]
    a, b = city["plan_a"], city["plan_b"]

    def at() -> tuple[float, float]:
        return rng.uniform(minx, maxx), rng.uniform(miny, maxy)

    def community() -> str:
        return rng.choice(city["communities"])

    def fix() -> tuple[str, str, Any]:
        x, y = at()
        return "GET", f"/api/patrol/osmand?id=bench-{rng.randrange(50)}&lat={y:.6f}&lon={x:.6f}" \
                      f"&timestamp={int(time.time())}&accuracy=8", None

    def report() -> tuple[str, str, Any]:
        x, y = at()
        return "POST", "/incidents/new", {"category": "BJ-0103", "description": "压测上报", "lon": f"{x:.6f}",
                                           "lat": f"{y:.6f}"}

    def rename() -> tuple[str, str, Any]:
        c = community()
        return "EDIT", f"/api/plans/{b}/edits", {"op": "rename", "grid_id": rng.choice(city["community_grids"][c]),
                                                 "name": f"压测{rng.randrange(10**6)}"}

    return {
        "worker:fix": ("worker", fix),
        "worker:locate": ("worker", lambda: ("GET", "/api/grids/locate?lon={:.6f}&lat={:.6f}".format(*at()), None)),
        "worker:view": ("worker", lambda: ("GET", f"/api/plans/{a}/buildings.geojson?bbox={_box(*at(), 400)}", None)),
        "worker:cases": ("worker", lambda: ("GET", f"/api/incidents/geojson?bbox={_box(*at(), 400)}", None)),
        "worker:report": ("worker", report),
        "viewer:buildings": ("viewer", lambda: ("GET", f"/api/plans/{a}/buildings.geojson?bbox={_box(*at(), 1500)}",
                                                None)),
        "viewer:streets": ("viewer", lambda: ("GET", f"/api/context/streets.geojson?bbox={_box(*at(), 1500)}", None)),
        "viewer:grid": ("viewer", lambda: ("GET", f"/api/grids/{rng.choice(city['grid_codes'])}", None)),
        "viewer:list": ("viewer", lambda: ("GET", "/incidents", None)),
        "planner:grids": ("planner", lambda: ("GET", f"/api/plans/{b}/grids.geojson?display=1&community_id="
                                                     f"{community()}", None)),
        "planner:buildings": ("planner", lambda: ("GET", f"/api/plans/{b}/buildings.geojson?bbox="
                                                         f"{_box(*at(), 1000)}", None)),
        "planner:plan": ("planner", lambda: ("GET", f"/api/plans/{b}", None)),
        "planner:edit": ("planner", rename),
    }


def _call(clients: dict[str, Any], role: str, req: tuple[str, str, Any], plan: int) -> int:
    method, path, data = req
    c = clients[role]
    if method == "EDIT":
        version = c.get(f"/api/plans/{plan}").get_json()["version"]
        r = c.post(path, json={**data, "version": version})
    elif method == "POST":
        r = c.post(path, data=data)
    else:
        r = c.get(path)
    return r.status_code


def _measure(fn: Callable[[], int], profile: cProfile.Profile | None) -> tuple[float, float, int]:
    c0, w0 = time.process_time(), time.perf_counter()
    if profile is not None:
        profile.enable()
    status = fn()
    if profile is not None:
        profile.disable()
    return time.process_time() - c0, time.perf_counter() - w0, status


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--buildings", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--profile", default=None, help="kind whose calls are profiled, e.g. planner:grids")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    os.environ.setdefault("WANGGE_SECRET_KEY", "bench-scale")
    city = scale_prep.prepared_city(args.buildings, args.seed, None)
    rng = random.Random(1)
    print(f"{args.buildings:,} buildings; load average {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="scale-req-") as tmp, \
            scale_prep.run_databases(city, None, Path(tmp)) as urls:
        app = scale_prep._app(Path(tmp) / "sqlite" / "instance", urls["SQLite"])
        app.config["TESTING"] = True
        clients = {role: scale_prep._login(app, role) for role in ("worker", "viewer", "planner")}
        print("| kind | cold CPU s | cold wall s | warm CPU s (median) | warm wall s (median) | statuses |")
        print("|---|---|---|---|---|---|")
        for kind, (role, make) in _kinds(city, rng).items():
            prof = cProfile.Profile() if kind == args.profile else None

            def one(role: str = role, make: Callable[[], tuple[str, str, Any]] = make) -> int:
                return _call(clients, role, make(), city["plan_b"])

            cold = _measure(one, prof)
            warm = [_measure(one, prof) for _ in range(args.repeat)]
            statuses = sorted({cold[2], *(w[2] for w in warm)})
            print(f"| {kind} | {cold[0]:.3f} | {cold[1]:.3f} | {statistics.median(w[0] for w in warm):.4f} | "
                  f"{statistics.median(w[1] for w in warm):.4f} | {statuses} |", flush=True)
            if prof is not None:
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(args.top)
                print(out.getvalue())
        from api import db

        db.dispose(app)


if __name__ == "__main__":
    main()
