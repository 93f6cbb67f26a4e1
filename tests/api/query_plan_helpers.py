"""SQLite's EXPLAIN QUERY PLAN of the statement a service call runs, for index tests.

A test runs the real call inside :func:`recorded_statements` (which keeps the statements whose
SQL contains a marker, with their parameters) and asks :func:`query_plan` how SQLite runs the
one it recorded, so the test checks the query the code sends, not a copy of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

__all__ = ["query_plan", "recorded_statements"]


@contextmanager
def recorded_statements(session: Session, marker: str) -> Iterator[list[tuple[str, Any]]]:
    """``(statement, parameters)`` of every statement run on *session*'s engine inside the block
    whose SQL contains *marker*."""
    seen: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        if marker in statement:
            seen.append((statement, parameters))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def query_plan(session: Session, seen: list[tuple[str, Any]]) -> str:
    """SQLite's plan of the one recorded statement, its steps joined by `` | ``."""
    assert len(seen) == 1, f"expected one recorded statement, got {len(seen)}: {[s for s, _ in seen]}"
    (statement, parameters), = seen
    rows = session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
    return " | ".join(str(r[-1]) for r in rows)
