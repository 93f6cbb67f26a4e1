"""Consistent backups of a running workspace and verified restores, on SQLite and PostgreSQL.

``backup`` writes FILE and FILE.manifest.json (backend, schema revision, time, and the
fingerprint of every table: rows and checksums, :mod:`api.dbcopy`), both taken from one
snapshot while the app keeps serving:

- SQLite: the online backup API (``sqlite3.Connection.backup``) copies the database page by
  page into FILE, a SQLite file; the fingerprints are then read from that copy.
- PostgreSQL: ``pg_dump -Fc --snapshot`` in a REPEATABLE READ transaction that exported the
  snapshot and reads the fingerprints, so dump and manifest see the same rows. The pg_dump
  binary is the one matching the server's major version (older clients are refused).

``restore`` refuses a database that holds rows unless forced, loads FILE (the backup API
into the database file; ``pg_restore --clean --single-transaction`` on PostgreSQL, so a
failed restore leaves the database as it was), upgrades the schema to the newest
revision, and compares every table's fingerprint with the manifest.
"""

from __future__ import annotations

import glob
import json
import logging
import re
import shutil
import sqlite3
import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from api import db
from api.dbcopy import TableFingerprint, TargetNotEmpty, fingerprints, non_empty_tables

__all__ = ["BackupError", "BackupResult", "RestoreResult", "manifest_path", "backup", "restore",
           "pg_tool"]

log = logging.getLogger(__name__)


class BackupError(RuntimeError):
    """A backup or restore could not run (missing tool, wrong file); the message says what to do."""


@dataclass(frozen=True)
class BackupResult:
    """Where the backup went and what it holds."""

    path: Path
    manifest: Path
    backend: str
    tables: list[TableFingerprint]


@dataclass(frozen=True)
class RestoreResult:
    """Fingerprints promised by the manifest and those found after the restore."""

    expected: list[TableFingerprint]
    found: list[TableFingerprint]

    @property
    def equal(self) -> bool:
        return self.expected == self.found


def manifest_path(path: Path) -> Path:
    """The manifest beside backup *path*."""
    return path.with_name(path.name + ".manifest.json")


def backup(engine: Engine, path: Path) -> BackupResult:
    """Write a consistent snapshot of the database at *engine* to *path* and its manifest."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    backend = engine.dialect.name
    if backend == "sqlite":
        tables = _sqlite_backup(engine, path)
    elif backend == "postgresql":
        tables = _pg_backup(engine, path)
    else:
        raise BackupError(f"backups support SQLite and PostgreSQL; the database is {backend}")
    manifest = manifest_path(path)
    manifest.write_text(json.dumps({
        "backend": backend, "revision": db.current_revision(engine), "created_at": datetime.now(UTC).isoformat(),
        "file": path.name, "tables": [asdict(t) for t in tables],
    }, ensure_ascii=False, indent=1), encoding="utf-8")
    log.info("backup of %d rows in %d tables to %s", sum(t.rows for t in tables), len(tables), path)
    return BackupResult(path, manifest, backend, tables)


def _sqlite_backup(engine: Engine, path: Path) -> list[TableFingerprint]:
    if path.exists():
        path.unlink()
    raw = engine.raw_connection()
    try:
        with sqlite3.connect(path) as target:
            raw.driver_connection.backup(target)  # type: ignore[union-attr]
        target.close()
    finally:
        raw.close()
    copy = db.make_engine(f"sqlite:///{path}")
    try:
        with copy.connect() as conn:
            return fingerprints(conn)
    finally:
        copy.dispose()


def _libpq_url(engine: Engine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def _server_major(conn: Connection) -> int:
    return int(conn.exec_driver_sql("SHOW server_version_num").scalar_one()) // 10000


def pg_tool(name: str, server_major: int) -> str:
    """Path of ``pg_dump``/``pg_restore`` for a server of *server_major*: the same major, else a newer one."""
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[-3]))
    found = [p for p in candidates if int(Path(p).parts[-3]) >= server_major]
    on_path = shutil.which(name)
    for tool in [*found, *([on_path] if on_path else [])]:
        version = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False).stdout
        match = re.search(r"(\d+)(?:\.\d+)?", version)
        if match and int(match.group(1)) >= server_major:
            return tool
    raise BackupError(f"no {name} of version {server_major} or newer was found for this PostgreSQL "
                      f"{server_major} server; install it: apt-get install postgresql-client-{server_major}")


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{Path(cmd[0]).name} failed (exit {done.returncode}): {done.stderr.strip()[-800:]}")


def _pg_backup(engine: Engine, path: Path) -> list[TableFingerprint]:
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            tool = pg_tool("pg_dump", _server_major(conn))
            snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
            _run([tool, "--format=custom", "--no-owner", f"--snapshot={snapshot}", "--file", str(path),
                  _libpq_url(engine)])
            return fingerprints(conn)


def _read_manifest(path: Path) -> dict[str, Any]:
    manifest = manifest_path(path)
    if not path.is_file():
        raise BackupError(f"backup file {path} not found")
    if not manifest.is_file():
        raise BackupError(f"{manifest.name} is missing beside {path.name}: a restore is verified against it; "
                          "copy it along with the backup")
    return json.loads(manifest.read_text(encoding="utf-8"))


def restore(engine: Engine, path: Path, *, force: bool = False) -> RestoreResult:
    """Load backup *path* into the database at *engine* and verify it against the manifest.

    Raises
    ------
    TargetNotEmpty
        The database holds rows and *force* is False (nothing is changed).
    BackupError
        The file, its manifest or a tool is missing, or the backend differs from the backup's.
    """
    path = Path(path)
    manifest = _read_manifest(path)
    backend = engine.dialect.name
    if manifest["backend"] != backend:
        raise BackupError(f"{path.name} is a {manifest['backend']} backup and the database is {backend}; "
                          f"restore it into a {manifest['backend']} database, then use `wangge db copy --to`")
    db.upgrade(engine)
    with engine.connect() as conn:
        full = non_empty_tables(conn)
    if full and not force:
        raise TargetNotEmpty(f"the database already holds rows in {', '.join(full)}; give --force to replace "
                             "them with the backup")
    if backend == "sqlite":
        _sqlite_restore(engine, path)
    else:
        _pg_restore(engine, path)
    db.upgrade(engine)
    expected = [TableFingerprint(**t) for t in manifest["tables"]]
    with engine.connect() as conn:
        found = fingerprints(conn)
    found = [f for f in found if f.table in {t.table for t in expected}]
    return RestoreResult(expected, found)


def _sqlite_restore(engine: Engine, path: Path) -> None:
    engine.dispose()  # pooled connections would keep the old pages cached
    raw = engine.raw_connection()
    try:
        with sqlite3.connect(path) as source:
            source.backup(raw.driver_connection)  # type: ignore[arg-type]
        source.close()
    finally:
        raw.close()
    engine.dispose()


def _pg_restore(engine: Engine, path: Path) -> None:
    with engine.connect() as conn:
        tool = pg_tool("pg_restore", _server_major(conn))
    engine.dispose()
    _run([tool, "--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error",
          "--dbname", _libpq_url(engine), str(path)])
