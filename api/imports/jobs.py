"""Background import jobs of the import page: progress, report, nothing written on failure.

A job runs :func:`geo.prepare.prepare_files` and :func:`api.workspace.import_workspace`
(exactly what ``wangge import`` runs) in a one-thread pool; ``GET /api/imports/jobs/<id>``
polls it. The rows go in within one transaction: a failure at any step leaves the
workspace, ``import_runs`` and the audit log as they were. A restart forgets jobs.
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask

from api.db import session_scope
from api.workspace import import_workspace, workspace_stats
from geo.errors import ValidationFailed, WanggeError
from geo.layers import SCHEMAS
from webmap.import_report import error_row, issue_rows

__all__ = ["ImportJob", "ImportRequestError", "COORD_SYSTEMS", "import_options", "submit_import",
           "get_import_job", "folder_in_use"]

log = logging.getLogger(__name__)

_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wangge-import")
_JOBS: dict[str, ImportJob] = {}
_LOCK = threading.Lock()
#: Upload folders of queued or running jobs: a new upload must not delete them.
_BUSY: set[Path] = set()
#: Coordinate systems of lon/lat input, as ``wangge import --coords``.
COORD_SYSTEMS: tuple[str, ...] = ("wgs84", "gcj02", "bd09", "cgcs2000")
#: Share of the progress bar taken by reading and validating (the rest is inserting rows).
_PREPARE_SHARE = 0.5


class ImportRequestError(Exception):
    """A request the import routes refuse: HTTP status, code, Chinese message and fix."""

    def __init__(self, status: int, code: str, message: str, fix: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fix = status, code, message, fix


@dataclass
class ImportJob:
    """One import (state: queued, running, done, failed) and what it found."""

    job_id: str
    user: str
    state: str = "queued"
    progress: float = 0.0
    message: str = "排队中"
    issues: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    rows_total: int = 0
    rows_done: int = 0

    def json(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "state": self.state, "progress": round(self.progress, 3),
                "message": self.message, "issues": self.issues, "summary": self.summary,
                "rows_total": self.rows_total, "rows_done": self.rows_done}


def _bad(message: str, fix: str) -> ImportRequestError:
    return ImportRequestError(400, "bad_request", message, fix)


def _field_maps(raw: Any, kinds: set[str]) -> dict[str, dict[str, str]]:
    if raw in (None, {}):
        return {}
    if not isinstance(raw, dict):
        raise _bad(f"fields 须为 {{图层: {{原列名: 标准列名}}}}：{raw!r}", "在“列映射”中选择")
    out: dict[str, dict[str, str]] = {}
    for kind, pairs in raw.items():
        if kind not in kinds or not isinstance(pairs, dict):
            raise _bad(f"列映射的图层 {kind!r} 不在此次上传中", f"可选：{'、'.join(sorted(kinds))}")
        targets = {c.name for c in SCHEMAS[kind].columns}
        chosen = {str(s): str(d) for s, d in pairs.items() if d}
        wrong = sorted(d for d in chosen.values() if d not in targets)
        if wrong:
            raise _bad(f"{SCHEMAS[kind].label_zh}的列映射目标 {wrong} 不是标准列",
                       f"可选：{'、'.join(sorted(targets))}")
        twice = sorted({d for d in chosen.values() if list(chosen.values()).count(d) > 1})
        if twice:
            raise _bad(f"{SCHEMAS[kind].label_zh}有多列映射到同一标准列 {twice}", "每个标准列只选一个原列")
        if chosen:
            out[kind] = chosen
    return out


def import_options(body: Mapping[str, Any], kinds: set[str]) -> dict[str, Any]:
    """Validated ``prepare_files`` options from the JSON *body* (400 naming the form field)."""
    layers = body.get("layers") or {}
    if not isinstance(layers, dict) or not set(layers) <= kinds:
        raise _bad(f"layers 须为 {{图层: 文件内图层名}}，图层限于本次上传：{layers!r}", "在“文件内图层”中选择")
    coords = body.get("coords") or "wgs84"
    if coords not in COORD_SYSTEMS:
        raise _bad(f"坐标系统 {coords!r} 不可用", f"“经纬度坐标系统”可选：{'、'.join(COORD_SYSTEMS)}")
    crs = body.get("crs") or None
    if crs is not None and not isinstance(crs, str):
        raise _bad(f"crs 须为文字，如 EPSG:4547：{crs!r}", "在“坐标系（文件无坐标系时）”填写或留空")
    crs = crs.strip() or None if crs else None
    append = body.get("append", False)
    if not isinstance(append, bool):
        raise _bad(f"append 须为 true/false：{append!r}", "勾选或不勾选“追加到现有数据”")
    return {"source_layers": {k: str(v) for k, v in layers.items() if v} or None,
            "field_maps": _field_maps(body.get("fields"), kinds) or None,
            "declared_crs": crs, "coord_system": coords, "append": append}


def _file_error(exc: WanggeError, names: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """A report row for an unreadable file, naming the user's own file name."""
    message, kind = str(exc), None
    for k, n in names.items():
        if n["saved"] in message:
            message, kind = message.replace(n["saved"], n["original"]), k
    return error_row(kind, f"文件无法读取或无法识别坐标：{message}",
                     "检查文件格式、所选“文件内图层”和“坐标系（文件无坐标系时）”后重新导入")


def _store(app: Flask, job: ImportJob, prepared: Any, sources: dict[str, Any], append: bool) -> None:
    job.rows_total = sum(len(g) for g in prepared.layers.values())
    job.message, job.progress = "写入数据库", _PREPARE_SHARE

    def inserted(n: int) -> None:
        job.rows_done += int(n)
        job.progress = _PREPARE_SHARE + (1 - _PREPARE_SHARE) * 0.98 * job.rows_done / max(job.rows_total, 1)

    with app.app_context():
        with session_scope() as session:
            summary = import_workspace(session, prepared, user=job.user, sources=sources, replace=not append,
                                       note=None, progress=inserted)
        with session_scope() as session:
            stats = workspace_stats(session)
    job.summary = {"import_run_id": summary.import_run_id, "counts": summary.counts,
                   "labels": {k: SCHEMAS[k].label_zh for k in summary.counts},
                   "households": stats["households"], "warnings": summary.warnings,
                   "repaired": summary.repaired, "seconds": round(summary.seconds, 1),
                   "approximate_communities": list(getattr(prepared, "approximate_communities", ()))}


def folder_in_use(folder: Path) -> bool:
    """True while a queued or running import job reads *folder*."""
    with _LOCK:
        return folder in _BUSY


def _run(app: Flask, job: ImportJob, folder: Path, names: dict[str, dict[str, str]], options: dict[str, Any],
         on_success: Callable[[], object], is_current: Callable[[], bool]) -> None:
    try:
        _import(app, job, folder, names, options, on_success)
    finally:
        with _LOCK:
            _BUSY.discard(folder)
        if job.state != "done" and not is_current():  # replaced by a newer upload meanwhile
            shutil.rmtree(folder, ignore_errors=True)


def _fail(job: ImportJob, reason: str) -> None:
    job.state, job.message = "failed", f"导入未完成，未写入任何数据：{reason}"


def _import(app: Flask, job: ImportJob, folder: Path, names: dict[str, dict[str, str]], options: dict[str, Any],
            on_success: Callable[[], object]) -> None:
    from geo.prepare import prepare_files  # heavy: load when a job runs

    job.state, job.message, job.progress = "running", f"读取并校验 {len(names)} 个文件", 0.05
    append = options.pop("append")
    paths = {kind: folder / n["saved"] for kind, n in names.items()}
    sources = {"kind": "files", "via": "web", "files": {k: n["original"] for k, n in names.items()},
               "layers": options["source_layers"] or {}, "fields": options["field_maps"] or {},
               "crs": options["declared_crs"], "coords": options["coord_system"]}
    try:
        prepared = prepare_files(paths, settings=app.config["WANGGE"], **options)
        job.issues = issue_rows([*prepared.report.repaired, *prepared.report.warnings])
    except ValidationFailed as exc:
        report = getattr(exc, "report", None)
        job.issues = issue_rows(report.issues if report is not None else exc.issues)
        return _fail(job, f"发现 {len(exc.issues)} 个阻断问题")
    except WanggeError as exc:
        job.issues = [_file_error(exc, names)]
        return _fail(job, "文件无法读取")
    except Exception as exc:  # the job reports any failure instead of dying silently
        log.exception("import job %s failed reading", job.job_id)
        return _fail(job, str(exc))
    try:
        _store(app, job, prepared, sources, append)
    except WanggeError as exc:  # e.g. appending ids the workspace already has
        job.issues = [error_row(None, f"写入失败：{exc}", "追加导入时编号不能与工作区已有要素重复；"
                                "修改编号，或取消“追加到现有数据”以替换工作区")]
        return _fail(job, "写入失败，已全部撤销")
    except Exception as exc:  # the transaction rolled back; say so instead of dying silently
        log.exception("import job %s failed storing", job.job_id)
        return _fail(job, str(exc))
    shutil.rmtree(folder, ignore_errors=True)
    on_success()
    job.state, job.progress = "done", 1.0
    job.message = f"导入完成：共 {job.rows_total:,} 个要素"


def submit_import(app: Flask, *, user: str, folder: Path, names: dict[str, dict[str, str]],
                  body: Mapping[str, Any], on_success: Callable[[], object],
                  is_current: Callable[[], bool]) -> ImportJob:
    """Validate the options in *body* and queue the import of the files in *folder*.

    *on_success* runs after a successful import (its folder is deleted); a failed job
    keeps its folder for a retry with other options while *is_current* says it is the
    user's latest upload.
    """
    options = import_options(body, set(names))
    if "buildings" not in names:
        raise _bad("此次上传没有楼栋文件", "重新上传，包含“楼栋”文件")
    job = ImportJob(job_id=uuid.uuid4().hex[:12], user=user)
    with _LOCK:
        if folder in _BUSY:
            raise ImportRequestError(409, "import_running", "这次上传的文件正在导入中", "等待当前导入完成后再试")
        _JOBS[job.job_id] = job
        _BUSY.add(folder)
    _EXECUTOR.submit(_run, app, job, folder, names, options, on_success, is_current)
    log.info("import job %s queued by %s (%s)", job.job_id, user, ", ".join(names))
    return job


def get_import_job(job_id: str, *, user: str) -> ImportJob:
    """The job *job_id* of *user*, or a 404."""
    with _LOCK:
        job = _JOBS.get(job_id)
    if job is None or job.user != user:
        raise ImportRequestError(404, "job_not_found", f"导入任务 {job_id} 不存在（服务重启后任务会丢失）",
                                 "重新上传文件并导入")
    return job
