"""Turn node labels into the grid layer, the building assignment and the plan report."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.partition.cells import Tessellation
from geo.partition.layers import PlanInputs
from geo.partition.locked import with_locked_grids
from geo.partition.options import PlanSpec
from geo.partition.planner import NodeLabels
from geo.partition.report import grid_numbers, grid_outlines
from geo.partition.result import PartitionResult, numbered_grids, plan_report

__all__ = ["assemble", "previous_assignment"]

log = logging.getLogger(__name__)


def previous_assignment(previous: PartitionResult | pd.Series) -> pd.Series:
    """building_id (str) → grid_id of a previous plan, given as a plan or as that Series."""
    assignment = previous.assignment if isinstance(previous, PartitionResult) else pd.Series(previous)
    return assignment.set_axis(assignment.index.astype(str))


def _grid_ids(comm_ids: list[str], building_grid: np.ndarray, previous_grid: pd.Series | None,
              reserved: set[str]) -> list[str]:
    """Previous ids for grids that keep most of a previous grid's buildings, new ids otherwise.

    *reserved* ids (the locked grids') are never given.
    """
    n = len(comm_ids)
    ids: list[str | None] = [None] * n
    used: set[str] = set(reserved)
    if previous_grid is not None:
        df = pd.DataFrame({"g": building_grid, "p": previous_grid.to_numpy()}).dropna()
        df = df[df["g"] >= 0]
        cnt = df.groupby(["g", "p"]).size().reset_index(name="c").sort_values(["c", "g", "p"],
                                                                              ascending=[False, True, True])
        for g, p, _ in cnt.itertuples(index=False):
            if ids[g] is None and p not in used:
                ids[g] = str(p)
                used.add(str(p))
        used |= set(previous_grid.dropna().astype(str))
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


def _infeasible(labels: NodeLabels, community_ids: np.ndarray) -> dict[str, list[str]]:
    return {str(community_ids[ci]): reasons for ci, reasons in labels.reasons.items()}


def assemble(tess: Tessellation, labels: NodeLabels, inputs: PlanInputs,
             previous: PartitionResult | pd.Series | None, spec: PlanSpec) -> PartitionResult:
    """The plan (grids numbered, assignment, report) in the metric CRS of *inputs*, without cells.

    Parameters
    ----------
    tess : Tessellation
        The cells the plan was made on (its communities are ``inputs.free_communities``).
    labels : NodeLabels
        Grid of every node.
    inputs : PlanInputs
        The run's layers; locked grids are added back here.
    previous : PartitionResult or Series, optional
        A previous plan: a grid keeping most of a previous grid's buildings keeps its id.
    spec : PlanSpec

    Returns
    -------
    PartitionResult
    """
    n = len(labels.grid_flags)
    outlines = grid_outlines(tess, labels.node_grid, n)
    nums = grid_numbers(tess, labels.node_grid, n)
    bgrid = np.full(len(tess.building_node), -1)
    placed = tess.building_node >= 0
    bgrid[placed] = labels.node_grid[tess.building_node[placed]]
    free_ids = inputs.free_communities["community_id"].astype(str).to_numpy()
    comm_ids = free_ids[labels.grid_community].tolist()
    building_ids = inputs.free_buildings["building_id"]
    previous_grid = None
    if previous is not None:
        previous_grid = building_ids.map(previous_assignment(previous).astype(str))
    ids = _grid_ids(comm_ids, bgrid, previous_grid, reserved=set(inputs.locked.grids["grid_id"].astype(str)))
    nb = np.bincount(bgrid[bgrid >= 0], minlength=n)
    grids = gpd.GeoDataFrame({
        "grid_id": ids, "community_id": comm_ids, "households": nums["households"], "buildings": nb,
        "area_m2": nums["area_m2"], "polsby_popper": nums["polsby_popper"],
        "street_share": nums["street_share"], "exclusive": np.asarray(labels.grid_exclusive, dtype=bool),
        "locked": False, "flags": [",".join(f) for f in labels.grid_flags],
    }, geometry=list(outlines), crs=inputs.layers.crs)
    if (bgrid < 0).any():  # a defect of the tessellation (locked grids in several communities: see tests)
        log.warning("partition: %d building(s) in no cell, given the first grid", int((bgrid < 0).sum()))
    grid_of = np.full(len(bgrid), None, dtype=object)
    if n:
        grid_of = np.array(ids, dtype=object)[np.maximum(bgrid, 0)]
    assignment = pd.Series(grid_of, index=building_ids.to_numpy(), name="grid_id")
    all_buildings = inputs.layers.buildings
    if len(inputs.locked.grids):
        grids, assignment = with_locked_grids(grids, assignment, inputs.locked, all_buildings)
    grids = numbered_grids(grids, inputs.layers.communities, scheme=spec.code_scheme,
                           code_options=spec.tunables.code_options)
    assignment = assignment.reindex(all_buildings["building_id"].to_numpy())
    assignment.index.name = "building_id"
    report = plan_report(grids, _infeasible(labels, free_ids), lo=spec.bounds.low, hi=spec.bounds.high)
    return PartitionResult(grids, assignment, report)
