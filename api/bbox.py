"""Bounding-box filters on layer tables that read the visible area, not the city.

Every layer row carries its bounding box (``minx``..``maxy``, one B-tree index). The plain
overlap test ``minx <= east AND maxx >= west …`` lets the index bound ``minx`` from one side
only: it walks every feature west of the view's east edge, half a city on average. Here
``minx`` is bounded from both sides, ``west - widest <= minx <= east``, where *widest* is
the widest feature of the table (exact: a feature reaching the view starts at most that far
west of it), so the index walks a strip of the view's width. On PostGIS the GiST index
(``geometry && envelope``) is offered too and the planner takes the better one.

*widest* is read once per process and table, and read again after any import (keyed by the
newest import run and the newest row).
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import ColumnElement, Table, func, select
from sqlalchemy.orm import Session

from api.models import ImportRun

__all__ = ["bbox_clauses", "widest"]

_WIDEST: dict[tuple[str, str], tuple[tuple[Any, Any], float]] = {}
_LOCK = threading.Lock()


def widest(session: Session, table: Table) -> float:
    """The largest ``maxx - minx`` of *table* in degrees (0 when empty), cached until the next import."""
    conn = session.connection()
    stamp = (conn.execute(select(func.max(ImportRun.id))).scalar(), conn.execute(select(func.max(table.c.fid))).scalar())
    key = (conn.engine.url.render_as_string(hide_password=True), table.name)
    with _LOCK:
        hit = _WIDEST.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    value = float(conn.execute(select(func.max(table.c.maxx - table.c.minx))).scalar() or 0.0)
    with _LOCK:
        _WIDEST[key] = (stamp, value)
    return value


def bbox_clauses(session: Session, table: Table, bbox: tuple[float, float, float, float]) -> list[ColumnElement[bool]]:
    """WHERE terms keeping the rows of *table* whose bounding box meets *bbox* ``(minx, miny, maxx, maxy)``.

    Parameters
    ----------
    session
        The reading session (its dialect decides whether the GiST term is added).
    table
        A layer table with ``fid``, ``minx``, ``miny``, ``maxx``, ``maxy`` and ``geometry``.
    bbox
        West, south, east, north in degrees (EPSG:4326).
    """
    minx, miny, maxx, maxy = bbox
    reach = widest(session, table)
    reach += abs(reach) * 1e-9 + 1e-12  # the stored difference may round down by an ulp
    terms = [table.c.minx <= maxx, table.c.minx >= minx - reach, table.c.maxx >= minx,
             table.c.miny <= maxy, table.c.maxy >= miny]
    if session.get_bind().dialect.name == "postgresql":
        terms.append(table.c.geometry.op("&&")(func.ST_MakeEnvelope(minx, miny, maxx, maxy, 4326)))
    return terms
