"""The service-circle analysis as a durable ``access`` job (:mod:`api.jobs`), and its stored result.

One analysis per import run and set of active plans (its *key*): the walk-network result,
the straight-line screening result and the zones (grids of the active plans, else
communities). :func:`run_access` computes it in a job worker (this process's threads or a
``wangge worker``) and writes it to ``instance/access/<key>.pickle`` in one atomic rename,
so a cancelled or killed job leaves no half-written file; any process then loads it.
The file is written by this service into its own instance folder and read back only from
there (never from an upload), like the database beside it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db import session_scope
from api.jobs import Job, JobContext, get_job, submit
from api.models import BackgroundJob, PlanGrid, PlanVersion
from api.workspace import load_layer, workspace_stats
from geo.access import AccessResult, service_circle_analysis
from geo.lifecircle import normalise_categories
from geo.maxcover import SiteSuggestion

__all__ = ["AccessState", "JOB_KIND", "analysis_key", "compute_state", "run_access", "stored_state",
           "analysis_job"]

log = logging.getLogger(__name__)

#: The ``kind`` of service-circle jobs in the ``jobs`` table.
JOB_KIND = "access"
_RUN_ACCESS = "api.access.analysis:run_access"
#: Bump when :class:`AccessState` changes shape: older stored results are then recomputed.
_FORMAT = 1


@dataclass
class AccessState:
    """The analysis of one import run and set of active plans: network result, screening result, zones."""

    key: tuple[Any, ...]
    network: AccessResult
    screening: AccessResult
    zones: gpd.GeoDataFrame | None
    zone_key: str
    zone_label: str
    plan_names: tuple[str, ...]
    seconds: float
    layers: dict[tuple[str, float, str], dict[str, Any]] = field(default_factory=dict)
    suggestions: dict[tuple[str, float, int], SiteSuggestion] = field(default_factory=dict)


def _active_grids(session: Session) -> tuple[gpd.GeoDataFrame | None, tuple[int, ...], tuple[str, ...]]:
    """Grids of the active (published) plans, or None when no plan is active."""
    plans = session.scalars(select(PlanVersion).where(PlanVersion.is_active.is_(True))
                            .order_by(PlanVersion.id)).all()
    if not plans:
        return None, (), ()
    rows = session.scalars(select(PlanGrid).where(
        PlanGrid.plan_version_id.in_([p.id for p in plans]))).all()
    rows = [g for g in rows if g.geometry is not None]
    if not rows:
        return None, (), ()
    grids = gpd.GeoDataFrame(
        {"grid_id": [g.grid_id for g in rows], "name": [g.name or g.code or g.grid_id for g in rows]},
        geometry=[g.geometry for g in rows], crs=4326)
    return grids, tuple(p.id for p in plans), tuple(p.name for p in plans)


def analysis_key(session: Session) -> tuple[Any, ...] | None:
    """``(import run id, active plan ids)`` of the workspace now; None when it has no buildings."""
    stats = workspace_stats(session)
    if stats["empty"]:
        return None
    _grids, plan_ids, _names = _active_grids(session)
    return ((stats.get("last_import") or {}).get("id"), plan_ids)


def compute_state(session: Session, settings: Mapping[str, Any], *,
                  progress: Callable[[str, float], None] = lambda message, fraction: None) -> AccessState:
    """The analysis of the workspace in *session* with the app's *settings* (minutes on a large district)."""
    started = time.perf_counter()
    grids, plan_ids, plan_names = _active_grids(session)
    key = ((workspace_stats(session).get("last_import") or {}).get("id"), plan_ids)
    progress("读取楼栋、道路和服务点", 0.05)
    buildings = load_layer(session, "buildings", columns=["households", "community_id"])
    streets = load_layer(session, "streets", columns=["road_class", "foot"])
    services = load_layer(session, "service_points", columns=["name", "category"])
    communities = load_layer(session, "communities", columns=["name"])
    services = services.assign(category=normalise_categories(services))
    options = {"levels_m": tuple(settings["walk_levels_m"]), "grids": grids,
               "communities": communities if grids is None else None}
    progress(f"沿步行网络计算 {len(buildings):,} 栋楼到各类设施的距离", 0.15)
    network = service_circle_analysis(
        buildings, streets, services, snap_tolerance_m=settings["walk_snap_tolerance_m"],
        max_snap_m=settings["walk_max_snap_m"],
        excluded_classes=tuple(settings["walk_excluded_road_classes"]), **options)
    progress("直线距离筛查", 0.85)
    screening = service_circle_analysis(buildings, streets, services, mode="euclidean", **options)
    zones, zone_key, zone_label = (grids, "grid_id", "网格") if grids is not None else (
        communities, "community_id", "社区")
    seconds = time.perf_counter() - started
    log.info("service circle for import %s: %d buildings, %d service points, %s in %.2f s",
             key[0], len(buildings), len(services), zone_label, seconds)
    return AccessState(key=key, network=network, screening=screening, zones=zones,
                       zone_key=zone_key, zone_label=zone_label, plan_names=plan_names,
                       seconds=seconds)


def _state_file(app: Flask, key: tuple[Any, ...]) -> Path:
    digest = hashlib.sha256(repr((_FORMAT, key)).encode()).hexdigest()[:24]
    return Path(app.instance_path) / "access" / f"{digest}.pickle"


def _write_atomically(path: Path, state: AccessState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            pickle.dump(state, out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def stored_state(app: Flask, key: tuple[Any, ...]) -> AccessState | None:
    """The stored analysis of *key*, or None when no job has finished it."""
    path = _state_file(app, key)
    if not path.is_file():
        return None
    with path.open("rb") as stored:
        state = pickle.load(stored)  # noqa: S301 - our own file in our instance folder (module docstring)
    return state if isinstance(state, AccessState) and state.key == key else None


def run_access(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """The ``access`` job: compute the analysis of the workspace as it is now and store it.

    *params*: ``key`` (as :func:`analysis_key` listed it; a workspace changed meanwhile is
    analysed as it is, under its new key).
    """
    with ctx.app.app_context(), session_scope(write=False) as session:
        state = compute_state(session, ctx.app.config["WANGGE"], progress=ctx.progress)
    ctx.check_cancelled()
    _write_atomically(_state_file(ctx.app, state.key), state)
    return {"message": f"生活圈分析完成：{len(state.network.buildings):,} 栋楼，用时 {state.seconds:.1f} 秒",
            "key": _json_key(state.key), "seconds": round(state.seconds, 2)}


def _json_key(key: tuple[Any, ...]) -> list[Any]:
    return [key[0], list(key[1])]


def analysis_job(app: Flask, key: tuple[Any, ...], *, user: str) -> Job:
    """The queued or running ``access`` job of *key*, else a new one (one job per key at a time)."""
    wanted = _json_key(key)
    with app.app_context(), session_scope(write=False) as session:
        pending = session.execute(select(BackgroundJob.id, BackgroundJob.params).where(
            BackgroundJob.kind == JOB_KIND, BackgroundJob.state.in_(("queued", "running")))
            .order_by(BackgroundJob.created_at)).all()
    job_id = next((i for i, params in pending if (params or {}).get("key") == wanted), None)
    found = get_job(job_id, app) if job_id is not None else None
    return found if found is not None else submit(app, JOB_KIND, _RUN_ACCESS, {"key": wanted}, user=user)
