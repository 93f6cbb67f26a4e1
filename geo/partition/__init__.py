"""Grid partitioning engine (issue 3): buildings → contiguous grids of bounded households.

Pipeline: :mod:`~geo.partition.planar` (numpy planar arrangement) →
:mod:`~geo.partition.cells` (street blocks, per-building cells grouped into compounds and
small blocks, node graph) → :mod:`~geo.partition.planner` (coarse units first, buildings
where the bounds need them) with :mod:`~geo.partition.solve` (feasibility, METIS) and
:mod:`~geo.partition.repair` (contiguity, ejection-chain bounds, smoothing) →
:mod:`~geo.partition.boundaries` (boundaries through open land redrawn by minimum cuts) →
:mod:`~geo.partition.report` (outlines traced from shared edges, per-grid numbers). One run
of it is :func:`geo.partition.pipeline.plan_layers`; :func:`partition_grids` runs it on
the whole district or on shards (:mod:`~geo.partition.shards`); the plan is a
:class:`~geo.partition.result.PartitionResult`.
"""

from __future__ import annotations

from geo.partition.engine import PartitionResult, partition_grids
from geo.partition.options import PartitionOptions
from geo.partition.solve import choose_k

__all__ = ["PartitionResult", "PartitionOptions", "partition_grids", "choose_k"]
