"""One run of the engine on metric layers: cells, a plan per community, grids, cells out.

:func:`plan_layers` is the pipeline both :func:`geo.partition.engine.partition_grids`
(a district in one piece) and :mod:`geo.partition.shards` (each shard of a large district)
run: set locked grids aside, place buildings in communities, tessellate, plan every
community, cut the open land around the plan's off-street boundaries into a mesh
(:mod:`geo.partition.mesh`) and redraw the boundaries through it (:mod:`geo.partition.boundaries`),
assemble the grids and the building assignment, cut the unit cells.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from geo.partition.assemble import assemble, previous_assignment
from geo.partition.boundaries import redraw_boundaries
from geo.partition.cells import Barriers, Tessellation, tessellate
from geo.partition.cells_out import with_cells
from geo.partition.footprints import overlap_report
from geo.partition.layers import (
    MetricLayers,
    anchor_points,
    barriers_of,
    building_arrays,
    building_communities,
)
from geo.partition.locked import set_locked_aside
from geo.partition.mesh import meshed
from geo.partition.options import PlanSpec
from geo.partition.planner import Bounds, NodeLabels, plan_communities
from geo.partition.result import PartitionResult

__all__ = ["Progress", "plan_layers", "quiet"]

log = logging.getLogger(__name__)

#: Progress callback: step name and share done (0–1).
Progress = Callable[[str, float], None]


def quiet(step: str, share: float) -> None:
    """A progress callback that reports nothing."""


def _previous_node_labels(tess: Tessellation, building_ids: pd.Series,
                          previous: PartitionResult | pd.Series) -> np.ndarray:
    """Previous grid per node (majority of its buildings' previous grids, as an index), -1 when new."""
    pg = building_ids.map(previous_assignment(previous)).to_numpy(dtype=object)
    names = sorted({str(x) for x in pg if x is not None and x == x})
    code = {n: i for i, n in enumerate(names)}
    gi = np.array([code.get(str(x), -1) if x is not None and x == x else -1 for x in pg])
    out = np.full(len(tess.node_comm), -1)
    ok = (gi >= 0) & (tess.building_node >= 0)
    if ok.any():
        df = pd.DataFrame({"n": tess.building_node[ok], "g": gi[ok]})
        top = df.groupby(["n", "g"]).size().reset_index(name="c").sort_values(["n", "c", "g"],
                                                                              ascending=[True, False, True])
        top = top.drop_duplicates("n")
        out[top["n"].to_numpy()] = top["g"].to_numpy()
    return out


def _on_mesh(tess: Tessellation, labels: NodeLabels, barriers: Barriers, spec: PlanSpec) -> Tessellation:
    """The plan's cells with the open land around its off-street grid boundaries cut into a
    mesh (setting ``partition_redraw_mesh_m``, :mod:`geo.partition.mesh`), for the redraw;
    *tess* when there is no mesh. The nodes (and so the plan) are those of *tess*."""
    fine = meshed(tess, labels.node_grid, barriers.streets, step=spec.tunables.redraw_mesh_m,
                  near_m=spec.cell_options.near_m)
    if fine is None:
        log.warning("redraw mesh: the meshed cells do not match the plan's; redrawing without the mesh")
        return tess
    return fine


def plan_layers(layers: MetricLayers, spec: PlanSpec, *, previous: PartitionResult | pd.Series | None,
                locked: tuple[str, ...], say: Progress = quiet) -> PartitionResult:
    """The plan of every community of *layers*, grids and cells in the metric CRS of *layers*.

    Parameters
    ----------
    layers : MetricLayers
    spec : PlanSpec
    previous : PartitionResult or Series (building_id → grid_id), optional
        A plan to start from; grid ids are kept where most of their buildings stay.
    locked : tuple of str
        Grid ids of *previous* (a ``PartitionResult``) kept as they are.
    say : callable, optional
        Progress callback (step, share done).

    Returns
    -------
    PartitionResult
    """
    inputs = set_locked_aside(layers, previous, locked)
    free = inputs.free_buildings
    anchors = anchor_points(free)
    community = building_communities(free, inputs.free_communities, anchors, use_given=layers.communities_given)
    buildings = building_arrays(free, community, anchors, layers.compounds, spec.exclusive_uses)
    say("tessellate", 0.1)
    barriers = barriers_of(inputs.free_communities, layers.streets, layers.compounds)
    tess = tessellate(barriers, buildings, spec.cell_options)
    previous_nodes = None if previous is None else _previous_node_labels(tess, free["building_id"], previous)
    say("partition", 0.4)
    bounds = Bounds(spec.bounds.low, spec.bounds.high, spec.bounds.target, spec.seed,
                    spec.tunables.balance_budget)
    labels = plan_communities(tess, len(inputs.free_communities), bounds=bounds, previous=previous_nodes, say=say)
    tess = _on_mesh(tess, labels, barriers, spec)
    tess = redraw_boundaries(tess, labels.node_grid, street_cost=spec.tunables.redraw_cost_street)
    say("outlines", 0.8)
    result = assemble(tess, labels, inputs, previous, spec)
    assert tess.overlaps is not None and tess.overlap_area is not None and tess.overlap_merged is not None, \
        "tessellate records the footprint overlaps"
    overlaps = overlap_report(tess.overlaps, tess.overlap_area, tess.overlap_merged, free["building_id"].to_numpy())
    result = dataclasses.replace(result, report={**result.report, "overlapping_footprints": overlaps})
    return with_cells(result, tess, labels.node_grid, inputs)
