"""HTML pages of the register (Chinese, usable at phone size): lists, a resident, 我的网格, import, audit.

Pages call the same access checks and audited reads as the JSON routes.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template, request
from flask_login import login_required
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from api.audit_labels import action_choices, action_label, detail_text
from api.auth import role_required
from api.db import get_session, session_scope
from api.grids import service
from api.models import AuditEntry
from api.paging import Page, page_number
from api.register import access, queries
from api.register.routes import (
    audit_filter,
    audit_json,
    edit_resident,
    export_response,
    guarded,
    import_from_request,
    me,
    record_view,
    unmask_reason,
    unmask_resident,
)
from api.security import upload_route
from geo.register.columns import FIELDS, KINDS
from geo.register.idnumber import mask_numbers_in_text

__all__ = ["bp"]

bp = Blueprint("register_pages", __name__)

KIND_LABELS = {"residents": "居民（户籍/实有人口）", "staff": "网格工作人员", "keypersons": "重点人员", "party": "党组织"}


def _grid_choices(s: Any) -> list[dict[str, Any]]:
    allowed = access.readable_grids(s, me())
    grids = service.active_grids(s)
    if allowed is not None:
        grids = grids[grids["key"].isin(allowed)]
    return [{"key": r.key, "label": f"{r.name or r.key}（{r.key}）"} for r in grids.itertuples()]


@bp.get("/register")
@login_required
@guarded
def register_page() -> str:
    """登记册: residents (or key persons) of one grid, searchable, masked."""
    with session_scope() as s:
        choices = _grid_choices(s)
        grid = request.args.get("grid") or (choices[0]["key"] if choices else None)
        tab = "keypersons" if request.args.get("tab") == "keypersons" else "residents"
        data: dict[str, Any] = {"residents": [], "total": 0, "keypersons": []}
        if grid:
            access.require_grid(s, me(), grid)
            if tab == "keypersons":
                data["keypersons"] = queries.keypersons_of_grid(s, grid)
                record_view(s, "register.view_keypersons", f"grid:{grid}", count=len(data["keypersons"]))
            else:
                data |= queries.residents_of_grid(s, grid, q=request.args.get("q"),
                                                  offset=request.args.get("offset", 0, type=int))
                record_view(s, "register.view_residents", f"grid:{grid}",
                            q=mask_numbers_in_text(request.args.get("q")), count=len(data["residents"]))
    data.pop("grid", None)
    return render_template("register/list.html", choices=choices, grid=grid, tab=tab, q=request.args.get("q", ""),
                           **data)


@bp.route("/register/residents/<int:resident_id>", methods=["GET", "POST"])
@login_required
@guarded
def resident_page(resident_id: int) -> str | tuple[str, int]:
    """One resident: masked record, edit form, unmask form (grant + reason)."""
    clear, error, status = None, None, 200
    with session_scope() as s:
        if request.method == "POST" and request.form.get("action") == "unmask":
            clear = unmask_resident(s, resident_id, unmask_reason(request.form))
        elif request.method == "POST":
            form = {k: request.form.get(k, "") for k in ("name", "phone", "relation")}
            form["lives_here"] = request.form.get("lives_here") == "1"
            if not form["phone"]:
                form.pop("phone")
            edit_resident(s, resident_id, form)
        grid = queries.grid_of_resident(s, resident_id)
        access.require_grid(s, me(), grid)
        record = queries.resident_detail(s, resident_id)
        record_view(s, "register.view_resident", f"resident:{resident_id}", grid=grid)
        can_unmask = access.has_grant(s, me(), "unmask")
    return render_template("register/resident.html", r=record, grid=grid, clear=clear, error=error,
                           can_unmask=can_unmask), status


@bp.get("/register/my")
@login_required
@guarded
def my_page() -> str:
    """我的网格: the worker's grids on a map, staff, household and key-person counts, due visits (placeholder)."""
    s = get_session()
    grids = [queries.grid_summary(s, k) for k in sorted(access.own_grids(s, me()))]
    return render_template("register/my.html", grids=grids)


@bp.route("/register/import", methods=["GET", "POST"])
@upload_route
@role_required("admin", "planner")
def import_page() -> str | tuple[str, int]:
    """导入登记册: upload XLSX/CSV; every bad row listed, nothing written on failure."""
    result = import_from_request() if request.method == "POST" else None
    status = 422 if result is not None and not result["ok"] else 200
    return render_template("register/import.html", kinds=KINDS, labels=KIND_LABELS, fields=FIELDS,
                           result=result), status


@bp.get("/register/export/<key>")
@login_required
@guarded
def export_page(key: str) -> Response:
    """Masked CSV/XLSX download of a grid's residents (audited)."""
    with session_scope() as s:
        return export_response(s, key, "xlsx" if request.args.get("format") == "xlsx" else "csv")


@bp.get("/register/audit")
@role_required("admin")
def audit_page() -> str:
    """审计日志: Chinese action labels, filters (action, user, target, date range), pages of ``list_page_size``."""
    s = get_session()
    stmt = audit_filter(request.args)
    total = s.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    size = int(current_app.config["WANGGE"]["list_page_size"])
    number = min(page_number(request.args), max(1, -(-total // size)))
    rows = [audit_json(e) for e in s.scalars(stmt.offset((number - 1) * size).limit(size))]
    users = s.scalars(select(AuditEntry.username).where(AuditEntry.username.is_not(None)).distinct()
                      .order_by(AuditEntry.username)).all()
    return render_template("register/audit.html", page=Page(rows, number, size, total), args=request.args,
                           users=users, actions=action_choices(), action_label=action_label, detail_text=detail_text)


@bp.get("/register/rebinding/<int:plan_id>")
@role_required("admin", "planner")
@guarded
def rebinding_page(plan_id: int) -> str:
    """发布前检查: what publishing plan *plan_id* does to the register (linked from the planner)."""
    from api.register.checks import rebinding_report

    return render_template("register/rebinding.html", report=rebinding_report(get_session(), plan_id))
