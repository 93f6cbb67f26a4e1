"""The plan card's numbers stored per plan version (``plan_summaries``), so the card of a
city-size plan reads one row instead of counting 115,000 grids.

A row is labelled with the plan version it counts (``version``) and the household bounds its
``in_range`` uses (``lo``, ``hi``). :func:`count_summary` counts it from ``plan_grids``
(the label read in the same statement, so the numbers and the label always agree); every
edit applies its grids' difference in its own transaction (:func:`apply_grid_change`), only
to a row labelled with the version it edits. Any other row is stale and counted again by the
next card: a stale label is never wrong, only slower.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Integer, and_, case, delete, distinct, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.db import session_scope
from api.models import PlanGrid, PlanSummary, PlanVersion
from api.plans.state import table_of

__all__ = ["count_summary", "read_summary", "save_summary", "write_summary", "summary_json", "grids_before",
           "apply_grid_change", "copy_summary", "forget_summary"]

log = logging.getLogger(__name__)

#: The counters of a row a grid adds to (its rules aside).
_COUNTERS = ("grids", "households", "buildings", "normal", "in_range", "unchecked")


def count_summary(session: Session, plan_id: int, lo: int, hi: int) -> dict[str, Any]:
    """The summary row of *plan_id* counted from its grids (one aggregate over them, plus one
    over its distinct broken-rule lists), labelled with the plan's version read with it."""
    g, pv = table_of(PlanGrid), table_of(PlanVersion)
    normal = and_(g.c.exclusive.is_(False), g.c.buildings > 0)
    version = select(pv.c.version_counter).where(pv.c.id == plan_id).scalar_subquery()
    row = session.execute(select(
        version, func.count(), func.coalesce(func.sum(g.c.households), 0), func.coalesce(func.sum(g.c.buildings), 0),
        func.coalesce(func.sum(case((normal, 1), else_=0)), 0),
        func.coalesce(func.sum(case((and_(normal, g.c.households.between(lo, hi)), 1), else_=0)), 0),
        func.coalesce(func.sum(case((g.c.violations.is_(None), 1), else_=0)), 0),
        func.count(distinct(g.c.community_id)))
        .where(g.c.plan_version_id == plan_id)).one()
    rules: dict[str, int] = {}
    for text, n in session.execute(select(g.c.violations, func.count()).where(
            g.c.plan_version_id == plan_id, g.c.violations != "").group_by(g.c.violations)):
        _add_rules(rules, str(text), int(n))
    out = dict(zip(("version", *_COUNTERS, "communities"), (int(v or 0) for v in row), strict=True))
    return {"plan_version_id": plan_id, "lo": lo, "hi": hi, **out, "rules": rules}


def read_summary(session: Session, plan_id: int, *, version: int, lo: int, hi: int) -> dict[str, Any] | None:
    """The stored row of *plan_id* when it counts *version* with bounds *lo*–*hi*, else ``None``."""
    s = table_of(PlanSummary)
    row = session.execute(select(s).where(s.c.plan_version_id == plan_id, s.c.version == version,
                                          s.c.lo == lo, s.c.hi == hi)).mappings().first()
    return None if row is None else dict(row)


def save_summary(row: dict[str, Any]) -> None:
    """Store *row* (counted by :func:`count_summary`) in its own write, replacing the plan's row.

    Two processes storing the same plan's row at once: the later insert fails on the key and
    the earlier row stays (both are right for their label)."""
    try:
        with session_scope() as session:
            write_summary(session, row)
    except IntegrityError:
        log.info("plan %d: summary stored by another process meanwhile", row["plan_version_id"])


def write_summary(session: Session, row: dict[str, Any]) -> None:
    """Replace the plan's row by *row* in *session*'s transaction."""
    s = table_of(PlanSummary)
    session.execute(delete(s).where(s.c.plan_version_id == row["plan_version_id"]))
    session.execute(insert(s).values(**row))


def summary_json(row: dict[str, Any]) -> dict[str, Any]:
    """The card's ``summary`` of a row."""
    rules = {str(k): int(v) for k, v in (row["rules"] or {}).items()}
    return {"grids": row["grids"], "households": row["households"], "buildings": row["buildings"],
            "share_in_range": row["in_range"] / row["normal"] if row["normal"] else 1.0,
            "violations": sum(rules.values()), "violations_by_rule": rules, "communities": row["communities"]}


def _add_rules(rules: dict[str, int], text: str | None, n: int) -> None:
    for rule in (text or "").split(","):
        if rule:
            rules[rule] = rules.get(rule, 0) + n
            if not rules[rule]:
                del rules[rule]


def grids_before(session: Session, plan_id: int, grid_ids: list[str],
                 new_rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], set[str]]:
    """The stored rows of the grids an edit replaces, and which communities of those and of
    *new_rows* (the rows it writes) have grids now: read before the edit deletes them."""
    g = table_of(PlanGrid)
    rows = [dict(r) for i in range(0, len(grid_ids), 500) for r in session.execute(
        select(g.c.households, g.c.buildings, g.c.exclusive, g.c.violations, g.c.community_id).where(
            g.c.plan_version_id == plan_id, g.c.grid_id.in_(grid_ids[i:i + 500]))).mappings()]
    present = {r["community_id"] for r in rows if r["community_id"] is not None}
    new = {r["community_id"] for r in new_rows if r["community_id"] is not None} - present
    return rows, present | _present(session, plan_id, new)


def _present(session: Session, plan_id: int, communities: Iterable[str]) -> set[str]:
    wanted = sorted(communities)
    if not wanted:
        return set()
    g = table_of(PlanGrid)
    return {str(c) for c in session.scalars(select(g.c.community_id).where(
        g.c.plan_version_id == plan_id, g.c.community_id.in_(wanted)).distinct())}


def _contribution(rows: list[dict[str, Any]], lo: int, hi: int, sign: int, into: dict[str, Any]) -> None:
    for r in rows:
        normal = not r["exclusive"] and int(r["buildings"] or 0) > 0
        into["grids"] += sign
        into["households"] += sign * int(r["households"] or 0)
        into["buildings"] += sign * int(r["buildings"] or 0)
        into["normal"] += sign * normal
        into["in_range"] += sign * (normal and lo <= int(r["households"] or 0) <= hi)
        into["unchecked"] += sign * (r["violations"] is None)
        _add_rules(into["rules"], r["violations"], sign)


def apply_grid_change(session: Session, plan_id: int, *, expected: int, lo: int, hi: int,
                      before: tuple[list[dict[str, Any]], set[str]], after: list[dict[str, Any]]) -> bool:
    """Apply an edit of version *expected* to *expected* + 1 to the stored row, in the edit's
    transaction: *before* from :func:`grids_before`, *after* the grid rows it wrote. False (and
    the row left stale) when the row is not that of *expected* with bounds *lo*–*hi*."""
    row = read_summary(session, plan_id, version=expected, lo=lo, hi=hi)
    if row is None:
        return False
    new = {k: row[k] for k in _COUNTERS} | {"rules": dict(row["rules"] or {})}
    rows, present = before
    _contribution(rows, lo, hi, -1, new)
    _contribution(after, lo, hi, 1, new)
    new["communities"] = row["communities"] - len(present) + len(_present(session, plan_id, present | {
        r["community_id"] for r in after if r["community_id"] is not None}))
    s = table_of(PlanSummary)
    res = session.execute(update(s).where(s.c.plan_version_id == plan_id, s.c.version == expected)
                          .values(version=expected + 1, **new))
    return getattr(res, "rowcount", 0) == 1


def copy_summary(session: Session, source: int, target: int, version: int) -> None:
    """*source*'s row (of its current version) as that of *target*, a copy of its grids at *version*."""
    s, pv = table_of(PlanSummary), table_of(PlanVersion)
    current = select(pv.c.version_counter).where(pv.c.id == source).scalar_subquery()
    cols = [c for c in s.c if c.name not in ("plan_version_id", "version")]
    src = select(*([literal(target, Integer), literal(version, Integer)] + cols)).where(
        s.c.plan_version_id == source, s.c.version == current)
    session.execute(s.insert().from_select(["plan_version_id", "version"] + [c.name for c in cols], src))


def forget_summary(session: Session, plan_id: int) -> None:
    """Drop *plan_id*'s row (its grids were rewritten without counting): the next card counts them."""
    s = table_of(PlanSummary)
    session.execute(delete(s).where(s.c.plan_version_id == plan_id))
