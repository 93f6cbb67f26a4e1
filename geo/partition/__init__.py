"""Grid partitioning engine (issue 3): buildings → contiguous grids of bounded households.

Pipeline: :mod:`~geo.partition.planar` (numpy planar arrangement) →
:mod:`~geo.partition.cells` (street blocks, per-building cells grouped into compounds and
small blocks, node graph) → :mod:`~geo.partition.planner` (coarse units first, buildings
where the bounds need them) with :mod:`~geo.partition.solve` (feasibility, METIS) and
:mod:`~geo.partition.repair` (contiguity, ejection-chain bounds, smoothing) → :mod:`~geo.partition.report`
(outlines traced from shared edges, per-grid numbers).
"""

from __future__ import annotations

from geo.partition.engine import PartitionResult, partition_grids
from geo.partition.options import PartitionOptions
from geo.partition.solve import choose_k

__all__ = ["PartitionResult", "PartitionOptions", "partition_grids", "choose_k"]
