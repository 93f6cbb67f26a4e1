"""Partition jobs on the durable queue (:mod:`api.jobs`): validate, submit, poll, cancel.

The job runs in a consumer thread or in ``wangge worker``; its state lives in the ``jobs``
table, so it survives restarts. The plan is written in one transaction at the end, together
with the job's "done", so a cancelled, failed or killed job leaves no plan behind. In that
transaction the job also builds the saved plan's state once: its grids' broken rules (the
plan card counts them) and the stored state every web process reads instead of building it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import geopandas as gpd
import pandas as pd
from flask import Flask, current_app, has_app_context
from sqlalchemy import func, select, type_coerce

from api import audit
from api import jobs as job_queue
from api.db import session_scope
from api.errors import RequestError
from api.jobs import Job, JobCancelled, JobContext, JobError
from api.models import WKB, PlanAssignment, PlanCell, PlanGrid
from api.plans.state import table_of
from api.plans.store import get_plan, previous_result, save_partition, stale_reason
from api.plans.summary import check_saved_plan
from api.workspace import load_layer, workspace_version

__all__ = ["Job", "JobCancelled", "PARTITION_KEYS", "partition_params", "submit_partition", "get_job",
           "cancel_job", "run_partition"]

log = logging.getLogger(__name__)

PARTITION_KEYS = ("min_households", "max_households", "target_households", "micro", "seed", "register_households")
_RUN_PARTITION = "api.plans.jobs:run_partition"


_STEPS = {"tessellate": "划分单元", "partition": "自动分组", "outlines": "生成网格边界"}


def partition_params(body: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Validated engine settings from a request *body* (400 naming the bad value)."""
    micro = body.get("micro", False)
    if not isinstance(micro, bool):
        raise RequestError(400, "bad_request", f"micro 须为 true/false：{micro!r}", "传布尔值")
    pre = "micro_grid" if micro else "grid"
    out: dict[str, Any] = {"micro": micro}
    for key, default in (("min_households", defaults[f"{pre}_min_households"]),
                         ("max_households", defaults[f"{pre}_max_households"]),
                         ("target_households", defaults[f"{pre}_target_households"]),
                         ("seed", defaults["partition_seed"])):
        value = body.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise RequestError(400, "bad_request", f"{key} 须为非负整数：{value!r}", f"例如 {key}={default}")
        out[key] = value
    lo, t, hi = out["min_households"], out["target_households"], out["max_households"]
    if not 0 < lo <= t <= hi:
        raise RequestError(400, "bad_bounds", f"户数设置须满足 0 < 下限 ≤ 目标 ≤ 上限：{lo}, {t}, {hi}",
                           "调整下限、目标、上限")
    register = body.get("register_households", defaults["partition_register_households"])
    if not isinstance(register, bool):
        raise RequestError(400, "bad_request", f"register_households 须为 true/false：{register!r}",
                           "true：有登记册住户的楼栋按登记册户数划分")
    out["register_households"] = register
    ids = body.get("community_ids")
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(c, str) for c in ids)):
        raise RequestError(400, "bad_request", f"community_ids 须为字符串数组：{ids!r}", "或省略以划分全部社区")
    out["community_ids"] = ids
    return out


def _progress(ctx: JobContext) -> Callable[[str, float], None]:
    def say(step: str, frac: float) -> None:
        ctx.progress(_STEPS.get(step, step), 0.05 + 0.85 * float(frac))

    return say


def _layers(session: Any, ids: list[str] | None, *, register: bool = False) -> dict[str, gpd.GeoDataFrame]:
    out = {"buildings": load_layer(session, "buildings", community_id=ids),
           "communities": load_layer(session, "communities", community_id=ids)}
    if register:  # real counts where the register has households (setting partition_register_households)
        from api.register.queries import household_counts
        from geo.households import households_from_register

        out["buildings"] = households_from_register(out["buildings"], household_counts(session))
    for kind in ("streets", "compounds"):
        out[kind] = load_layer(session, kind)
    if out["buildings"].empty:
        raise RequestError(409, "no_buildings", "工作区没有楼栋（或所选社区没有楼栋）", "先导入楼栋数据")
    return out


def _locked_cells(session: Any, base_id: int, locked: list[str]) -> tuple[gpd.GeoDataFrame, pd.Series]:
    t = table_of(PlanCell)
    rows = session.connection().execute(
        select(t.c.cell_id, t.c.community_id, t.c.grid_id, t.c.households, t.c.buildings,
               type_coerce(t.c.geometry, WKB)).where(t.c.plan_version_id == base_id,
                                                             t.c.grid_id.in_(locked))).all()
    import shapely

    cells = gpd.GeoDataFrame(pd.DataFrame([r[:-1] for r in rows], columns=["cell_id", "community_id", "grid_id",
                                                                           "households", "buildings"]),
                             geometry=shapely.from_wkb([bytes(r[-1]) for r in rows]), crs=4326)
    a = session.execute(select(PlanAssignment.building_id, PlanAssignment.cell_id)
                        .where(PlanAssignment.plan_version_id == base_id, PlanAssignment.grid_id.in_(locked))).all()
    return cells, pd.Series([c for _, c in a], index=[b for b, _ in a], name="cell_id")


def _with_stored_locked(result: Any, session: Any, base_id: int, locked: list[str]) -> Any:
    """Replace the engine's one-cell-per-locked-grid by the base plan's own cells of those grids."""
    import dataclasses

    if not locked:
        return result
    cells, bcell = _locked_cells(session, base_id, locked)
    keep = ~result.cells["cell_id"].astype(str).str.startswith("L:")
    free = result.cells[keep]
    clash = set(free["cell_id"]) & set(cells["cell_id"])
    if clash:
        free = free.assign(cell_id=[f"{c}~" if c in clash else c for c in free["cell_id"]])
    bc = result.building_cell[~result.building_cell.astype(str).str.startswith("L:")]
    bc = bc.map(lambda c: f"{c}~" if c in clash else c)
    return dataclasses.replace(result, cells=pd.concat([free, cells.to_crs(free.crs)], ignore_index=True),
                               building_cell=pd.concat([bc, bcell]))


def _plan_partition(ctx: JobContext, params: dict[str, Any],
                    base_id: int | None) -> tuple[Any, list[str], int | None]:
    from geo.partition import PartitionOptions, partition_grids

    ctx.progress("读取数据", 0.02)
    with session_scope(write=False) as session:
        layers = _layers(session, params["community_ids"], register=bool(params.get("register_households")))
        workspace = workspace_version(session)
        previous, locked = None, []
        if base_id is not None:
            previous = previous_result(session, base_id)
            locked = previous.grids.loc[previous.grids["locked"], "grid_id"].astype(str).tolist()
    settings = ctx.app.config["WANGGE"]
    result = partition_grids(
        layers["buildings"], layers["communities"], streets=layers["streets"],
        compounds=layers["compounds"], previous=previous, locked=locked,
        min_households=params["min_households"], max_households=params["max_households"],
        target_households=params["target_households"], micro=params["micro"], seed=params["seed"],
        exclusive_uses=settings["exclusive_uses"], code_scheme=settings["grid_code_scheme"],
        workers=settings["partition_workers"], shard_buildings=settings["partition_shard_buildings"],
        options=PartitionOptions.from_settings(settings), progress=_progress(ctx))
    return result, locked, workspace


def run_partition(ctx: JobContext, job: dict[str, Any]) -> None:
    """Job function: partition the workspace and save the plan and the job's end in one transaction."""
    params, name, base_id = job["params"], job["name"], job.get("base_plan_id")
    try:
        result, locked, workspace = _plan_partition(ctx, params, base_id)
    except (JobCancelled, RequestError):
        raise
    except Exception as exc:
        raise JobError(f"划分失败：{exc}") from exc
    ctx.check_cancelled()
    ctx.progress("保存方案", 0.92)
    with session_scope() as session:
        if base_id is not None:
            result = _with_stored_locked(result, session, base_id, locked)
        plan = save_partition(session, result, name=name, author=ctx.user, parent_id=base_id,
                              workspace=workspace, settings={**params, "report": _jsonable(result.report)},
                              message="重新划分（锁定网格保持不变）" if base_id else "自动划分")
        audit.record(session, user=ctx.user, action="plan.partition", target=f"plan:{plan.id}",
                     detail={"job": ctx.job_id, "grids": len(result.grids), "base": base_id,
                             "locked": locked, **{k: v for k, v in params.items() if k != "community_ids"}})
        # the rules and the state once, here, not in the first web requests (plan card, plan page)
        check_saved_plan(session, plan, current_app.config["WANGGE"],
                         also=() if plan.parent_id is None else (plan.parent_id,))
        ctx.complete(session, message=f"完成：{len(result.grids)} 个网格", plan_id=plan.id,
                     result={"plan_id": plan.id, "grids": len(result.grids)})


def _jsonable(report: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(report, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def _refuse_stale_locks(session: Any, base: Any) -> None:
    """409 when a stale plan has locked grids: their buildings are those of an older import."""
    if stale_reason(session, base) is None:
        return
    locked = session.scalar(select(func.count()).select_from(PlanGrid)
                            .where(PlanGrid.plan_version_id == base.id, PlanGrid.locked.is_(True)))
    if locked:
        raise RequestError(
            409, "stale_locked_grids", f"方案 {base.id} 已过时且有 {locked} 个锁定网格，锁定网格中的楼栋是旧数据的",
            f"先重新关联楼栋（POST /api/plans/{base.id}/rebase，锁定网格保留），再对新版本重新划分；"
            "或解锁这些网格后重新划分")


def submit_partition(app: Flask, *, user: str, params: dict[str, Any], name: str,
                     base_plan_id: int | None = None) -> Job:
    """Queue a partition job (a re-run of the unlocked grids of *base_plan_id* when given)."""
    if base_plan_id is not None:
        # inside a request: its own session (one connection per request), else a fresh app context
        with nullcontext() if has_app_context() else app.app_context(), session_scope(write=False) as session:
            base = get_plan(session, base_plan_id)
            if not session.scalar(select(PlanGrid.id).where(PlanGrid.plan_version_id == base_plan_id).limit(1)):
                raise RequestError(409, "empty_plan", f"方案 {base_plan_id} 没有网格", "先运行自动划分")
            _refuse_stale_locks(session, base)
    kind = "repartition" if base_plan_id else "partition"
    return job_queue.submit(app, kind, _RUN_PARTITION,
                            {"params": params, "name": name, "base_plan_id": base_plan_id}, user=user)


def get_job(job_id: str) -> Job:
    """The job *job_id* (fresh from the database) or a 404."""
    job = job_queue.get_job(job_id)
    if job is None:
        raise RequestError(404, "job_not_found", f"任务 {job_id} 不存在", "检查任务编号，或重新提交任务")
    return job


def cancel_job(job_id: str) -> Job:
    """Cancel job *job_id* (a queued job never starts; a running one stops at its next step)."""
    job = job_queue.cancel_job(job_id)
    if job is None:
        raise RequestError(404, "job_not_found", f"任务 {job_id} 不存在", "检查任务编号，或重新提交任务")
    return job
