"""User accounts: creation, password policy and hashing (used by the CLI and the web login).

Passwords are hashed with werkzeug's scrypt. The policy (at least 8 characters, letters
and digits) follows common 等保 practice; the error text is Chinese and English because
both planners and operators read it.
"""

from __future__ import annotations

import logging
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from api import audit
from api.db import lock_for_transaction
from api.models import ROLES, AuditEntry, LoginThrottle, User, utcnow
from geo.errors import WanggeError

__all__ = [
    "UserError",
    "PASSWORD_MIN_LENGTH",
    "check_password_policy",
    "hash_password",
    "verify_password",
    "verify_dummy_password",
    "create_user",
    "get_user",
    "list_users",
    "set_password",
    "set_active",
    "set_role",
    "lockouts",
    "last_logins",
    "check_admin_remains",
    "rotate_session_token",
    "login_wait",
    "register_login_failure",
    "clear_login_failures",
    "unlock_user",
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
    """A user cannot be created or changed as asked (policy, duplicate, unknown, bad role).

    ``str()`` is the command-line text (Chinese / English, naming ``wangge`` commands);
    ``zh`` the web page's wording, naming the page's fields instead.
    """

    def __init__(self, message: str, *, zh: str | None = None) -> None:
        super().__init__(message)
        self.zh = zh or message


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
            "letters and digits; choose a longer password such as 'grid2026plan'",
            zh=f"密码至少 {PASSWORD_MIN_LENGTH} 位，且须同时包含字母和数字；请换一个更长的密码，如 grid2026plan",
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


_DUMMY_HASH: list[str] = []


def verify_dummy_password(password: str) -> bool:
    """Check *password* against a throw-away hash: unknown users cost as much time as known ones."""
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(generate_password_hash(secrets.token_hex(8), method="scrypt"))
    check_password_hash(_DUMMY_HASH[0], password)
    return False


def get_user(session: Session, username: str) -> User | None:
    """The user called *username*, or ``None``."""
    return session.scalars(select(User).where(User.username == username)).one_or_none()


def _require_user(session: Session, username: str) -> User:
    user = get_user(session, username)
    if user is None:
        raise UserError(
            f"用户 {username!r} 不存在 / no user {username!r}; list users with `wangge users list`",
            zh=f"用户 {username!r} 不存在；请从用户列表中选择",
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
            "digits, '_', '.' or '-'",
            zh=f"用户名 {username!r} 无效；请用 2–64 个字母、数字或 _ . -",
        )
    if role not in ROLES:
        raise UserError(
            f"角色 {role!r} 无效 / unknown role {role!r}; choose one of {', '.join(ROLES)}",
            zh=f"角色 {role!r} 无效；请从“角色”中选择",
        )
    # a double click on 新建用户, or two admins: both saw no user and inserted (a unique violation, 500, on PostgreSQL)
    lock_for_transaction(session, f"lock:user:{username}")
    if get_user(session, username) is not None:
        raise UserError(
            f"用户名 {username!r} 已存在 / username {username!r} already exists; "
            "choose another name or use `wangge users set-password`",
            zh=f"用户名 {username!r} 已存在；请换一个用户名，或在列表中为该用户重设密码",
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
    rotate_session_token(user)
    session.execute(delete(LoginThrottle).where(LoginThrottle.username == username))
    return user


def set_active(session: Session, username: str, *, active: bool) -> User:
    """Enable or disable *username* (a disabled user cannot log in); the last active admin stays."""
    user = _require_user(session, username)
    check_admin_remains(session, user, role=user.role, active=active)
    user.active = active
    if not active:
        rotate_session_token(user)
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
            "active admin; make another user admin first",
            zh=f"{user.username} 是唯一启用的管理员，不能停用或降级；请先把另一位用户设为管理员",
        )


def set_role(session: Session, username: str, role: str) -> User:
    """Give *username* the *role*; the last active admin keeps theirs."""
    if role not in ROLES:
        raise UserError(f"角色 {role!r} 无效 / unknown role {role!r}; choose one of {', '.join(ROLES)}",
                        zh=f"角色 {role!r} 无效；请从“角色”中选择")
    user = _require_user(session, username)
    check_admin_remains(session, user, role=role, active=bool(user.active))
    user.role = role
    return user


def lockouts(session: Session, now: datetime | None = None) -> dict[str, datetime]:
    """Username -> end of its latest lock-out still running: a manual lock of the account or a
    client locked out of it after failed logins (``wangge users unlock`` / the admin page lift both)."""
    now = now or utcnow()
    out: dict[str, datetime] = dict(session.execute(
        select(LoginThrottle.username, func.max(LoginThrottle.locked_until))
        .where(LoginThrottle.locked_until > now).group_by(LoginThrottle.username)).all())
    for name, until in session.execute(select(User.username, User.locked_until).where(User.locked_until > now)):
        out[name] = max(until, out.get(name, until))
    return out


def last_logins(session: Session) -> dict[str, datetime]:
    """Username -> time of its last successful login, from the audit log (``auth.login`` rows)."""
    rows = session.execute(select(AuditEntry.username, func.max(AuditEntry.at))
                           .where(AuditEntry.action == "auth.login").group_by(AuditEntry.username))
    return {name: at for name, at in rows if name is not None and at is not None}
def rotate_session_token(user: User) -> str:
    """Give *user* a new session token: every session cookie issued before is void."""
    user.session_token = secrets.token_hex(16)
    return user.session_token


def _delay_s(failures: int, settings: dict[str, Any]) -> float:
    """Wait after the *failures*-th failure in a row: ``login_delay_s`` doubled per failure, capped."""
    if failures < 1:
        return 0.0
    base, cap = float(settings["login_delay_s"]), float(settings["login_delay_max_s"])
    return min(base * 2 ** min(failures - 1, 30), cap)


def login_wait(
    session: Session, username: str, client: str, now: datetime, settings: dict[str, Any]
) -> tuple[str, float] | None:
    """``("locked" | "delay", seconds left)`` when *client* may not try *username* yet, else ``None``."""
    row = session.get(LoginThrottle, (username, client))
    if row is None:
        return None
    if row.locked_until is not None and row.locked_until > now:
        return "locked", (row.locked_until - now).total_seconds()
    ready = row.last_failure_at + timedelta(seconds=_delay_s(row.failures, settings))
    return ("delay", (ready - now).total_seconds()) if ready > now else None


def register_login_failure(
    session: Session, username: str, client: str, now: datetime, settings: dict[str, Any]
) -> LoginThrottle:
    """Count a failed login of *username* from *client*; lock the pair after ``login_max_failures``.

    Only this client is locked out of the account (the admin at another desk is not); rows
    of pairs whose failures and lock have both expired are dropped on the way.
    """
    window = timedelta(minutes=float(settings["login_lockout_minutes"]))
    session.execute(delete(LoginThrottle).where(
        LoginThrottle.last_failure_at < now - window,
        (LoginThrottle.locked_until.is_(None)) | (LoginThrottle.locked_until < now),
    ))
    row = session.get(LoginThrottle, (username, client))
    if row is None:
        row = LoginThrottle(username=username, client=client, failures=0)
        session.add(row)
    row.failures = (row.failures or 0) + 1
    row.last_failure_at = now
    if row.failures >= int(settings["login_max_failures"]):
        row.locked_until = now + window
        row.failures = 0
    session.flush()
    return row


def clear_login_failures(session: Session, username: str, client: str) -> None:
    """Forget failed logins of *username* from *client* (after a successful login)."""
    session.execute(delete(LoginThrottle).where(LoginThrottle.username == username,
                                                LoginThrottle.client == client))


def unlock_user(session: Session, username: str) -> int:
    """Lift every lock and delay on *username* (all clients); returns how many were lifted.

    The function behind ``wangge users unlock NAME`` and the user admin page.
    """
    user = _require_user(session, username)
    lifted = session.execute(delete(LoginThrottle).where(LoginThrottle.username == username)).rowcount
    if user.locked_until is not None:
        lifted += 1
    user.locked_until = None
    user.failed_logins = 0
    log.info("unlocked user %s (%d lock(s) lifted)", username, lifted)
    return int(lifted or 0)


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
