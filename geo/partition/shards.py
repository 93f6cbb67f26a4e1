"""Large partitions in shards of whole communities, run on every core.

Grids nest in communities (DOMAIN §2: no grid crosses a community boundary), and the
tessellation treats community outlines as walls, so communities are independent problems.
A district of many communities is cut into *shards* — runs of whole communities, in
Hilbert order so each shard is compact, of about ``partition_shard_buildings`` buildings —
and each shard is tessellated and planned on its own, in a pool of worker processes. The
shards are then stitched: grids, cells and the building assignment concatenated, grid
codes numbered once over the whole district (street and community numbers need every
community), and the report recomputed from the stitched grids.

Which communities fall in which shard depends only on the data and the shard size, never
on the number of workers, so a plan is the same on one core or eight. Smaller shards also
bound the memory a run needs: each worker holds one shard's arrangement at a time.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.errors import LayerError
from geo.partition.footprints import merge_overlap_reports
from geo.partition.layers import MetricLayers
from geo.partition.options import PlanSpec
from geo.partition.pipeline import Progress, plan_layers
from geo.partition.result import CELL_COLUMNS, PartitionResult, numbered_grids, plan_report

__all__ = ["Shard", "ShardJob", "plan_shards", "resolve_workers", "run_sharded", "partition_in_shards",
           "die_with_owner", "forkserver_context"]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
#: Seconds between a worker's checks that the process owning the pool still runs.
_WATCH_S = 0.5


@dataclass(frozen=True)
class Shard:
    """Whole communities (row positions in the communities layer) and their buildings."""

    communities: np.ndarray
    buildings: np.ndarray


def resolve_workers(workers: int) -> int:
    """Worker processes to use: *workers*, or every available core when 0."""
    if workers < 0:
        raise LayerError(f"partition_grids: workers must be ≥ 0 (0 = every core); got {workers}; "
                         "set partition_workers to 0 or a positive number")
    if workers:
        return workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def plan_shards(communities: gpd.GeoDataFrame, building_community: np.ndarray, *,
                shard_buildings: int) -> list[Shard]:
    """Group communities, in Hilbert order of their centres, into shards of ~*shard_buildings*.

    A community is never split; one larger than *shard_buildings* is a shard of its own.
    Returns one shard (everything) when the district is no larger than one shard.
    """
    n = len(communities)
    counts = np.bincount(building_community, minlength=n)
    if n < 2 or shard_buildings <= 0 or counts.sum() <= shard_buildings:
        return [Shard(np.arange(n), np.arange(len(building_community)))]
    centres = gpd.GeoSeries(shapely.point_on_surface(communities.geometry.values), crs=communities.crs)
    order = np.argsort(centres.hilbert_distance().to_numpy(), kind="stable")
    groups: list[list[int]] = [[]]
    filled = 0
    for ci in order.tolist():
        if filled and filled + counts[ci] > shard_buildings:
            groups.append([])
            filled = 0
        groups[-1].append(ci)
        filled += int(counts[ci])
    by_comm = np.argsort(building_community, kind="stable")
    start = np.searchsorted(building_community[by_comm], np.arange(n + 1))
    shards = []
    for g in groups:
        comms = np.sort(np.asarray(g, dtype=np.int64))
        members = np.sort(np.concatenate([by_comm[start[c]:start[c + 1]] for c in comms]))
        shards.append(Shard(comms, members))
    return shards


class _Nearby:
    """Rows of a layer touching some areas (a shard's communities); one tree for all shards."""

    def __init__(self, layer: gpd.GeoDataFrame | None) -> None:
        self.layer = layer
        self.tree = shapely.STRtree(layer.geometry.values) if layer is not None and not layer.empty else None

    def __call__(self, areas: np.ndarray) -> gpd.GeoDataFrame | None:
        if self.tree is None or self.layer is None:
            return self.layer
        return self.layer.iloc[np.unique(self.tree.query(areas, predicate="intersects")[1])]


@dataclass(frozen=True)
class ShardJob:
    """One shard's run of the pipeline: its layers (metric) and its part of a previous plan."""

    layers: MetricLayers
    spec: PlanSpec
    previous: PartitionResult | pd.Series | None
    locked: tuple[str, ...]
    cells_crs: Any  # the CRS the shard's cells are returned in (the input CRS)


def _previous_for(previous: PartitionResult | pd.Series | None, building_ids: pd.Index,
                  community_ids: set[str]) -> PartitionResult | pd.Series | None:
    if previous is None:
        return None
    if isinstance(previous, PartitionResult):
        grids = previous.grids[previous.grids["community_id"].astype(str).isin(community_ids)]
        a = previous.assignment
        return PartitionResult(grids, a[a.index.astype(str).isin(building_ids)], dict(previous.report))
    a = pd.Series(previous)
    return a[a.index.astype(str).isin(building_ids)]


def _shard_job(job: ShardJob) -> PartitionResult:
    """One shard planned by the pipeline, in a worker (or in-process)."""
    res = plan_layers(job.layers, job.spec, previous=job.previous, locked=job.locked)
    # cells are reprojected here, in parallel; grids stay metric for the district-wide codes
    return dataclasses.replace(res, cells=None if res.cells is None else res.cells.to_crs(job.cells_crs))


def _owner_gone(owner: int) -> bool:
    """True when process *owner* no longer runs (gone, or a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{owner}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[-1].split()[0] in (b"Z", b"X")
    except FileNotFoundError:
        return True
    except OSError:  # no procfs: fall back to a signal-0 probe
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            return True
        return False


def _watch_owner(owner: int, interval: float) -> None:
    while not _owner_gone(owner):
        time.sleep(interval)
    os._exit(1)  # noqa: SLF001 - no cleanup: the results have nobody to go to


def _die_with_parent(owner: int) -> None:
    """Worker initializer: end this worker when its forkserver (PR_SET_PDEATHSIG) or *owner* dies.

    A worker's parent is the forkserver, not the process that asked for the pool; a
    ``kill -9`` of that process must not leave workers computing for nobody (issue 16 §9).
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    threading.Thread(target=_watch_owner, args=(owner, _WATCH_S), name="shard-owner-watchdog",
                     daemon=True).start()


#: Public name of the worker initializer, for other process pools (e.g. notice-board batches).
die_with_owner = _die_with_parent


def forkserver_context(preload: list[str]) -> mp.context.BaseContext:
    """The start method of worker pools: a forkserver importing *preload* once (else spawn)."""
    # forkserver: workers fork from a clean server process, never from the caller (which
    # may be a threaded web server holding locks).
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(preload)
        return ctx
    return mp.get_context("spawn")


def _context() -> mp.context.BaseContext:
    return forkserver_context(["geo.partition.pipeline"])


def _locked_in(previous: PartitionResult | pd.Series | None, locked: tuple[str, ...],
               community_ids: set[str]) -> tuple[str, ...]:
    """The locked grids of *previous* that lie in one of *community_ids*."""
    if previous is None or not isinstance(previous, PartitionResult):
        return ()
    grids = previous.grids
    return tuple(g for g in locked
                 if grids.loc[grids["grid_id"] == g, "community_id"].astype(str).isin(community_ids).any())


def _jobs(shards: list[Shard], layers: MetricLayers, spec: PlanSpec, previous: PartitionResult | pd.Series | None,
          locked: tuple[str, ...], cells_crs: Any) -> Iterator[ShardJob]:
    """Every shard's job, made lazily (one shard's layers in memory at a time).

    ``layers.buildings`` carries each building's located ``community_id``, so a shard
    never has to locate buildings again.
    """
    near_streets, near_compounds = _Nearby(layers.streets), _Nearby(layers.compounds)
    for s in shards:
        communities = layers.communities.iloc[s.communities].reset_index(drop=True)
        buildings = layers.buildings.iloc[s.buildings].reset_index(drop=True)
        ids = set(communities["community_id"].astype(str))
        streets, compounds = near_streets(communities.geometry.values), near_compounds(communities.geometry.values)
        shard_layers = MetricLayers(buildings, communities,
                                    streets if streets is not None and not streets.empty else None,
                                    compounds if compounds is not None and not compounds.empty else None,
                                    layers.crs, communities_given=True)
        yield ShardJob(shard_layers, spec, _previous_for(previous, pd.Index(buildings["building_id"]), ids),
                       _locked_in(previous, locked, ids), cells_crs)


def run_sharded(jobs: Iterator[ShardJob], n_shards: int, *, workers: int, say: Progress) -> list[PartitionResult]:
    """``PartitionResult`` of every shard, in shard order (metric CRS, codes to be redone).

    With one worker the shards run in this process.
    """
    results: list[Any] = [None] * n_shards
    if workers <= 1:
        for i, job in enumerate(jobs):
            results[i] = _shard_job(job)
            say("partition", 0.1 + 0.7 * (i + 1) / n_shards)
        return results
    with ProcessPoolExecutor(max_workers=min(workers, n_shards), mp_context=_context(),
                             initializer=_die_with_parent, initargs=(os.getpid(),)) as pool:
        pending: dict[Future, int] = {}
        done_count = 0
        try:
            for i, job in enumerate(jobs):
                # keep at most two shards queued per worker: inputs are pickled when submitted
                while len(pending) >= 2 * workers:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for f in finished:
                        results[pending.pop(f)] = f.result()
                        done_count += 1
                        say("partition", 0.1 + 0.7 * done_count / n_shards)
                pending[pool.submit(_shard_job, job)] = i
            for f in list(pending):
                results[pending.pop(f)] = f.result()
                done_count += 1
                say("partition", 0.1 + 0.7 * done_count / n_shards)
        except BaseException:
            for f in pending:
                f.cancel()
            raise
    return results


def _stitch(parts: list[PartitionResult], layers: MetricLayers, spec: PlanSpec) -> PartitionResult:
    """One plan (metric grids, cells as the shards returned them) from every shard's plan."""
    grids = pd.concat([p.grids for p in parts], ignore_index=True)
    dup = grids["grid_id"].duplicated()
    if dup.any():  # ids are community-prefixed or a previous plan's: a clash is a bug, not bad input
        raise RuntimeError(f"partition_in_shards: grid id {grids.loc[dup, 'grid_id'].iloc[0]!r} "
                           "came out of two shards")
    grids = numbered_grids(grids, layers.communities, scheme=spec.code_scheme,
                           code_options=spec.tunables.code_options)
    infeasible: dict[str, list[str]] = {}
    for p in parts:
        infeasible.update(p.report.get("infeasible_communities", {}))
    assignment = pd.concat([p.assignment for p in parts]).reindex(layers.buildings["building_id"].to_numpy())
    assignment.index.name = "building_id"
    assignment.name = "grid_id"
    cells = pd.concat([p.cells for p in parts], ignore_index=True)[CELL_COLUMNS]
    building_cell = pd.concat([p.building_cell for p in parts])
    building_cell.index.name = "building_id"
    report = plan_report(grids, infeasible, lo=spec.bounds.low, hi=spec.bounds.high) | {"shards": len(parts)}
    report["overlapping_footprints"] = merge_overlap_reports(
        [p.report["overlapping_footprints"] for p in parts if "overlapping_footprints" in p.report])
    return PartitionResult(grids, assignment, report, cells=cells, building_cell=building_cell)


def partition_in_shards(layers: MetricLayers, building_community: np.ndarray, shards: list[Shard],
                        spec: PlanSpec, *, previous: PartitionResult | pd.Series | None,
                        locked: tuple[str, ...], workers: int, cells_crs: Any,
                        say: Progress) -> PartitionResult:
    """Plan every shard and stitch them into one ``PartitionResult``.

    Grids come back in the metric CRS of *layers* (codes numbered district-wide), cells in
    *cells_crs*. *building_community* is each building's community (row of
    ``layers.communities``).
    """
    located = layers.buildings.assign(
        community_id=layers.communities["community_id"].astype(str).to_numpy()[building_community])
    layers = dataclasses.replace(layers, buildings=located)
    log.info("partition: %d buildings in %d communities as %d shards on %d worker(s)",
             len(located), len(layers.communities), len(shards), workers)
    parts = run_sharded(_jobs(shards, layers, spec, previous, locked, cells_crs), len(shards), workers=workers,
                        say=say)
    say("outlines", 0.85)
    return _stitch(parts, layers, spec)
