"""User accounts: creation, password policy and hashing (used by the CLI and the web login).

Passwords are hashed with werkzeug's scrypt. The policy (at least 8 characters, letters
and digits) follows common 等保 practice; the error text is Chinese and English because
both planners and operators read it.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from api import audit
from api.models import ROLES, AuditEntry, User, utcnow
from geo.errors import WanggeError

__all__ = [
    "UserError",
    "PASSWORD_MIN_LENGTH",
    "check_password_policy",
    "hash_password",
    "verify_password",
    "create_user",
    "get_user",
    "list_users",
    "set_password",
    "set_active",
    "set_role",
    "unlock",
    "is_locked",
    "last_logins",
    "check_admin_remains",
    "DEMO_PASSWORD",
    "DEMO_USERS",
    "ensure_demo_users",
]

log = logging.getLogger(__name__)

PASSWORD_MIN_LENGTH = 8
#: Password of the demo users made by ``wangge demo``: public, for demonstrations only.
DEMO_PASSWORD = "wangge-demo-2026"
#: Demo username -> (role, display name); each username is its role.
DEMO_USERS: dict[str, tuple[str, str]] = {
    "admin": ("admin", "演示管理员"),
    "planner": ("planner", "演示规划员"),
    "worker": ("worker", "演示网格员"),
    "viewer": ("viewer", "演示访客"),
}
_USERNAME = re.compile(r"^[A-Za-z0-9_.\-]{2,64}$")


class UserError(WanggeError, ValueError):
    """A user cannot be created or changed as asked (policy, duplicate, unknown, bad role)."""


def check_password_policy(password: str) -> None:
    """Raise :class:`UserError` unless *password* has ≥ 8 characters with letters and digits."""
    if (
        len(password) < PASSWORD_MIN_LENGTH
        or not re.search(r"[A-Za-z]", password)
        or not re.search(r"\d", password)
    ):
        raise UserError(
            f"密码至少 {PASSWORD_MIN_LENGTH} 位，且须同时包含字母和数字 / "
            f"password must have at least {PASSWORD_MIN_LENGTH} characters including "
            "letters and digits; choose a longer password such as 'grid2026plan'"
        )


def hash_password(password: str) -> str:
    """The scrypt hash of *password* (after checking the policy)."""
    check_password_policy(password)
    return generate_password_hash(password, method="scrypt")


def verify_password(user: User, password: str) -> bool:
    """True when *password* matches the stored hash of *user*."""
    if not user.password_hash:
        return False
    return check_password_hash(user.password_hash, password)


def get_user(session: Session, username: str) -> User | None:
    """The user called *username*, or ``None``."""
    return session.scalars(select(User).where(User.username == username)).one_or_none()


def _require_user(session: Session, username: str) -> User:
    user = get_user(session, username)
    if user is None:
        raise UserError(
            f"用户 {username!r} 不存在 / no user {username!r}; list users with `wangge users list`"
        )
    return user


def create_user(
    session: Session,
    username: str,
    password: str,
    *,
    role: str,
    display_name: str | None = None,
) -> User:
    """Add a new active user; raises :class:`UserError` on a bad name, role, password or duplicate."""
    if not _USERNAME.match(username):
        raise UserError(
            f"用户名 {username!r} 无效 / invalid username {username!r}: use 2-64 letters, "
            "digits, '_', '.' or '-'"
        )
    if role not in ROLES:
        raise UserError(
            f"角色 {role!r} 无效 / unknown role {role!r}; choose one of {', '.join(ROLES)}"
        )
    if get_user(session, username) is not None:
        raise UserError(
            f"用户名 {username!r} 已存在 / username {username!r} already exists; "
            "choose another name or use `wangge users set-password`"
        )
    user = User(
        username=username,
        display_name=display_name or username,
        role=role,
        password_hash=hash_password(password),
        active=True,
        failed_logins=0,
    )
    session.add(user)
    session.flush()
    log.info("created user %s (role %s)", username, role)
    return user


def list_users(session: Session) -> list[User]:
    """Every user, ordered by username."""
    return list(session.scalars(select(User).order_by(User.username)))


def set_password(session: Session, username: str, password: str) -> User:
    """Replace the password of *username*; also clears failed logins and any lock."""
    user = _require_user(session, username)
    user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    return user


def set_active(session: Session, username: str, *, active: bool) -> User:
    """Enable or disable *username* (a disabled user cannot log in); the last active admin stays."""
    user = _require_user(session, username)
    check_admin_remains(session, user, role=user.role, active=active)
    user.active = active
    return user


def check_admin_remains(session: Session, user: User, *, role: str, active: bool) -> None:
    """Raise :class:`UserError` when giving *user* this *role*/*active* state leaves no active admin."""
    if user.role != "admin" or not user.active or (role == "admin" and active):
        return
    others = session.scalar(select(func.count()).select_from(User).where(
        User.role == "admin", User.active.is_(True), User.id != user.id))
    if not others:
        raise UserError(
            f"{user.username} 是唯一启用的管理员，不能停用或降级 / {user.username!r} is the last "
            "active admin; make another user admin first"
        )


def set_role(session: Session, username: str, role: str) -> User:
    """Give *username* the *role*; the last active admin keeps theirs."""
    if role not in ROLES:
        raise UserError(f"角色 {role!r} 无效 / unknown role {role!r}; choose one of {', '.join(ROLES)}")
    user = _require_user(session, username)
    check_admin_remains(session, user, role=role, active=bool(user.active))
    user.role = role
    return user


def unlock(session: Session, username: str) -> User:
    """Lift a lock-out of *username* now and reset its failed-login count."""
    user = _require_user(session, username)
    user.locked_until = None
    user.failed_logins = 0
    return user


def is_locked(user: User, now: datetime | None = None) -> bool:
    """True while *user* is locked out after failed logins."""
    return user.locked_until is not None and user.locked_until > (now or utcnow())


def last_logins(session: Session) -> dict[str, datetime]:
    """Username -> time of its last successful login, from the audit log (``auth.login`` rows)."""
    rows = session.execute(select(AuditEntry.username, func.max(AuditEntry.at))
                           .where(AuditEntry.action == "auth.login").group_by(AuditEntry.username))
    return {name: at for name, at in rows if name is not None and at is not None}


def ensure_demo_users(session: Session) -> list[str]:
    """Create the missing demo users (password :data:`DEMO_PASSWORD`); returns those created."""
    created = []
    for username, (role, display_name) in DEMO_USERS.items():
        if get_user(session, username) is None:
            create_user(session, username, DEMO_PASSWORD, role=role, display_name=display_name)
            created.append(username)
    if created:
        audit.record(session, user="demo", action="user.create_demo", target="users",
                     detail={"created": created})
    return created
