"""Grid staff editing for planners and admins: ``/register/staff`` (form page) and its JSON routes.

``GET /api/register/grids/<key>/staff`` lists a grid's staff (phones masked);
``POST /api/register/staff`` adds, ``POST /api/register/staff/<id>`` edits and
``DELETE /api/register/staff/<id>`` removes one. Bad forms answer 400 listing every problem.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template, request
from werkzeug.wrappers import Response

from api.auth import role_required
from api.db import session_scope
from api.errors import RequestError
from api.grids import service
from api.register.routes import guarded, me
from api.register.staff_edit import (
    FORM_FIELDS,
    ROLE_LABELS,
    StaffInvalid,
    add_staff,
    edit_staff,
    remove_staff,
    staff_of_grid,
)
from api.security import json_object

__all__ = ["bp", "EDIT_ROLES"]

bp = Blueprint("register_staff", __name__)

#: Who assigns staff to grids (DOMAIN §1: the planner; admins too).
EDIT_ROLES = ("admin", "planner")


def _grid(s: Any, key: str) -> str:
    if key not in set(service.active_grids(s)["key"].astype(str)):
        raise service.GridNotFound(f"没有编码为 {key} 的生效网格；检查网格编码")
    return key


@bp.get("/api/register/grids/<key>/staff")
@role_required(*EDIT_ROLES)
@guarded
def grid_staff(key: str) -> Response:
    """Staff of one active grid (phones masked)."""
    with session_scope(write=False) as s:
        return jsonify({"grid": _grid(s, key), "staff": staff_of_grid(s, key)})


def _run(action: str, staff_id: int | None, body: dict[str, Any]) -> dict[str, Any]:
    """Add, edit or remove in one transaction (raises :class:`StaffInvalid` for a bad form)."""
    with session_scope() as s:
        if action == "add":
            return add_staff(s, body, user=me())
        if staff_id is None:
            raise RequestError(400, "missing_staff_id", "缺少 staff_id", "从列表中选择要修改或删除的工作人员", field="staff_id")
        if action == "edit":
            return edit_staff(s, staff_id, body, user=me())
        return remove_staff(s, staff_id, user=me())


def _apply(action: str, staff_id: int | None, body: dict[str, Any]) -> dict[str, Any]:
    """:func:`_run`, answering 400 with every problem of a bad form."""
    try:
        return _run(action, staff_id, body)
    except StaffInvalid as exc:
        raise RequestError(400, "bad_staff", "工作人员信息有误：" + "；".join(exc.problems), "按提示改正后重新提交") from None


@bp.post("/api/register/staff")
@role_required(*EDIT_ROLES)
@guarded
def staff_add() -> tuple[Response, int]:
    """Add one staff member (checked like an import row; audited)."""
    return jsonify(_apply("add", None, json_object())), 201


@bp.post("/api/register/staff/<int:staff_id>")
@role_required(*EDIT_ROLES)
@guarded
def staff_edit(staff_id: int) -> Response:
    """Edit one staff member: every field of the form (a blank phone keeps the current one)."""
    return jsonify(_apply("edit", staff_id, json_object()))


@bp.delete("/api/register/staff/<int:staff_id>")
@role_required(*EDIT_ROLES)
@guarded
def staff_remove(staff_id: int) -> Response:
    """Remove one staff member (audited)."""
    return jsonify({"removed": _apply("remove", staff_id, {})})


def _form_action() -> tuple[str, list[str]]:
    """Run the posted form; (message, problems) for the page."""
    action = request.form.get("action", "")
    if action not in ("add", "edit", "remove"):
        raise RequestError(400, "bad_action", f"action={action!r} 无效", "可选：add、edit、remove", field="action")
    raw_id = request.form.get("staff_id", "")
    body = {k: request.form.get(k, "") for k in FORM_FIELDS}
    try:
        row = _run(action, int(raw_id) if raw_id.isdigit() else None, body)
    except StaffInvalid as exc:
        return "", exc.problems
    verb = {"add": "已添加", "edit": "已保存", "remove": "已删除"}[action]
    return f"{verb}：{row['role_label']} {row['name']}", []


@bp.route("/register/staff", methods=["GET", "POST"])
@role_required(*EDIT_ROLES)
@guarded
def staff_page() -> tuple[str, int]:
    """网格工作人员: a grid's staff with edit and remove forms, and an add form."""
    message, error = _form_action() if request.method == "POST" else ("", [])
    with session_scope(write=False) as s:
        grids = service.active_grids(s)
        choices = [{"key": r.key, "label": f"{r.name or r.key}（{r.key}）"} for r in grids.itertuples()]
        grid = request.values.get("grid") or request.values.get("grid_code") or (choices[0]["key"] if choices else None)
        staff = staff_of_grid(s, _grid(s, grid)) if grid else []
    return render_template("register/staff.html", choices=choices, grid=grid, staff=staff, roles=ROLE_LABELS,
                           message=message, error=error,
                           form=request.form if error else {}), 400 if error else 200
