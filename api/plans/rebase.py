"""Re-base a stale plan on the current workspace: keep its grids, re-assign buildings by location.

After a re-import a plan's building ids may name other buildings, or none (issue 16 §4).
Re-basing makes a new draft version with the same cells and grids (outlines, codes, names,
locks) whose buildings are the *current* ones, each placed in the cell that contains its
representative point; cell and grid households are recounted. The report says what
changed: buildings added, removed, moved to another grid, outside every cell (left
unassigned), and the grids whose households changed or left the household range.
"""

from __future__ import annotations

import logging
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import bindparam, delete, select, type_coerce, update
from sqlalchemy.orm import Session

from api import audit
from api.errors import RequestError
from api.models import WKB, PlanAssignment, PlanCell, PlanGrid, PlanVersion
from api.plans.state import table_of
from api.plans.store import copy_version, stale_reason
from api.plans.summary_store import forget_summary
from api.workspace import load_layer, workspace_version
from geo.activegrids import GridIndex

__all__ = ["rebase_plan"]

log = logging.getLogger(__name__)

#: Ids listed per category in the report (the counts are always complete).
_SAMPLE = 20


def _cells(session: Session, plan_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = table_of(PlanCell)
    rows = session.connection().execute(select(t.c.cell_id, t.c.grid_id, type_coerce(t.c.geometry, WKB))
                                        .where(t.c.plan_version_id == plan_id).order_by(t.c.id)).all()
    if not rows:
        raise RequestError(409, "plan_without_cells", f"方案 {plan_id} 没有单元（cells），无法重新关联楼栋",
                           f"重新划分（POST /api/plans/{plan_id}/repartition）")
    ids, grids, wkb = (np.asarray(c, dtype=object) for c in zip(*rows, strict=True))
    return ids, grids, shapely.from_wkb([bytes(w) for w in wkb])


def _old_assignment(session: Session, plan_id: int) -> pd.Series:
    rows = session.execute(select(PlanAssignment.building_id, PlanAssignment.grid_id)
                           .where(PlanAssignment.plan_version_id == plan_id)).all()
    return pd.Series([g for _, g in rows], index=[b for b, _ in rows], dtype=object)


def _grid_counts(session: Session, plan_id: int) -> pd.DataFrame:
    rows = session.execute(select(PlanGrid.grid_id, PlanGrid.code, PlanGrid.households, PlanGrid.buildings,
                                  PlanGrid.exclusive).where(PlanGrid.plan_version_id == plan_id)).all()
    return pd.DataFrame(rows, columns=["grid_id", "code", "households", "buildings", "exclusive"]).set_index("grid_id")


def _locate(session: Session, plan_id: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Current buildings with the cell and grid they fall in (``None`` outside every cell); cell ids."""
    cell_ids, cell_grids, cell_geoms = _cells(session, plan_id)
    b = load_layer(session, "buildings", columns=["households"])
    # Cells are polygons like grids: the active-grids index places each building's point.
    cells = gpd.GeoDataFrame({"cell_id": cell_ids}, geometry=gpd.GeoSeries(cell_geoms, crs=4326), crs=4326)
    hit = GridIndex.from_grids(cells, id_column="cell_id").grid_of_buildings(b, tolerance_m=0, nearest_fallback=False)
    cell = hit["grid_id"].to_numpy(dtype=object)
    grid_of_cell = dict(zip(cell_ids.tolist(), cell_grids.tolist(), strict=True))
    frame = pd.DataFrame({
        "building_id": b["building_id"].astype(str).to_numpy(),
        "households": b["households"].fillna(0).astype(np.int64).to_numpy(),
        "cell_id": cell,
        "grid_id": np.asarray([None if c is None else grid_of_cell[c] for c in cell], dtype=object),
    })
    return frame, cell_ids


def _write(session: Session, plan_id: int, located: pd.DataFrame, cell_ids: np.ndarray) -> pd.DataFrame:
    """Replace *plan_id*'s assignments by *located* and recount its cells and grids; the new grid counts."""
    at, ct, gt = table_of(PlanAssignment), table_of(PlanCell), table_of(PlanGrid)
    placed = located[located["cell_id"].notna()]
    forget_summary(session, plan_id)  # its grids are recounted below: the next card counts them
    session.execute(delete(at).where(at.c.plan_version_id == plan_id))
    if len(placed):
        session.execute(at.insert(), [{"plan_version_id": plan_id, "building_id": b, "grid_id": g, "cell_id": c}
                                      for b, g, c in zip(placed["building_id"], placed["grid_id"],
                                                         placed["cell_id"], strict=True)])
    per_cell = placed.groupby("cell_id")["households"].agg(["sum", "size"]).reindex(cell_ids, fill_value=0)
    session.execute(update(ct).where(ct.c.plan_version_id == plan_id, ct.c.cell_id == bindparam("c"))
                    .values(households=bindparam("h"), buildings=bindparam("n")),
                    [{"c": c, "h": int(h), "n": int(n)} for c, h, n in
                     zip(per_cell.index, per_cell["sum"], per_cell["size"], strict=True)])
    per_grid = placed.groupby("grid_id")["households"].agg(["sum", "size"])
    grids = _grid_counts(session, plan_id)
    per_grid = per_grid.reindex(grids.index, fill_value=0)
    session.execute(update(gt).where(gt.c.plan_version_id == plan_id, gt.c.grid_id == bindparam("g"))
                    .values(households=bindparam("h"), buildings=bindparam("n")),
                    [{"g": g, "h": int(h), "n": int(n)} for g, h, n in
                     zip(per_grid.index, per_grid["sum"], per_grid["size"], strict=True)])
    return per_grid.rename(columns={"sum": "households", "size": "buildings"})


def _report(old: pd.Series, located: pd.DataFrame, before: pd.DataFrame, after: pd.DataFrame,
            bounds: tuple[int, int]) -> dict[str, Any]:
    new = located.set_index("building_id")["grid_id"]
    added = new.index.difference(old.index)
    removed = old.index.difference(new.index)
    common = new.index.intersection(old.index)
    moved = common[(new[common].to_numpy() != old[common].to_numpy()) & new[common].notna().to_numpy()]
    outside = new.index[new.isna().to_numpy()]
    lo, hi = bounds
    changed, out_of_range = [], []
    for g, row in after.iterrows():
        b0, code, excl = before.loc[g, "households"], before.loc[g, "code"], bool(before.loc[g, "exclusive"])
        if int(row["households"]) != int(b0) or int(row["buildings"]) != int(before.loc[g, "buildings"]):
            changed.append({"grid_id": g, "code": code, "households_before": int(b0),
                            "households_after": int(row["households"]),
                            "buildings_before": int(before.loc[g, "buildings"]),
                            "buildings_after": int(row["buildings"])})
        if not excl and row["buildings"] > 0 and not lo <= row["households"] <= hi:
            out_of_range.append(g)

    def ids(index: pd.Index) -> dict[str, Any]:
        return {"count": int(len(index)), "sample": sorted(map(str, index))[:_SAMPLE]}

    return {"buildings_before": int(len(old)), "buildings_after": int(len(new) - len(outside)),
            "added": ids(added), "removed": ids(removed), "outside": ids(outside),
            "moved": {"count": int(len(moved)),
                      "sample": [{"building_id": b, "from": old[b], "to": new[b]} for b in sorted(moved)[:_SAMPLE]]},
            "grids_changed": changed, "grids_out_of_range": out_of_range}


def rebase_plan(session: Session, plan: PlanVersion, *, user: str, bounds: tuple[int, int],
                name: str | None = None) -> tuple[PlanVersion, dict[str, Any]]:
    """A new draft version of stale *plan* on the current workspace, and the report of what changed.

    Parameters
    ----------
    session
        Session of a write transaction (the caller commits).
    plan
        A plan made from an older workspace version (409 ``not_stale`` otherwise).
    user
        Author of the new version and of the audit row.
    bounds
        ``(min, max)`` households of the plan, to flag grids the new buildings push out of range.
    name
        Name of the new version (default: the plan's name with "（重新关联）").
    """
    current = workspace_version(session)
    if stale_reason(session, plan) is None:
        raise RequestError(409, "not_stale", f"方案 {plan.id} 已基于当前工作区（第 {current} 次导入），无需重新关联",
                           "直接编辑或发布该方案")
    located, cell_ids = _locate(session, plan.id)
    old, before = _old_assignment(session, plan.id), _grid_counts(session, plan.id)
    new = copy_version(session, plan, name=name or f"{plan.name}（重新关联）"[:200], author=user,
                       message=f"重新关联到第 {current} 次导入的楼栋（网格不变）")
    new.workspace_version = current
    after = _write(session, new.id, located, cell_ids)
    report = _report(old, located, before, after, bounds)
    session.flush()
    audit.record(session, user=user, action="plan.rebase", target=f"plan:{new.id}",
                 detail={"from": plan.id, "workspace_version": current,
                         **{k: report[k]["count"] for k in ("added", "removed", "moved", "outside")},
                         "grids_changed": len(report["grids_changed"])})
    log.info("plan %d re-based on workspace %s as plan %d: %d added, %d removed, %d moved, %d outside",
             plan.id, current, new.id, report["added"]["count"], report["removed"]["count"],
             report["moved"]["count"], report["outside"]["count"])
    return new, report
