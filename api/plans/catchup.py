"""Bringing a process's cached plan state up to the current version by replaying the edits since.

Several web processes hold a plan's state in memory. An edit in one moves the plan to a
new version; before this module every other process rebuilt the whole state at its next
request (15 s at 100,000 buildings, minutes for a city), and a busy planning session made
them rebuild all the time. Each edit row now records the versions at which it was applied
(``payload["applied"]``: ``[version, "do" | "undo" | "redo"]``), so a process holding the
state at version *v* applies the deltas of versions *v + 1* … *current* in order, exactly as
the editing process did. When any version in between is not an edit, undo or redo (a
rebase, a repartition, an undone edit dropped by a newer edit), the replay refuses and the
caller reads the snapshot or rebuilds, as before.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import PlanEdit
from api.plans.edits import apply_delta
from api.plans.scope import delta_refs
from api.plans.state import PlanState

__all__ = ["applied_events", "replay"]

log = logging.getLogger(__name__)


def applied_events(session: Session, plan_id: int, after: int) -> dict[int, dict[str, Any]]:
    """Version → delta of every edit, undo and redo of *plan_id* applied after version *after*."""
    rows = session.execute(select(PlanEdit.payload, PlanEdit.inverse).where(PlanEdit.plan_version_id == plan_id)).all()
    events: dict[int, dict[str, Any]] = {}
    for payload, inverse in rows:
        for version, kind in (payload or {}).get("applied", []):
            if int(version) > after:
                events[int(version)] = inverse if kind == "undo" else payload["delta"]
    return events


def _reach(state: PlanState, delta: dict[str, Any]) -> tuple[bool, bool]:
    """Whether *delta* touches cells or grids inside a community state, and outside it."""
    scope = state.scope or frozenset()
    refs = delta_refs(delta)
    hits = ([c in state.cell_index for c in refs.cells] + [g in state.grids for g in refs.grids]
            + [c in scope for c in (*refs.created.values(), *refs.added.values())])
    return any(hits), not all(hits)


def _relevant(state: PlanState, deltas: list[dict[str, Any]]) -> list[dict[str, Any] | None] | None:
    """Each delta to apply to *state*, ``None`` for one wholly outside a community state; ``None``
    overall when one reaches both inside and outside it (the community state is rebuilt)."""
    if state.scope is None:
        return list(deltas)
    out: list[dict[str, Any] | None] = []
    for delta in deltas:
        inside, outside = _reach(state, delta)
        if inside and outside:
            return None
        out.append(delta if inside else None)
    return out


def replay(session: Session, state: PlanState, version: int) -> bool:
    """Apply to *state* the deltas of its versions up to *version*; False (state untouched) if one is missing.

    A community state (``state.scope``) skips the changes of other communities, and refuses
    one that crosses its edge.
    """
    if version <= state.version:
        return version == state.version
    events = applied_events(session, state.plan_id, state.version)
    wanted = range(state.version + 1, version + 1)
    if any(v not in events for v in wanted):
        return False
    deltas = _relevant(state, [events[v] for v in wanted])
    if deltas is None:
        return False
    for v, delta in zip(wanted, deltas, strict=True):
        if delta is not None:
            apply_delta(state, delta)
        state.version = v
    log.info("plan %d state brought to version %d by replaying %d change(s)", state.plan_id, version, len(wanted))
    return True
