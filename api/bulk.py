"""Bulk inserts of column-wise values: ``COPY`` on PostgreSQL, driver ``executemany`` on SQLite.

Imports, demos and benches hand over driver-ready values one list per column (str, int,
float, bool, bytes, naive UTC datetime, None). On PostgreSQL they stream through
``COPY ... FROM STDIN`` in the caller's transaction (a rollback leaves nothing); geometry
columns given as WKB are sent as hex EWKB with the storage SRID, the text form PostGIS
reads. Elsewhere one ``INSERT`` is executed many times with plain tuples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Connection, Integer, Table

from api.models import SRID, Geometry

__all__ = ["CHUNK", "insert_columns", "copy_columns", "ewkb_hex"]

#: Rows per ``executemany`` call or progress report: bounds the memory of one batch of tuples.
CHUNK = 50_000

Progress = Callable[[int], None]


def ewkb_hex(wkb: Sequence[bytes | None]) -> list[str | None]:
    """Hex EWKB with SRID 4326 of WKB values (PostGIS's text input for a ``geometry(…, 4326)`` column)."""
    geoms = shapely.from_wkb(np.asarray(wkb, dtype=object))
    return shapely.to_wkb(shapely.set_srid(geoms, SRID), hex=True, include_srid=True).tolist()


def insert_columns(conn: Connection, table: Table | str, columns: dict[str, list[Any]], *,
                   chunk: int = CHUNK, progress: Progress | None = None) -> int:
    """Insert rows given column-wise into *table* within *conn*'s transaction; the row count.

    Parameters
    ----------
    conn
        Connection whose transaction the rows join (COPY or INSERT; nothing is committed here).
    table
        The table, or its name (then no column is treated as geometry).
    columns
        Column name to its values, all lists of the same length, driver-ready.
    chunk
        Rows per ``executemany`` call, or per progress report during a COPY.
    progress
        Called with the number of rows just written, once per *chunk*.
    """
    n = len(next(iter(columns.values()))) if columns else 0
    if n == 0:
        return 0
    if conn.dialect.name == "postgresql":
        copy_columns(conn, table, columns, chunk=chunk, progress=progress)
        return n
    name = table if isinstance(table, str) else table.name
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    literals = _constant_literals(columns) if conn.dialect.name == "sqlite" else {}
    sql = (f"INSERT INTO {name} ({', '.join(columns)}) "
           f"VALUES ({', '.join(literals.get(c, mark) for c in columns)})")
    values = [v for c, v in columns.items() if c not in literals]
    for start in range(0, n, chunk):
        conn.exec_driver_sql(sql, list(zip(*(c[start:start + chunk] for c in values), strict=True)))
        if progress is not None:
            progress(min(chunk, n - start))
    return n


def _sql_literal(value: Any) -> str | None:
    """*value* as an SQLite literal, or ``None`` when it is better bound (bytes, NaN, text with NUL)."""
    kind = type(value)
    if value is None:
        return "NULL"
    if kind is bool:
        return "1" if value else "0"
    if kind is int:
        return str(value)
    if kind is float:
        return repr(value) if math.isfinite(value) else None
    if kind is str and "\x00" not in value:
        return "'" + value.replace("'", "''") + "'"  # the only character an SQLite string literal escapes
    return None


def _constant_literals(columns: dict[str, list[Any]]) -> dict[str, str]:
    """Columns holding one value in every row, as SQL literals: written into the statement once
    instead of bound a million times (binding is most of ``executemany``'s cost)."""
    out: dict[str, str] = {}
    for name, values in columns.items():
        first = values[0]
        literal = _sql_literal(first)
        # count() compares in C (identity first): a million equal values in a few milliseconds. Equal
        # numbers of other types (1, 1.0, True) would store differently in a text column: types checked too.
        if literal is not None and values.count(first) == len(values) and (
                type(first) in (str, type(None)) or set(map(type, values)) == {type(first)}):
            out[name] = literal
    return out


def copy_columns(conn: Connection, table: Table | str, columns: dict[str, list[Any]], *,
                 chunk: int = CHUNK, progress: Progress | None = None) -> None:
    """``COPY`` column-wise values into *table* on PostgreSQL (psycopg 3), in the open transaction."""
    name = table if isinstance(table, str) else table.name
    geometry = set() if isinstance(table, str) else {c.name for c in table.columns if isinstance(c.type, Geometry)}
    integer = set() if isinstance(table, str) else {c.name for c in table.columns if isinstance(c.type, Integer)}
    values = [ewkb_hex(v) if k in geometry and _is_wkb(v) else _integers(v) if k in integer else v
              for k, v in columns.items()]
    n = len(values[0])
    quoted = ", ".join(f'"{c}"' for c in columns)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor, cursor.copy(f'COPY "{name}" ({quoted}) FROM STDIN') as copy:
        for start in range(0, n, chunk):
            for row in zip(*(c[start:start + chunk] for c in values), strict=True):
                copy.write_row(row)
            if progress is not None:
                progress(min(chunk, n - start))


def _integers(values: list[Any]) -> list[Any]:
    # COPY reads "3.0" as no integer; pandas hands integer columns with gaps over as floats.
    return [int(v) if isinstance(v, float) and v == v else None if isinstance(v, float) else v for v in values]


def _is_wkb(values: list[Any]) -> bool:
    first = next((v for v in values if v is not None), None)
    return isinstance(first, bytes | bytearray | memoryview)
