"""Two app processes on one database (issue 17 §2): two real ``wangge serve --prod`` servers.

An edit made through one is seen by the very next request to the other (each keeps a plan
state cache), concurrent edits through both answer 200 or 409 and never 5xx, a plan state
built by one is read by the other instead of being rebuilt, and files every process needs
(secret key, register key) are created once however many processes start at the same time.
"""

from __future__ import annotations

import re
import stat
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from api.config import read_or_create
from api.db import session_scope
from api.models import PlanGrid, PlanSnapshot
from tests.api.plans_helpers import PASSWORD, district_app, login, partitioned_plan
from tests.api.prod_helpers import ProdServer, diagnosed, server_env

pytestmark = pytest.mark.slow

N_BUILDINGS = 500
N_CLIENTS = 12


class Client:
    """A browser-like client logged in as the planner: its cookie works on both servers."""

    def __init__(self, url: str) -> None:
        self.http = requests.Session()
        page = self.http.get(f"{url}/login", timeout=30).text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        r = self.http.post(f"{url}/login", data={"username": "planner", "password": PASSWORD, "csrf_token": token},
                           allow_redirects=False, timeout=60)
        assert r.status_code == 302, r.text[:300]
        meta = self.http.get(f"{url}/plans", timeout=30).text
        self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', meta).group(1)  # type: ignore[union-attr]

    def copy(self) -> Client:
        other = object.__new__(Client)
        other.http, other.csrf = requests.Session(), self.csrf
        other.http.cookies.update(self.http.cookies)
        return other

    def version(self, url: str, plan: int) -> int:
        return int(self.http.get(f"{url}/api/plans/{plan}", timeout=60).json()["version"])

    def rename(self, url: str, plan: int, grid: str, name: str, version: int) -> requests.Response:
        return self.http.post(f"{url}/api/plans/{plan}/edits", timeout=120, headers={"X-CSRFToken": self.csrf},
                              json={"op": "rename", "grid_id": grid, "name": name, "version": version})

    def names(self, url: str, plan: int) -> tuple[int, dict[str, str]]:
        fc = self.http.get(f"{url}/api/plans/{plan}/grids.geojson", timeout=60).json()
        return int(fc["version"]), {f["id"]: f["properties"]["name"] for f in fc["features"]}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, int, ProdServer, ProdServer]]:
    tmp = tmp_path_factory.mktemp("two_processes")
    with district_app(tmp, N_BUILDINGS) as app:
        plan = partitioned_plan(login(app, "planner"), "两个进程")
        env = server_env(tmp, app.config["DATABASE_URL"], job_processes=0, plan_snapshot_delay_s=0.2)
        a, b = ProdServer(env, "--workers", "1"), ProdServer(env, "--workers", "1")
        try:
            a.wait_ready()
            b.wait_ready()
            yield app, plan, a, b
        finally:
            a.kill()
            b.kill()


def _stored_key(app: Flask, plan: int) -> str | None:
    with app.app_context(), session_scope(write=False) as s:
        return s.scalar(select(PlanSnapshot.key).where(PlanSnapshot.plan_version_id == plan))


def _db_names(app: Flask, plan: int) -> dict[str, str]:
    with app.app_context(), session_scope(write=False) as s:
        return dict(s.execute(select(PlanGrid.grid_id, PlanGrid.name).where(PlanGrid.plan_version_id == plan)).all())


def test_the_second_process_reads_the_plan_state_the_first_built(setup: Any) -> None:
    app, plan, a, b = setup
    with diagnosed(a, b):
        client = Client(a.url)
        client.names(a.url, plan)  # the partition job stored the saved plan's state (else A stores it when idle)
        deadline = time.monotonic() + 60
        while _stored_key(app, plan) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _stored_key(app, plan) is not None
        assert client.names(b.url, plan) == client.names(a.url, plan)
        loaded = [e for e in b.log() if e.get("logger") == "api.plans.snapshot" and "loaded from its stored" in e["message"]]
        built = [e for e in b.log() if e.get("logger") == "api.plans.state" and " loaded: " in e["message"]]
        assert len(loaded) == 1 and built == [], (loaded, built)


def test_an_edit_through_one_process_is_seen_by_the_next_request_to_the_other(setup: Any) -> None:
    app, plan, a, b = setup
    with diagnosed(a, b):
        client = Client(a.url)
        grid = sorted(_db_names(app, plan))[0]
        client.names(a.url, plan), client.names(b.url, plan)  # both processes have the plan cached
        for i in range(6):
            here, there = (a, b) if i % 2 == 0 else (b, a)
            version = client.version(here.url, plan)
            r = client.rename(here.url, plan, grid, f"第{i}次", version)
            assert r.status_code == 200, r.text[:300]
            seen_version, names = client.names(there.url, plan)
            assert (seen_version, names[grid]) == (version + 1, f"第{i}次")


def test_concurrent_edits_through_both_processes_never_fail_and_all_land(setup: Any) -> None:
    app, plan, a, b = setup
    with diagnosed(a, b):
        first = Client(a.url)
        clients = [first] + [first.copy() for _ in range(N_CLIENTS - 1)]
        grids = sorted(_db_names(app, plan))
        gate = threading.Barrier(N_CLIENTS)

        def edit(i: int) -> list[int]:
            url, grid, statuses = (a, b)[i % 2].url, grids[i % len(grids)], []
            gate.wait(timeout=60)
            for _ in range(80):
                r = clients[i].rename(url, plan, grid, f"并发{i}", clients[i].version(url, plan))
                statuses.append(r.status_code)
                if r.status_code != 409:
                    break
            return statuses

        with ThreadPoolExecutor(max_workers=N_CLIENTS) as pool:
            answers = list(pool.map(edit, range(N_CLIENTS)))
        codes = Counter(c for statuses in answers for c in statuses)
        assert set(codes) <= {200, 409} and all(s[-1] == 200 for s in answers), codes
        stored = _db_names(app, plan)
        for i in range(N_CLIENTS):  # several clients may share a grid: one of theirs stands
            grid = grids[i % len(grids)]
            assert stored[grid] in {f"并发{j}" for j in range(N_CLIENTS) if grids[j % len(grids)] == grid}
        for server in (a, b):  # both processes answer what the database holds
            assert first.names(server.url, plan)[1] == stored


def test_a_file_every_process_needs_is_created_once_when_many_start_at_once(tmp_path: Path) -> None:
    path, n = tmp_path / "instance" / "secret_key", 16
    gate = threading.Barrier(n)

    def start(i: int) -> str:
        gate.wait(timeout=30)
        return read_or_create(path, lambda: f"key-of-process-{i}")

    with ThreadPoolExecutor(max_workers=n) as pool:
        seen = set(pool.map(start, range(n)))
    assert len(seen) == 1 and seen == {path.read_text()} and seen.pop().startswith("key-of-process-")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]  # no candidate left behind
