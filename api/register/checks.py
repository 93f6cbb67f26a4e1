"""Register checks reported, not hidden: staffing of the active grids and the re-binding report of a re-plan."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from api.grids import service
from api.localtime import local_today
from api.models import PlanAssignment, PlanGrid, PlanVersion
from api.register.models import Staff
from api.register.queries import RecordNotFound
from geo.activegrids import code_succession

__all__ = ["staff_checks", "rebinding_report"]


def _current_staff(session: Session) -> pd.DataFrame:
    today = local_today()
    rows = session.execute(select(Staff.id, Staff.name, Staff.phone, Staff.role, Staff.grid_code).where(
        Staff.grid_code.is_not(None), or_(Staff.end_date.is_(None), Staff.end_date >= today))).all()
    return pd.DataFrame(rows, columns=["id", "name", "phone", "role", "grid_code"])


def _staffing(staff: pd.DataFrame, codes: list[str]) -> dict[str, list[str]]:
    def count(role: str) -> pd.Series:
        return staff[staff["role"] == role].groupby("grid_code").size().reindex(codes, fill_value=0)

    leaders, workers = count("grid_leader"), count("grid_worker")
    return {"without_leader": sorted(leaders.index[leaders == 0]),
            "several_leaders": sorted(leaders.index[leaders > 1]),
            "without_worker": sorted(workers.index[workers == 0])}


def staff_checks(session: Session, *, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Grids without exactly one 网格长 or without a 网格员, people over too many grids, staff of vanished grids."""
    codes = service.active_grids(session)["key"].astype(str).tolist()
    staff = _current_staff(session)
    limit = int(settings["register_max_grids_per_person"])
    per_person = staff.groupby(["name", "phone"])["grid_code"].nunique()
    over = [{"name": n, "grids": int(c)} for (n, _), c in per_person[per_person > limit].items()]
    vanished = staff[~staff["grid_code"].isin(codes)]
    return {**_staffing(staff, codes), "over_limit": over, "limit": limit,
            "staff_of_vanished_grids": [{"id": int(r.id), "name": r.name, "grid_code": r.grid_code}
                                        for r in vanished.itertuples()]}


def _plan_codes(session: Session, plan_id: int) -> pd.Series:
    rows = session.execute(select(PlanAssignment.building_id, PlanGrid.code, PlanGrid.grid_id)
                           .join(PlanGrid, (PlanGrid.plan_version_id == PlanAssignment.plan_version_id)
                                 & (PlanGrid.grid_id == PlanAssignment.grid_id))
                           .where(PlanAssignment.plan_version_id == plan_id)).all()
    return pd.Series([service.grid_key(c, plan_id, g) for _, c, g in rows], index=[b for b, _, _ in rows],
                     dtype=object)


def rebinding_report(session: Session, plan_id: int) -> dict[str, Any]:
    """What publishing plan *plan_id* would do to the register (shown to the planner before publishing).

    Lists grids of the plan without a 网格长 or 网格员, staff whose grid code the plan drops,
    and the code succession (kept / retired, by shared buildings) from the active grids.
    """
    if session.get(PlanVersion, plan_id) is None:
        raise RecordNotFound(f"方案 {plan_id} 不存在")
    new = _plan_codes(session, plan_id)
    codes = sorted(set(new))
    staff = _current_staff(session)
    dropped = staff[~staff["grid_code"].isin(codes)]
    old = service.grids_of_buildings(session)
    succession = code_succession(old, new) if not old.empty else pd.DataFrame(
        columns=["old_code", "successor", "shared", "buildings", "status"])
    succession = succession.astype(object).where(succession.notna(), None)
    return {"plan_id": plan_id, "grids": len(codes), **_staffing(staff, codes),
            "staff_whose_grid_vanishes": [{"id": int(r.id), "name": r.name, "role": r.role, "grid_code": r.grid_code}
                                          for r in dropped.itertuples()],
            "succession": succession.to_dict("records")}
