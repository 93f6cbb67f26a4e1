"""The city's daily load for ``bench/scale.py``: who asks what, how often, against ``serve --prod``.

A city deployment is not 200 planners editing the whole plan. The clients here are people,
each a thread with its own login and a pause between requests (exponential, mean
``think`` seconds: a phone sends a fix, a supervisor pans the map, a planner looks, then
edits). Shares of the clients and what each role asks, by weight:

- **grid workers** (60 %, phones, account ``worker``) walk around a home point in their own
  area: a patrol fix from their tracker app (``/api/patrol/osmand``, 4), which grid they are
  in (``/api/grids/locate``, 2), the published plan's buildings of the phone's view
  (~400 m, ``buildings.geojson?bbox=``, 2), open cases of the view (``/api/incidents/geojson``,
  1), and now and then a new case (``POST /incidents/new``, 0.2);
- **supervisors** (30 %, ``viewer``) read the visible area of the map (~1.5 km): the
  published plan's buildings (3) and streets (2) of the view, cases of the view (2), one
  grid's card (``/api/grids/<code>``, 1) and the case list (``/incidents``, 1);
- **planners** (10 %, ``planner``) work on the draft plan of ONE community: its grids as the
  plan page draws them (``grids.geojson?display=1&community_id=``, 3), the buildings of that
  community's view (2), the plan's card (1), a rename edit with the version they last saw (0.5;
  409 on a lost race is an answer, not an error) and, rarely, the whole published plan as CSV
  (0.02).

Each answer is kept as (role:kind, status, seconds); status 0 is no answer (timeout,
refused). The server is ``wangge serve --prod`` (gunicorn web workers × threads, job
processes) started from this checkout on the prepared database.
"""

from __future__ import annotations

import math
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
ROLES = {"worker": 0.6, "viewer": 0.3, "planner": 0.1}
DEG_PER_M = 1 / 111_000
#: Categories a worker can report without a photo (the bench sends none).
REPORTABLE = ("BJ-0103", "BJ-0202", "BJ-0203", "BJ-0205", "BJ-0206")

__all__ = ["ROLES", "Tally", "served", "run_clients", "summary"]


@dataclass
class Tally:
    """What the clients saw (appended from many threads; list.append is atomic)."""

    samples: list[tuple[str, int, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@contextmanager
def served(url: str, instance: Path, *, workers: int, threads: int, log: Path) -> Iterator[str]:
    """``wangge serve --prod`` of this checkout on database *url*; its base URL until the block ends."""
    from load import _free_port

    port = _free_port()
    env = {**os.environ, "WANGGE_DATABASE_URL": url, "WANGGE_INSTANCE_PATH": str(instance),
           "WANGGE_SERVER_THREADS": str(threads), "WANGGE_JOB_PROCESSES": "1",
           "WANGGE_DB_POOL_SIZE": str(threads), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", "from api.cli import main; main()", "serve", "--prod", "--port", str(port),
           "--workers", str(workers)]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base, proc)
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=120)


def _wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 300) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"serve --prod exited with {proc.returncode}: see its log")
        try:
            if requests.get(f"{base}/readyz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise SystemExit("serve --prod not ready in time")


def _csrf(s: requests.Session, url: str) -> str:
    page = s.get(url, timeout=120).text
    found = re.search(r'name="csrf-token" content="([^"]+)"', page)
    if not found:
        raise SystemExit(f"no CSRF token on {url}")
    return found.group(1)


def login(base: str, role: str) -> requests.Session:
    """A session logged in as the prepared account *role*, sending its CSRF token on every request."""
    from scale_prep import PASSWORD

    s = requests.Session()
    r = s.post(f"{base}/login", data={"username": role, "password": PASSWORD, "csrf_token": _csrf(s, f"{base}/login")},
               allow_redirects=False, timeout=120)
    if r.status_code != 302:
        raise SystemExit(f"login as {role} failed: {r.status_code} {r.text[:200]}")
    s.headers["X-CSRFToken"] = _csrf(s, f"{base}/plans")
    return s


def _box(x: float, y: float, metres: float) -> str:
    dx, dy = metres / 2 * DEG_PER_M / math.cos(math.radians(y)), metres / 2 * DEG_PER_M
    return f"{x - dx:.6f},{y - dy:.6f},{x + dx:.6f},{y + dy:.6f}"


class Client:
    """One person of *role*: weighted requests with a think time, until the deadline."""

    def __init__(self, n: int, role: str, base: str, session: requests.Session, city: dict[str, Any],
                 tally: Tally, think: float) -> None:
        self.n, self.role, self.base, self.city, self.tally, self.think = n, role, base, city, tally, think
        self.http = requests.Session()
        self.http.cookies.update(session.cookies)
        self.http.headers.update(session.headers)
        self.rng = random.Random(n)
        minx, miny, maxx, maxy = city["bbox"]
        self.home = (self.rng.uniform(minx, maxx), self.rng.uniform(miny, maxy))
        self.community = self.rng.choice(city["communities"])
        self.version: int | None = None
        self.count = 0

    def call(self, kind: str, method: str, path: str, **kw: Any) -> requests.Response | None:
        t0 = time.perf_counter()
        try:
            r = self.http.request(method, self.base + path, timeout=120, allow_redirects=False, **kw)
        except requests.RequestException as exc:
            self.tally.samples.append((f"{self.role}:{kind}", 0, time.perf_counter() - t0))
            self.tally.errors.append(f"{kind}: {type(exc).__name__}: {exc}"[:200])
            return None
        self.tally.samples.append((f"{self.role}:{kind}", r.status_code, time.perf_counter() - t0))
        return r

    def here(self, spread_m: float) -> tuple[float, float]:
        d = spread_m * DEG_PER_M
        return self.home[0] + self.rng.uniform(-d, d), self.home[1] + self.rng.uniform(-d, d)

    # ---- grid worker (phone) ----
    def worker_fix(self) -> None:
        x, y = self.here(300)
        self.call("fix", "GET", f"/api/patrol/osmand?id=bench-{self.n % 50}&lat={y:.6f}&lon={x:.6f}"
                                f"&timestamp={int(time.time())}&accuracy=8")

    def worker_locate(self) -> None:
        x, y = self.here(300)
        self.call("locate", "GET", f"/api/grids/locate?lon={x:.6f}&lat={y:.6f}")

    def worker_view(self) -> None:
        x, y = self.here(300)
        self.call("view", "GET", f"/api/plans/{self.city['plan_a']}/buildings.geojson?bbox={_box(x, y, 400)}")

    def worker_cases(self) -> None:
        x, y = self.here(300)
        self.call("cases", "GET", f"/api/incidents/geojson?bbox={_box(x, y, 400)}")

    def worker_report(self) -> None:
        x, y = self.here(300)
        self.call("report", "POST", "/incidents/new", data={
            "category": self.rng.choice(REPORTABLE), "description": f"压测上报 {self.n}-{self.count}", "lon": f"{x:.6f}",
            "lat": f"{y:.6f}"})

    # ---- supervisor (map of the visible area) ----
    def viewer_buildings(self) -> None:
        x, y = self.here(3000)
        self.call("buildings", "GET", f"/api/plans/{self.city['plan_a']}/buildings.geojson?bbox={_box(x, y, 1500)}")

    def viewer_streets(self) -> None:
        x, y = self.here(3000)
        self.call("streets", "GET", f"/api/context/streets.geojson?bbox={_box(x, y, 1500)}")

    def viewer_cases(self) -> None:
        x, y = self.here(3000)
        self.call("cases", "GET", f"/api/incidents/geojson?bbox={_box(x, y, 1500)}")

    def viewer_grid(self) -> None:
        codes = self.city.get("grid_codes") or []
        if codes:
            self.call("grid", "GET", f"/api/grids/{self.rng.choice(codes)}")

    def viewer_list(self) -> None:
        self.call("list", "GET", "/incidents")

    # ---- planner (one community of the draft plan) ----
    def planner_grids(self) -> None:
        self.call("grids", "GET", f"/api/plans/{self.city['plan_b']}/grids.geojson?display=1"
                                  f"&community_id={self.community}")

    def planner_buildings(self) -> None:
        x, y = self.here(500)
        self.call("buildings", "GET", f"/api/plans/{self.city['plan_b']}/buildings.geojson?bbox={_box(x, y, 1000)}")

    def planner_plan(self) -> None:
        r = self.call("plan", "GET", f"/api/plans/{self.city['plan_b']}")
        if r is not None and r.status_code == 200:
            self.version = r.json()["version"]

    def planner_edit(self) -> None:
        grids = self.city.get("community_grids", {}).get(self.community) or []
        if not grids or self.version is None:
            return self.planner_plan()
        r = self.call("edit", "POST", f"/api/plans/{self.city['plan_b']}/edits",
                      json={"op": "rename", "grid_id": self.rng.choice(grids), "name": f"压测{self.n}-{self.count}",
                            "version": self.version})
        if r is not None and r.status_code in (200, 409):
            body = r.json()
            self.version = body.get("version") if r.status_code == 200 else body["error"].get("version", self.version)
        return None

    def planner_export(self) -> None:
        self.call("export", "GET", f"/api/plans/{self.city['plan_a']}/export?format=csv")

    def run(self, deadline: float) -> None:
        acts = {k: v for k, v in WEIGHTS[self.role].items()}
        names, weights = list(acts), list(acts.values())
        time.sleep(self.rng.uniform(0, self.think * 2))  # people do not all start in the same second
        while time.monotonic() < deadline:
            self.count += 1
            getattr(self, f"{self.role}_{self.rng.choices(names, weights)[0]}")()
            time.sleep(self.rng.expovariate(1 / self.think) if self.think > 0 else 0)


WEIGHTS: dict[str, dict[str, float]] = {
    "worker": {"fix": 4, "locate": 2, "view": 2, "cases": 1, "report": 0.2},
    "viewer": {"buildings": 3, "streets": 2, "cases": 2, "grid": 1, "list": 1},
    "planner": {"grids": 3, "buildings": 2, "plan": 1, "edit": 0.5, "export": 0.02},
}


def run_clients(base: str, city: dict[str, Any], clients: int, seconds: float, think: float) -> tuple[Tally, float]:
    """*clients* people by :data:`ROLES` shares for *seconds*; the tally and the elapsed seconds."""
    tally = Tally()
    sessions = {role: login(base, role) for role in ROLES}
    roles = [role for role, share in ROLES.items() for _ in range(round(share * clients))][:clients]
    roles += ["worker"] * (clients - len(roles))
    people = [Client(i, role, base, sessions[role], city, tally, think) for i, role in enumerate(roles)]
    t0 = time.monotonic()
    deadline = t0 + seconds
    threads = [threading.Thread(target=p.run, args=(deadline,), name=f"client-{p.n}") for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tally, time.monotonic() - t0


def _quantiles(times: list[float]) -> tuple[float, float]:
    import statistics

    if len(times) < 2:
        return (times[0], times[0]) if times else (math.nan, math.nan)
    q = statistics.quantiles(times, n=100)
    return q[49], q[98]


def summary(tally: Tally, elapsed: float) -> dict[str, Any]:
    """Overall figures and per kind: requests, p50, p99, statuses."""
    from collections import Counter, defaultdict

    by_kind: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for kind, status, dt in tally.samples:
        by_kind[kind].append((status, dt))
    kinds = {}
    for kind, got in sorted(by_kind.items()):
        p50, p99 = _quantiles(sorted(dt for _, dt in got))
        kinds[kind] = {"requests": len(got), "p50": p50, "p99": p99,
                       "answers": dict(sorted(Counter(s for s, _ in got).items()))}
    p50, p99 = _quantiles(sorted(dt for _, s, dt in tally.samples))
    return {"requests": len(tally.samples), "per_s": len(tally.samples) / elapsed, "p50": p50, "p99": p99,
            "5xx": sum(1 for _, s, _ in tally.samples if s >= 500), "no answer": len(tally.errors),
            "4xx": sum(1 for _, s, _ in tally.samples if 400 <= s < 500 and s != 409), "kinds": kinds,
            "error examples": sorted(set(tally.errors))[:5]}
