"""The category table and the holiday calendar in the database: load, replace, seed defaults."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from api.db import WRITE_OPTION
from api.incidents.models import IncidentCalendarDay, IncidentCategory
from geo.incidents.categories import DEFAULT_CATEGORIES, Category
from geo.incidents.workcalendar import WorkCalendar

__all__ = ["ensure_categories", "load_categories", "replace_categories", "load_calendar", "replace_calendar"]


def _row(c: Category) -> IncidentCategory:
    return IncidentCategory(code=c.code, kind=c.kind, major_name=c.major_name, minor_name=c.minor_name,
                            grade=c.grade, limit_value=c.limit_value, limit_unit=c.limit_unit,
                            department=c.department, required=",".join(c.required), active=True)


def ensure_categories(session: Session) -> None:
    """Seed the default category table when none is loaded (in a write transaction).

    ``ON CONFLICT DO NOTHING``: two first writers at once (two web processes on PostgreSQL)
    both see an empty table; the second one's rows are the same and are skipped.
    """
    if session.scalar(select(IncidentCategory.code).limit(1)) is None:
        dialect = session.get_bind().dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        rows = [{c.name: getattr(_row(cat), c.name) for c in IncidentCategory.__table__.columns if c.name != "id"}
                for cat in DEFAULT_CATEGORIES]
        session.execute(insert(cast(Table, IncidentCategory.__table__)).on_conflict_do_nothing(index_elements=["code"]), rows)
        session.flush()


def _writing(session: Session) -> bool:
    return bool(session.connection().get_execution_options().get(WRITE_OPTION, False))


_COLUMNS = (IncidentCategory.code, IncidentCategory.kind, IncidentCategory.major_name, IncidentCategory.minor_name,
            IncidentCategory.grade, IncidentCategory.limit_value, IncidentCategory.limit_unit,
            IncidentCategory.department, IncidentCategory.required)
_ACTIVE_ROWS = select(*_COLUMNS).where(IncidentCategory.active.is_(True)).order_by(IncidentCategory.code)
#: The table last built, keyed by the rows it was built from (a pure function of them: never stale).
_BUILT: dict[str, tuple[list[Any], dict[str, Category]]] = {}
_BUILT_LOCK = threading.Lock()


def _categories_from_rows(rows: list[Any]) -> dict[str, Category]:
    return {r[0]: Category(*r[:8], tuple(f for f in r[8].split(",") if f)) for r in rows}


def load_categories(session: Session) -> dict[str, Category]:
    """Active categories by code (the default table on first use).

    A read never writes: on an empty table it answers the defaults and leaves storing them
    to the next write transaction. (Seeding inside a read failed under load: on SQLite a
    read cannot become a write once another writer committed, 500; on PostgreSQL two
    first readers inserted the same codes.)

    Every Open311 request reads the table: the rows are read each time (one plain query,
    so a table loaded by another process is seen at once), the categories are built only
    when the rows differ from the last ones built.
    """
    rows = session.connection().execute(_ACTIVE_ROWS).all()  # Rows compare as tuples
    if not rows:
        if not _writing(session) and session.scalar(select(IncidentCategory.code).limit(1)) is None:
            return {c.code: c for c in sorted(DEFAULT_CATEGORIES, key=lambda c: c.code)}
        ensure_categories(session)
        rows = session.connection().execute(_ACTIVE_ROWS).all()
    with _BUILT_LOCK:
        hit = _BUILT.get("last")
    if hit is None or hit[0] != rows:
        hit = (rows, _categories_from_rows(rows))
        with _BUILT_LOCK:
            _BUILT["last"] = hit
    return dict(hit[1])  # a copy: callers may change theirs


def replace_categories(session: Session, categories: tuple[Category, ...]) -> int:
    """Load a new table: codes in it become active (updated), codes not in it inactive (cases keep them)."""
    existing = {r.code: r for r in session.scalars(select(IncidentCategory))}
    for r in existing.values():
        r.active = False
    for c in categories:
        new = _row(c)
        if c.code in existing:
            session.merge(new)
        else:
            session.add(new)
    session.flush()
    return len(categories)


def load_calendar(session: Session, settings: Mapping[str, Any]) -> WorkCalendar:
    """The holiday calendar of the database in the configured time zone."""
    rows = session.execute(select(IncidentCalendarDay.day, IncidentCalendarDay.kind)).all()
    return WorkCalendar(holidays=frozenset(d for d, k in rows if k == "rest"),
                        workdays=frozenset(d for d, k in rows if k == "work"),
                        timezone=settings["incident_timezone"])


def replace_calendar(session: Session, calendar: WorkCalendar) -> int:
    """Replace the stored holidays and make-up working days by *calendar*'s."""
    session.execute(delete(IncidentCalendarDay))
    session.add_all([IncidentCalendarDay(day=d, kind="rest") for d in sorted(calendar.holidays)]
                    + [IncidentCalendarDay(day=d, kind="work") for d in sorted(calendar.workdays)])
    session.flush()
    return len(calendar.holidays) + len(calendar.workdays)
