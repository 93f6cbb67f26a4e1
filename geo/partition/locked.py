"""Locked grids: set aside before planning, added back as they were (geometry and buildings)."""

from __future__ import annotations

import dataclasses
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.errors import LayerError
from geo.partition.layers import LockedPart, MetricLayers, PlanInputs, anchor_points, locate
from geo.partition.result import PartitionResult

__all__ = ["check_locked", "set_locked_aside", "with_locked_grids", "locked_cells", "restore_locked"]


def check_locked(previous: PartitionResult | pd.Series | None, locked: tuple[str, ...]) -> None:
    """Raise :class:`~geo.errors.LayerError` unless every locked grid is a grid of *previous*."""
    if not locked:
        return
    if not isinstance(previous, PartitionResult):
        raise LayerError("partition_grids: locked grids need previous=PartitionResult (their outlines)")
    missing = sorted(set(locked) - set(previous.grids["grid_id"]))
    if missing:
        raise LayerError(f"partition_grids: locked grid id(s) {missing[:5]} are not in the previous plan")


def set_locked_aside(layers: MetricLayers, previous: Any, locked: tuple[str, ...]) -> PlanInputs:
    """The locked grids (metric) and their buildings, apart from the buildings and communities left to plan.

    A locked grid keeps the buildings it had, and any building whose anchor it holds.
    """
    buildings, communities = layers.buildings, layers.communities
    if not locked:
        part = LockedPart(gpd.GeoDataFrame(columns=["grid_id", "geometry"], geometry="geometry", crs=layers.crs),
                          pd.Series(dtype=object))
        return PlanInputs(layers, buildings, communities, part)
    grids = previous.grids[previous.grids["grid_id"].isin(locked)].to_crs(layers.crs).reset_index(drop=True)
    by_previous = buildings["building_id"].map(previous.assignment.astype(str))
    anchors = anchor_points(buildings)
    inside = locate(anchors, grids.geometry.values, None)
    within = shapely.contains_xy(grids.geometry.values[inside], *anchors.T)
    grid_id = np.where(by_previous.isin(locked), by_previous,
                       np.where(within, grids["grid_id"].to_numpy()[inside], None))
    assignment = pd.Series(grid_id, index=buildings["building_id"]).dropna()
    free_communities = communities.copy()
    free_communities["geometry"] = shapely.difference(communities.geometry.values,
                                                      shapely.union_all(grids.geometry.values))
    free_communities = free_communities[~free_communities.geometry.is_empty].reset_index(drop=True)
    free = ~buildings["building_id"].isin(assignment.index)
    return PlanInputs(layers, buildings[free.to_numpy()].reset_index(drop=True), free_communities,
                      LockedPart(grids, assignment))


def with_locked_grids(grids: gpd.GeoDataFrame, assignment: pd.Series, part: LockedPart,
                      buildings: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, pd.Series]:
    """*grids* and *assignment* with the locked grids and their buildings added (flag ``locked``)."""
    households = pd.to_numeric(buildings.set_index("building_id")["households"])
    rows = []
    for r in part.grids.itertuples(index=False):
        members = part.assignment.index[part.assignment == r.grid_id]
        rows.append({"grid_id": r.grid_id, "community_id": str(r.community_id),
                     "households": int(households.reindex(members).sum()), "buildings": len(members),
                     "area_m2": float(r.geometry.area), "polsby_popper": float(r.polsby_popper),
                     "street_share": float(r.street_share), "exclusive": bool(r.exclusive), "locked": True,
                     "flags": "locked", "geometry": r.geometry})
    extra = gpd.GeoDataFrame(rows, geometry="geometry", crs=grids.crs)
    return pd.concat([grids, extra], ignore_index=True), pd.concat([assignment, part.assignment])


def locked_cells(assignment: pd.Series, locked_grids: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, pd.Series]:
    """One cell per locked grid (its outline, id ``L:<grid_id>``), holding all of its buildings."""
    ids = ("L:" + locked_grids["grid_id"].astype(str)).to_numpy()
    cells = gpd.GeoDataFrame({"cell_id": ids, "community_id": locked_grids["community_id"].astype(str).to_numpy(),
                              "grid_id": locked_grids["grid_id"].astype(str).to_numpy(),
                              "households": locked_grids["households"].astype(np.int64).to_numpy(),
                              "buildings": locked_grids["buildings"].astype(np.int64).to_numpy()},
                             geometry=locked_grids.geometry.values, crs=locked_grids.crs)
    a = assignment.dropna().astype(str)
    a = a[a.isin(set(locked_grids["grid_id"].astype(str)))]
    return cells, pd.Series("L:" + a.to_numpy(), index=a.index, name="cell_id")


def restore_locked(result: PartitionResult, previous: Any, locked: tuple[str, ...]) -> PartitionResult:
    """Locked grids (and their cells) with the previous plan's exact geometry.

    The plan is made in metres; a grid that went there and back from, say, WGS84 would
    differ in the last bits, and "untouched" means untouched.
    """
    if not locked:
        return result
    before = previous.grids.set_index("grid_id").geometry.to_crs(result.grids.crs)
    grids = result.grids.copy()
    rows = grids["grid_id"].isin(locked).to_numpy()
    grids.loc[rows, "geometry"] = before.reindex(grids.loc[rows, "grid_id"]).to_numpy()
    cells = result.cells
    if cells is not None:
        cells = cells.copy()
        rows = cells["cell_id"].str.startswith("L:").to_numpy()
        cells.loc[rows, "geometry"] = before.reindex(cells.loc[rows, "grid_id"]).to_numpy()
    return dataclasses.replace(result, grids=grids, cells=cells)
