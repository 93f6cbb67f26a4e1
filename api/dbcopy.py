"""Whole-database fingerprints and lossless copies between backends (SQLite ⇄ PostgreSQL/PostGIS).

A *fingerprint* of a table is its row count, a checksum over every row and a checksum over
its geometries. Values are normalised before hashing (times as UTC ISO text, JSON with
sorted keys, floats by ``repr``, geometry re-encoded from WKB by shapely), and row hashes
are summed, so the order rows come back in does not matter: two databases with equal
fingerprints hold the same rows whatever their backend. :func:`copy_database` copies
every table of the models in foreign-key order (``COPY`` into PostgreSQL), restarts the
target's id sequences and compares the fingerprints of both sides.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import shapely
from sqlalchemy import (
    JSON,
    Connection,
    Engine,
    Integer,
    Table,
    delete,
    func,
    insert,
    select,
    type_coerce,
)

from api import db
from api.bulk import insert_columns
from api.models import WKB, Base, Geometry

__all__ = ["TableFingerprint", "CopyReport", "TargetNotEmpty", "tables", "fingerprint", "fingerprints",
           "non_empty_tables", "copy_database", "restart_sequences", "format_fingerprints"]

log = logging.getLogger(__name__)

#: Rows read from the source per batch (bounds memory on million-row tables).
READ_BATCH = 50_000
_MOD = 1 << 128
_MODEL_MODULES = ("api.incidents.models", "api.register.models", "api.patrol.models", "api.boards.models",
                  "api.party.models")


class TargetNotEmpty(RuntimeError):
    """The target database already holds rows (copy or restore refused without ``--force``)."""


@dataclass(frozen=True)
class TableFingerprint:
    """Row count and order-independent checksums of one table."""

    table: str
    rows: int
    checksum: str
    geometry_checksum: str | None


@dataclass(frozen=True)
class CopyReport:
    """What :func:`copy_database` copied, and whether both sides' fingerprints agree."""

    source: list[TableFingerprint]
    target: list[TableFingerprint]

    @property
    def equal(self) -> bool:
        return self.source == self.target

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.target)


def tables() -> list[Table]:
    """Every table of the models, parents before children (the copy order)."""
    import importlib

    for module in _MODEL_MODULES:  # every feature's tables on Base
        importlib.import_module(module)
    return list(Base.metadata.sorted_tables)


def _geometry_columns(table: Table) -> list[str]:
    return [c.name for c in table.columns if isinstance(c.type, Geometry)]


def _select(table: Table) -> Any:
    geometry = set(_geometry_columns(table))
    return select(*(type_coerce(c, WKB).label(c.name) if c.name in geometry else c for c in table.columns))


def _text(value: Any) -> str:
    if value is None:
        return "\x00"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def _rows(conn: Connection, table: Table) -> Iterator[list[Any]]:
    result = conn.execution_options(stream_results=True, yield_per=READ_BATCH).execute(_select(table))
    yield from result.partitions(READ_BATCH)  # type: ignore[misc]


def _normal_wkb(values: list[Any]) -> list[bytes | None]:
    geoms = shapely.from_wkb([None if v is None else bytes(v) for v in values])
    return [None if g is None else shapely.to_wkb(g) for g in geoms]


def fingerprint(conn: Connection, table: Table) -> TableFingerprint:
    """Count and checksums of *table* as *conn* sees it (one snapshot when *conn* is in a transaction)."""
    geometry = [i for i, c in enumerate(table.columns) if isinstance(c.type, Geometry)]
    rows = 0
    total = 0
    geo_total = 0
    for batch in _rows(conn, table):
        columns = [list(c) for c in zip(*batch, strict=True)]
        for i in geometry:
            columns[i] = _normal_wkb(columns[i])
        for row in zip(*columns, strict=True):
            text = "\x1f".join(_text(v) for v in row).encode()
            total = (total + int.from_bytes(hashlib.blake2b(text, digest_size=16).digest())) % _MOD
            for i in geometry:
                geo = row[i] or b""
                geo_total = (geo_total + int.from_bytes(hashlib.blake2b(geo, digest_size=16).digest())) % _MOD
        rows += len(batch)
    return TableFingerprint(table.name, rows, f"{total:032x}", f"{geo_total:032x}" if geometry else None)


def fingerprints(conn: Connection) -> list[TableFingerprint]:
    """Fingerprints of every table of the models, in copy order."""
    return [fingerprint(conn, t) for t in tables()]


def non_empty_tables(conn: Connection) -> list[str]:
    """Names of the model tables holding at least one row."""
    return [t.name for t in tables() if conn.execute(select(func.count()).select_from(t)).scalar_one()]


def _copy_values(table: Table, names: list[str], columns: list[list[Any]]) -> dict[str, list[Any]]:
    """Driver-ready values for :func:`api.bulk.insert_columns` on PostgreSQL (COPY)."""
    out: dict[str, list[Any]] = {}
    for name, values in zip(names, columns, strict=True):
        kind = table.c[name].type
        if isinstance(kind, JSON):
            values = [None if v is None else json.dumps(v, ensure_ascii=False) for v in values]
        elif any(isinstance(v, datetime) for v in values):
            values = [v.replace(tzinfo=None) if isinstance(v, datetime) and v.tzinfo else v for v in values]
        elif isinstance(kind, Geometry):
            values = [None if v is None else bytes(v) for v in values]
        out[name] = values
    return out


def _copy_table(source: Connection, target: Connection, table: Table,
                progress: Callable[[str, int], None] | None) -> None:
    names = [c.name for c in table.columns]
    postgres = target.dialect.name == "postgresql"
    for batch in _rows(source, table):
        columns = [list(c) for c in zip(*batch, strict=True)]
        if postgres:
            insert_columns(target, table, _copy_values(table, names, columns))
        else:
            target.execute(insert(table), [dict(zip(names, r, strict=True)) for r in batch])
        if progress is not None:
            progress(table.name, len(batch))


def restart_sequences(conn: Connection) -> None:
    """PostgreSQL: move every integer id sequence past the largest id (rows were copied with their ids)."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables():
        for column in table.primary_key.columns:
            if not isinstance(column.type, Integer):
                continue
            seq = conn.exec_driver_sql("SELECT pg_get_serial_sequence(%s, %s)", (table.name, column.name)).scalar()
            if seq:
                conn.exec_driver_sql(f'SELECT setval(%s, COALESCE((SELECT MAX("{column.name}") FROM "{table.name}"), 0) + 1, false)',
                                     (seq,))


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection reading one consistent snapshot (SQLite WAL read transaction, PostgreSQL REPEATABLE READ)."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def copy_database(source: Engine, target: Engine, *, force: bool = False,
                  progress: Callable[[str, int], None] | None = None) -> CopyReport:
    """Copy every row of *source* into *target* (schema upgraded to head first), in one target transaction.

    Parameters
    ----------
    source, target
        Engines of both databases (any backend).
    force
        Replace the rows a non-empty target holds; without it a non-empty target raises
        :class:`TargetNotEmpty` and nothing is written.
    progress
        Called with a table name and the rows just copied.

    Returns
    -------
    CopyReport
        Fingerprints of both sides; ``equal`` is True for a lossless copy.
    """
    db.upgrade(source)
    db.upgrade(target)
    with _snapshot(source) as src, target.begin() as dst:
        full = non_empty_tables(dst)
        if full and not force:
            raise TargetNotEmpty(f"the target database already holds rows in {', '.join(full)}; "
                                 "give --force to replace them, or copy into an empty database")
        for table in reversed(tables()):
            dst.execute(delete(table))
        for table in tables():
            _copy_table(src, dst, table, progress)
        restart_sequences(dst)
        before = fingerprints(src)
        after = fingerprints(dst)
    log.info("copied %d rows in %d tables", sum(f.rows for f in after), len(after))
    return CopyReport(before, after)


def format_fingerprints(source: list[TableFingerprint], target: list[TableFingerprint]) -> list[str]:
    """Lines of a side-by-side table: rows and checksums per table, ``OK`` or ``DIFFERENT``."""
    lines = [f"{'table':<28} {'rows':>10} {'rows (target)':>14}  {'geometry checksum':<32}  check"]
    for a, b in zip(source, target, strict=True):
        status = "OK" if a == b else "DIFFERENT"
        lines.append(f"{a.table:<28} {a.rows:>10,} {b.rows:>14,}  {(b.geometry_checksum or '-'):<32}  {status}")
    return lines
