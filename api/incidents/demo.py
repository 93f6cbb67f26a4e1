"""Demo incidents: a year of synthetic cases (合成数据) in the active grids, with their timelines.

Runs only once (skipped when synthetic cases exist) and only when a plan is published: the
cases are located in the grids in force, dispatched to each grid's 网格员 account where the
register links one. Overdue open cases then go through the 督办 escalation job.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.grids.service import active_grids
from api.incidents.bulk import insert_cases, insert_events, new_tokens
from api.incidents.cases import escalate_overdue, grid_worker
from api.incidents.models import IncidentCase
from api.incidents.tables import load_calendar, load_categories
from api.models import utcnow
from geo.incidents.synthetic import synthetic_cases

__all__ = ["demo_cases"]

log = logging.getLogger(__name__)
_SOURCES = np.array(["worker", "public", "12345", "open311"], dtype=object)


def _events(cases: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
    """The main steps of each case's timeline, vectorised step by step."""
    h = pd.to_timedelta(1, unit="h")
    rej = cases["state"] == "rejected"
    disp = cases["dispatched_at"].notna()
    done = cases["closed_at"].notna()
    started = disp & cases["state"].isin(["handling", "closed", "evaluated"])
    reworked = done & (cases["rework_count"] > 0)
    steps = [
        ("report", "reporter", cases["reporter"], cases["reported_at"], "", "reported", pd.Series(True, index=cases.index)),
        ("reject", "center", "admin", cases["reported_at"] + h, "reported", "rejected", rej),
        ("accept", "center", "admin", cases["reported_at"] + 0.2 * h, "reported", "accepted", ~rej),
        ("dispatch", "center", "admin", cases["dispatched_at"], "accepted", "dispatched", disp),
        ("start", "worker", cases["assignee"], cases["dispatched_at"] + 0.5 * h, "dispatched", "handling", started),
        ("feedback", "worker", cases["assignee"], cases["closed_at"] - 3 * h, "handling", "feedback", reworked),
        ("verify_fail", "center", "admin", cases["closed_at"] - 2 * h, "feedback", "handling", reworked),
        ("feedback", "worker", cases["assignee"], cases["closed_at"] - 0.5 * h, "handling", "feedback", done),
        ("verify_pass", "center", "admin", cases["closed_at"], "feedback", "closed", done),
        ("evaluate", "center", "admin", cases["closed_at"] + 24 * h, "closed", "evaluated", cases["state"] == "evaluated"),
    ]
    parts = []
    for order, (action, role, actor, at, src, dst, mask) in enumerate(steps):
        m = mask.to_numpy(dtype=bool)
        actors = actor[m].fillna("admin").to_numpy() if isinstance(actor, pd.Series) else actor
        reason = {"reject": "（合成数据）不属于受理范围", "verify_fail": "（合成数据）核查未通过，返工",
                  "feedback": "（合成数据）已处置完毕"}.get(action, "")
        parts.append(pd.DataFrame({"case_id": ids[m].to_numpy(), "order": order, "action": action, "actor": actors,
                                   "role": role, "at": at[m].to_numpy(), "from_state": src, "to_state": dst,
                                   "reason": reason}))
    out = pd.concat(parts, ignore_index=True).sort_values(["case_id", "order"], kind="stable")
    # Short time limits can put a synthetic step before the one it follows: time only moves forward.
    out["at"] = out.groupby("case_id")["at"].cummax()
    out["detail"] = [{}] * len(out)
    return out.drop(columns=["order"])


def demo_cases(session: Session, *, settings: Mapping[str, Any], per_grid_week: float = 3.0, seed: int = 42,
               now: pd.Timestamp | None = None) -> int | None:
    """Make a year of synthetic cases; ``None`` without a published plan, 0 when they exist already."""
    if session.scalar(select(IncidentCase.id).where(IncidentCase.synthetic.is_(True)).limit(1)) is not None:
        return 0
    grids = active_grids(session)
    if grids.empty:
        return None
    now = now if now is not None else pd.Timestamp(utcnow())
    n = max(1, int(len(grids) * per_grid_week * 52))
    cases = synthetic_cases(grids, tuple(load_categories(session).values()), load_calendar(session, settings), n=n,
                            start=now - pd.Timedelta(days=365), now=now, seed=seed)
    rng = np.random.default_rng(seed + 1)
    workers = {k: grid_worker(session, k) or f"网格员{k[-3:]}" for k in grids["key"]}
    cases["assignee"] = cases["grid_code"].map(workers).where(cases["dispatched_at"].notna())
    cases["source"] = _SOURCES[rng.choice(4, n, p=[0.55, 0.15, 0.2, 0.1])]
    cases["reporter"] = np.where(cases["source"] == "worker", cases["grid_code"].map(workers), cases["source"])
    cases["external_id"] = np.where(cases["source"] == "12345", [f"DEMO{i:07d}" for i in range(n)], None)
    cases["token"] = new_tokens(n)
    cases["synthetic"] = True
    cases["rating"] = cases["rating"].where(cases["rating"] > 0, None)
    cases["updated_at"] = cases[["reported_at", "dispatched_at", "closed_at"]].max(axis=1)
    ids = insert_cases(session, cases.drop(columns=["grid_index"]))
    insert_events(session, _events(cases, ids))
    escalated = escalate_overdue(session, settings=settings, now=now.to_pydatetime())
    log.info("demo incidents: %d cases in %d grids, %d escalated", n, len(grids), escalated)
    return n
