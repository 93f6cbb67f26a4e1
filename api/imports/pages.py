"""Import in the browser (导入数据, issue 10 §6): ``/import`` and ``/api/imports/*``.

The same pipeline as ``wangge import``: :func:`geo.prepare.prepare_files` (read, map
columns, validate, link) then :func:`api.workspace.import_workspace` in one transaction,
so a refused import writes nothing. Steps:

1. ``POST /api/imports/uploads`` (multipart, one file field per layer kind) stores the
   files in the instance folder and answers each file's layers and columns;
2. ``GET /api/imports/uploads/<id>/columns?kind=&layer=`` the columns of another layer;
3. ``POST /api/imports`` (JSON: upload id, layers, column mapping, CRS, coordinates,
   append) queues an ``import`` job on the durable queue (:mod:`api.imports.jobs`);
   ``GET /api/imports/jobs/<id>`` polls its progress and finally its report, one row per
   problem (:mod:`webmap.import_report`); ``POST /api/imports/jobs/<id>/cancel`` cancels it.

The request size is limited by ``max_upload_mb`` (413 with the setting's name).
"""

from __future__ import annotations

import logging
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, render_template, request
from flask_login import current_user
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response

from api.auth import role_required
from api.errors import RequestError
from api.imports.jobs import (
    cancel_import_job,
    folder_in_use,
    get_import_job,
    import_job_json,
    submit_import,
)
from api.security import upload_route
from geo.layers import SCHEMAS
from geo.readers import SUPPORTED_EXTENSIONS, list_file_layers

__all__ = ["bp", "IMPORT_ROLES", "KIND_FIELDS", "upload_dir", "file_columns"]

log = logging.getLogger(__name__)

bp = Blueprint("imports_pages", __name__)

#: Roles that may import (they replace the workspace).
IMPORT_ROLES = ("planner", "admin")
#: Form field of each layer kind's file.
KIND_FIELDS: tuple[str, ...] = ("communities", "buildings", "streets", "compounds", "service_points")
#: Extensions a browser upload may have (a bare .shp lacks its .shx/.dbf/.prj).
_WEB_EXTENSIONS = tuple(ext for ext in SUPPORTED_EXTENSIONS if ext != ".shp")
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


def _extension(filename: str) -> str:
    name = filename.lower()
    for ext in sorted(_WEB_EXTENSIONS, key=len, reverse=True):
        if name.endswith(ext):
            return ext
    raise RequestError(
        400, "unsupported_file",
        f"文件 {filename!r} 的格式不支持；可用：GeoPackage（.gpkg）、GeoJSON（.geojson/.json）、"
        "Shapefile 压缩包（.zip，含 .shp .shx .dbf .prj）、CSV 经纬度（.csv）、OSM（.osm.pbf）",
        "Shapefile 请把同名的 .shp、.shx、.dbf、.prj 一起压缩成 .zip 再上传", field="file")


def _uploads_root() -> Path:
    return Path(current_app.instance_path) / "uploads"


def upload_dir(upload_id: str) -> Path:
    """The folder of upload *upload_id* (404 when unknown or not the current user's)."""
    if not _UPLOAD_ID.match(upload_id or "") or not (_uploads_root() / upload_id).is_dir():
        raise RequestError(404, "upload_not_found", f"找不到上传 {upload_id!r}（可能已导入或已被新的上传替换）",
                           "重新选择文件并上传", field="upload_id")
    owner = (_uploads_root() / upload_id / "owner").read_text(encoding="utf-8")
    if owner != current_user.username:
        raise RequestError(404, "upload_not_found", f"找不到上传 {upload_id!r}", "重新选择文件并上传", field="upload_id")
    return _uploads_root() / upload_id


def _csv_columns(path: Path) -> list[str]:
    import csv

    raw = path.read_bytes()[:65536]
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        return []
    return [c.strip() for c in next(csv.reader(text.splitlines()[:1]), [])]


def file_columns(path: Path, layer: str | None) -> list[str]:
    """Attribute column names of *layer* of the file at *path* (no features are read)."""
    import zipfile

    import pyogrio

    name, chosen = path.name.lower(), layer
    if name.endswith(".csv"):
        return _csv_columns(path)
    if name.endswith((".pbf",)):
        return []  # OSM tags map to canonical columns by themselves
    source = str(path)
    if not name.endswith(".gpkg"):
        layer = None  # one-layer formats: the layer offered is the file's own name
    if name.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            shps = [n for n in zf.namelist() if n.lower().endswith(".shp") and not n.startswith("__MACOSX/")]
        member = next((n for n in shps if chosen in (n, Path(n).stem)), shps[0] if shps else None)
        if member is None:
            return []
        source, layer = f"/vsizip/{path}/{member}", None
    try:
        return [str(f) for f in pyogrio.read_info(source, layer=layer)["fields"]]
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        log.info("columns of %s layer %r unreadable: %s", path.name, layer, exc)
        raise RequestError(400, "unreadable_file", f"无法读取文件 {path.name} 的图层 {layer!r}",
                           "检查文件是否完整，并在“文件内图层”中选择正确的图层", field="layer") from None


def _describe(kind: str, path: Path, original: str, layer: str | None = None) -> dict[str, Any]:
    layers = list_file_layers(path)
    chosen = layer if layer in layers else (kind if kind in layers else layers[0] if layers else None)
    columns = file_columns(path, chosen)
    targets = [c.name for c in SCHEMAS[kind].columns]
    lower = {t.lower(): t for t in targets}
    suggested = {c: lower[c.lower()] for c in columns if c.lower() in lower and c != lower[c.lower()]}
    return {"file": original, "layers": layers, "layer": chosen, "columns": columns, "suggested": suggested,
            "recognised": [c for c in columns if c in targets]}


def _save(folder: Path, kind: str, upload: FileStorage) -> dict[str, str]:
    original = upload.filename or kind
    ext = _extension(original)
    target = folder / f"{kind}{ext}"
    upload.save(target)
    return {"original": original, "saved": target.name}


def _forget_previous(username: str) -> None:
    """Delete the user's earlier uploads, except one an import job still reads (a later upload removes it)."""
    root = _uploads_root()
    for owner in root.glob("*/owner") if root.is_dir() else ():
        folder = owner.parent
        if owner.read_text(encoding="utf-8") == username and not folder_in_use(folder):
            shutil.rmtree(folder, ignore_errors=True)


@bp.route("/import")
@role_required(*IMPORT_ROLES)
def import_page() -> str:
    """导入数据: choose files, map columns, run the import, read the report."""
    kinds = [{"kind": k, "label": SCHEMAS[k].label_zh, "required": k == "buildings",
              "targets": [c.name for c in SCHEMAS[k].columns]} for k in KIND_FIELDS]
    settings = current_app.config["WANGGE"]
    return render_template("import.html", kinds=kinds, max_upload_mb=settings["max_upload_mb"],
                           accept=",".join(_WEB_EXTENSIONS))


@bp.route("/api/imports/uploads", methods=["POST"])
@upload_route
@role_required(*IMPORT_ROLES)
def upload() -> tuple[Response, int]:
    """Store the uploaded files; answer each file's layers and columns."""
    limit = request.max_content_length  # max_upload_mb on this route (api.security.upload_route)
    if limit and (request.content_length or 0) > limit:
        abort(413)  # refuse before reading the body (the message names max_upload_mb)
    files = {k: f for k in KIND_FIELDS if (f := request.files.get(k)) is not None and f.filename}
    unknown = sorted(set(request.files) - set(KIND_FIELDS))
    if unknown:
        raise RequestError(400, "unknown_field", f"未知的文件字段 {unknown}", f"文件字段为：{'、'.join(KIND_FIELDS)}",
                           field=unknown[0])
    if "buildings" not in files:
        raise RequestError(400, "buildings_required", "请选择楼栋文件（表单字段 buildings，必填）",
                           "在“楼栋”一栏选择文件后再上传", field="buildings")
    _forget_previous(current_user.username)
    upload_id = uuid.uuid4().hex
    folder = _uploads_root() / upload_id
    folder.mkdir(parents=True)
    (folder / "owner").write_text(current_user.username, encoding="utf-8")
    try:
        saved = {kind: _save(folder, kind, f) for kind, f in files.items()}
        described = {kind: _describe(kind, folder / s["saved"], s["original"]) for kind, s in saved.items()}
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        for f in request.files.values():
            f.close()
    (folder / "names.json").write_text(_json({k: s for k, s in saved.items()}), encoding="utf-8")
    log.info("upload %s by %s: %s", upload_id, current_user.username,
             ", ".join(f"{k}={s['original']}" for k, s in saved.items()))
    return jsonify({"upload_id": upload_id, "files": described}), 201


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


def saved_files(folder: Path) -> dict[str, dict[str, str]]:
    """Kind -> ``{"original", "saved"}`` of an upload folder."""
    import json

    return json.loads((folder / "names.json").read_text(encoding="utf-8"))


@bp.route("/api/imports/uploads/<upload_id>/columns")
@role_required(*IMPORT_ROLES)
def columns(upload_id: str) -> Response:
    """The layers and columns of one uploaded file, for another ``layer`` of it."""
    folder = upload_dir(upload_id)
    names = saved_files(folder)
    kind = request.args.get("kind", "")
    if kind not in names:
        raise RequestError(400, "bad_kind", f"此上传中没有 {kind!r} 文件", f"kind 可选：{'、'.join(names)}", field="kind")
    return jsonify(_describe(kind, folder / names[kind]["saved"], names[kind]["original"],
                             request.args.get("layer") or None))


@bp.route("/api/imports", methods=["POST"])
@role_required(*IMPORT_ROLES)
def start() -> tuple[Response, int]:
    """Start the import of an upload (JSON body); answers the job to poll (202)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise RequestError(400, "bad_request", "请求体须为 JSON 对象", "发送 Content-Type: application/json")
    folder = upload_dir(str(body.get("upload_id", "")))
    job = submit_import(current_app._get_current_object(), user=current_user.username, folder=folder,
                        names=saved_files(folder), body=body)
    return jsonify(import_job_json(job)), 202


@bp.route("/api/imports/jobs/<job_id>")
@role_required(*IMPORT_ROLES)
def job_status(job_id: str) -> Response:
    """State, progress, message and (when finished) the report of an import job."""
    return jsonify(import_job_json(get_import_job(job_id, user=current_user.username)))


@bp.route("/api/imports/jobs/<job_id>/cancel", methods=["POST"])
@role_required(*IMPORT_ROLES)
def job_cancel(job_id: str) -> Response:
    """Cancel an import job: a queued one at once, a running one before it writes (nothing is written)."""
    return jsonify(import_job_json(cancel_import_job(job_id, user=current_user.username)))
