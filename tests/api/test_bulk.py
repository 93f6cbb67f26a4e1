"""Column-wise bulk inserts (:mod:`api.bulk`): what is read back is what was given, on both backends.

On SQLite a column holding one value in every row is written into the INSERT as a literal
instead of being bound row by row; these rows check that the literal path stores exactly what
binding would (quotes, NULL, booleans, numbers of mixed types in a text column).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import text

from api.bulk import insert_columns
from api.db import session_scope

ROWS = 5


@pytest.fixture
def table(app: Flask) -> Iterator[Flask]:
    # The PostgreSQL pass reuses one database: the probe table goes away after each test.
    with app.app_context(), session_scope() as s:
        s.execute(text("DROP TABLE IF EXISTS bulk_probe"))
        s.execute(text("CREATE TABLE bulk_probe (id INTEGER PRIMARY KEY, label TEXT, note TEXT, n INTEGER, "
                       "x REAL, flag BOOLEAN, mixed TEXT)"))
    yield app
    with app.app_context(), session_scope() as s:
        s.execute(text("DROP TABLE bulk_probe"))


def _read(app: Flask) -> list[tuple]:
    with app.app_context(), session_scope(write=False) as s:
        return [tuple(r) for r in s.execute(text("SELECT id, label, note, n, x, flag, mixed FROM bulk_probe ORDER BY id"))]


def test_constant_columns_store_what_binding_would(table: Flask) -> None:
    columns = {"id": list(range(1, ROWS + 1)), "label": ["O'Brien; DROP TABLE bulk_probe; --"] * ROWS,
               "note": [None] * ROWS, "n": [7] * ROWS, "x": [2.5] * ROWS, "flag": [True] * ROWS,
               "mixed": [1, 1.0, 1, 1, 1]}
    with table.app_context(), session_scope() as s:
        assert insert_columns(s.connection(), "bulk_probe", columns, chunk=2) == ROWS
    rows = _read(table)
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5]
    assert {r[1:6] for r in rows} == {("O'Brien; DROP TABLE bulk_probe; --", None, 7, 2.5, True)}
    assert [r[6] for r in rows] == ["1", "1.0", "1", "1", "1"]


def test_varying_and_unrepresentable_values_are_bound(table: Flask) -> None:
    nan = float("nan")
    columns = {"id": [1, 2], "label": ["a", "b"], "note": ["nul\x00inside", "nul\x00inside"], "n": [1, None],
               "x": [nan, nan], "flag": [False, True], "mixed": ["same", "same"]}
    with table.app_context(), session_scope() as s:
        if s.get_bind().dialect.name == "postgresql":
            columns["note"] = ["plain", "plain"]  # PostgreSQL text holds no NUL whatever the path
        insert_columns(s.connection(), "bulk_probe", columns)
    rows = _read(table)
    assert [r[1] for r in rows] == ["a", "b"] and [r[3] for r in rows] == [1, None]
    assert rows[0][2] == columns["note"][0] and [r[6] for r in rows] == ["same", "same"]
    assert [bool(r[5]) for r in rows] == [False, True]
    assert all(r[4] is None or r[4] != r[4] for r in rows)  # NaN (PostgreSQL) or NULL (SQLite stores NaN as NULL)
