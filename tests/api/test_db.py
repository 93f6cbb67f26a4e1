"""Schema and migrations: a fresh SQLite file gets every table; the engine is tuned."""

from __future__ import annotations

import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import pytest
import shapely
from flask import Flask
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from api import db
from api.models import LAYER_MODELS, Base, Building, PlanAssignment, PlanVersion, User, utcnow
from geo.layers import SCHEMAS
from tests.databases import fresh_database


def test_migrations_create_every_table_on_a_fresh_file(tmp_path: Path) -> None:
    with fresh_database(tmp_path, "fresh.db", migrated=False) as url:
        _check_fresh_migration(url)


def _check_fresh_migration(url: str) -> None:
    engine = db.make_engine(url)
    assert db.current_revision(engine) is None
    reached = db.upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert reached == db.head_revision()
    assert set(Base.metadata.tables) <= tables
    assert {"buildings", "import_runs", "plan_versions", "plan_grids", "users", "audit_log"} <= tables


def test_migration_matches_the_models(tmp_path: Path) -> None:

    with fresh_database(tmp_path, "diff.db", migrated=False) as url:
        diff = _diff_after_upgrade(url)
    assert diff == []


def _diff_after_upgrade(url: str) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = db.make_engine(url)
    db.upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": db.include_object_for(conn.dialect.name)})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    return diff


@pytest.mark.parametrize("layer", sorted(SCHEMAS))
def test_layer_tables_have_the_canonical_columns(layer: str) -> None:
    columns = set(LAYER_MODELS[layer].__table__.columns.keys())
    assert set(SCHEMAS[layer].column_names) <= columns
    assert {"geometry", "minx", "miny", "maxx", "maxy"} <= columns


@pytest.mark.sqlite_only(reason="WAL and PRAGMA foreign_keys are SQLite settings; PostgreSQL always enforces keys")
def test_app_engine_uses_wal_and_foreign_keys(app: Flask) -> None:
    with app.app_context(), db.get_db().engine.connect() as conn:
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        fks = conn.exec_driver_sql("PRAGMA foreign_keys").scalar()
    assert (mode, fks) == ("wal", 1)


@pytest.mark.sqlite_only(reason="WAL checkpoints and PRAGMA synchronous are SQLite's")
def test_app_connections_leave_checkpoints_to_the_background_thread(app: Flask) -> None:
    """Commits never fsync (synchronous=NORMAL in WAL) and never checkpoint: the app's thread does."""
    database = db.get_db(app)
    with app.app_context(), database.engine.connect() as conn:
        autocheckpoint = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
        synchronous = conn.exec_driver_sql("PRAGMA synchronous").scalar()
    assert (autocheckpoint, synchronous) == (0, 1)
    assert database.checkpointer is not None and database.checkpointer._thread.is_alive()
    db.dispose(app)
    assert not database.checkpointer._thread.is_alive()


def _wal_frames(path: Path) -> int:
    """Frames in the WAL since its last restart (a PASSIVE checkpoint reports them; it copies nothing new here)."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        return int(con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    finally:
        con.close()


@pytest.mark.sqlite_only(reason="WAL checkpoints are SQLite's")
def test_checkpointer_thread_copies_and_restarts_the_wal(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA wal_autocheckpoint=0")  # as the app's connections: nobody else checkpoints
    con.execute("CREATE TABLE t(v BLOB)")
    for _ in range(300):
        con.execute("INSERT INTO t VALUES (randomblob(8000))")  # ~3 pages a commit
    assert _wal_frames(path) > 900  # past SQLite's own threshold of 1,000 pages, none checkpointed by a commit
    checkpointer = db.WalCheckpointer(str(path), interval_s=0.05, restart_s=0.1).start()
    try:
        frames = []
        for _ in range(100):  # a write after the thread's RESTART starts the WAL from its beginning again
            con.execute("INSERT INTO t VALUES (randomblob(100))")
            frames.append(_wal_frames(path))
            if frames[-1] < 10:
                break
            time.sleep(0.05)
    finally:
        checkpointer.stop()
        con.close()
    assert frames[-1] < 10, frames
    check = sqlite3.connect(path)
    assert check.execute("SELECT count(*) FROM t").fetchone()[0] == 300 + len(frames)  # nothing lost on the way
    check.close()


def test_foreign_keys_are_enforced(session: Session) -> None:
    from sqlalchemy.exc import IntegrityError

    session.add(PlanAssignment(plan_version_id=999, building_id="b1", grid_id="g1"))
    with pytest.raises(IntegrityError, match="(?i)foreign key"):
        session.flush()


def test_session_scope_commits_and_rolls_back(app: Flask) -> None:
    with app.app_context():
        with db.session_scope() as s:
            s.add(User(username="kept", role="viewer", password_hash="x"))
        with pytest.raises(RuntimeError, match="boom"), db.session_scope() as s:
            s.add(User(username="dropped", role="viewer", password_hash="x"))
            s.flush()
            raise RuntimeError("boom")
        with db.session_scope() as s:
            names = s.scalars(select(User.username)).all()
    assert names == ["kept"]


def test_geometry_and_times_round_trip(session: Session) -> None:
    poly = shapely.box(121.0, 31.0, 121.001, 31.001)
    session.add(
        Building(building_id="b1", geometry=poly, minx=121.0, miny=31.0, maxx=121.001, maxy=31.001)
    )
    lock = utcnow() + timedelta(minutes=15)
    session.add(User(username="u", role="worker", password_hash="x", locked_until=lock))
    session.commit()
    session.expunge_all()
    building = session.scalars(select(Building)).one()
    user = session.scalars(select(User)).one()
    assert building.geometry.equals(poly)
    assert user.locked_until == lock
    assert user.locked_until > utcnow()


def test_plan_version_counter_detects_concurrent_edits(app: Flask) -> None:
    from sqlalchemy.orm.exc import StaleDataError

    with app.app_context():
        with db.session_scope() as s:
            s.add(PlanVersion(name="方案一", author="planner"))
        with db.session_scope() as first, db.get_db().sessionmaker() as second:
            a = first.scalars(select(PlanVersion)).one()
            b = second.scalars(select(PlanVersion)).one()
            second.commit()  # like a second browser tab: loaded, then edited later
            a.message = "first edit"
            first.commit()
            b.message = "second edit"
            with pytest.raises(StaleDataError, match="expected to update 1 row"):
                second.flush()
            second.rollback()


def test_user_is_flask_login_compatible() -> None:
    user = User(id=7, username="w", role="worker", password_hash="x", active=False, session_token="t1")
    assert (user.get_id(), user.is_active, user.is_authenticated, user.is_anonymous) == (
        "7:t1", False, True, False
    )


def test_session_scope_outside_init_app_names_the_fix() -> None:
    with Flask("bare").app_context(), pytest.raises(RuntimeError, match="init_app"):
        db.get_db()


def _statements(app: Flask) -> list[str]:
    """Every SQL statement the app's engine sends from now on (appended as they run)."""
    from sqlalchemy import event

    seen: list[str] = []
    event.listen(db.get_db(app).engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: seen.append(statement))
    return seen


@pytest.mark.sqlite_only(reason="BEGIN IMMEDIATE; PostgreSQL counterpart: test_concurrency_postgres.py")
def test_write_scopes_begin_as_writes_and_read_scopes_as_reads(app: Flask) -> None:
    seen = _statements(app)
    with app.app_context():
        with db.session_scope(write=False) as s:
            s.scalars(select(User)).all()
        with db.session_scope() as s:
            s.add(User(username="w", role="viewer", password_hash="x"))
    assert [q for q in seen if q.startswith("BEGIN")] == ["BEGIN", "BEGIN IMMEDIATE"]


def test_a_request_holds_one_connection_even_when_it_writes(app: Flask, client) -> None:
    """The user loader's read and the write scope share the request's one session."""
    from sqlalchemy import event

    from api.users import create_user

    with app.app_context(), db.session_scope() as s:
        create_user(s, "conn", "conn-pass-2026", role="planner")
    engine = db.get_db(app).engine
    peak = [0]

    def count(*_: object) -> None:
        peak[0] = max(peak[0], engine.pool.checkedout())

    event.listen(engine, "checkout", count)
    assert client.post("/login", data={"username": "conn", "password": "conn-pass-2026"}).status_code == 302
    r = client.post("/api/plans/1/versions", json={"name": "x"})  # user loaded, then a write scope
    assert r.status_code == 404
    assert peak[0] == 1


def test_writer_queue_serves_writers_in_arrival_order_and_times_out() -> None:
    import threading
    import time

    queue = db.WriterQueue()
    assert queue.acquire(timeout=1)
    order: list[int] = []

    def writer(i: int) -> None:
        assert queue.acquire(timeout=10)
        order.append(i)
        queue.release()

    threads = []
    for i in range(6):
        threads.append(threading.Thread(target=writer, args=(i,)))
        threads[-1].start()
        time.sleep(0.05)  # arrive one after the other
    assert queue.acquire(timeout=0.1) is False  # the holder has not released: a late comer times out
    queue.release()
    for t in threads:
        t.join(timeout=10)
    assert order == list(range(6))
    assert queue.acquire(timeout=0)  # the timed-out waiter left no ticket behind
    queue.release()


def test_plan_workspace_migration_stamps_existing_plans_with_the_newest_import(tmp_path: Path) -> None:
    with fresh_database(tmp_path, "old.db", migrated=False) as url:
        stamped = _stamped_after_migration(url)
    assert stamped == [2]  # the newest *successful* import


def _stamped_after_migration(url: str) -> list:
    from sqlalchemy import text

    engine = db.make_engine(url)
    db.upgrade(engine, "0002")
    with engine.begin() as conn:
        for status in ("success", "success", "failed"):
            conn.execute(text("INSERT INTO import_runs (started_at, username, sources, counts, report, status) "
                              "VALUES ('2026-01-01 00:00:00', 'u', '{}', '{}', '{}', :s)"), {"s": status})
        conn.execute(text("INSERT INTO plan_versions (name, status, author, created_at, settings, version_counter, "
                          "is_active) VALUES ('old', 'draft', 'u', '2026-01-01 00:00:00', '{}', 1, false)"))
    db.upgrade(engine, "0003_plan_workspace")
    with engine.connect() as conn:
        stamped = conn.execute(text("SELECT workspace_version FROM plan_versions")).scalars().all()
    engine.dispose()
    return stamped


def test_an_audit_row_with_an_over_long_target_is_cut_not_refused(app: Flask) -> None:
    """PostgreSQL enforces VARCHAR(200) (a long ?grid= made the audited read a 500); SQLite would store it whole."""
    from api import audit
    from api.models import AuditEntry

    with app.app_context():
        with db.session_scope() as s:
            audit.record(s, user="u" * 80, action="test.long", target="格" * 500, detail={"n": 1})
        with db.session_scope(write=False) as s:
            row = s.scalars(select(AuditEntry).where(AuditEntry.action == "test.long")).one()
    assert len(row.target) == 200 and row.target.endswith("…") and row.target.startswith("格" * 199)
    assert row.username == "u" * 63 + "…"
