"""The transaction design on PostgreSQL (issue 16 §1): write scopes, version races, audited reads.

A throwaway PostgreSQL server is started for the module (Debian's ``postgresql`` package,
as root through the ``postgres`` user, private port, ``fsync=off``), or the one named by
``WANGGE_TEST_POSTGRES_URL``. The layer tables need PostGIS, so only the tables these
rules touch are created (users, plans, audit log, import runs): what is checked is the
transaction design — one session per app context, write scopes, optimistic versions under
50 simultaneous writers (exactly one wins, the ORM's loser is a 409), audit after a read.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import event, func, select, update
from sqlalchemy.orm.exc import StaleDataError

from api import audit, db
from api.models import AuditEntry, ImportRun, PlanVersion, User

N_WRITERS = 50
PORT = 54397


def _start_server(tmp: Path) -> str:
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins or os.geteuid() != 0 or shutil.which("su") is None:
        pytest.skip("PostgreSQL test server needs Debian's postgresql package and root "
                    "(or set WANGGE_TEST_POSTGRES_URL)")
    bindir = Path(bins[-1]).parent
    shutil.chown(tmp, "postgres")

    def as_postgres(cmd: str) -> None:
        subprocess.run(["su", "postgres", "-c", cmd], check=True, capture_output=True, timeout=120)

    as_postgres(f"{bindir}/initdb -D {tmp}/data -A trust -U postgres -E UTF8")
    as_postgres(f"{bindir}/pg_ctl -D {tmp}/data -o '-k {tmp} -p {PORT} -c listen_addresses=127.0.0.1 "
                f"-c fsync=off' -l {tmp}/log -w start")
    return f"postgresql+psycopg://postgres@127.0.0.1:{PORT}/postgres"


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    if os.environ.get("WANGGE_TEST_POSTGRES_URL"):
        yield os.environ["WANGGE_TEST_POSTGRES_URL"]
        return
    tmp = Path(tempfile.mkdtemp(prefix="wangge-pg-"))
    url = _start_server(tmp)
    try:
        yield url
    finally:
        bindir = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]).parent
        subprocess.run(["su", "postgres", "-c", f"{bindir}/pg_ctl -D {tmp}/data -m fast -w stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def app(pg_url: str) -> Iterator[Flask]:
    """A bare Flask app whose database is the PostgreSQL server (fresh tables per test)."""
    engine = db.make_engine(pg_url)
    tables = [m.__table__ for m in (User, PlanVersion, AuditEntry, ImportRun)]
    PlanVersion.metadata.drop_all(engine, tables=tables)
    PlanVersion.metadata.create_all(engine, tables=tables)
    app = Flask(__name__)
    app.config["WANGGE"] = {}
    db.attach(app, engine)
    with app.app_context(), db.session_scope() as s:
        s.add(PlanVersion(name="甲", author="planner", settings={}))
    yield app
    engine.dispose()


def _burst(app: Flask, work) -> list[str]:
    gate = threading.Barrier(N_WRITERS)

    def run(i: int) -> str:
        gate.wait(timeout=30)
        try:
            with app.app_context(), db.session_scope() as s:
                return work(s, i)
        except StaleDataError:
            return "stale"

    with ThreadPoolExecutor(max_workers=N_WRITERS) as pool:
        return list(pool.map(run, range(N_WRITERS)))


def test_write_scope_is_a_plain_begin_and_the_pool_is_sized(app: Flask) -> None:
    engine = db.get_db(app).engine
    assert engine.pool.size() == 10 and db.get_db(app).write_lock is None
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda c, cur, statement, *a: seen.append(statement))
    with app.app_context(), db.session_scope() as s:
        s.add(User(username="u", role="viewer", password_hash="x"))
    assert not any("IMMEDIATE" in q for q in seen)
    with app.app_context(), db.session_scope(write=False) as s:
        assert s.scalar(select(User.username)) == "u"


def test_conditional_version_bump_has_exactly_one_winner(app: Flask) -> None:
    pv = PlanVersion.__table__

    def bump(s, i: int) -> str:
        res = s.execute(update(pv).where(pv.c.id == 1, pv.c.version_counter == 1)
                        .values(version_counter=2, name=f"winner{i}"))
        return "won" if res.rowcount == 1 else "conflict"

    got = Counter(_burst(app, bump))
    assert got == {"won": 1, "conflict": N_WRITERS - 1}


def test_orm_version_race_loses_with_stale_data_and_the_app_answers_409(app: Flask) -> None:
    def rename(s, i: int) -> str:
        plan = s.get(PlanVersion, 1)
        plan.name = f"名{i}"
        s.flush()
        return "won"

    got = Counter(_burst(app, rename))
    assert got["won"] >= 1 and set(got) <= {"won", "stale"}
    with app.app_context(), db.session_scope(write=False) as s:
        plan = s.get(PlanVersion, 1)
        assert plan.version_counter == 1 + got["won"]  # every acknowledged rename counted once

    from api.errors import init_app as errors_init

    errors_init(app)

    @app.post("/api/race")
    def race() -> str:
        raise StaleDataError("UPDATE statement on table 'plan_versions' expected to update 1 row(s); 0 were matched.")

    r = app.test_client().post("/api/race")
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "conflict"


def test_audited_reads_write_their_rows_in_their_own_transaction(app: Flask) -> None:
    gate = threading.Barrier(N_WRITERS)

    def read_then_audit(i: int) -> str:
        gate.wait(timeout=30)
        with app.app_context():
            db.get_session().scalar(select(PlanVersion.name).where(PlanVersion.id == 1))  # the request's read
            audit.record_read(user="viewer", action="plan.export", target="plan:1", detail={"i": i})
            return "ok"

    with ThreadPoolExecutor(max_workers=N_WRITERS) as pool:
        assert Counter(pool.map(read_then_audit, range(N_WRITERS))) == {"ok": N_WRITERS}
    with app.app_context(), db.session_scope(write=False) as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == N_WRITERS
