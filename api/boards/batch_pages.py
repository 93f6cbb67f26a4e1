"""Batch printing of notice boards from the browser (admins): pick grids, start the job, watch it, download.

``/boards/batch`` is the page; ``POST /api/boards/batch`` queues the job (202 with its id),
``GET /api/boards/batch/<id>`` reports its state, progress and downloads,
``POST /api/boards/batch/<id>/cancel`` cancels it and ``/boards/batch/<id>/<file>`` serves
``boards.zip`` or ``boards-all.pdf`` once it is done.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    current_app,
    jsonify,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from api.auth import role_required
from api.boards.batch_job import (
    BATCH_KIND,
    DOWNLOADS,
    FORMATS,
    SCOPES,
    batch_folder,
    batch_params,
    submit_batch,
)
from api.boards.jobs import streets
from api.db import session_scope
from api.errors import RequestError
from api.grids.service import GridNotFound
from api.jobs import queue as job_queue
from api.jobs.store import Job
from api.models import Community
from webmap.boards.render import ORIENTATIONS, SIZES

__all__ = ["bp"]

bp = Blueprint("board_batch", __name__)


def _job(job_id: str) -> Job:
    """Batch job *job_id*, or 404 (also for jobs of other kinds: this API shows board batches only)."""
    job = job_queue.get_job(job_id, current_app._get_current_object())  # type: ignore[attr-defined]
    if job is None or job.kind != BATCH_KIND:
        raise RequestError(404, "job_not_found", f"没有编号为 {job_id} 的公示牌批量打印任务", "检查任务编号，或重新提交")
    return job


def _json(job: Job) -> dict[str, Any]:
    out = job.detail()
    files = (job.result or {}).get("downloads", []) if job.state == "done" else []
    out["downloads"] = {name: url_for("board_batch.download", job_id=job.job_id, name=name) for name in files}
    return out


@bp.get("/boards/batch")
@role_required("admin")
def batch_page() -> str:
    """批量打印: choose grids (all / street / community), size, orientation and format; start and watch the job."""
    with session_scope(write=False) as s:
        communities = s.execute(select(Community.community_id, Community.name).order_by(Community.community_id)).all()
        street_list = streets(s)
    return render_template("boards/batch.html", scopes=SCOPES, formats=FORMATS, sizes=list(SIZES),
                           orientations=ORIENTATIONS, streets=street_list,
                           communities=[(c, n or c) for c, n in communities])


@bp.post("/api/boards/batch")
@role_required("admin")
def start_batch() -> tuple[Response, int]:
    """Queue a batch print; 202 with the job id (400: bad option, 404: no such street or community)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise RequestError(400, "bad_json", "请求体须为 JSON 对象", "例如 {\"scope\": \"all\", \"size\": \"A3\", \"format\": \"pdf\"}")
    try:
        params = batch_params(body)
        job = submit_batch(current_app._get_current_object(), user=current_user.username,  # type: ignore[attr-defined]
                           params=params)
    except GridNotFound as exc:
        raise RequestError(404, "not_found", str(exc).strip("'\""), "检查街道或社区编码", field="scope") from None
    except ValueError as exc:
        raise RequestError(400, "bad_option", str(exc), "按提示改正打印选项后重新提交") from None
    return jsonify({"job_id": job.job_id, "status_url": url_for("board_batch.batch_status", job_id=job.job_id)}), 202


@bp.get("/api/boards/batch/<job_id>")
@role_required("admin")
def batch_status(job_id: str) -> Response:
    """State, progress, message, result (printed, refused grids with what they lack) and download links."""
    return jsonify(_json(_job(job_id)))


@bp.post("/api/boards/batch/<job_id>/cancel")
@role_required("admin")
def batch_cancel(job_id: str) -> Response:
    """Cancel the batch (queued: never starts; running: stops at its next board, leaving no files)."""
    _job(job_id)
    job = job_queue.cancel_job(job_id, current_app._get_current_object())  # type: ignore[attr-defined]
    assert job is not None
    return jsonify({"job_id": job.job_id, "state": job.state})


@bp.get("/boards/batch/<job_id>/<name>")
@role_required("admin")
def download(job_id: str, name: str) -> Response:
    """``boards.zip`` or ``boards-all.pdf`` of a finished batch."""
    if name not in DOWNLOADS:
        raise RequestError(404, "file_not_found", f"没有文件 {name}", f"可下载：{'、'.join(DOWNLOADS)}")
    job = _job(job_id)
    if job.state != "done":
        raise RequestError(409, "job_not_done", f"任务 {job_id} 尚未完成（{job.state}）", "完成后再下载")
    path = batch_folder(current_app.instance_path, job_id) / name
    if not path.is_file():
        raise RequestError(404, "file_not_found", f"任务 {job_id} 没有生成 {name}", "重新提交批量打印")
    mime = "application/zip" if name.endswith(".zip") else "application/pdf"
    return send_file(path, mimetype=mime, as_attachment=True, download_name=f"boards-{job_id}-{name}")
