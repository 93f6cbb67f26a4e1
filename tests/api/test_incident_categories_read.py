"""Reading the category table never writes: a read on an empty table answers the defaults and
stores nothing; the next write transaction stores them (issue 17: seeding inside a read was a
500 under load on SQLite and a duplicate insert on PostgreSQL)."""

from __future__ import annotations

import threading

from flask import Flask
from sqlalchemy import func, select

from api.db import session_scope
from api.incidents.models import IncidentCategory
from api.incidents.tables import load_categories
from geo.incidents.categories import DEFAULT_CATEGORIES


def _stored(app: Flask) -> int:
    with app.app_context(), session_scope(write=False) as s:
        return int(s.scalar(select(func.count()).select_from(IncidentCategory)))


def test_a_read_answers_the_defaults_without_storing_them(app: Flask) -> None:
    with app.app_context(), session_scope(write=False) as s:
        cats = load_categories(s)
    assert sorted(cats) == sorted(c.code for c in DEFAULT_CATEGORIES)
    assert cats["BJ-0101"] == next(c for c in DEFAULT_CATEGORIES if c.code == "BJ-0101")
    assert _stored(app) == 0
    with app.app_context(), session_scope() as s:
        written = load_categories(s)
    assert written == cats
    assert _stored(app) == len(DEFAULT_CATEGORIES)


def test_first_readers_at_once_all_get_the_list(app: Flask) -> None:
    from tests.api.plans_helpers import login

    clients = [login(app, "planner") for _ in range(2)]
    statuses: list[int] = []

    def read(c: object) -> None:
        for _ in range(3):
            statuses.append(c.get("/incidents").status_code)  # type: ignore[attr-defined]

    threads = [threading.Thread(target=read, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 6
    assert _stored(app) == 0  # the list page is a read


def test_two_first_writers_at_once_both_succeed(app: Flask) -> None:
    from api.incidents.tables import ensure_categories

    barrier = threading.Barrier(2, timeout=3)  # SQLite serialises writers: there the second waits instead
    errors: list[BaseException] = []

    def write() -> None:
        try:
            with app.app_context(), session_scope() as s:
                s.scalar(select(func.count()).select_from(IncidentCategory))  # both see an empty table
                try:
                    barrier.wait()
                except threading.BrokenBarrierError:
                    pass
                ensure_categories(s)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _stored(app) == len(DEFAULT_CATEGORIES)
