"""The plan card's summary (``GET /api/plans/<id>``): one stored row per plan version.

The row (``plan_summaries``, :mod:`api.plans.summary_store`) holds grids, households,
buildings, the grids in range and the broken rules per rule; every edit applies its grids'
difference to it in its own transaction, so the card of a million-building plan reads one
row. A plan without a current row (a new version, other bounds) is counted once from
``plan_grids`` and its row stored. Each grid's broken rules are stored by every edit
(``plan_grids.violations``); a plan saved by a partition or a rebase has them unchecked
(NULL) until its state is loaded once: the first card of such a plan loads the whole state,
stores the rules and counts the row for every later card (in any process).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from api.db import session_scope
from api.models import PlanGrid, PlanVersion
from api.plans.state import PlanState, get_state, load_state, plan_bounds, plan_lock, table_of
from api.plans.store import violation_rules
from api.plans.summary_store import (
    count_summary,
    read_summary,
    save_summary,
    summary_json,
    write_summary,
)

__all__ = ["plan_summary", "summary_of_state", "store_violations", "check_saved_plan"]

log = logging.getLogger(__name__)


def summary_of_state(state: PlanState) -> dict[str, Any]:
    """The summary of a loaded (whole) plan state."""
    metas = list(state.grids.values())
    normal = [m for m in metas if not m.exclusive and m.buildings > 0]
    inr = [m for m in normal if state.lo <= m.households <= state.hi]
    violations = [v for m in metas for v in m.violations]
    by_rule: dict[str, int] = {}
    for v in violations:
        by_rule[v["rule"]] = by_rule.get(v["rule"], 0) + 1
    return {"grids": len(metas), "households": int(sum(m.households for m in metas)),
            "buildings": int(sum(m.buildings for m in metas)),
            "share_in_range": len(inr) / len(normal) if normal else 1.0,
            "violations": len(violations), "violations_by_rule": by_rule,
            "communities": len({m.community_id for m in metas if m.community_id is not None})}


def store_violations(state: PlanState) -> bool:
    """Store every grid's broken rules of a whole *state* (in its own write); False when the plan
    changed meanwhile (the edits store their own grids' rules)."""
    pv, g = table_of(PlanVersion), table_of(PlanGrid)
    rows = [{"p": state.plan_id, "gid": m.grid_id, "v": violation_rules(m)} for m in state.grids.values()]
    with session_scope() as session:
        # a no-op update of the plan's row locks it (PostgreSQL) so no edit commits in between
        res = session.execute(update(pv).where(pv.c.id == state.plan_id, pv.c.version_counter == state.version)
                              .values(version_counter=state.version))
        if getattr(res, "rowcount", 0) != 1:
            return False
        session.execute(update(g).where(g.c.plan_version_id == bindparam("p"), g.c.grid_id == bindparam("gid"))
                        .values(violations=bindparam("v")), rows)
    log.info("plan %d v%d: broken rules of %d grids stored", state.plan_id, state.version, len(rows))
    return True


def plan_summary(session: Session, plan: PlanVersion, defaults: dict[str, Any]) -> dict[str, Any]:
    """The summary of *plan*: grids, households, buildings, share in range, broken rules by rule,
    communities; from its stored row, else counted (and stored) once."""
    lo, hi = plan_bounds(plan, defaults)
    row = read_summary(session, plan.id, version=plan.version_counter, lo=lo, hi=hi)
    if row is not None and not row["unchecked"]:
        return summary_json(row)
    row = count_summary(session, plan.id, lo, hi)
    if row["unchecked"]:
        with plan_lock(session, plan.id):  # the state is brought up to date in place
            state = get_state(session, plan, defaults)
            out = summary_of_state(state)
        if store_violations(state):
            save_summary(count_summary(session, plan.id, lo, hi))
        return out
    save_summary(row)
    return summary_json(row)


def check_saved_plan(session: Session, plan: PlanVersion, defaults: dict[str, Any], *,
                     also: tuple[int, ...] = ()) -> None:
    """Build the state of *plan*, just saved in *session*'s transaction, once (in the job that
    saves it, not in a web request): store its grids' broken rules (and *also*'s, read-only
    copies of the same grids) and the state every process reads instead of building it."""
    from api.plans import snapshot  # it builds on the state module, as this one

    session.flush()
    state = load_state(session, plan, defaults)
    g = table_of(PlanGrid)
    rows = [{"p": p, "gid": m.grid_id, "v": violation_rules(m)} for p in (plan.id, *also) for m in state.grids.values()]
    session.execute(update(g).where(g.c.plan_version_id == bindparam("p"), g.c.grid_id == bindparam("gid"))
                    .values(violations=bindparam("v")), rows)
    for p in (plan.id, *also):  # the card's row of each, counted from the rules just stored
        saved = session.get(PlanVersion, p)
        if saved is not None:
            write_summary(session, count_summary(session, p, *plan_bounds(saved, defaults)))
    snapshot.store_snapshot(session, plan.id, snapshot.snapshot_key(session, plan, defaults), snapshot.dump_state(state))
