"""Engine and sessions per app, SQLite tuning, and Alembic migrations run on startup.

``init_app(app)`` (called by :func:`api.create_app`) builds the engine from
``app.config["DATABASE_URL"]`` and upgrades the schema to the newest migration, so a
fresh instance folder just works.

Transactions (issue 16 §1): an app context (a request, a job, a CLI command) has **one**
session, so a request never holds two connections. :func:`get_session` reads in it;
:func:`session_scope` runs one transaction in it, first ending whatever read the request
had open. A write scope (the default) begins as a write: ``BEGIN IMMEDIATE`` on SQLite,
so two writers queue on the lock (``db_busy_timeout_s``) instead of one of them failing
with "database is locked" when its read snapshot is upgraded; ``write=False`` for reads.
A process's SQLite writers first queue first-come first-served (:class:`WriterQueue`)
holding no pooled connection; SQLite's busy timeout then only arbitrates between processes.
SQLite runs in WAL mode, where readers never block the writer. On PostgreSQL a write
scope is a plain ``BEGIN``: row locks and the optimistic version counters do the work.

Durability on SQLite: WAL with ``synchronous=NORMAL``. A commit appends to the WAL file
without an fsync: it survives a crash or ``kill -9`` of any process (the data is in the
operating system's cache, written out by it), not a power cut or kernel crash, which can
lose the last commits (never corrupt the database). Checkpoints (WAL pages copied into the
database file) do fsync; SQLite runs them in the connection that happens to commit past
1,000 WAL pages, so that request (and every writer queued behind it) waited for two
fsyncs. :class:`WalCheckpointer` runs them in a background thread instead
(``db_checkpoint_interval_s``; see docs/DEPLOY.md).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from geo.settings import DEFAULTS

__all__ = [
    "Database",
    "DatabaseBusy",
    "PostGISMissing",
    "ensure_postgis",
    "WriterQueue",
    "WalCheckpointer",
    "init_app",
    "attach",
    "make_engine",
    "upgrade",
    "current_revision",
    "head_revision",
    "alembic_config",
    "include_object_for",
    "get_db",
    "WRITE_OPTION",
    "session_scope",
    "get_session",
    "dispose",
    "lock_for_transaction",
]

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_EXTENSION = "wangge.db"
#: Connection execution option marking a transaction that will write (BEGIN IMMEDIATE on SQLite).
WRITE_OPTION = "wangge_write"


@dataclass(frozen=True)
class Database:
    """The engine of one app, its session factory and (SQLite) the in-process writer queue."""

    engine: Engine
    sessionmaker: sessionmaker[Session]
    #: SQLite allows one writer: this process's writers queue here, holding no connection
    #: while they wait (SQLite's own busy handler polls, unfairly, with a connection held).
    write_lock: WriterQueue | None = None
    busy_timeout_s: float = 30.0
    #: SQLite file databases with ``db_checkpoint_interval_s`` > 0: the WAL checkpoint thread.
    checkpointer: WalCheckpointer | None = None


class WriterQueue:
    """A first-come, first-served lock: under load every writer waits its turn, none starves.

    ``threading.Lock`` lets a newcomer barge in ahead of threads already waiting, so under
    a burst of writes some waited many times longer than others (measured with
    ``bench/load.py``). Here the lock is handed to the oldest waiter on release.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: deque[threading.Event] = deque()

    def acquire(self, timeout: float) -> bool:
        """Wait up to *timeout* seconds for the lock; False when the time ran out."""
        with self._mutex:
            if not self._held and not self._waiters:
                self._held = True
                return True
            turn = threading.Event()
            self._waiters.append(turn)
        if turn.wait(timeout):
            return True
        with self._mutex:
            if turn.is_set():  # handed over just as the time ran out: it is ours
                return True
            self._waiters.remove(turn)
            return False

    def release(self) -> None:
        """Hand the lock to the oldest waiter, or free it."""
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().set()
            else:
                self._held = False


class WalCheckpointer:
    """Checkpoints a SQLite database's WAL from a background thread, so no request pays the fsyncs.

    Every *interval_s* a PASSIVE checkpoint copies committed WAL pages into the database file
    and syncs it while writers go on. A WAL is only restarted from its beginning when every page
    in it is copied as a writer starts, which steady writes never allow, so every *restart_s*
    a RESTART checkpoint (after a PASSIVE one did most of the copying) holds writers off for
    the rest, waiting at most *busy_ms* for readers; it bounds the WAL file's size. The app's
    connections turn SQLite's automatic checkpoints off (``wal_autocheckpoint=0``).
    """

    def __init__(self, path: str, *, interval_s: float, restart_s: float, busy_ms: int = 20) -> None:
        self.path, self.interval_s, self.restart_s, self.busy_ms = path, interval_s, restart_s, busy_ms
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wangge-wal-checkpoint", daemon=True)

    def start(self) -> WalCheckpointer:
        """Start the thread (once)."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread (a checkpoint under way finishes first)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def checkpoint(self, mode: str = "PASSIVE") -> tuple[int, int, int]:
        """One checkpoint: (busy, WAL pages, pages checkpointed), as ``PRAGMA wal_checkpoint`` answers."""
        con = sqlite3.connect(self.path, isolation_level=None, timeout=self.busy_ms / 1000)
        try:
            row = con.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        finally:
            con.close()
        return int(row[0]), int(row[1]), int(row[2])

    def _run(self) -> None:
        restarted = time.monotonic()
        while not self._stop.wait(self.interval_s):
            try:
                self.checkpoint("PASSIVE")
                if self.restart_s > 0 and time.monotonic() - restarted >= self.restart_s:
                    restarted = time.monotonic()
                    self.checkpoint("RESTART")
            except sqlite3.Error as exc:  # e.g. the file was removed under us: try again next time
                log.warning("WAL checkpoint of %s failed: %s", self.path, exc)


class DatabaseBusy(RuntimeError):
    """A write waited longer than ``db_busy_timeout_s`` for the database (answered with 503)."""


def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any, *, busy_ms: int,
                       background_checkpoints: bool = False) -> None:
    # Driver autocommit so SQLAlchemy emits BEGIN itself (see _sqlite_on_begin): this gives
    # SQLite real SAVEPOINTs and transactional DDL, which pysqlite's own handling breaks.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Durable against a crash of any process (kill -9), not a power cut: see the module doc.
    cursor.execute("PRAGMA synchronous=NORMAL")
    if background_checkpoints:  # a WalCheckpointer does them, off the request path
        cursor.execute("PRAGMA wal_autocheckpoint=0")
    # Sorts (index rebuilds after a bulk import, ORDER BY) in memory, not temp files.
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def _sqlite_on_begin(connection: Any) -> None:
    # A write transaction takes the write lock at BEGIN (waiting up to busy_timeout): a
    # deferred one would start as a read and fail at once with SQLITE_BUSY when another
    # writer committed in between, a lock upgrade the busy handler cannot wait out.
    write = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _pool_options(url: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Pool size, overflow and checkout timeout (not for in-memory SQLite, which has one connection)."""
    if url.startswith("sqlite") and (":memory:" in url or url.rstrip("/") == "sqlite:"):
        return {}
    return {"pool_size": int(settings["db_pool_size"]), "max_overflow": int(settings["db_max_overflow"]),
            "pool_timeout": float(settings["db_pool_timeout_s"]), "pool_pre_ping": not url.startswith("sqlite")}


def make_engine(url: str, *, settings: dict[str, Any] | None = None, background_checkpoints: bool = False,
                **kwargs: Any) -> Engine:
    """Create an engine for *url*: a sized pool; on SQLite WAL, busy timeout, ``foreign_keys=ON``.

    Parameters
    ----------
    url
        SQLAlchemy database URL.
    settings
        The Wangge settings (``db_pool_size``, ``db_max_overflow``, ``db_pool_timeout_s``,
        ``db_busy_timeout_s``); defaults from :data:`geo.settings.DEFAULTS`.
    background_checkpoints
        SQLite: turn automatic WAL checkpoints off (a :class:`WalCheckpointer` runs them).
    **kwargs
        Passed to :func:`sqlalchemy.create_engine` (they win over the settings).
    """
    settings = {**DEFAULTS, **(settings or {})}
    busy_s = float(settings["db_busy_timeout_s"])
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {}).setdefault("timeout", busy_s)
    for key, value in _pool_options(url, settings).items():
        kwargs.setdefault(key, value)
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", partial(_sqlite_on_connect, busy_ms=int(busy_s * 1000),
                                                background_checkpoints=background_checkpoints))
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


def include_object_for(dialect: str) -> Callable[..., bool]:
    """Alembic ``include_object`` hook for *dialect*: skips schema objects made only for another one.

    The PostGIS GiST indexes are declared with ``Index(...).ddl_if(dialect="postgresql")``;
    Alembic's autogenerate ignores ``ddl_if``, so without this it would ask SQLite for them.
    PostGIS's own ``spatial_ref_sys`` table is not ours either.
    """

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table" and reflected and compare_to is None and name == "spatial_ref_sys":
            return False
        only = getattr(obj, "_ddl_if", None)
        wanted = getattr(only, "dialect", None)
        if wanted is None:
            return True
        return dialect == wanted if isinstance(wanted, str) else dialect in wanted

    return include


def current_revision(engine: Engine) -> str | None:
    """The revision the database at *engine* is at (``None`` for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision among our migrations."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Upgrade the schema at *engine* to *revision*; returns the revision reached.

    On PostgreSQL the PostGIS extension is created first when missing (it needs the
    database owner or a superuser; otherwise the error says what to run).
    """
    before = current_revision(engine)
    if revision == "head" and before == head_revision():
        return before
    if engine.dialect.name == "postgresql":
        ensure_postgis(engine)
    command.upgrade(alembic_config(engine), revision)
    after = current_revision(engine)
    log.info("database upgraded from %s to %s", before or "empty", after)
    return after


class PostGISMissing(RuntimeError):
    """The PostgreSQL database has no PostGIS extension and we may not create it."""


def ensure_postgis(engine: Engine) -> None:
    """Create the PostGIS extension in the database at *engine* when it is missing."""
    from sqlalchemy.exc import DBAPIError

    with engine.connect() as conn:
        if conn.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").first():
            return
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
    except DBAPIError as exc:
        raise PostGISMissing(
            f"database {engine.url.database!r} has no PostGIS extension and it could not be created "
            f"({str(exc.orig).strip()}); install the package postgresql-15-postgis-3 on the server and "
            f"run as a superuser: psql -d {engine.url.database} -c 'CREATE EXTENSION postgis'"
        ) from exc
    log.info("created the PostGIS extension in %s", engine.url.database)


def init_app(app: Flask) -> None:
    """Create the engine of *app*, upgrade its schema and register session teardown."""
    # Alembic logs its context at INFO on every revision check; our own line says what changed.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    url = app.config["DATABASE_URL"]
    if url.startswith("sqlite:///") and ":memory:" not in url:
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    settings = {**DEFAULTS, **(app.config.get("WANGGE") or {})}
    interval = float(settings["db_checkpoint_interval_s"])
    file_sqlite = url.startswith("sqlite:///") and ":memory:" not in url
    engine = make_engine(url, settings=settings, background_checkpoints=file_sqlite and interval > 0)
    checkpointer = None
    if file_sqlite and interval > 0:
        checkpointer = WalCheckpointer(url.removeprefix("sqlite:///"), interval_s=interval,
                                       restart_s=float(settings["db_wal_restart_s"]))
    attach(app, engine, busy_timeout_s=float(settings["db_busy_timeout_s"]), checkpointer=checkpointer)
    upgrade(engine)
    if checkpointer is not None:
        checkpointer.start()


def attach(app: Flask, engine: Engine, *, busy_timeout_s: float = DEFAULTS["db_busy_timeout_s"],
           checkpointer: WalCheckpointer | None = None) -> Database:
    """Make *engine* the database of *app* (sessions per app context, writer queue on SQLite); no migration."""
    lock = WriterQueue() if engine.dialect.name == "sqlite" else None
    database = Database(engine, sessionmaker(engine, expire_on_commit=False), lock, busy_timeout_s, checkpointer)
    app.extensions[_EXTENSION] = database
    app.teardown_appcontext(_close_session)
    return database


def get_db(app: Flask | None = None) -> Database:
    """The :class:`Database` of *app* (default: the current app)."""
    app = app or current_app
    try:
        return app.extensions[_EXTENSION]
    except KeyError:
        raise RuntimeError("api.db.init_app(app) was not called; build the app with create_app()") from None


@contextmanager
def session_scope(*, write: bool = True) -> Iterator[Session]:
    """One transaction on the app context's session: commit on success, roll back on any exception.

    Parameters
    ----------
    write
        True (default): the transaction begins as a write (``BEGIN IMMEDIATE`` on SQLite,
        waiting up to ``db_busy_timeout_s`` for another writer). False: a read; SQLite
        readers never wait in WAL mode, but a read scope must not write.

    Notes
    -----
    The read the context had open (e.g. the user loaded for ``login_required``) is
    committed first, so the scope starts a fresh transaction on the same connection
    slot. A scope inside a scope joins the outer transaction.
    """
    session = get_session()
    if g.get("wangge_scope"):
        yield session
        return
    if session.in_transaction():
        session.commit()  # also hands the connection back while this writer queues
    g.wangge_scope = True
    queue = get_db().write_lock if write else None
    queued = False
    try:
        queued = _enter(queue)
        session.connection(execution_options={WRITE_OPTION: write})
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        g.wangge_scope = False
        if queued and queue is not None:
            queue.release()


def _enter(queue: WriterQueue | None) -> bool:
    """Wait for this process's turn to write (SQLite): True once queued, :class:`DatabaseBusy` on timeout."""
    if queue is None:
        return False
    timeout = get_db().busy_timeout_s
    if not queue.acquire(timeout=timeout):
        raise DatabaseBusy(f"another write held the database for more than {timeout:g} s (db_busy_timeout_s)")
    return True


def get_session() -> Session:
    """The one session of the current app context (request), closed (uncommitted work discarded) at teardown."""
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
    from api.plans.snapshot import stop_saver

    stop_consumer(app)
    stop_saver(app)
    database = get_db(app)
    if database.checkpointer is not None:
        database.checkpointer.stop()
    database.engine.dispose()


def lock_for_transaction(session: Session, key: str) -> None:
    """Hold the lock named *key* until *session*'s transaction ends (check-then-write made atomic).

    SQLite runs one write transaction at a time (``BEGIN IMMEDIATE``), so nothing to do there;
    on PostgreSQL a transaction-level advisory lock makes a second writer with the same *key*
    wait until the first has committed, then see its rows.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})
