"""Login, logout, roles and lock-out: Flask-Login sessions, CSRF on every form.

Roles (``api.models.ROLES``): ``admin``, ``planner``, ``worker``, ``viewer``. Failed logins
are counted per (account, client address): each one makes that client wait before the next
try (``login_delay_s``, doubling), and after ``login_max_failures`` in a row that client is
locked out of the account for ``login_lockout_minutes`` (等保 password lock-out) while
everybody else can still log in; ``wangge users unlock`` lifts it. Login attempts per client
address are rate limited (``login_rate_limit``); every attempt is audited. The session
cookie names the user's session token, which logout and password changes rotate.
JSON routes send the CSRF token in the ``X-CSRFToken`` header (``<meta name="csrf-token">``).
"""

from __future__ import annotations

import hmac
import logging
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as cookie_session
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from werkzeug.wrappers import Response
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from api import audit
from api.db import get_session, lock_for_transaction, session_scope
from api.errors import RequestError
from api.models import ROLES, User, utcnow
from api.security import TIMED_OUT, limiter, login_limit, public_limit, start_session
from api.users import (
    clear_login_failures,
    get_user,
    login_wait,
    register_login_failure,
    rotate_session_token,
    verify_dummy_password,
    verify_password,
)

__all__ = ["bp", "csrf", "login_manager", "init_app", "role_required", "ROLE_LABELS", "LoginForm"]

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
csrf = CSRFProtect()

#: Chinese names of the roles, for the UI.
ROLE_LABELS: dict[str, str] = {"admin": "管理员", "planner": "规划员", "worker": "网格员", "viewer": "只读用户"}

F = TypeVar("F", bound=Callable[..., Any])

BAD_CREDENTIALS = "用户名或密码错误"


class LoginForm(FlaskForm):
    username = StringField("用户名", validators=[DataRequired("请输入用户名"), Length(max=64)])
    password = PasswordField("密码", validators=[DataRequired("请输入密码"), Length(max=256)])


def init_app(app: Flask) -> None:
    """Register Flask-Login, CSRF protection and the login/logout routes on *app*."""
    # Cookie flags, timeouts and rate limits: api.security.init_app.
    login_manager.init_app(app)
    csrf.init_app(app)
    app.register_blueprint(bp)
    app.jinja_env.globals["ROLE_LABELS"] = ROLE_LABELS


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    """The user of a session cookie ``"<id>:<token>"``, if the token is still the user's current one."""
    raw_id, _, token = user_id.partition(":")
    try:
        user = get_session().get(User, int(raw_id))
    except (ValueError, OverflowError):
        return None
    if user is None or not user.active or not token or not hmac.compare_digest(token, user.session_token or ""):
        return None
    return user


def _wants_json() -> bool:
    return request.path.startswith("/api/")


@login_manager.unauthorized_handler
def _unauthorized() -> Response | tuple[Response, int]:
    if _wants_json():
        body = {"error": {"code": "unauthorized", "message": "请先登录 / login required",
                          "fix": "POST /login with username and password, then retry"}}
        return jsonify(body), 401
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def role_required(*roles: str) -> Callable[[F], F]:
    """Decorator: the view needs a logged-in user whose role is one of *roles*.

    Anonymous users are sent to the login page (401 JSON on ``/api/``); users of
    another role get 403 (JSON on ``/api/``, a Chinese HTML page otherwise).
    """
    unknown = [r for r in roles if r not in ROLES]
    if not roles or unknown:
        raise ValueError(f"role_required{roles}: unknown role(s) {unknown}; use some of {', '.join(ROLES)}")

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in roles:
                needed = "、".join(ROLE_LABELS[r] for r in roles)
                current = ROLE_LABELS.get(current_user.role, current_user.role)
                raise RequestError(403, "forbidden", f"此操作需要以下角色之一：{needed}（当前角色：{current}）",
                                   "请使用有相应权限的账号，或联系管理员分配角色")
            return view(*args, **kwargs)

        return login_required(wrapped)  # type: ignore[return-value]

    return decorator


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths; anything else goes to the map."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//"):
            return target
    return url_for("views.map_page")


def _client() -> str:
    return (request.remote_addr or "-")[:64]


def _check_login(username: str, password: str) -> tuple[int | None, str | None, int]:
    """(user id, None, 302) on success, else (None, Chinese error, status); updates counters and audits."""
    settings = current_app.config["WANGGE"]
    client = _client()
    with session_scope() as session:
        # attempts on one account from one client take turns, as SQLite's single writer makes them: on
        # PostgreSQL a burst of guesses all read "no failure yet" and every password was checked (12 of 12)
        lock_for_transaction(session, f"lock:login:{username}:{client}")
        now = utcnow()
        wait = login_wait(session, username, client, now, settings)
        if wait is not None:
            kind, seconds = wait
            audit.record(session, user=None, action=f"auth.login_{kind}", target=f"user:{username}",
                         detail={"seconds": round(seconds, 1)})
            if kind == "locked":
                return None, _locked_message(now + timedelta(seconds=seconds), now), 429
            return None, f"登录尝试过于频繁，请 {math.ceil(seconds)} 秒后再试", 429
        user = get_user(session, username)
        if user is None:
            verify_dummy_password(password)  # same time as a real check: names cannot be probed
            audit.record(session, user=None, action="auth.login_failed", target=f"user:{username}",
                         detail={"reason": "unknown_user"})
            return None, _register_failure(session, username, now, settings), 401
        if not user.active:
            audit.record(session, user=user, action="auth.login_failed", target=f"user:{username}",
                         detail={"reason": "inactive"})
            return None, "账号已停用，请联系管理员", 401
        if user.locked_until is not None and user.locked_until > now:
            audit.record(session, user=user, action="auth.login_locked", target=f"user:{username}",
                         detail={"locked_until": user.locked_until.isoformat()})
            return None, _locked_message(user.locked_until, now), 429
        if not verify_password(user, password):
            user.failed_logins = (user.failed_logins or 0) + 1
            audit.record(session, user=user, action="auth.login_failed", target=f"user:{username}",
                         detail={"reason": "bad_password", "failures": user.failed_logins})
            return None, _register_failure(session, username, now, settings), 401
        user.failed_logins = 0
        clear_login_failures(session, username, client)
        if not user.session_token:
            rotate_session_token(user)
        audit.record(session, user=user, action="auth.login", target=f"user:{username}")
        return user.id, None, 302


def _locked_message(until: datetime, now: datetime) -> str:
    minutes = max(1, int((until - now).total_seconds() // 60) + 1)
    return f"账号因多次密码错误已被锁定，请 {minutes} 分钟后再试或联系管理员解锁"


def _register_failure(session: Any, username: str, now: datetime, settings: dict[str, Any]) -> str:
    """Count the failure for (account, this client); the message says what happens next."""
    row = register_login_failure(session, username, _client(), now, settings)
    if row.locked_until is not None and row.locked_until > now:
        audit.record(session, user=None, action="auth.login_lockout", target=f"user:{username}",
                     detail={"client": row.client, "locked_until": row.locked_until.isoformat()})
        log.warning("login of %s from %s locked after %s failures", username, row.client,
                    settings["login_max_failures"])
        return (f"连续 {settings['login_max_failures']} 次密码错误，账号已锁定 "
                f"{settings['login_lockout_minutes']} 分钟（仅限本机，管理员可解锁）")
    return _bad_credentials(settings)


def _bad_credentials(settings: dict[str, Any]) -> str:
    """Same text for unknown users and wrong passwords, so names cannot be probed."""
    return (f"{BAD_CREDENTIALS}（连续 {settings['login_max_failures']} 次错误将锁定账号 "
            f"{settings['login_lockout_minutes']} 分钟）")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(login_limit, methods=["POST"])
@limiter.limit(public_limit, methods=["GET"])
def login() -> Response | str | tuple[str, int]:
    """登录 page: GET shows the form, POST checks the password (CSRF token required)."""
    if current_user.is_authenticated and request.method == "GET":
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    error = None
    status = 200
    if form.validate_on_submit():
        user_id, error, status = _check_login(form.username.data.strip(), form.password.data)
        if user_id is not None:
            login_user(get_session().get(User, user_id))
            start_session()
            log.info("login %s", form.username.data)
            return redirect(_safe_next(request.args.get("next")))
    elif request.method == "POST":
        error, status = "；".join(m for msgs in form.errors.values() for m in msgs), 401
    elif cookie_session.pop(TIMED_OUT, None):
        error = "会话已超时，请重新登录"
    return render_template("login.html", form=form, error=error), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Response:
    """退出登录 (POST with the CSRF token): the session token rotates, so copies of the cookie die too."""
    with session_scope() as session:
        user = session.get(User, current_user.id)
        if user is not None:
            rotate_session_token(user)
        audit.record(session, user=current_user.username, action="auth.logout",
                     target=f"user:{current_user.username}")
    logout_user()
    return redirect(url_for("auth.login"))
