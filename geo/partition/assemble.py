"""Turn node labels into the grid layer, the building assignment and the plan report."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.partition.cells import Tessellation
from geo.partition.report import grid_numbers, grid_outlines

__all__ = ["assemble", "plan_report", "PLAN_COLUMNS"]

log = logging.getLogger(__name__)

PLAN_COLUMNS = ["grid_id", "community_id", "code", "households", "buildings", "area_m2", "polsby_popper",
                "street_share", "exclusive", "locked", "flags", "geometry"]


def _grid_ids(comm_ids: list[str], assign_idx: np.ndarray, bprev: pd.Series | None) -> list[str]:
    """Previous ids for grids that keep most of a previous grid's buildings, new ids otherwise."""
    n = len(comm_ids)
    ids: list[str | None] = [None] * n
    used: set[str] = set()
    if bprev is not None:
        df = pd.DataFrame({"g": assign_idx, "p": bprev.to_numpy()}).dropna()
        df = df[df["g"] >= 0]
        cnt = df.groupby(["g", "p"]).size().reset_index(name="c").sort_values(["c", "g", "p"],
                                                                              ascending=[False, True, True])
        for g, p, _ in cnt.itertuples(index=False):
            if ids[g] is None and p not in used:
                ids[g] = str(p)
                used.add(str(p))
        used |= set(bprev.dropna().astype(str))
    seq: dict[str, int] = {}
    for g in range(n):
        if ids[g] is None:
            c = comm_ids[g]
            while True:
                seq[c] = seq.get(c, 0) + 1
                cand = f"{c}-{seq[c]:03d}"
                if cand not in used:
                    break
            ids[g] = cand
            used.add(cand)
    return [str(i) for i in ids]


def assemble(tess: Tessellation, node_grid: np.ndarray, meta: list[dict], bf: gpd.GeoDataFrame,
             bm: gpd.GeoDataFrame, cm: gpd.GeoDataFrame, cm_free: gpd.GeoDataFrame, lg: gpd.GeoDataFrame,
             locked_assign: pd.Series, previous: Any, *, lo: int, hi: int, crs: Any, in_crs: Any,
             code_scheme: str, code_options: Mapping[str, Any] | None = None) -> Any:
    from geo.codes import grid_codes
    from geo.partition.engine import PartitionResult

    n = len(meta)
    outlines = grid_outlines(tess, node_grid, n)
    nums = grid_numbers(tess, node_grid, n)
    bgrid = np.where(tess.building_node >= 0, node_grid[np.maximum(tess.building_node, 0)], -1)
    comm_ids = cm_free["community_id"].astype(str).to_numpy()[[m["community"] for m in meta]].tolist()
    bprev = None
    if previous is not None:
        pa = previous.assignment if hasattr(previous, "assignment") else pd.Series(previous)
        pa.index = pa.index.astype(str)
        bprev = bf["building_id"].map(pa.astype(str))
    ids = _grid_ids(comm_ids, bgrid, bprev)
    nb = np.bincount(bgrid[bgrid >= 0], minlength=n)
    grids = gpd.GeoDataFrame({
        "grid_id": ids, "community_id": comm_ids, "households": nums["households"], "buildings": nb,
        "area_m2": nums["area_m2"], "polsby_popper": nums["polsby_popper"],
        "street_share": nums["street_share"], "exclusive": [m["exclusive"] for m in meta],
        "locked": False, "flags": [",".join(m["flags"]) for m in meta],
    }, geometry=list(outlines), crs=crs)
    assignment = pd.Series(np.array(ids, dtype=object)[np.maximum(bgrid, 0)], index=bf["building_id"].to_numpy(),
                           name="grid_id")
    if len(lg):
        grids, assignment = _with_locked(grids, assignment, lg, locked_assign, bm)
    grids["code"] = grid_codes(grids, cm, scheme=code_scheme, **(code_options or {})).to_numpy()
    grids = grids[PLAN_COLUMNS].sort_values(["community_id", "code"]).reset_index(drop=True)
    assignment = assignment.reindex(bm["building_id"].to_numpy())
    assignment.index.name = "building_id"
    infeasible: dict[str, list[str]] = {}
    for m in meta:
        if m["reasons"]:
            infeasible[str(cm_free["community_id"].iloc[m["community"]])] = list(dict.fromkeys(m["reasons"]))
    report = plan_report(grids, infeasible, lo=lo, hi=hi)
    return PartitionResult(grids.to_crs(in_crs), assignment, report)


def _with_locked(grids: gpd.GeoDataFrame, assignment: pd.Series, lg: gpd.GeoDataFrame,
                 locked_assign: pd.Series, bm: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, pd.Series]:
    hh = pd.to_numeric(bm.set_index("building_id")["households"])
    rows = []
    for r in lg.itertuples(index=False):
        members = locked_assign.index[locked_assign == r.grid_id]
        rows.append({"grid_id": r.grid_id, "community_id": str(r.community_id),
                     "households": int(hh.reindex(members).sum()), "buildings": len(members),
                     "area_m2": float(r.geometry.area), "polsby_popper": float(r.polsby_popper),
                     "street_share": float(r.street_share), "exclusive": bool(r.exclusive), "locked": True,
                     "flags": "locked", "geometry": r.geometry})
    extra = gpd.GeoDataFrame(rows, geometry="geometry", crs=grids.crs)
    return pd.concat([grids, extra], ignore_index=True), pd.concat([assignment, locked_assign])


def plan_report(grids: gpd.GeoDataFrame, infeasible: dict[str, list[str]], *, lo: int, hi: int) -> dict:
    """Plan totals and the share of grids in range, with the infeasible communities' reasons."""
    normal = grids[~grids["exclusive"] & ~grids["locked"] & (grids["households"] > 0)
                   & ~grids["flags"].str.contains("oversize_unit|empty")]
    inr = normal["households"].between(lo, hi)
    return {
        "grids": int(len(grids)),
        "grids_normal": int(len(normal)),
        "grids_exclusive": int(grids["exclusive"].sum()),
        "grids_locked": int(grids["locked"].sum()),
        "households": int(grids["households"].sum()),
        "buildings": int(grids["buildings"].sum()),
        "min_households": lo,
        "max_households": hi,
        "share_in_range": float(inr.mean()) if len(normal) else 1.0,
        "out_of_range": normal.loc[~inr, "grid_id"].tolist(),
        "oversize_units": int(grids["flags"].str.contains("oversize_unit").sum()),
        "mean_polsby_popper": float(normal["polsby_popper"].mean()) if len(normal) else float("nan"),
        "infeasible_communities": infeasible,
    }
