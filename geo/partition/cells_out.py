"""Per-unit cell polygons of a partition: what the planner's manual edits move between grids.

A *cell* is one node of the :class:`~geo.partition.cells.Tessellation` (a building, a
whole compound, a run of exclusive buildings, an empty block) with the polygon of its
faces. Cells of a community tile it and share exact coordinates with their neighbours,
so a grid's outline is ``shapely.coverage_union_all`` of its cells: milliseconds, which
is what lets the planner app recompute a grid after every edit.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.partition.cells import Tessellation
from geo.partition.layers import PlanInputs
from geo.partition.locked import locked_cells
from geo.partition.report import grid_outlines
from geo.partition.result import CELL_COLUMNS, PartitionResult

__all__ = ["unit_cells", "with_cells"]

log = logging.getLogger(__name__)


def _node_ids(tess: Tessellation, building_ids: np.ndarray, comm_ids: np.ndarray) -> np.ndarray:
    """Stable cell ids: ``C:<smallest building id>``, ``E:<community>:<n>`` for empty cells."""
    m = len(tess.node_comm)
    ids = np.empty(m, dtype=object)
    bn = tess.building_node
    ok = bn >= 0
    df = pd.DataFrame({"n": bn[ok], "b": building_ids[ok]}).sort_values(["n", "b"]).drop_duplicates("n")
    ids[df["n"].to_numpy()] = ("C:" + df["b"].astype(str)).to_numpy()
    empty = np.flatnonzero(pd.isna(ids))
    for k, n in enumerate(empty.tolist()):
        ids[n] = f"E:{comm_ids[n]}:{k + 1}"
    return ids


def _node_grid_ids(tess: Tessellation, node_grid: np.ndarray, building_ids: np.ndarray,
                   assignment: pd.Series, cells_xy: np.ndarray, grids: gpd.GeoDataFrame) -> np.ndarray:
    """Grid id of every node: its buildings' grid, else the grid holding the node's anchor."""
    bn = tess.building_node
    ok = bn >= 0
    by_index: dict[int, str] = {}
    gid = assignment.reindex(building_ids[ok]).to_numpy(dtype=object)
    for g, i in zip(node_grid[bn[ok]].tolist(), gid.tolist(), strict=True):
        if g >= 0 and i is not None and i == i:
            by_index.setdefault(g, str(i))
    out = np.array([by_index.get(int(g)) for g in node_grid], dtype=object)
    todo = np.flatnonzero(pd.isna(out))
    if len(todo) and len(grids):
        tree = shapely.STRtree(grids.geometry.values)
        qi, qj = tree.query_nearest(shapely.points(cells_xy[todo]))
        out[todo[qi]] = grids["grid_id"].to_numpy()[qj]
    return out


def unit_cells(tess: Tessellation, node_grid: np.ndarray, *, building_ids: np.ndarray,
               community_ids: np.ndarray, assignment: pd.Series, grids_metric: gpd.GeoDataFrame,
               crs: Any) -> tuple[gpd.GeoDataFrame, pd.Series]:
    """Cells of the tessellation (metric *crs*) and the building → cell mapping.

    Parameters
    ----------
    tess : Tessellation
        The tessellation the plan was made on.
    node_grid : ndarray
        Grid index of every node (-1 outside any grid).
    building_ids : ndarray
        Building id of every building of the tessellation (its ``building_node`` order).
    community_ids : ndarray
        Community id per community index of the tessellation.
    assignment : Series
        building_id → grid_id of the plan.
    grids_metric : GeoDataFrame
        The plan's grids in *crs* (to name grids of cells without buildings).
    crs : CRS
        The metric CRS of the tessellation.

    Returns
    -------
    cells : GeoDataFrame
        ``CELL_COLUMNS`` in *crs*, one row per node inside a community.
    building_cell : Series
        building_id → cell_id.
    """
    m = len(tess.node_comm)
    polys = grid_outlines(tess, np.arange(m), m)
    comm = np.asarray(community_ids, dtype=object)[np.maximum(tess.node_comm, 0)]
    ids = _node_ids(tess, np.asarray(building_ids, dtype=object), comm)
    grid = _node_grid_ids(tess, node_grid, np.asarray(building_ids, dtype=object), assignment,
                          tess.node_xy, grids_metric)
    bn = tess.building_node
    nb = np.bincount(bn[bn >= 0], minlength=m)
    cells = gpd.GeoDataFrame({"cell_id": ids, "community_id": comm, "grid_id": grid,
                              "households": np.asarray(tess.node_households, dtype=np.int64),
                              "buildings": nb.astype(np.int64)}, geometry=list(polys), crs=crs)
    cells = cells[(tess.node_comm >= 0) & ~shapely.is_empty(cells.geometry.values)].reset_index(drop=True)
    building_cell = pd.Series(ids[np.maximum(bn, 0)], index=np.asarray(building_ids, dtype=object),
                              name="cell_id")[bn >= 0]
    building_cell.index.name = "building_id"
    log.info("unit cells: %d cells for %d buildings", len(cells), len(building_cell))
    return cells, building_cell


def with_cells(result: PartitionResult, tess: Tessellation, node_grid: np.ndarray,
               inputs: PlanInputs) -> PartitionResult:
    """*result* (metric, from :func:`~geo.partition.assemble.assemble`) with ``cells`` and
    ``building_cell`` filled in, in the CRS of ``result.grids``; locked grids are one cell each."""
    grids = result.grids
    cells, bcell = unit_cells(tess, node_grid, building_ids=inputs.free_buildings["building_id"].to_numpy(),
                              community_ids=inputs.free_communities["community_id"].astype(str).to_numpy(),
                              assignment=result.assignment, grids_metric=grids, crs=grids.crs)
    locked = grids[grids["locked"].astype(bool)]
    if len(locked):
        lc, lb = locked_cells(result.assignment, locked)
        cells = pd.concat([cells, lc], ignore_index=True)
        bcell = pd.concat([bcell, lb])
    return dataclasses.replace(result, cells=cells[CELL_COLUMNS], building_cell=bcell)
