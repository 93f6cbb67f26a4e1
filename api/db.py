"""Engine and sessions per app, SQLite tuning, and Alembic migrations run on startup.

``init_app(app)`` (called by :func:`api.create_app`) builds the engine from
``app.config["DATABASE_URL"]`` and upgrades the schema to the newest migration, so a
fresh instance folder just works. Code inside an app context uses
:func:`session_scope` for one transaction, or :func:`get_session` for a session that
lives as long as the app context (request) and is closed at teardown.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

__all__ = [
    "Database",
    "init_app",
    "make_engine",
    "upgrade",
    "current_revision",
    "head_revision",
    "alembic_config",
    "get_db",
    "session_scope",
    "get_session",
    "dispose",
]

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_EXTENSION = "wangge.db"


@dataclass(frozen=True)
class Database:
    """The engine of one app and its session factory."""

    engine: Engine
    sessionmaker: sessionmaker[Session]


def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # Driver autocommit so SQLAlchemy emits BEGIN itself (see _sqlite_on_begin): this gives
    # SQLite real SAVEPOINTs and transactional DDL, which pysqlite's own handling breaks.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Sorts (index rebuilds after a bulk import, ORDER BY) in memory, not temp files.
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def _sqlite_on_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for *url*; on SQLite: WAL, ``foreign_keys=ON``, proper transactions."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {}).setdefault("timeout", 30)
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def alembic_config(engine: Engine | None = None) -> Config:
    """Alembic configuration for our migrations, bound to *engine* when given (no ini file)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
        cfg.attributes["engine"] = engine
    return cfg


def current_revision(engine: Engine) -> str | None:
    """The revision the database at *engine* is at (``None`` for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision among our migrations."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Upgrade the schema at *engine* to *revision*; returns the revision reached."""
    before = current_revision(engine)
    if revision == "head" and before == head_revision():
        return before
    command.upgrade(alembic_config(engine), revision)
    after = current_revision(engine)
    log.info("database upgraded from %s to %s", before or "empty", after)
    return after


def init_app(app: Flask) -> None:
    """Create the engine of *app*, upgrade its schema and register session teardown."""
    # Alembic logs its context at INFO on every revision check; our own line says what changed.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    url = app.config["DATABASE_URL"]
    if url.startswith("sqlite:///") and ":memory:" not in url:
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    app.extensions[_EXTENSION] = Database(engine, sessionmaker(engine, expire_on_commit=False))
    upgrade(engine)
    app.teardown_appcontext(_close_session)


def get_db(app: Flask | None = None) -> Database:
    """The :class:`Database` of *app* (default: the current app)."""
    app = app or current_app
    try:
        return app.extensions[_EXTENSION]
    except KeyError:
        raise RuntimeError("api.db.init_app(app) was not called; build the app with create_app()") from None


@contextmanager
def session_scope() -> Iterator[Session]:
    """One transaction in the current app: commit on success, roll back on any exception."""
    session = get_db().sessionmaker()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def get_session() -> Session:
    """A session bound to the current app context, closed (uncommitted work discarded) at teardown."""
    if "wangge_session" not in g:
        g.wangge_session = get_db().sessionmaker()
    return g.wangge_session


def _close_session(exc: BaseException | None) -> None:
    session = g.pop("wangge_session", None)
    if session is not None:
        session.close()


def dispose(app: Flask) -> None:
    """Close every pooled connection of *app* (tests call it at teardown); stop its job threads."""
    from api.jobs.queue import stop_consumer

    stop_consumer(app)
    get_db(app).engine.dispose()
