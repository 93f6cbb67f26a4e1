"""User administration for admins (用户管理, issue 10 §6): ``/admin/users``.

The same account operations as ``wangge users`` (:mod:`api.users`), from HTML forms that
carry the CSRF token. Each change runs in one transaction with its audit row; a refused
change (bad name, weak password, the last active admin) re-renders the page with the
reason and its fix, status 400, and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from api import audit
from api.auth import ROLE_LABELS, role_required
from api.db import get_session, session_scope
from api.localtime import local_text
from api.models import ROLES
from api.users import (
    UserError,
    create_user,
    last_logins,
    list_users,
    lockouts,
    set_active,
    set_password,
    set_role,
    unlock_user,
)

__all__ = ["bp", "user_rows", "ACTIONS"]

log = logging.getLogger(__name__)

bp = Blueprint("admin_users", __name__, url_prefix="/admin")

#: Row actions: name -> Chinese label of what was done.
ACTIONS: dict[str, str] = {
    "role": "已修改角色", "disable": "已停用", "enable": "已启用", "password": "已重置密码", "unlock": "已解锁",
}


def _when(value: datetime | None) -> str:
    return local_text(value)


def user_rows(session: Session) -> list[dict[str, Any]]:
    """Every user as a table row: name, role, active, locked, last login (from the audit log)."""
    locks = lockouts(session)
    logins = last_logins(session)
    return [{"username": u.username, "display_name": u.display_name or "", "role": u.role,
             "role_label": ROLE_LABELS.get(u.role, u.role), "active": bool(u.active),
             "locked": u.username in locks, "locked_until": _when(locks.get(u.username)),
             "last_login": _when(logins.get(u.username)), "created_at": _when(u.created_at)}
            for u in list_users(session)]


def _page(error: str | None = None, status: int = 200, form: dict[str, str] | None = None) -> tuple[str, int]:
    return render_template("admin_users.html", users=user_rows(get_session()), roles=ROLES,
                           error=error, form=form or {}), status


def _field(name: str, label: str) -> str:
    value = (request.form.get(name) or "").strip() if name != "password" else request.form.get(name) or ""
    if not value:
        raise UserError(f"请填写“{label}”（表单字段 {name}）")
    return value


def _apply(action: str, target: str, work: Callable[[Session], object], detail: dict[str, Any]) -> None:
    """Run *work* and its audit row in one transaction (UserError rolls both back)."""
    with session_scope() as session:
        work(session)
        audit.record(session, user=current_user.username, action=action, target=target, detail=detail)


@bp.route("/users", methods=["GET"])
@role_required("admin")
def users_page() -> tuple[str, int]:
    """用户管理: every account with role, state, lock and last login; forms for each change."""
    return _page()


@bp.route("/users", methods=["POST"])
@role_required("admin")
def create() -> Response | tuple[str, int]:
    """新建用户 from the form fields username, display_name, role, password."""
    form = {k: (request.form.get(k) or "").strip() for k in ("username", "display_name", "role")}
    try:
        username, role = _field("username", "用户名"), _field("role", "角色")
        password = _field("password", "初始密码")
        _apply("user.create", f"user:{username}",
               lambda s: create_user(s, username, password, role=role,
                                     display_name=form["display_name"] or None),
               {"role": role, "via": "web"})
    except UserError as exc:
        return _page(error=exc.zh, status=400, form=form)
    flash(f"已创建用户 {username}（{ROLE_LABELS.get(role, role)}）")
    log.info("admin %s created user %s (%s)", current_user.username, username, role)
    return redirect(url_for("admin_users.users_page"))


def _row_work(action: str, username: str) -> tuple[Callable[[Session], object], dict[str, Any]]:
    if action == "role":
        role = _field("role", "角色")
        return (lambda s: set_role(s, username, role)), {"role": role}
    if action in ("disable", "enable"):
        return (lambda s: set_active(s, username, active=action == "enable")), {}
    if action == "password":
        password = _field("password", "新密码")
        return (lambda s: set_password(s, username, password)), {}
    return (lambda s: unlock_user(s, username)), {}


@bp.route("/users/<username>/<action>", methods=["POST"])
@role_required("admin")
def change(username: str, action: str) -> Response | tuple[str, int]:
    """One change to *username*: ``role``, ``disable``, ``enable``, ``password`` or ``unlock``."""
    if action not in ACTIONS:
        return _page(error=f"未知操作 {action!r}；可用：{'、'.join(ACTIONS)}", status=404)
    audit_action = {"role": "user.set_role", "password": "user.set_password"}.get(action, f"user.{action}")
    try:
        work, detail = _row_work(action, username)
        _apply(audit_action, f"user:{username}", work, {**detail, "via": "web"})
    except UserError as exc:
        return _page(error=exc.zh, status=400)
    flash(f"{ACTIONS[action]}：{username}")
    log.info("admin %s: %s %s", current_user.username, audit_action, username)
    return redirect(url_for("admin_users.users_page"))
