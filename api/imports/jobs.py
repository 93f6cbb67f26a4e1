"""The import job of the import page, on the durable job queue (:mod:`api.jobs`).

A job runs :func:`geo.prepare.prepare_files` and :func:`api.workspace.import_workspace`
(exactly what ``wangge import`` runs) as an ``import`` job: persisted in the ``jobs`` table,
with progress, cancel, and a restart that marks a job killed mid-run failed. The rows and
the job's "done" commit in one transaction: a failed, cancelled or killed import leaves the
workspace, ``import_runs`` and the audit log as they were. ``GET /api/imports/jobs/<id>``
polls it; its report rows (one per problem) are the job's result.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db import session_scope
from api.error_text import geo_error_text
from api.errors import RequestError
from api.jobs import JobContext, JobError, cancel_job, get_job, submit
from api.jobs.store import Job
from api.models import BackgroundJob
from api.workspace import import_workspace, workspace_stats
from geo.errors import ValidationFailed, WanggeError
from geo.layers import SCHEMAS
from webmap.import_report import error_row, issue_rows

__all__ = ["COORD_SYSTEMS", "JOB_KIND", "import_options", "submit_import", "run_import", "import_job_json",
           "get_import_job", "cancel_import_job", "folder_in_use"]

log = logging.getLogger(__name__)

#: Coordinate systems of lon/lat input, as ``wangge import --coords``.
COORD_SYSTEMS: tuple[str, ...] = ("wgs84", "gcj02", "bd09", "cgcs2000")
#: The ``kind`` of import jobs in the ``jobs`` table.
JOB_KIND = "import"
#: Share of the progress bar taken by reading and validating (the rest is writing rows).
_PREPARE_SHARE = 0.5


def _bad(message: str, fix: str, field: str) -> RequestError:
    return RequestError(400, "bad_request", message, fix, field=field)


def _field_maps(raw: Any, kinds: set[str]) -> dict[str, dict[str, str]]:
    if raw in (None, {}):
        return {}
    if not isinstance(raw, dict):
        raise _bad(f"fields 须为 {{图层: {{原列名: 标准列名}}}}：{raw!r}", "在“列映射”中选择", "fields")
    out: dict[str, dict[str, str]] = {}
    for kind, pairs in raw.items():
        if kind not in kinds or not isinstance(pairs, dict):
            raise _bad(f"列映射的图层 {kind!r} 不在此次上传中", f"可选：{'、'.join(sorted(kinds))}", "fields")
        targets = {c.name for c in SCHEMAS[kind].columns}
        chosen = {str(s): str(d) for s, d in pairs.items() if d}
        wrong = sorted(d for d in chosen.values() if d not in targets)
        if wrong:
            raise _bad(f"{SCHEMAS[kind].label_zh}的列映射目标 {wrong} 不是标准列",
                       f"可选：{'、'.join(sorted(targets))}", "fields")
        twice = sorted({d for d in chosen.values() if list(chosen.values()).count(d) > 1})
        if twice:
            raise _bad(f"{SCHEMAS[kind].label_zh}有多列映射到同一标准列 {twice}", "每个标准列只选一个原列", "fields")
        if chosen:
            out[kind] = chosen
    return out


def import_options(body: Mapping[str, Any], kinds: set[str]) -> dict[str, Any]:
    """Validated ``prepare_files`` options from the JSON *body* (400 naming the form field)."""
    layers = body.get("layers") or {}
    if not isinstance(layers, dict) or not set(layers) <= kinds:
        raise _bad(f"layers 须为 {{图层: 文件内图层名}}，图层限于本次上传：{layers!r}", "在“文件内图层”中选择", "layers")
    coords = body.get("coords") or "wgs84"
    if coords not in COORD_SYSTEMS:
        raise _bad(f"坐标系统 {coords!r} 不可用", f"“经纬度坐标系统”可选：{'、'.join(COORD_SYSTEMS)}", "coords")
    crs = body.get("crs") or None
    if crs is not None and not isinstance(crs, str):
        raise _bad(f"crs 须为文字，如 EPSG:4547：{crs!r}", "在“坐标系（文件无坐标系时）”填写或留空", "crs")
    crs = crs.strip() or None if crs else None
    append = body.get("append", False)
    if not isinstance(append, bool):
        raise _bad(f"append 须为 true/false：{append!r}", "勾选或不勾选“追加到现有数据”", "append")
    return {"source_layers": {k: str(v) for k, v in layers.items() if v} or None,
            "field_maps": _field_maps(body.get("fields"), kinds) or None,
            "declared_crs": crs, "coord_system": coords, "append": append}


def _file_error(exc: WanggeError, names: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """A report row for an unreadable file: the user's own file name and the error's Chinese wording."""
    detail = str(exc)  # English, naming command-line options: the log keeps it, the page does not
    log.info("import file error: %s", detail)
    kind = next((k for k, n in names.items() if n["saved"] in detail), None)
    _code, text = geo_error_text(exc)
    name = names[kind]["original"] if kind is not None else "上传的文件"
    return error_row(kind, f"{name}：{text.message or detail}", text.fix)


def _failed(reason: str, issues: list[dict[str, Any]]) -> JobError:
    return JobError(f"导入未完成，未写入任何数据：{reason}", result={"issues": issues})


def _prepare(ctx: JobContext, folder: Path, names: dict[str, dict[str, str]], options: dict[str, Any]) -> Any:
    from geo.prepare import prepare_files  # heavy: load when a job runs

    ctx.progress(f"读取并校验 {len(names)} 个文件", 0.05)
    paths = {kind: folder / n["saved"] for kind, n in names.items()}
    try:
        return prepare_files(paths, settings=ctx.app.config["WANGGE"], **options)
    except ValidationFailed as exc:
        report = getattr(exc, "report", None)
        raise _failed(f"发现 {len(exc.issues)} 个阻断问题",
                      issue_rows(report.issues if report is not None else exc.issues)) from exc
    except WanggeError as exc:
        raise _failed("文件无法读取", [_file_error(exc, names)]) from exc


def _summary(session: Session, summary: Any, prepared: Any) -> dict[str, Any]:
    stats = workspace_stats(session)
    return {"import_run_id": summary.import_run_id, "counts": summary.counts,
            "labels": {k: SCHEMAS[k].label_zh for k in summary.counts},
            "households": stats["households"], "warnings": summary.warnings,
            "repaired": summary.repaired, "seconds": round(summary.seconds, 1),
            "approximate_communities": list(getattr(prepared, "approximate_communities", ()))}


def run_import(ctx: JobContext, params: dict[str, Any]) -> None:
    """The ``import`` job: read, validate and store one upload; the report rows are its result.

    *params*: ``folder`` (the upload folder), ``names`` (kind -> original and saved file
    name), ``options`` (:func:`import_options`), ``append``.
    """
    folder, names, options = Path(params["folder"]), params["names"], dict(params["options"])
    prepared = _prepare(ctx, folder, names, options)
    issues = issue_rows([*prepared.report.repaired, *prepared.report.warnings])
    total = sum(len(g) for g in prepared.layers.values())
    ctx.progress(f"写入数据库：共 {total:,} 个要素", _PREPARE_SHARE)
    sources = {"kind": "files", "via": "web", "files": {k: n["original"] for k, n in names.items()},
               "layers": options["source_layers"] or {}, "fields": options["field_maps"] or {},
               "crs": options["declared_crs"], "coords": options["coord_system"]}
    try:
        with ctx.app.app_context(), session_scope() as session:
            summary = import_workspace(session, prepared, user=ctx.user, sources=sources,
                                       replace=not params["append"], note=None)
            ctx.complete(session, message=f"导入完成：共 {total:,} 个要素",
                         result={"issues": issues, "summary": _summary(session, summary, prepared),
                                 "rows_total": total, "rows_done": total})
    except WanggeError as exc:  # e.g. appending ids the workspace already has; the transaction rolled back
        log.info("import job %s refused storing: %s", ctx.job_id, exc)
        raise _failed("写入失败，已全部撤销", [error_row(
            None, f"写入失败：{geo_error_text(exc)[1].message or exc}",
            "追加导入时编号不能与工作区已有要素重复；修改编号，或取消“追加到现有数据”以替换工作区")]) from exc
    shutil.rmtree(folder, ignore_errors=True)


def _active_imports(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(select(BackgroundJob.params).where(
        BackgroundJob.kind == JOB_KIND, BackgroundJob.state.in_(("queued", "running")))).all()
    return [dict(p or {}) for p in rows]


def folder_in_use(folder: Path) -> bool:
    """True while a queued or running import job reads *folder*."""
    with session_scope(write=False) as session:
        return any(p.get("folder") == str(folder) for p in _active_imports(session))


def submit_import(app: Flask, *, user: str, folder: Path, names: dict[str, dict[str, str]],
                  body: Mapping[str, Any]) -> Job:
    """Validate the options in *body* and queue the import of the files in *folder* (409 while one runs).

    A failed job keeps its folder for a retry with other options; a successful one deletes it.
    """
    options = import_options(body, set(names))
    append = options.pop("append")
    if "buildings" not in names:
        raise _bad("此次上传没有楼栋文件", "重新上传，包含“楼栋”文件", "buildings")
    if folder_in_use(folder):
        raise RequestError(409, "import_running", "这次上传的文件正在导入中", "等待当前导入完成后再试")
    params = {"folder": str(folder), "names": names, "options": options, "append": append}
    job = submit(app, JOB_KIND, "api.imports.jobs:run_import", params, user=user)
    log.info("import job %s queued by %s (%s)", job.job_id, user, ", ".join(names))
    return job


def import_job_json(job: Job) -> dict[str, Any]:
    """The polling shape of the import page: state, progress, message, issues, summary, rows."""
    result = job.result or {}
    return {**job.json(), "issues": result.get("issues", []), "summary": result.get("summary"),
            "rows_total": result.get("rows_total", 0), "rows_done": result.get("rows_done", 0)}


def get_import_job(job_id: str, *, user: str) -> Job:
    """The import job *job_id* of *user*, or a 404."""
    job = get_job(job_id)
    if job is None or job.kind != JOB_KIND or job.user != user:
        raise RequestError(404, "job_not_found", f"导入任务 {job_id} 不存在", "重新上传文件并导入")
    return job


def cancel_import_job(job_id: str, *, user: str) -> Job:
    """Cancel *user*'s import job *job_id* (queued: at once; running: before it writes)."""
    get_import_job(job_id, user=user)
    job = cancel_job(job_id)
    assert job is not None
    return job
