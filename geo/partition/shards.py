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
import logging
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.errors import LayerError

__all__ = ["Shard", "plan_shards", "resolve_workers", "run_sharded", "partition_in_shards", "die_with_owner",
           "forkserver_context"]

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
        if self.tree is None:
            return self.layer
        return self.layer.iloc[np.unique(self.tree.query(areas, predicate="intersects")[1])]


def _previous_for(previous: Any, building_ids: pd.Index, community_ids: set[str]) -> Any:
    if previous is None:
        return None
    from geo.partition.engine import PartitionResult

    if isinstance(previous, PartitionResult):
        grids = previous.grids[previous.grids["community_id"].astype(str).isin(community_ids)]
        a = previous.assignment
        return PartitionResult(grids, a[a.index.astype(str).isin(building_ids)], dict(previous.report))
    a = pd.Series(previous)
    return a[a.index.astype(str).isin(building_ids)]


def _shard_job(job: dict[str, Any]) -> Any:
    """One shard, planned in a worker (or in-process) with sharding switched off."""
    import dataclasses

    from geo.partition.engine import partition_grids

    cells_crs = job.pop("cells_crs")
    res = partition_grids(job.pop("buildings"), job.pop("communities"), shard_buildings=0, workers=1,
                          **job)
    # cells are reprojected here, in parallel; grids stay metric for the district-wide codes
    return dataclasses.replace(res, cells=res.cells.to_crs(cells_crs))


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
    return forkserver_context(["geo.partition.engine"])


def _jobs(shards: list[Shard], bm: gpd.GeoDataFrame, cm: gpd.GeoDataFrame,
          streets: gpd.GeoDataFrame | None, compounds: gpd.GeoDataFrame | None, previous: Any,
          locked: Sequence[str], options: dict[str, Any]):
    """The keyword arguments of every shard's run, made lazily (one shard in memory at a time)."""
    near_streets, near_compounds = _Nearby(streets), _Nearby(compounds)
    for s in shards:
        cs = cm.iloc[s.communities]
        b = bm.iloc[s.buildings]
        ids = set(cs["community_id"].astype(str))
        lk = [g for g in locked if previous is not None
              and (previous.grids.loc[previous.grids["grid_id"] == g, "community_id"].astype(str)
                   .isin(ids).any())]
        yield {"buildings": b, "communities": cs, "streets": near_streets(cs.geometry.values),
               "compounds": near_compounds(cs.geometry.values),
               "previous": _previous_for(previous, pd.Index(b["building_id"].astype(str)), ids),
               "locked": lk, **options}


def run_sharded(shards: list[Shard], bm: gpd.GeoDataFrame, cm: gpd.GeoDataFrame, *,
                streets: gpd.GeoDataFrame | None, compounds: gpd.GeoDataFrame | None, previous: Any,
                locked: Sequence[str], workers: int, options: dict[str, Any],
                say: Callable[[str, float], None]) -> list[Any]:
    """``PartitionResult`` of every shard, in shard order (metric CRS, codes to be redone).

    *bm* carries a ``community_id`` per building (its located community) so a shard never
    has to locate buildings again. With one worker the shards run in this process.
    """
    jobs = _jobs(shards, bm, cm, streets, compounds, previous, locked, options)
    results: list[Any] = [None] * len(shards)
    if workers <= 1:
        for i, job in enumerate(jobs):
            results[i] = _shard_job(job)
            say("partition", 0.1 + 0.7 * (i + 1) / len(shards))
        return results
    with ProcessPoolExecutor(max_workers=min(workers, len(shards)), mp_context=_context(),
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
                        say("partition", 0.1 + 0.7 * done_count / len(shards))
                pending[pool.submit(_shard_job, job)] = i
            for f in list(pending):
                results[pending.pop(f)] = f.result()
                done_count += 1
                say("partition", 0.1 + 0.7 * done_count / len(shards))
        except BaseException:
            for f in pending:
                f.cancel()
            raise
    return results


def partition_in_shards(bm: gpd.GeoDataFrame, in_crs: Any, cm: gpd.GeoDataFrame, bcomm: np.ndarray,
                        shards: list[Shard], *, streets: gpd.GeoDataFrame | None,
                        compounds: gpd.GeoDataFrame | None, previous: Any, locked: Sequence[str],
                        workers: int, lo: int, hi: int, code_scheme: str, options: dict[str, Any],
                        say: Callable[[str, float], None]) -> Any:
    """Plan every shard and stitch them into one ``PartitionResult`` (grids in *in_crs*).

    *bm*, *cm*, *streets* and *compounds* are in the metric CRS; *bcomm* is each building's
    community (row of *cm*).
    """
    from geo.codes import grid_codes
    from geo.partition.assemble import PLAN_COLUMNS, plan_report
    from geo.partition.cells_out import CELL_COLUMNS
    from geo.partition.engine import PartitionResult
    from geo.partition.footprints import merge_overlap_reports

    located = bm.assign(community_id=cm["community_id"].astype(str).to_numpy()[bcomm])
    log.info("partition: %d buildings in %d communities as %d shards on %d worker(s)",
             len(bm), len(cm), len(shards), workers)
    options = {**options, "min_households": lo, "max_households": hi, "code_scheme": code_scheme,
               "cells_crs": in_crs}
    parts = run_sharded(shards, located, cm, streets=streets, compounds=compounds, previous=previous,
                        locked=locked, workers=workers, options=options, say=say)
    say("outlines", 0.85)
    grids = pd.concat([p.grids for p in parts], ignore_index=True)
    dup = grids["grid_id"].duplicated()
    if dup.any():  # ids are community-prefixed or a previous plan's: a clash is a bug, not bad input
        raise RuntimeError(f"partition_in_shards: grid id {grids.loc[dup, 'grid_id'].iloc[0]!r} "
                           "came out of two shards")
    opts = options.get("options")
    grids["code"] = grid_codes(grids, cm, scheme=code_scheme,
                               **(opts.code_options if opts is not None else {})).to_numpy()
    grids = grids[PLAN_COLUMNS].sort_values(["community_id", "code"]).reset_index(drop=True)
    infeasible: dict[str, list[str]] = {}
    for p in parts:
        infeasible.update(p.report.get("infeasible_communities", {}))
    assignment = pd.concat([p.assignment for p in parts]).reindex(bm["building_id"].to_numpy())
    assignment.index.name = "building_id"
    assignment.name = "grid_id"
    cells = pd.concat([p.cells for p in parts], ignore_index=True)[CELL_COLUMNS]
    building_cell = pd.concat([p.building_cell for p in parts])
    building_cell.index.name = "building_id"
    report = plan_report(grids, infeasible, lo=lo, hi=hi) | {"shards": len(shards)}
    report["overlapping_footprints"] = merge_overlap_reports(
        [p.report["overlapping_footprints"] for p in parts if "overlapping_footprints" in p.report])
    return PartitionResult(grids.to_crs(in_crs), assignment, report, cells=cells,
                           building_cell=building_cell)
