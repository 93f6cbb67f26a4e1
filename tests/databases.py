"""Test databases on either backend: a SQLite file, or a fresh PostgreSQL database per use.

``WANGGE_TEST_DATABASE_URL`` (a PostgreSQL server URL, e.g.
``postgresql+psycopg://postgres@127.0.0.1:54329/postgres``; ``scripts/pg-test.sh`` sets it)
switches every test database to PostgreSQL + PostGIS. Each process (each pytest-xdist
worker) builds two template databases once, one with only the PostGIS extension and one
migrated to the newest revision. A test's database is the process's *work* database (a
clone of the migrated template) emptied first: every table's rows deleted and every
sequence restarted, ~0.1 s where a new clone (``CREATE DATABASE … TEMPLATE``) takes ~1 s
on this machine. A second database wanted while the work database is in use (a module's
app, a copy between two databases, a migration test) is a clone, dropped afterwards.
Without the variable, tests use SQLite files.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

__all__ = ["ENV", "postgres_url", "on_postgres", "fresh_database", "database_url_for", "drop_leftovers"]

ENV = "WANGGE_TEST_DATABASE_URL"
_PREFIX = f"wt{os.getpid()}"
_counter = itertools.count(1)
_templates: dict[bool, str] = {}
_kept: list[str] = []
_work: dict[str, Any] = {"busy": False, "sql": ""}


def postgres_url() -> str | None:
    """The PostgreSQL server the tests run against, or None (SQLite)."""
    return os.environ.get(ENV) or None


def on_postgres() -> bool:
    """True when this test run uses PostgreSQL."""
    return postgres_url() is not None


def _admin(sql: str) -> None:
    import psycopg

    url = make_url(postgres_url() or "").set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(sql)


def _url_of(name: str) -> str:
    return make_url(postgres_url() or "").set(database=name).render_as_string(hide_password=False)


def _template(migrated: bool) -> str:
    """Name of this process's template database (PostGIS, and migrated to head when *migrated*)."""
    if migrated in _templates:
        return _templates[migrated]
    from api import db

    name = f"{_PREFIX}_tpl_{'head' if migrated else 'empty'}"
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{name}"')
    engine = db.make_engine(_url_of(name))
    try:
        db.ensure_postgis(engine)
        if migrated:
            db.upgrade(engine)
    finally:
        engine.dispose()
    _templates[migrated] = name
    return name


@contextmanager
def fresh_database(tmp: Path, name: str = "wangge.db", *, migrated: bool = True) -> Iterator[str]:
    """The URL of a fresh database for one test (or module), dropped afterwards on PostgreSQL.

    Parameters
    ----------
    tmp
        Temporary folder of the test: the SQLite file goes there.
    name
        File name of the SQLite database.
    migrated
        PostgreSQL only: clone the template already at the newest revision (True), or the
        one with only the PostGIS extension (False, for migration tests).
    """
    if not on_postgres():
        yield f"sqlite:///{tmp / name}"
        return
    if migrated and not _work["busy"]:
        _work["busy"] = True
        try:
            yield _emptied_work_database()
        finally:
            _work["busy"] = False
        return
    clone = f"{_PREFIX}_{next(_counter)}"
    _admin(f'CREATE DATABASE "{clone}" TEMPLATE "{_template(migrated)}"')
    try:
        yield _url_of(clone)
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{clone}" WITH (FORCE)')


def _emptied_work_database() -> str:
    import psycopg

    name = f"{_PREFIX}_work"
    if not _work["sql"]:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _admin(f'CREATE DATABASE "{name}" TEMPLATE "{_template(True)}"')
        _kept.append(name)
    url = make_url(_url_of(name)).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as conn:
        if not _work["sql"]:
            _work["sql"] = _emptying_sql(conn)
        conn.execute("SET lock_timeout = '10s'")
        try:
            conn.execute(_work["sql"])
        except psycopg.errors.LockNotAvailable:  # a previous test left a connection open
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            conn.execute(_work["sql"])
    return _url_of(name)


def _emptying_sql(conn: Any) -> str:
    """Delete every row of our tables (foreign-key triggers off) and restart every sequence."""
    tables = [r[0] for r in conn.execute(
        "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' "
        "AND tablename NOT IN ('alembic_version', 'spatial_ref_sys')")]
    sequences = [r[0] for r in conn.execute(
        "SELECT quote_ident(sequencename) FROM pg_sequences WHERE schemaname = 'public'")]
    return "; ".join(["SET session_replication_role = replica", *(f"DELETE FROM {t}" for t in tables),
                      *(f"ALTER SEQUENCE {q} RESTART" for q in sequences), "SET session_replication_role = DEFAULT"])


def database_url_for(tmp: Path, name: str = "wangge.db") -> str:
    """The URL of a fresh, migrated database kept to the end of the session (module-scoped apps)."""
    if not on_postgres():
        return f"sqlite:///{tmp / name}"
    clone = f"{_PREFIX}_{next(_counter)}"
    _admin(f'CREATE DATABASE "{clone}" TEMPLATE "{_template(True)}"')
    _kept.append(clone)
    return _url_of(clone)


def drop_leftovers() -> None:
    """Drop this process's session-long databases and templates (the end of a test session)."""
    if not on_postgres():
        return
    for name in [*_kept, *_templates.values()]:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _templates.clear()
    _kept.clear()
    _work.update(busy=False, sql="")
