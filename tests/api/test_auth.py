"""Login, logout, lock-out, roles and CSRF (api.auth)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from api import auth, db
from api.db import session_scope
from api.models import ROLES, AuditEntry, LoginThrottle, User, utcnow
from api.users import create_user

PASSWORD = "grid2026plan"


@pytest.fixture
def users(app: Flask) -> dict[str, str]:
    """One user per role, named after the role."""
    with app.app_context(), session_scope() as s:
        for role in ROLES:
            create_user(s, role, PASSWORD, role=role, display_name=f"{role} 用户")
    return {role: role for role in ROLES}


def _login(client: FlaskClient, username: str, password: str = PASSWORD):
    return client.post("/login", data={"username": username, "password": password})


def _audit(app: Flask, action: str) -> list[AuditEntry]:
    with app.app_context(), session_scope() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_login_page_is_chinese(client: FlaskClient) -> None:
    html = client.get("/login").get_data(as_text=True)
    for text in ("登录", "用户名", "密码"):
        assert text in html


def test_login_success_redirects_and_audits(app: Flask, client: FlaskClient, users: dict[str, str]) -> None:
    r = _login(client, "viewer")
    assert r.status_code == 302 and r.location == "/map"
    assert [e.username for e in _audit(app, "auth.login")] == ["viewer"]


def test_login_follows_only_local_next(client: FlaskClient, users: dict[str, str]) -> None:
    r = client.post("/login?next=/api/health", data={"username": "viewer", "password": PASSWORD})
    assert r.location == "/api/health"
    client.post("/logout")
    r = client.post("/login?next=https://evil.example/x", data={"username": "viewer", "password": PASSWORD})
    assert r.location == "/map"


def test_wrong_password_is_refused_in_chinese(app: Flask, client: FlaskClient, users: dict[str, str]) -> None:
    r = _login(client, "viewer", "wrong-password1")
    assert r.status_code == 401
    assert "用户名或密码错误" in r.get_data(as_text=True)
    assert client.get("/map").status_code == 302
    failed = _audit(app, "auth.login_failed")
    assert failed[-1].detail["reason"] == "bad_password"


def _error_text(html: str) -> str:
    return html.split('role="alert">', 1)[1].split("</div>", 1)[0]


def test_unknown_user_gets_the_same_message(app: Flask, client: FlaskClient, users: dict[str, str]) -> None:
    unknown = _error_text(_login(client, "nobody").get_data(as_text=True))
    known = _error_text(_login(client, "viewer", "wrong-password1").get_data(as_text=True))
    assert unknown == known and unknown.startswith("用户名或密码错误")
    assert _audit(app, "auth.login_failed")[0].detail["reason"] == "unknown_user"


def test_lockout_after_max_failures(app: Flask, client: FlaskClient, users: dict[str, str]) -> None:
    app.config["WANGGE"]["login_delay_s"] = 0.0  # the progressive delay has its own test
    max_failures = app.config["WANGGE"]["login_max_failures"]
    for _ in range(max_failures - 1):
        html = _login(client, "worker", "wrong-password1").get_data(as_text=True)
        assert f"用户名或密码错误（连续 {max_failures} 次错误将锁定账号" in html
    r = _login(client, "worker", "wrong-password1")
    assert f"连续 {max_failures} 次密码错误，账号已锁定" in r.get_data(as_text=True)
    r = _login(client, "worker")  # right password, still locked
    assert r.status_code == 429 and "已被锁定" in r.get_data(as_text=True)
    assert _audit(app, "auth.login_locked") and _audit(app, "auth.login_lockout")
    with app.app_context(), session_scope() as s:  # the lock expires
        for row in s.scalars(select(LoginThrottle)):
            row.locked_until = utcnow() - timedelta(seconds=1)
    assert _login(client, "worker").status_code == 302


def test_logout_needs_post_and_ends_session(app: Flask, client: FlaskClient, users: dict[str, str]) -> None:
    _login(client, "planner")
    assert client.get("/logout").status_code == 405
    r = client.post("/logout")
    assert r.status_code == 302 and r.location == "/login"
    assert client.get("/map").status_code == 302
    assert [e.username for e in _audit(app, "auth.logout")] == ["planner"]


def test_inactive_user_cannot_log_in(app: Flask, client: FlaskClient, users: dict[str, str]) -> None:
    with app.app_context(), session_scope() as s:
        s.scalars(select(User).where(User.username == "viewer")).one().active = False
    assert "账号已停用" in _login(client, "viewer").get_data(as_text=True)


def _role_app(app: Flask) -> Flask:
    @app.route("/plan-only")
    @auth.role_required("planner", "admin")
    def plan_only() -> str:
        return "ok"

    @app.route("/api/plan-only")
    @auth.role_required("planner")
    def api_plan_only() -> dict[str, str]:
        return {"ok": "yes"}

    return app


@pytest.mark.parametrize("role", ROLES)
def test_role_required(app: Flask, users: dict[str, str], role: str) -> None:
    client = _role_app(app).test_client()
    _login(client, role)
    page, api = client.get("/plan-only"), client.get("/api/plan-only")
    if role in ("planner", "admin"):
        assert page.status_code == 200
    else:
        assert page.status_code == 403 and "没有权限" in page.get_data(as_text=True)
    if role == "planner":
        assert api.json == {"ok": "yes"}
    else:
        assert api.status_code == 403
        assert api.json["error"]["code"] == "forbidden"
        assert "规划员" in api.json["error"]["message"]


def test_role_required_anonymous(app: Flask) -> None:
    client = _role_app(app).test_client()
    assert client.get("/plan-only").status_code == 302
    r = client.get("/api/plan-only")
    assert r.status_code == 401 and r.json["error"]["code"] == "unauthorized"


def test_role_required_rejects_unknown_role() -> None:
    with pytest.raises(ValueError, match=r"unknown role\(s\) \['boss'\]; use some of admin"):
        auth.role_required("boss")


@pytest.fixture
def csrf_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    from api import create_app

    monkeypatch.setenv("WANGGE_SECRET_KEY", "test-secret")
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "i"),
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}"})
    with app.app_context(), session_scope() as s:
        create_user(s, "viewer", PASSWORD, role="viewer")
    yield app
    db.dispose(app)


def test_login_without_csrf_token_is_refused(csrf_app: Flask) -> None:
    client = csrf_app.test_client()
    r = client.post("/login", data={"username": "viewer", "password": PASSWORD})
    assert r.status_code == 400
    assert "请求被拒绝：缺少安全令牌" in r.get_data(as_text=True)
    assert client.get("/map").status_code == 302


def test_login_with_csrf_token_works(csrf_app: Flask) -> None:
    import re

    client = csrf_app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    r = client.post("/login", data={"username": "viewer", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 302 and r.location == "/map"
