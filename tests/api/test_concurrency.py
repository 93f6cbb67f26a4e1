"""Real concurrent HTTP requests against the app served on a loopback port (issue 16 §1).

A threaded werkzeug server (as in production with ``wangge serve``) on SQLite; clients are
threads with their own ``requests`` sessions. Every answer must be 200/201/409 (never 500)
and every acknowledged write must be in the database afterwards.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.db import get_db
from api.models import AuditEntry, PlanEdit, PlanGrid, PlanVersion
from tests.api.plans_helpers import PASSWORD, district_app, login, wait_job

N_BUILDINGS = 800
N_CLIENTS = 50


@dataclass(frozen=True)
class Served:
    app: Flask
    plan: int
    url: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A district with one partitioned plan, served on 127.0.0.1 (free port) threaded like ``wangge serve``."""
    from werkzeug.serving import make_server

    with district_app(tmp_path_factory.mktemp("concurrency"), N_BUILDINGS) as app:
        planner = login(app, "planner")
        login(app, "viewer")
        job = wait_job(planner, planner.post("/api/plans/partition", json={"name": "并发测试", "seed": 3})
                       .get_json()["job_id"])
        assert job["state"] == "done", job
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, name="concurrency-server", daemon=True)
        thread.start()
        try:
            yield Served(app, job["plan_id"], f"http://127.0.0.1:{server.server_port}")
        finally:
            server.shutdown()
            thread.join(timeout=10)


@pytest.fixture(scope="module")
def app(served: Served) -> Flask:
    return served.app


@pytest.fixture(scope="module")
def plan(served: Served) -> int:
    return served.plan


@pytest.fixture(scope="module")
def url(served: Served) -> str:
    return served.url


def _clients(url: str, role: str, n: int) -> list[requests.Session]:
    """*n* independent HTTP clients sharing one login of *role* (hashing 50 passwords would be the test)."""
    first = requests.Session()
    r = first.post(f"{url}/login", data={"username": role, "password": PASSWORD}, allow_redirects=False,
                   timeout=60)
    assert r.status_code == 302, r.text[:300]
    out = [first]
    for _ in range(n - 1):
        s = requests.Session()
        s.cookies.update(first.cookies)
        out.append(s)
    return out


def _burst(n: int, call: Callable[[int], Any]) -> list[Any]:
    """Run *call(i)* for i < n in n threads released at the same moment."""
    gate = threading.Barrier(n)

    def run(i: int) -> Any:
        gate.wait(timeout=60)
        return call(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def _version(s: requests.Session, url: str, plan: int) -> int:
    return s.get(f"{url}/api/plans/{plan}", timeout=60).json()["version"]


@contextmanager
def _reading(app: Flask) -> Iterator[Session]:
    with app.app_context():
        s = get_db().sessionmaker()
        try:
            yield s
        finally:
            s.close()


def _grid_ids(app: Flask, plan: int) -> list[str]:
    with _reading(app) as s:
        return sorted(s.scalars(select(PlanGrid.grid_id).where(PlanGrid.plan_version_id == plan)))


def test_simultaneous_csv_exports_all_succeed_and_are_audited(app: Flask, url: str, plan: int) -> None:
    clients = _clients(url, "planner", N_CLIENTS)  # exports are planners' and admins' only
    with _reading(app) as s:
        before = s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "plan.export"))
    answers = _burst(N_CLIENTS, lambda i: clients[i].get(f"{url}/api/plans/{plan}/export?format=csv", timeout=120))
    codes = Counter(r.status_code for r in answers)
    assert codes == {200: N_CLIENTS}, codes
    assert len({r.content for r in answers}) == 1  # the same plan, byte for byte
    with _reading(app) as s:
        after = s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "plan.export"))
    assert after - before == N_CLIENTS


def test_simultaneous_version_saves_all_land(app: Flask, url: str, plan: int) -> None:
    clients = _clients(url, "planner", N_CLIENTS)
    answers = _burst(N_CLIENTS, lambda i: clients[i].post(f"{url}/api/plans/{plan}/versions",
                                                          json={"name": f"并发版本{i}"}, timeout=120))
    codes = Counter(r.status_code for r in answers)
    assert set(codes) <= {201, 409}, codes
    saved = {r.json()["id"]: r.json()["name"] for r in answers if r.status_code == 201}
    assert len(saved) == codes[201] > 0
    with _reading(app) as s:
        stored = dict(s.execute(select(PlanVersion.id, PlanVersion.name).where(PlanVersion.id.in_(saved))).all())
        grids = dict(s.execute(select(PlanGrid.plan_version_id, func.count()).where(
            PlanGrid.plan_version_id.in_(saved)).group_by(PlanGrid.plan_version_id)).all())
    assert stored == saved
    n_grids = len(_grid_ids(app, plan))
    assert set(grids.values()) == {n_grids}  # every copy is whole


def test_same_version_edits_one_wins_the_others_get_409_naming_who(app: Flask, url: str, plan: int) -> None:
    clients = _clients(url, "planner", N_CLIENTS)
    v = _version(clients[0], url, plan)
    grid = _grid_ids(app, plan)[0]
    answers = _burst(N_CLIENTS, lambda i: clients[i].post(
        f"{url}/api/plans/{plan}/edits", json={"op": "rename", "grid_id": grid, "name": f"同时{i}", "version": v},
        timeout=120))
    codes = Counter(r.status_code for r in answers)
    assert codes == {200: 1, 409: N_CLIENTS - 1}, codes
    loser = next(r.json()["error"] for r in answers if r.status_code == 409)
    assert loser["code"] == "conflict" and loser["by"] == "planner" and loser["version"] == v + 1
    assert "planner" in loser["message"]
    winner = next(i for i, r in enumerate(answers) if r.status_code == 200)
    with _reading(app) as s:
        name = s.scalar(select(PlanGrid.name).where(PlanGrid.plan_version_id == plan, PlanGrid.grid_id == grid))
    assert name == f"同时{winner}"


def test_mixed_burst_exports_saves_and_retrying_edits(app: Flask, url: str, plan: int) -> None:
    """50 clients at once: exports, version saves and edits (retried on 409); no acknowledged write lost."""
    grids = _grid_ids(app, plan)
    kinds = ["export", "save", "edit"]
    clients = _clients(url, "planner", N_CLIENTS)
    with _reading(app) as s:
        edits_before = s.scalar(select(func.count()).select_from(PlanEdit).where(PlanEdit.plan_version_id == plan))

    def call(i: int) -> tuple[str, list[int], Any]:
        s, kind = clients[i], kinds[i % 3]
        if kind == "export":
            r = s.get(f"{url}/api/plans/{plan}/export?format=xlsx", timeout=120)
            return kind, [r.status_code], None
        if kind == "save":
            r = s.post(f"{url}/api/plans/{plan}/versions", json={"name": f"混合{i}"}, timeout=120)
            return kind, [r.status_code], r.json().get("id")
        statuses = []
        for _ in range(60):
            r = s.post(f"{url}/api/plans/{plan}/edits", timeout=120,
                       json={"op": "rename", "grid_id": grids[i % len(grids)], "name": f"改名{i}",
                             "version": _version(s, url, plan)})
            statuses.append(r.status_code)
            if r.status_code != 409:
                break
        return kind, statuses, grids[i % len(grids)] if statuses[-1] == 200 else None

    answers = _burst(N_CLIENTS, call)
    by_kind = {k: Counter(c for kk, statuses, _ in answers if kk == k for c in statuses) for k in kinds}
    assert set(by_kind["export"]) == {200}, by_kind
    assert set(by_kind["save"]) <= {201, 409} and by_kind["save"][201] > 0, by_kind
    assert set(by_kind["edit"]) <= {200, 409}, by_kind
    renamed = {i: g for i, (kind, statuses, g) in enumerate(answers) if kind == "edit" and statuses[-1] == 200}
    assert len(renamed) == sum(1 for k, _, _ in answers if k == "edit")  # every editor got through
    saved = {v for kind, statuses, v in answers if kind == "save" and statuses[-1] == 201}
    with _reading(app) as s:
        names = dict(s.execute(select(PlanGrid.grid_id, PlanGrid.name).where(
            PlanGrid.plan_version_id == plan, PlanGrid.grid_id.in_(set(renamed.values())))).all())
        n_edits = s.scalar(select(func.count()).select_from(PlanEdit).where(PlanEdit.plan_version_id == plan))
        stored = set(s.scalars(select(PlanVersion.id).where(PlanVersion.id.in_(saved))))
    for g in set(renamed.values()):  # several editors may share a grid: one of theirs stands
        assert names[g] in {f"改名{i}" for i, gg in renamed.items() if gg == g}, (g, names[g])
    assert n_edits - edits_before == by_kind["edit"][200] == len(renamed)
    assert stored == saved
