"""JSON routes of the register (``/api/register/...``): masked reads, unmask with reason, edits, exports, import.

Access is checked in :mod:`api.register.access` on every route (never only in templates);
every sensitive view, unmask and export writes an audit row in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from functools import wraps
from typing import Any, TypeVar

import pandas as pd
from flask import Blueprint, Response, current_app, jsonify, request
from flask_login import current_user, login_required
from sqlalchemy.orm import Session

from api import audit
from api.auth import role_required
from api.db import get_session, session_scope
from api.errors import RequestError
from api.grids.service import GridNotFound
from api.localtime import local_day_start
from api.models import User
from api.register import access, checks, queries
from api.register.crypto import cipher_for
from api.register.importer import import_sheet
from api.register.models import Resident
from api.security import json_object, upload_route
from geo.errors import ValidationFailed
from geo.register.columns import KINDS, parse_field_options
from geo.register.idnumber import mask_numbers_in_text, mask_phone, normalise_phone, phone_problems
from geo.register.sheets import read_register_sheet
from geo.spreadsheet import SHEET_TYPES, table_bytes

__all__ = ["bp", "guarded", "me", "cipher", "record_view", "run_import", "import_from_request", "audit_rows", "audit_filter", "audit_json", "export_response",
           "unmask_reason", "unmask_resident", "edit_resident"]

bp = Blueprint("register", __name__)
F = TypeVar("F", bound=Callable[..., Any])


def guarded(view: F) -> F:
    """Turn access and lookup failures into 403 / 404 with Chinese messages."""
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except access.Forbidden as exc:
            raise RequestError(403, "forbidden", str(exc), "只能查看本人负责网格的登记；如需更多权限，请联系管理员") from None
        except (GridNotFound, queries.RecordNotFound) as exc:
            raise RequestError(404, "not_found", str(exc).strip("'\""),
                               "检查编号；网格编码可能已在重新划分后停用") from None
    return wrapped  # type: ignore[return-value]


def me() -> User:
    """The logged-in user as a model instance."""
    return current_user._get_current_object()  # type: ignore[attr-defined,no-any-return]


def cipher() -> Any:
    """The app's register cipher."""
    return cipher_for(current_app.instance_path, current_app.config["WANGGE"])


def record_view(session: Session, action: str, target: str, **detail: Any) -> None:
    audit.record(session, user=me(), action=action, target=target, detail=detail)


def _resident_scope(session: Session, resident_id: int) -> str | None:
    grid = queries.grid_of_resident(session, resident_id)
    access.require_grid(session, me(), grid)
    return grid


@bp.get("/api/register/grids/<key>/residents")
@login_required
@guarded
def grid_residents(key: str) -> Response:
    """Masked residents of one grid (``?q=`` name / address / room / ID tail, ``?offset=``)."""
    with session_scope() as s:
        access.require_grid(s, me(), key)
        out = queries.residents_of_grid(s, key, q=request.args.get("q"), offset=request.args.get("offset", 0, type=int))
        record_view(s, "register.view_residents", f"grid:{key}", q=mask_numbers_in_text(request.args.get("q")),
                    count=len(out["residents"]))
    return jsonify(out)


@bp.get("/api/register/residents/<int:resident_id>")
@login_required
@guarded
def resident(resident_id: int) -> Response:
    """One masked resident (audited)."""
    with session_scope() as s:
        grid = _resident_scope(s, resident_id)
        out = queries.resident_detail(s, resident_id) | {"grid": grid}
        record_view(s, "register.view_resident", f"resident:{resident_id}", grid=grid)
    return jsonify(out)


def unmask_reason(body: dict[str, Any]) -> str:
    """The stated reason of an unmask request, or 400."""
    reason = str(body.get("reason") or "").strip()
    if len(reason) < 2:
        raise RequestError(400, "reason_required", "查看完整身份证号和电话须填写理由",
                           "填写至少 2 个字的理由（会记入审计日志）", field="reason")
    return reason[:500]


def unmask_resident(s: Session, resident_id: int, reason: str) -> dict[str, Any]:
    """Clear ID and phone after scope, grant and audit (shared by the JSON route and the page)."""
    grid = _resident_scope(s, resident_id)
    if not access.has_grant(s, me(), "unmask"):
        raise access.Forbidden("您没有查看完整身份证号和电话的权限（unmask）；请管理员用 wangge register grant 授权")
    out = queries.unmasked(s, cipher(), resident_id)
    record_view(s, "register.unmask", f"resident:{resident_id}", grid=grid, reason=reason)
    return out


@bp.post("/api/register/residents/<int:resident_id>/unmask")
@login_required
@guarded
def unmask(resident_id: int) -> Response:
    """Clear ID number and phone: needs the ``unmask`` grant and a reason; audited (who, when, whom, why)."""
    reason = unmask_reason(json_object())
    with session_scope() as s:
        return jsonify(unmask_resident(s, resident_id, reason))


def edit_resident(s: Session, resident_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """Validate and apply an edit (name, phone, relation, lives_here); 400 names the bad field."""
    _resident_scope(s, resident_id)
    r = s.get(Resident, resident_id)
    assert r is not None  # _resident_scope raised LookupError otherwise
    for key, label in (("name", "姓名"), ("phone", "电话"), ("relation", "与户主关系")):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise RequestError(400, f"bad_{key}", f"{label}须为文字，收到 {type(body[key]).__name__}",
                               f"填写{label}（文字）", field=key)
    name = str(body.get("name", r.name) or "").strip()
    if not name or len(name) > 100:
        raise RequestError(400, "bad_name", "姓名为空或超过 100 个字", "填写 1–100 个字的姓名", field="name")
    relation = (str(body.get("relation") or "").strip() or None) if "relation" in body else r.relation
    if relation is not None and len(relation) > 32:
        raise RequestError(400, "bad_relation", f"与户主关系超过 32 个字（{len(relation)} 个字）",
                           "填写简短的关系，如 户主、配偶、子女", field="relation")
    phone = normalise_phone(pd.Series([str(body.get("phone") or "")]))[0]
    if phone and phone_problems(pd.Series([phone]))[0]:
        raise RequestError(400, "bad_phone", "电话格式不对", "填写 11 位手机号（1 开头）或带区号的固定电话", field="phone")
    r.name, r.relation = name, relation
    r.lives_here = bool(body.get("lives_here", r.lives_here))
    if "phone" in body:
        c = cipher()
        r.phone_enc = c.encrypt(phone, "phone") if phone else None
        r.phone_hash = c.search_hash(phone, "phone") if phone else None
        r.phone_masked = mask_phone(pd.Series([phone]))[0] if phone else None
    record_view(s, "register.edit", f"resident:{resident_id}", fields=sorted(body))
    return queries.resident_detail(s, resident_id)


@bp.post("/api/register/residents/<int:resident_id>")
@login_required
@guarded
def resident_edit(resident_id: int) -> Response:
    """Edit one resident (validated; audited)."""
    with session_scope() as s:
        return jsonify(edit_resident(s, resident_id, json_object()))


@bp.get("/api/register/grids/<key>/keypersons")
@login_required
@guarded
def grid_keypersons(key: str) -> Response:
    """Key persons of one grid (masked; audited)."""
    with session_scope() as s:
        access.require_grid(s, me(), key)
        rows = queries.keypersons_of_grid(s, key)
        record_view(s, "register.view_keypersons", f"grid:{key}", count=len(rows))
    return jsonify({"grid": key, "keypersons": rows})


@bp.get("/api/register/keypersons/<int:keyperson_id>")
@login_required
@guarded
def keyperson(keyperson_id: int) -> Response:
    """One key-person record (masked; every view audited)."""
    with session_scope() as s:
        out = queries.keyperson_detail(s, keyperson_id)
        _resident_scope(s, out["resident"]["id"])
        record_view(s, "register.view_keyperson", f"keyperson:{keyperson_id}")
    return jsonify(out)


def export_response(s: Session, key: str, fmt: str) -> Response:
    """Masked residents of grid *key* as CSV or XLSX (audited)."""
    access.require_grid(s, me(), key)
    rows = queries.export_rows(s, key)
    frame = pd.DataFrame(rows, columns=list(queries.RESIDENT_COLUMNS)).rename(columns=queries.RESIDENT_COLUMNS)
    record_view(s, "register.export", f"grid:{key}", format=fmt, rows=len(frame), masked=True)
    mime, data = SHEET_TYPES[fmt], table_bytes(frame, fmt, sheet_name="居民")
    return Response(data, mimetype=mime,
                    headers={"Content-Disposition": f"attachment; filename=register-{key}.{fmt}"})


@bp.get("/api/register/grids/<key>/export")
@login_required
@guarded
def grid_export(key: str) -> Response:
    """``?format=csv|xlsx``: masked export of a grid's residents."""
    fmt = request.args.get("format", "csv")
    if fmt not in ("csv", "xlsx"):
        raise RequestError(400, "bad_format", f"不支持的导出格式 {fmt}", "请用 csv 或 xlsx", field="format")
    with session_scope() as s:
        return export_response(s, key, fmt)


@bp.get("/api/register/grids/<key>/summary")
@login_required
@guarded
def grid_summary(key: str) -> Response:
    """Counts and staff of one grid (no residents: any logged-in user)."""
    return jsonify(queries.grid_summary(get_session(), key))


@bp.get("/api/register/my")
@login_required
@guarded
def my_grids() -> Response:
    """The grids the logged-in user serves, with counts and staff (我的网格)."""
    s = get_session()
    return jsonify({"grids": [queries.grid_summary(s, k) for k in sorted(access.own_grids(s, me()))]})


@bp.get("/api/register/checks")
@role_required("admin", "planner")
def staff_checks() -> Response:
    """Grids without exactly one 网格长 or a 网格员, people over the grid limit, staff of vanished grids."""
    return jsonify(checks.staff_checks(get_session(), settings=current_app.config["WANGGE"]))


@bp.get("/api/register/rebinding/<int:plan_id>")
@role_required("admin", "planner")
@guarded
def rebinding(plan_id: int) -> Response:
    """Re-binding report of a plan before publishing: grids without staff, staff whose grid vanishes."""
    return jsonify(checks.rebinding_report(get_session(), plan_id))


def run_import(kind: str, filename: str, data: bytes, fields: list[str], coords: str) -> dict[str, Any]:
    """Import one uploaded sheet; ``{"ok": False, "problems": [...]}`` when refused (nothing written)."""
    if kind not in KINDS:
        raise RequestError(400, "unknown_register_kind", f"未知的导入类型 {kind}", f"请选择：{'、'.join(KINDS)}",
                           field="kind")
    try:
        field_map = parse_field_options(fields)
        sheet = read_register_sheet(data, kind=kind, name=filename, field_map=field_map)
        with session_scope() as s:
            result = import_sheet(s, kind, sheet, cipher=cipher(), settings=current_app.config["WANGGE"],
                                  user=me(), field_map=field_map, coords=coords, source=filename)
    except ValidationFailed as exc:  # other geo errors: worded in Chinese by api.errors / api.error_text
        return {"ok": False, "problems": [p.__dict__ for p in exc.issues]}
    return {"ok": True, **result.json()}


@bp.post("/api/register/import")
@upload_route
@role_required("admin", "planner")
def import_upload() -> tuple[Response, int]:
    """Multipart upload: ``kind``, ``file``, optional ``fields`` (lines SRC=DST) and ``coords``."""
    out = import_from_request()
    return jsonify(out), 200 if out["ok"] else 422


def import_from_request() -> dict[str, Any]:
    """Run :func:`run_import` on the multipart form of the current request (JSON route and page)."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise RequestError(400, "file_required", "没有选择要导入的文件", "选择 XLSX 或 CSV 文件（表单字段 file）后再导入",
                           field="file")
    fields = [f for f in (request.form.get("fields") or "").splitlines() if f.strip()]
    return run_import(request.form.get("kind", ""), upload.filename, upload.read(), fields,
                      request.form.get("coords", "wgs84"))


def _since(args: Any, name: str, *, next_day: bool = False) -> Any:
    """The date argument *name* as a UTC datetime: the local midnight starting that day (the next day
    with *next_day*) in ``display_timezone``; 400 when not a date."""
    try:
        day = date.fromisoformat(args[name])
    except ValueError:
        raise RequestError(400, "bad_date", f"{name} 须为日期，收到 {args[name]!r}", "写成 2026-01-31",
                           field=name) from None
    return local_day_start(day + timedelta(days=1) if next_day else day)


def audit_filter(args: Any) -> Any:
    """The audit rows matching ``action`` (code or prefix), ``user``, ``target``, ``since`` and
    ``until`` (ISO dates, both days included), newest first (a select to page or limit)."""
    from sqlalchemy import select

    from api.models import AuditEntry

    stmt = select(AuditEntry).order_by(AuditEntry.id.desc())
    if args.get("action"):
        stmt = stmt.where(AuditEntry.action.startswith(args["action"]))
    if args.get("user"):
        stmt = stmt.where(AuditEntry.username == args["user"])
    if args.get("target"):
        stmt = stmt.where(AuditEntry.target == args["target"])
    if args.get("since"):
        stmt = stmt.where(AuditEntry.at >= _since(args, "since"))
    if args.get("until"):
        stmt = stmt.where(AuditEntry.at < _since(args, "until", next_day=True))
    return stmt


def audit_json(e: Any) -> dict[str, Any]:
    """One audit row as the API and the audit page show it."""
    return {"id": e.id, "at": e.at.isoformat(), "user": e.username, "action": e.action, "target": e.target,
            "detail": e.detail, "ip": e.ip}


def audit_rows(s: Session, args: Any) -> list[dict[str, Any]]:
    """Audit rows filtered as :func:`audit_filter` says, at most ``limit`` (200; up to 1000)."""
    stmt = audit_filter(args).limit(min(args.get("limit", 200, type=int), 1000))
    return [audit_json(e) for e in s.scalars(stmt)]


@bp.get("/api/register/audit")
@role_required("admin")
def audit_log() -> Response:
    """The audit log for admins, filtered (``action``, ``user``, ``target``, ``since``, ``until``, ``limit``)."""
    return jsonify({"entries": audit_rows(get_session(), request.args)})
