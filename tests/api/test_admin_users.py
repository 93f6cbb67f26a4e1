"""User administration page (api.admin_users): admins only, every change audited, last admin kept."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from api.db import session_scope
from api.localtime import local_zone
from api.models import AuditEntry, User, utcnow
from api.users import UserError, create_user, get_user, last_logins, set_active, set_role

PASSWORD = "grid2026plan"


@pytest.fixture
def users(app: Flask) -> None:
    with app.app_context(), session_scope() as s:
        create_user(s, "boss", PASSWORD, role="admin", display_name="李主任")
        create_user(s, "zhang", PASSWORD, role="planner", display_name="张三")
        create_user(s, "wang", PASSWORD, role="viewer")


@pytest.fixture
def admin(client: FlaskClient, users: None) -> FlaskClient:
    assert client.post("/login", data={"username": "boss", "password": PASSWORD}).status_code == 302
    return client


def _user(app: Flask, name: str) -> User:
    with app.app_context(), session_scope() as s:
        user = get_user(s, name)
        s.expunge(user)
        return user


def _audit(app: Flask) -> list[tuple[str, str, str]]:
    with app.app_context(), session_scope() as s:
        return [(a.username, a.action, a.target) for a in s.scalars(select(AuditEntry).order_by(AuditEntry.id))
                if a.action.startswith("user.")]


def _row(html: str, username: str) -> str:
    found = re.search(rf'<tr data-username="{username}">(.*?)</tr>', html, re.S)
    assert found is not None, username
    return found.group(1)


def test_only_admins_see_the_page(client: FlaskClient, users: None) -> None:
    assert client.get("/admin/users").status_code == 302
    client.post("/login", data={"username": "zhang", "password": PASSWORD})
    assert client.get("/admin/users").status_code == 403
    assert client.post("/admin/users/wang/disable").status_code == 403
    assert "用户管理" not in client.get("/plans").get_data(as_text=True)


def test_list_shows_role_state_lock_and_last_login(app: Flask, admin: FlaskClient) -> None:
    with app.app_context(), session_scope() as s:
        get_user(s, "wang").locked_until = utcnow() + timedelta(minutes=10)
    html = admin.get("/admin/users").get_data(as_text=True)
    assert "用户管理" in html and "全部用户（3）" in html
    boss, wang, zhang = _row(html, "boss"), _row(html, "wang"), _row(html, "zhang")
    assert "李主任" in boss and 'value="admin" selected' in boss
    assert "张三" in zhang and 'value="planner" selected' in zhang
    assert "已锁定" in wang and "解锁" in wang and "已锁定" not in zhang
    with app.app_context(), session_scope() as s:
        logged = last_logins(s)
    assert set(logged) == {"boss"}  # the admin's own login just now
    assert logged["boss"].astimezone(local_zone(app.config["WANGGE"])).strftime("%Y-%m-%d %H:%M") in boss
    assert re.search(r'class="wg-last-login"[^>]*>—<', zhang)
    assert html.count('name="csrf_token"') >= 1 + 3 * 3


def test_create_change_role_disable_enable_reset_unlock(app: Flask, admin: FlaskClient) -> None:
    r = admin.post("/admin/users", data={"username": "li4", "display_name": "李四", "role": "worker",
                                         "password": "patrol2026x"}, follow_redirects=True)
    assert r.status_code == 200 and "已创建用户 li4（网格员）" in r.get_data(as_text=True)
    assert _user(app, "li4").role == "worker"
    admin.post("/admin/users/li4/role", data={"role": "planner"})
    assert _user(app, "li4").role == "planner"
    admin.post("/admin/users/li4/disable")
    assert not _user(app, "li4").active
    admin.post("/admin/users/li4/enable")
    assert _user(app, "li4").active
    with app.app_context(), session_scope() as s:
        u = get_user(s, "li4")
        u.locked_until, u.failed_logins = utcnow() + timedelta(minutes=5), 3
    admin.post("/admin/users/li4/unlock")
    assert _user(app, "li4").locked_until is None and _user(app, "li4").failed_logins == 0
    r = admin.post("/admin/users/li4/password", data={"password": "newpass2026"}, follow_redirects=True)
    assert "已重置密码：li4" in r.get_data(as_text=True)
    other = app.test_client()
    assert other.post("/login", data={"username": "li4", "password": "newpass2026"}).status_code == 302
    assert _audit(app)[-6:] == [("boss", a, "user:li4") for a in (
        "user.create", "user.set_role", "user.disable", "user.enable", "user.unlock", "user.set_password")]


def test_bad_input_is_a_clear_400_and_changes_nothing(app: Flask, admin: FlaskClient) -> None:
    before = _audit(app)
    cases = [
        ("/admin/users", {"username": "x y", "role": "viewer", "password": PASSWORD}, "用户名"),
        ("/admin/users", {"username": "zhang", "role": "viewer", "password": PASSWORD}, "已存在"),
        ("/admin/users", {"username": "new1", "role": "viewer", "password": "short"}, "至少 8 位"),
        ("/admin/users", {"username": "new1", "role": "king", "password": PASSWORD}, "角色"),
        ("/admin/users", {"username": "new1", "role": "viewer"}, "初始密码"),
        ("/admin/users/zhang/role", {"role": "king"}, "角色"),
        ("/admin/users/zhang/password", {"password": "abc"}, "至少 8 位"),
        ("/admin/users/nobody/disable", {}, "不存在"),
    ]
    for url, data, text in cases:
        r = admin.post(url, data=data)
        assert r.status_code == 400, (url, data)
        html = r.get_data(as_text=True)
        assert "操作未完成" in html and text in html, (url, data)
    assert admin.post("/admin/users/zhang/explode").status_code == 404
    assert _audit(app) == before
    assert _user(app, "zhang").role == "planner"


def test_the_last_active_admin_cannot_be_disabled_or_demoted(app: Flask, admin: FlaskClient) -> None:
    for url, data in (("/admin/users/boss/disable", {}), ("/admin/users/boss/role", {"role": "viewer"})):
        r = admin.post(url, data=data)
        assert r.status_code == 400 and "唯一启用的管理员" in r.get_data(as_text=True)
    assert _user(app, "boss").active and _user(app, "boss").role == "admin"
    admin.post("/admin/users/zhang/role", data={"role": "admin"})
    assert admin.post("/admin/users/boss/role", data={"role": "planner"}).status_code == 302
    assert _user(app, "boss").role == "planner"
    with app.app_context(), session_scope() as s:  # the CLI path keeps the rule too
        with pytest.raises(UserError, match="last active admin"):
            set_active(s, "zhang", active=False)
        with pytest.raises(UserError, match="last active admin"):
            set_role(s, "zhang", "viewer")


def test_forms_need_the_csrf_token(app: Flask, users: None) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    client.post("/login", data={"username": "boss", "password": PASSWORD, "csrf_token": token})
    r = client.post("/admin/users/wang/disable")
    assert r.status_code == 400 and "安全令牌" in r.get_data(as_text=True)
    assert _user(app, "wang").active
    html = client.get("/admin/users").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    assert client.post("/admin/users/wang/disable", data={"csrf_token": token}).status_code == 302
    assert not _user(app, "wang").active
