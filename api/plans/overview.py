"""The overview of a city-size plan: its communities and their numbers, read from the database.

The whole state of a 1 M-building plan is 568 MB and took 32-34 s to load cold; a planner who
opens such a plan without choosing a community gets this instead (plans of more than
``planner_overview_min_grids`` grids): one aggregate of the plan's grids per community and
the communities' names and bounding boxes, never the plan state. A click opens one community
on its own state (:func:`api.plans.state.community_scope`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from api.models import Community, PlanGrid, PlanSummary, PlanVersion
from api.plans.state import table_of

__all__ = ["OVERVIEW_COLUMNS", "community_overview", "plan_grid_count", "opens_on_overview"]

#: The per-community columns of ``GET /api/plans/<id>/communities`` (one list each, same order).
OVERVIEW_COLUMNS = ("community_id", "name", "grids", "households", "buildings", "out_of_range", "broken", "bbox")


def plan_grid_count(session: Session, plan_id: int) -> int:
    """How many grids *plan_id* has: from its stored card row when there is one (an edit changes
    it by a grid or two), else counted by the plan's grid index."""
    s = table_of(PlanSummary)
    stored = session.scalar(select(s.c.grids).where(s.c.plan_version_id == plan_id))
    if stored is not None:
        return int(stored)
    g = table_of(PlanGrid)
    return int(session.scalar(select(func.count()).select_from(g).where(g.c.plan_version_id == plan_id)) or 0)


def opens_on_overview(session: Session, plan: PlanVersion, settings: dict[str, Any],
                      community_id: str | None) -> bool:
    """True when the plan page opens on the communities' overview: no community chosen and more
    grids than ``planner_overview_min_grids`` (0: never)."""
    limit = int(settings["planner_overview_min_grids"])
    return community_id is None and limit > 0 and plan_grid_count(session, plan.id) > limit


def community_overview(session: Session, plan_id: int, lo: int, hi: int) -> dict[str, list[Any]]:
    """Every community of *plan_id*'s grids, by id: name, grids, households, buildings, grids out
    of [*lo*, *hi*] (not exclusive, with buildings), grids breaking a rule, and the community's
    bounding box ``[west, south, east, north]`` (``None`` for a community no longer imported).

    Returned as one list per column of :data:`OVERVIEW_COLUMNS` (12,000 communities at 1 M
    buildings: the map and the table read them all).
    """
    g, c = table_of(PlanGrid), table_of(Community)
    normal = and_(g.c.exclusive.is_(False), g.c.buildings > 0)
    per = (select(g.c.community_id.label("community_id"), func.count().label("grids"),
                  func.coalesce(func.sum(g.c.households), 0).label("households"),
                  func.coalesce(func.sum(g.c.buildings), 0).label("buildings"),
                  func.coalesce(func.sum(case((and_(normal, or_(g.c.households < lo, g.c.households > hi)), 1),
                                              else_=0)), 0).label("out_of_range"),
                  func.coalesce(func.sum(case((g.c.violations != "", 1), else_=0)), 0).label("broken"))
           .where(g.c.plan_version_id == plan_id, g.c.community_id.is_not(None))
           .group_by(g.c.community_id).subquery())
    rows = session.execute(
        select(per, c.c.name, c.c.minx, c.c.miny, c.c.maxx, c.c.maxy)
        .select_from(per.outerjoin(c, c.c.community_id == per.c.community_id))
        .order_by(per.c.community_id)).all()
    if not rows:
        return {k: [] for k in OVERVIEW_COLUMNS}
    cols = list(zip(*rows, strict=True))  # column-wise: 12,000 rows a request at 1 M buildings
    ids, names = list(cols[0]), cols[6]
    box = np.array(cols[7:11], dtype=float).T.round(6)
    missing = np.isnan(box).any(axis=1)
    return {"community_id": ids, "name": [n or i for n, i in zip(names, ids, strict=True)],
            **{k: [int(v) for v in cols[j]] for j, k in enumerate(OVERVIEW_COLUMNS[2:7], start=1)},
            "bbox": [None if gone else b for gone, b in zip(missing.tolist(), box.tolist(), strict=True)]}
