"""Batch printing of notice boards as a durable job (``api.jobs``): every grid, a street office or a community.

The job prints into ``instance/boards/<job id>/`` (one PDF/PNG per grid, ``boards-all.pdf``
and ``boards.zip``), records the printed versions and marks itself done in one transaction.
A cancelled or failed job leaves no folder behind.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from api import audit
from api.boards.jobs import photo_dir, select_grids
from api.boards.service import print_batch
from api.boards.sources import load_sources
from api.boards.versions import record_prints
from api.db import session_scope
from api.grids.service import GridNotFound
from api.jobs import JobContext, JobError
from api.jobs import queue as job_queue
from api.jobs.store import Job
from webmap.boards.render import ORIENTATIONS, SIZES

__all__ = ["BATCH_KIND", "DOWNLOADS", "FORMATS", "MAX_SELECTED", "SCOPES", "batch_folder", "batch_params", "submit_batch",
           "run_batch"]

log = logging.getLogger(__name__)

BATCH_KIND = "boards"
_RUN_BATCH = "api.boards.batch_job:run_batch"
#: What a batch covers: every active grid, one street office's or one community's.
SCOPES: dict[str, str] = {"all": "全部网格", "street": "按街道", "community": "按社区"}
FORMATS: dict[str, str] = {"pdf": "PDF", "png": "PNG", "both": "PDF 和 PNG"}
#: Most grids one ``scope=grids`` batch may name (the board list's selection).
MAX_SELECTED = 5000
#: Files of a finished batch users may download.
DOWNLOADS: tuple[str, ...] = ("boards.zip", "boards-all.pdf")


def batch_folder(instance_path: str, job_id: str) -> Path:
    """Output folder of batch job *job_id*."""
    return Path(instance_path) / "boards" / job_id


def _choice(body: Mapping[str, Any], name: str, allowed: Mapping[str, str] | tuple[str, ...] | list[str],
            default: str) -> str:
    value = str(body.get(name) or default)
    if value not in allowed:
        raise ValueError(f"{name}={value!r} 无效；可选：{'、'.join(allowed)}")
    return value


def _grid_list(body: Mapping[str, Any]) -> list[str]:
    """The ``grids`` of a ``scope=grids`` request: grid codes chosen on the board list, in order, once each."""
    grids = body.get("grids")
    if not isinstance(grids, list) or not grids or not all(isinstance(g, str) and g.strip() for g in grids):
        raise ValueError("scope=grids 需要 grids：所选网格编码的数组，例如 [\"320508001001001\"]")
    if len(grids) > MAX_SELECTED:
        raise ValueError(f"一次最多选 {MAX_SELECTED} 个网格，收到 {len(grids)} 个；改用 scope=all、street 或 community")
    return list(dict.fromkeys(g.strip() for g in grids))


def batch_params(body: Mapping[str, Any]) -> dict[str, Any]:
    """The checked parameters of a batch request (raises ``ValueError`` naming the bad field and the choices)."""
    scope = "grids" if body.get("scope") == "grids" else _choice(body, "scope", SCOPES, "all")
    target = str(body.get("target") or "").strip()
    if scope == "grids":
        return {**batch_params({**body, "scope": "all"}), "scope": "grids", "grids": _grid_list(body)}
    if scope != "all" and not target:
        raise ValueError(f"scope={scope} 需要 target：{'街道编号' if scope == 'street' else '社区编号'}")
    drafts = body.get("drafts", False)
    if not isinstance(drafts, bool):
        raise ValueError(f"drafts 须为 true 或 false，收到 {drafts!r}")
    return {"scope": scope, "target": target if scope != "all" else None,
            "size": _choice(body, "size", list(SIZES), "A3"),
            "orientation": _choice(body, "orientation", ORIENTATIONS, "portrait"),
            "format": _choice(body, "format", FORMATS, "pdf"), "drafts": drafts}


def _keys(session: Any, params: Mapping[str, Any]) -> list[str]:
    scope, target = params["scope"], params["target"]
    if scope == "grids":
        active = set(select_grids(session, every=True))
        unknown = [g for g in params["grids"] if g not in active]
        if unknown:
            raise GridNotFound(f"没有这些生效网格：{'、'.join(unknown[:10])}{' 等' if len(unknown) > 10 else ''}"
                               "；刷新公示牌列表后重新选择")
        return list(params["grids"])
    return select_grids(session, every=scope == "all", street=target if scope == "street" else None,
                        community=target if scope == "community" else None)


def submit_batch(app: Flask, *, user: str, params: dict[str, Any]) -> Job:
    """Queue a batch after checking its grids exist (``GridNotFound`` otherwise)."""
    with session_scope(write=False) as session:
        _keys(session, params)
    return job_queue.submit(app, BATCH_KIND, _RUN_BATCH, params, user=user)


def _say(ctx: JobContext, done: int, total: int) -> None:
    ctx.progress(f"已打印 {done} / {total} 块", 0.05 + 0.9 * done / max(1, total))


def run_batch(ctx: JobContext, params: dict[str, Any]) -> None:
    """Job function: print the boards, then record versions and finish in one transaction."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    settings = app.config["WANGGE"]
    out = batch_folder(app.instance_path, ctx.job_id)
    ctx.progress("读取网格与登记册", 0.01)
    try:
        with session_scope(write=False) as session:
            keys = _keys(session, params)
            src = load_sources(session, keys=keys)
        result = print_batch(src, keys, out, settings=settings, photo_dir=photo_dir(app.instance_path, settings),
                             size=params["size"], orientation=params["orientation"], fmt=params["format"],
                             drafts=bool(params["drafts"]), bundle=True,
                             progress=lambda done, total: _say(ctx, done, total))
        if not result.printed:
            raise JobError(f"所选 {len(keys)} 个网格都缺少必填内容，没有可打印的公示牌；补全登记册后重试，或勾选打印草稿")
        downloads = [name for name in DOWNLOADS if (out / name).is_file()]
        with session_scope() as session:
            record_prints(session, result.versions, size=params["size"], orientation=params["orientation"],
                          user=ctx.user)
            audit.record(session, user=ctx.user, action="boards.batch", target=f"job:{ctx.job_id}",
                         detail={**params, "printed": len(result.printed), "refused": len(result.refused)})
            ctx.complete(session, message=f"完成：{len(result.printed)} 块公示牌，{len(result.refused)} 个网格缺少必填内容",
                         result={"printed": len(result.printed), "refused": result.refused, "downloads": downloads})
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    log.info("board batch %s: %d printed, %d refused", ctx.job_id, len(result.printed), len(result.refused))

