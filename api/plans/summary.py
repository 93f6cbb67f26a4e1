"""The plan card's summary (``GET /api/plans/<id>``) counted from the stored grids.

Grids, households, the share in range and the broken rules per rule come from
``plan_grids`` in one aggregate, so the card of a million-building plan costs a query, not
loading the plan. Each grid's broken rules are stored by every edit
(``plan_grids.violations``); a plan saved by a partition or a rebase has them unchecked
(NULL) until its state is loaded once: the first card of such a plan loads the whole state,
answers from it and stores the rules for every later card (in any process).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import and_, bindparam, case, func, select, update
from sqlalchemy.orm import Session

from api.db import session_scope
from api.models import PlanGrid, PlanVersion
from api.plans.state import PlanState, get_state, load_state, plan_bounds, plan_lock, table_of
from api.plans.store import violation_rules

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
            "violations": len(violations), "violations_by_rule": by_rule}


def _stored_summary(session: Session, plan: PlanVersion, lo: int, hi: int) -> dict[str, Any] | None:
    """The summary from the stored grids, or ``None`` while some grid's rules are unchecked."""
    g = table_of(PlanGrid)
    normal = and_(g.c.exclusive.is_(False), g.c.buildings > 0)
    row = session.execute(select(
        func.count(), func.coalesce(func.sum(g.c.households), 0), func.coalesce(func.sum(g.c.buildings), 0),
        func.coalesce(func.sum(case((normal, 1), else_=0)), 0),
        func.coalesce(func.sum(case((and_(normal, g.c.households.between(lo, hi)), 1), else_=0)), 0),
        func.coalesce(func.sum(case((g.c.violations.is_(None), 1), else_=0)), 0))
        .where(g.c.plan_version_id == plan.id)).one()
    grids, households, buildings, n_normal, n_in, unchecked = (int(v) for v in row)
    if unchecked:
        return None
    by_rule: dict[str, int] = {}
    for rules, n in session.execute(select(g.c.violations, func.count()).where(
            g.c.plan_version_id == plan.id, g.c.violations != "").group_by(g.c.violations)):
        for rule in str(rules).split(","):
            by_rule[rule] = by_rule.get(rule, 0) + int(n)
    return {"grids": grids, "households": households, "buildings": buildings,
            "share_in_range": n_in / n_normal if n_normal else 1.0,
            "violations": sum(by_rule.values()), "violations_by_rule": by_rule}


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
    """The summary of *plan*: grids, households, buildings, share in range, broken rules by rule."""
    lo, hi = plan_bounds(plan, defaults)
    out = _stored_summary(session, plan, lo, hi)
    if out is not None:
        return out
    with plan_lock(session, plan.id):  # the state is brought up to date in place
        state = get_state(session, plan, defaults)
        out = summary_of_state(state)
    store_violations(state)
    return out


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
    snapshot.store_snapshot(session, plan.id, snapshot.snapshot_key(session, plan, defaults), snapshot.dump_state(state))
