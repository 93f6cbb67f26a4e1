"""The transaction design on PostgreSQL (issue 16 §1): write scopes, version races, audited reads.

A throwaway PostgreSQL server is started for the module (Debian's ``postgresql`` package,
as root through the ``postgres`` user, private port, ``fsync=off``), or the one named by
``WANGGE_TEST_POSTGRES_URL``; on a PostgreSQL run of the suite, a fresh database of the
run with the whole schema. Otherwise only the tables these rules touch are created
(users, plans, audit log, import runs): what is checked is the
transaction design — one session per app context, write scopes, optimistic versions under
50 simultaneous writers (exactly one wins, the ORM's loser is a 409), audit after a read.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine, event, func, select, update
from sqlalchemy.orm.exc import StaleDataError

from api import audit, db
from api.models import AuditEntry, ImportRun, PlanVersion, User
from tests.databases import fresh_database, on_postgres, postgres_url
from tests.pgserver import server_bin, start_server, stop_server

N_WRITERS = 50
PORT = 54397


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A PostgreSQL server: the run's (``WANGGE_TEST_DATABASE_URL``), ``WANGGE_TEST_POSTGRES_URL``, or a throwaway one."""
    pytest.importorskip("psycopg", reason="pip install 'psycopg[binary]' to run the PostgreSQL tests")
    given = postgres_url() or os.environ.get("WANGGE_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    if server_bin() is None or os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("PostgreSQL test server needs Debian's postgresql package and root "
                    "(or set WANGGE_TEST_DATABASE_URL; scripts/pg-test.sh does)")
    tmp = Path(tempfile.mkdtemp(prefix="wangge-pg-"))
    try:
        yield start_server(tmp, PORT)
    finally:
        stop_server(tmp)


@pytest.fixture
def app(pg_url: str, tmp_path: Path) -> Iterator[Flask]:
    """A bare Flask app on PostgreSQL: the run's fresh database (whole schema), else fresh tables on *pg_url*."""
    if on_postgres():
        with fresh_database(tmp_path) as url:
            yield from _bare_app(db.make_engine(url))
        return
    engine = db.make_engine(pg_url)
    tables = [m.__table__ for m in (User, PlanVersion, AuditEntry, ImportRun)]
    PlanVersion.metadata.drop_all(engine, tables=tables)
    PlanVersion.metadata.create_all(engine, tables=tables)
    yield from _bare_app(engine)


def _bare_app(engine: Engine) -> Iterator[Flask]:
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
