"""CPU per request of the loaded endpoints, in process (no server, no client): where the time goes.

The two load benches send Open311 requests (``bench/incidents.py``: 30 % POST, then GET
requests and GET services) and tracker fixes (``bench/patrol.py``: OsmAnd GET). At 200
requests/s on 2 cores every millisecond of CPU per request is a fifth of a core, so this
script measures each kind alone: the WSGI app called directly (the same middleware as under
gunicorn: request id and log line, security headers, limiter, sessions, database), warm,
CPU ms and wall ms per request. ``--profile KIND`` prints the cProfile of that kind's requests.

Usage::

    PYTHONPATH=. .venv/bin/python bench/request_cpu.py                   # every kind, 300 each
    PYTHONPATH=. .venv/bin/python bench/request_cpu.py --profile post --top 30
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from werkzeug.test import EnvironBuilder

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from incidents import _app, _client_data, prepare  # noqa: E402 - the bench's own district

OUT = REPO / "bench" / "out" / "request_cpu"


def _call(app: Any, **kw: Any) -> int:
    """One request through the WSGI app; its status (the body is read, as a server would)."""
    environ = EnvironBuilder(**kw).get_environ()
    environ["REMOTE_ADDR"] = "127.0.0.1"
    status: list[str] = []
    body = app(environ, lambda s, h, e=None: status.append(s))
    try:
        for _ in body:
            pass
    finally:
        getattr(body, "close", lambda: None)()
    return int(status[0].split()[0])


def kinds(folder: Path) -> dict[str, Callable[[Any, int], int]]:
    """Request makers by kind, as the benches send them."""
    from api.db import dispose, session_scope
    from api.patrol.store import bind_device
    from api.users import create_user

    key, points, codes = _client_data(folder)
    app = _app(folder)
    name = f"cpu{time.time_ns()}"  # a new worker and phone per run: its fixes' times are all new
    device = f"phone-{name}"
    with app.app_context(), session_scope() as s:
        create_user(s, name, "bench-password-1", role="worker")
        bind_device(s, device, name, by="bench")
    dispose(app)
    t0 = 1714957200 + (time.time_ns() // 1000) % 10**6

    def post(wsgi: Any, i: int) -> int:
        lon, lat = points[i % len(points)]
        body = urlencode({"api_key": key, "service_code": codes[i % len(codes)], "description": f"bench {i}",
                          "lat": lat, "long": lon, "media_url": f"https://photos.example/{i}.jpg",
                          "address_string": f"测试路 {i} 号"})
        return _call(wsgi, path="/open311/v2/requests.json", method="POST", data=body,
                     content_type="application/x-www-form-urlencoded")

    def requests_page(wsgi: Any, i: int) -> int:
        return _call(wsgi, path="/open311/v2/requests.json", query_string="page_size=20")

    def services(wsgi: Any, i: int) -> int:
        return _call(wsgi, path="/open311/v2/services.json")

    def osmand(wsgi: Any, i: int) -> int:
        q = {"id": device, "lat": 39.99 + i * 1e-5, "lon": 116.32, "timestamp": t0 + i, "accuracy": 5}
        return _call(wsgi, path="/api/patrol/osmand", query_string=urlencode(q))

    def healthz(wsgi: Any, i: int) -> int:
        return _call(wsgi, path="/healthz")

    return {"post": post, "requests": requests_page, "services": services, "osmand": osmand, "healthz": healthz}


def measure(app: Any, fn: Callable[[Any, int], int], n: int, start: int) -> tuple[float, float, set[int]]:
    """CPU ms and wall ms per request over *n* requests, and the statuses seen."""
    statuses: set[int] = set()
    c0, t0 = time.process_time(), time.perf_counter()
    for i in range(start, start + n):
        statuses.add(fn(app, i))
    return (time.process_time() - c0) * 1000 / n, (time.perf_counter() - t0) * 1000 / n, statuses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--buildings", type=int, default=3000, help="district size (prepared once, then reused)")
    ap.add_argument("-n", type=int, default=300, help="requests per kind")
    ap.add_argument("--profile", choices=["post", "requests", "services", "osmand", "healthz"], default=None)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--sort", default="tottime", help="pstats sort key (tottime, cumulative)")
    args = ap.parse_args()
    prepare(args.buildings, OUT)
    makers = kinds(OUT)
    app = _app(OUT)
    wsgi = app
    for fn in makers.values():  # warm: the first POST builds the grid index, the first fix the patrol cache
        measure(wsgi, fn, 20, 10**6)
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        cpu, wall, statuses = measure(wsgi, makers[args.profile], args.n, 0)
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats(args.sort).print_stats(args.top)
        print(out.getvalue())
        print(f"{args.profile}: CPU {cpu:.2f} ms, wall {wall:.2f} ms per request (under cProfile), {statuses}")
        return
    print(f"{'kind':<10}{'CPU ms':>8}{'wall ms':>9}  statuses   (n={args.n} in 5 batches, the best batch; "
          f"load {os.getloadavg()[0]:.1f})")
    for name, fn in makers.items():
        batches = [measure(wsgi, fn, args.n // 5, k * args.n) for k in range(5)]
        cpu, wall = min(b[0] for b in batches), min(b[1] for b in batches)
        print(f"{name:<10}{cpu:>8.2f}{wall:>9.2f}  {sorted(set().union(*(b[2] for b in batches)))}")


if __name__ == "__main__":
    main()
