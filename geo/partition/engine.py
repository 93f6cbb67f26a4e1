"""``partition_grids``: buildings → grids of bounded households, tiling every community.

Checks the inputs, brings them to metres and runs :func:`geo.partition.pipeline.plan_layers`
on the whole district, or on shards of whole communities (:mod:`geo.partition.shards`)
when it is large; the plan comes back in the buildings' CRS, locked grids exactly as they were.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import pandas as pd

from geo.partition.layers import (
    MetricLayers,
    anchor_points,
    building_communities,
    check_buildings,
    metric_crs,
    metric_layers,
)
from geo.partition.locked import check_locked, restore_locked
from geo.partition.options import HouseholdBounds, PartitionOptions, PlanSpec
from geo.partition.pipeline import Progress, plan_layers, quiet
from geo.partition.result import PartitionResult
from geo.partition.shards import partition_in_shards, plan_shards, resolve_workers
from geo.settings import DEFAULTS

__all__ = ["PartitionResult", "PartitionOptions", "partition_grids"]

log = logging.getLogger(__name__)

#: Metres added around the buildings' extent (beyond street_snap_m) when no communities are given.
_EXTENT_MARGIN_M = 20.0


def partition_grids(
    buildings: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame | None = None,
    *,
    streets: gpd.GeoDataFrame | None = None,
    compounds: gpd.GeoDataFrame | None = None,
    previous: PartitionResult | pd.Series | None = None,
    locked: Sequence[str] = (),
    min_households: int | None = None,
    max_households: int | None = None,
    target_households: int | None = None,
    micro: bool = False,
    seed: int = DEFAULTS["partition_seed"],
    exclusive_uses: Sequence[str] = DEFAULTS["exclusive_uses"],
    code_scheme: str = DEFAULTS["grid_code_scheme"],
    progress: Progress | None = None,
    workers: int = DEFAULTS["partition_workers"],
    shard_buildings: int = DEFAULTS["partition_shard_buildings"],
    options: PartitionOptions | None = None,
) -> PartitionResult:
    """Divide every community into contiguous grids of bounded households.

    Parameters
    ----------
    buildings : GeoDataFrame
        Canonical buildings (building_id, households; optional use, compound_id,
        community_id, exclusive) in any CRS.
    communities : GeoDataFrame, optional
        Canonical communities; without them the extent of the buildings is one community.
    streets, compounds : GeoDataFrame, optional
        Streets (road_class; ``major`` roads are the cheapest boundaries) and compounds.
    previous : PartitionResult or Series (building_id → grid_id), optional
        A plan to start from: kept where it satisfies the rules, repaired where not.
    locked : sequence of str
        Grid ids of *previous* that must not change (geometry and buildings).
    min_households, max_households, target_households : int, optional
        Bounds; default to the grid (or micro-grid when *micro*) settings.
    seed : int
        Random seed; the same inputs and seed give the same plan.
    workers : int
        Worker processes for large districts (0 = every core); the plan does not depend on it.
    shard_buildings : int
        Districts with more buildings than this (and more than one community) are planned
        in shards of whole communities of about this size (:mod:`geo.partition.shards`);
        0 plans everything in one piece.
    options : PartitionOptions, optional
        Cut costs, cell and repair tunables and the local metric CRS (settings
        ``partition_cost_*``, ``partition_street_near_m``, ``partition_whole_block_share``,
        ``partition_balance_budget``, ``street_snap_m``, ``local_crs``); build it with
        ``PartitionOptions.from_settings(settings)``. Default: the settings' defaults.

    Returns
    -------
    PartitionResult
    """
    check_buildings(buildings)
    bounds = HouseholdBounds.resolve(micro=micro, low=min_households, high=max_households,
                                     target=target_households)
    tunables = options or PartitionOptions()
    spec = PlanSpec(bounds, seed, tuple(exclusive_uses), code_scheme, tunables)
    locked = tuple(locked)
    crs = metric_crs(buildings, tunables.local_crs)
    metric = buildings.to_crs(crs).reset_index(drop=True)
    metric["building_id"] = metric["building_id"].astype(str)
    check_locked(previous, locked)
    layers = metric_layers(metric, communities, streets, compounds, crs=crs,
                           margin=tunables.street_snap_m + _EXTENT_MARGIN_M)
    say = progress or quiet
    sharded = bool(shard_buildings) and len(metric) > shard_buildings and communities is not None \
        and len(communities) > 1
    if sharded:
        result = _in_shards(layers, spec, previous, locked, workers=workers, shard_buildings=shard_buildings,
                            cells_crs=buildings.crs, say=say)
    else:
        result = plan_layers(layers, spec, previous=previous, locked=locked, say=say)
        cells = result.cells
        result = dataclasses.replace(result, cells=None if cells is None else cells.to_crs(buildings.crs))
    result = dataclasses.replace(result, grids=result.grids.to_crs(buildings.crs))
    return restore_locked(result, previous, locked)


def _in_shards(layers: MetricLayers, spec: PlanSpec, previous: Any, locked: tuple[str, ...], *, workers: int,
               shard_buildings: int, cells_crs: Any, say: Progress) -> PartitionResult:
    """A large district in shards of whole communities (:mod:`geo.partition.shards`)."""
    community = building_communities(layers.buildings, layers.communities, anchor_points(layers.buildings),
                                     use_given=True)
    shards = plan_shards(layers.communities, community, shard_buildings=shard_buildings)
    return partition_in_shards(layers, community, shards, spec, previous=previous, locked=locked,
                               workers=resolve_workers(workers), cells_crs=cells_crs, say=say)
