"""Session cookie, server-side logout, timeouts, security headers, throttling and limits (api.security)."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta

import pytest
from flask import Flask, request
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from api import security
from api.cli import main
from api.db import session_scope
from api.models import AuditEntry, LoginThrottle
from api.security import content_security_policy, json_depth, nonce_scripts, upload_route
from api.users import UserError, create_user, set_password, unlock_user

PASSWORD = "grid2026plan"
_URL = re.compile(r"https?://", re.IGNORECASE)


@pytest.fixture
def users(app: Flask) -> None:
    app.config["WANGGE"]["login_delay_s"] = 0.0  # tests of the delay turn it back on
    with app.app_context(), session_scope() as s:
        create_user(s, "admin", PASSWORD, role="admin")
        create_user(s, "planner", PASSWORD, role="planner")


def _login(client: FlaskClient, username: str = "planner", password: str = PASSWORD, ip: str = "10.0.0.1",
           **kw):
    return client.post("/login", data={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": ip}, **kw)


def _set_cookie(response) -> str:
    return next(v for v in response.headers.getlist("Set-Cookie") if v.startswith("session="))


# -- §5 session -----------------------------------------------------------------------------


def test_session_cookie_is_httponly_lax_and_secure_over_https(app: Flask, users: None) -> None:
    plain = _set_cookie(_login(app.test_client()))
    assert "HttpOnly" in plain and "SameSite=Lax" in plain and "Secure" not in plain
    https = _set_cookie(_login(app.test_client(), base_url="https://localhost"))
    assert "Secure" in https and "SameSite=Lax" in https
    app.config["SESSION_COOKIE_SECURE"] = True  # what session_cookie_secure=true sets
    assert "Secure" in _set_cookie(_login(app.test_client()))


def test_session_cookie_secure_setting(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from api import create_app, db

    monkeypatch.setenv("WANGGE_SECRET_KEY", "test-secret")
    app = create_app({"INSTANCE_PATH": str(tmp_path / "i"), "DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
                      "WANGGE": {"session_cookie_secure": True}})
    try:
        assert app.config["SESSION_COOKIE_SECURE"] is True
    finally:
        db.dispose(app)


def test_behind_a_trusted_proxy_https_and_client_address_come_from_it(tmp_path, monkeypatch) -> None:
    from api import create_app, db

    monkeypatch.setenv("WANGGE_SECRET_KEY", "test-secret")
    app = create_app({"INSTANCE_PATH": str(tmp_path / "i"), "DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
                      "WTF_CSRF_ENABLED": False, "WANGGE": {"trusted_proxy_hops": 1, "login_delay_s": 0.0}})
    try:
        with app.app_context(), session_scope() as s:
            create_user(s, "planner", PASSWORD, role="planner")
        client = app.test_client()
        proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "10.1.2.3"}
        assert "Secure" in _set_cookie(_login(client, headers=proxied))
        for _ in range(app.config["WANGGE"]["login_max_failures"]):
            _login(client, password="wrong-guess1", headers=proxied)
        with app.app_context(), session_scope() as s:
            assert [r.client for r in s.scalars(select(LoginThrottle))] == ["10.1.2.3"]
    finally:
        db.dispose(app)


def _copy_cookie(source: FlaskClient, target: FlaskClient) -> None:
    cookie = source.get_cookie("session")
    assert cookie is not None
    target.set_cookie("session", cookie.value)


def test_cookie_copied_before_logout_no_longer_works(app: Flask, users: None) -> None:
    victim, thief = app.test_client(), app.test_client()
    assert _login(victim).status_code == 302
    _copy_cookie(victim, thief)
    assert thief.get("/map").status_code == 200  # the copy works while the session lives
    assert victim.post("/logout").status_code == 302
    r = thief.get("/api/plans")
    assert r.status_code == 401 and r.json["error"]["code"] == "unauthorized"


def test_password_change_ends_every_session(app: Flask, users: None) -> None:
    client = app.test_client()
    _login(client)
    assert client.get("/api/plans").status_code == 200
    with app.app_context(), session_scope() as s:
        set_password(s, "planner", "another2026pass")
    assert client.get("/api/plans").status_code == 401
    assert _login(client, password="another2026pass").status_code == 302


_REAL_TIME = time.time


def _advance(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Make the session clock read *seconds* after now."""
    now = _REAL_TIME() + seconds
    monkeypatch.setattr(security.time, "time", lambda: now)


def test_idle_timeout(app: Flask, users: None, monkeypatch: pytest.MonkeyPatch) -> None:
    client = app.test_client()
    _login(client)
    idle = app.config["WANGGE"]["session_idle_minutes"] * 60
    _advance(monkeypatch, idle - 60)
    assert client.get("/api/plans").status_code == 200  # still active, and now seen again
    _advance(monkeypatch, 2 * idle - 90)
    assert client.get("/api/plans").status_code == 200
    _advance(monkeypatch, 3 * idle)
    assert client.get("/api/plans").status_code == 401
    r = client.get("/map", follow_redirects=True)
    assert r.request.path == "/login" and "会话已超时，请重新登录" in r.get_data(as_text=True)
    assert "会话已超时" not in client.get("/login").get_data(as_text=True)  # said once


def test_absolute_timeout_however_active(app: Flask, users: None, monkeypatch: pytest.MonkeyPatch) -> None:
    client = app.test_client()
    _login(client)
    max_s = app.config["WANGGE"]["session_max_hours"] * 3600
    step = app.config["WANGGE"]["session_idle_minutes"] * 60 / 2
    elapsed = 0.0
    while elapsed + step < max_s:
        elapsed += step
        _advance(monkeypatch, elapsed)
        assert client.get("/api/plans").status_code == 200
    _advance(monkeypatch, max_s + 1)
    assert client.get("/api/plans").status_code == 401


# -- §5 headers -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login", "/api/health", "/api/openapi.json", "/no-such-page", "/api/nope",
                                  "/static/css/wangge.css"])
def test_security_headers_on_every_response(client: FlaskClient, path: str) -> None:
    r = client.get(path)
    r.close()
    csp = r.headers["Content-Security-Policy"]
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "same-origin"
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert re.search(r"script-src 'self' 'nonce-[\w-]{20,}'(;|$)", csp)
    assert not _URL.search(csp) and "unsafe-eval" not in csp and "*" not in csp


def test_nonce_is_fresh_per_request(client: FlaskClient) -> None:
    nonces = {re.search(r"'nonce-([\w-]+)'", client.get("/login").headers["Content-Security-Policy"])[1]
              for _ in range(3)}
    assert len(nonces) == 3


def test_csp_allows_only_the_configured_tile_host() -> None:
    assert "tile.example.cn" not in content_security_policy("n", {"basemap": "none"})
    csp = content_security_policy("n", {"basemap": "osm", "osm_tile_url": "https://tile.example.cn/{z}/{x}/{y}.png"})
    assert "img-src 'self' data: blob: https://tile.example.cn;" in csp
    assert "tile.example.cn" not in csp.split("img-src")[0]


@pytest.mark.parametrize("path", ["/map", "/plans"])  # /access and a plan page: tests/browser/test_csp.py
def test_every_inline_script_of_a_page_carries_the_nonce(app: Flask, users: None, path: str) -> None:
    client = app.test_client()
    _login(client)
    r = client.get(path)
    assert r.status_code == 200
    nonce = re.search(r"'nonce-([\w-]+)'", r.headers["Content-Security-Policy"])[1]
    tags = re.findall(r"<script\b[^>]*>", r.get_data(as_text=True))
    inline = [t for t in tags if "src=" not in t and "application/json" not in t]
    assert inline or path == "/plans", f"{path} has no inline script to check"
    assert [t for t in inline if f'nonce="{nonce}"' not in t] == []


def test_nonce_scripts_marks_every_script_tag_once(app: Flask) -> None:
    with app.test_request_context("/"):
        out = str(nonce_scripts('<script src="/a.js"></script><SCRIPT>x=1</SCRIPT><script nonce="k">y</script>'))
        nonce = security.csp_nonce()
    assert out.count(f'nonce="{nonce}"') == 2 and out.count("nonce=") == 3


# -- §6 throttling --------------------------------------------------------------------------


def test_lockout_is_per_account_and_client(app: Flask, users: None) -> None:
    """Five wrong guesses from one machine must not lock the admin out everywhere."""
    attacker, admin = app.test_client(), app.test_client()
    for _ in range(app.config["WANGGE"]["login_max_failures"]):
        _login(attacker, "admin", "wrong-guess1", ip="10.9.9.9")
    r = _login(attacker, "admin", ip="10.9.9.9")
    assert r.status_code == 429 and "已被锁定" in r.get_data(as_text=True)
    assert _login(admin, "admin", ip="10.0.0.5").status_code == 302


def test_unknown_accounts_are_throttled_like_real_ones(app: Flask, users: None) -> None:
    client = app.test_client()
    for _ in range(app.config["WANGGE"]["login_max_failures"]):
        _login(client, "nobody", "wrong-guess1")
    r = _login(client, "nobody", "wrong-guess1")
    assert r.status_code == 429 and "已被锁定" in r.get_data(as_text=True)


def test_progressive_delay(app: Flask, users: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import api.auth

    app.config["WANGGE"]["login_delay_s"] = 2.0
    start = api.auth.utcnow()
    clock = {"now": start}
    monkeypatch.setattr(api.auth, "utcnow", lambda: clock["now"])
    client = app.test_client()
    assert _login(client, password="wrong-guess1").status_code == 401
    r = _login(client)  # right password, but too soon after the failure
    assert r.status_code == 429 and "请 2 秒后再试" in r.get_data(as_text=True)
    clock["now"] = start + timedelta(seconds=2.5)
    assert _login(client, password="wrong-guess1").status_code == 401
    assert "请 4 秒后再试" in _login(client).get_data(as_text=True)  # doubled after the 2nd failure
    assert _login(client, ip="10.0.0.2").status_code == 302  # another client is not delayed
    clock["now"] = start + timedelta(seconds=7)
    assert _login(client).status_code == 302


def test_login_rate_limit_per_client(app: Flask, users: None) -> None:
    app.config["WANGGE"]["login_rate_limit"] = "3 per minute"
    client = app.test_client()
    codes = [_login(client, f"user{i}", "wrong-guess1").status_code for i in range(4)]
    assert codes == [401, 401, 401, 429]
    assert "请求过于频繁" in _login(client).get_data(as_text=True)
    assert _login(client, ip="10.0.0.2").status_code == 302


def test_public_endpoints_are_rate_limited(app: Flask) -> None:
    app.config["WANGGE"]["public_rate_limit"] = "2 per minute"
    client = app.test_client()
    codes = [client.get("/api/health").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    r = client.get("/api/health")
    assert r.json["error"]["code"] == "rate_limited" and "Retry-After" in r.headers


def test_unlock_function_and_cli(app: Flask, runner: FlaskCliRunner, users: None) -> None:
    client = app.test_client()
    for ip in ("10.0.0.1", "10.0.0.2"):
        for _ in range(app.config["WANGGE"]["login_max_failures"]):
            _login(client, "admin", "wrong-guess1", ip=ip)
    assert _login(client, "admin").status_code == 429
    result = runner.invoke(main, ["users", "unlock", "admin"])
    assert result.exit_code == 0 and "unlocked admin (2 lock(s) lifted)" in result.output
    assert _login(client, "admin").status_code == 302
    with app.app_context(), session_scope() as s:
        assert s.scalars(select(LoginThrottle)).all() == []
        assert s.scalars(select(AuditEntry).where(AuditEntry.action == "user.unlock")).one().username == "cli"
        assert unlock_user(s, "admin") == 0
        with pytest.raises(UserError, match="no user 'ghost'"):
            unlock_user(s, "ghost")
    result = runner.invoke(main, ["users", "unlock", "ghost"])
    assert result.exit_code == 1 and "no user 'ghost'" in result.output


# -- §7 limits ------------------------------------------------------------------------------


def test_body_limit_outside_upload_routes(app: Flask, users: None) -> None:
    client = app.test_client()
    _login(client)
    limit = app.config["WANGGE"]["max_request_kb"] * 1024
    body = json.dumps({"op": "rename", "version": 1, "name": "x" * limit})
    r = client.post("/api/plans/1/edits", data=body, content_type="application/json")
    assert r.status_code == 413 and "max_request_kb" in r.json["error"]["fix"]
    small = client.post("/api/plans/1/edits", data=json.dumps({"op": "rename", "version": 1}),
                        content_type="application/json")
    assert small.status_code == 404 and small.json["error"]["code"] == "plan_not_found"


def test_upload_routes_take_max_upload_mb(app: Flask) -> None:
    @app.post("/api/test-upload")
    @upload_route
    def test_upload() -> dict[str, int]:
        return {"bytes": len(request.get_data())}

    @app.post("/api/test-plain")
    def test_plain() -> dict[str, int]:
        return {"bytes": len(request.get_data())}

    app.config["WANGGE"]["max_upload_mb"] = 3
    client = app.test_client()
    two_mb = b"x" * (2 * 1024 * 1024)
    kind = "application/octet-stream"
    assert client.post("/api/test-upload", data=two_mb, content_type=kind).json == {"bytes": len(two_mb)}
    assert client.post("/api/test-plain", data=two_mb, content_type=kind).status_code == 413
    r = client.post("/api/test-upload", data=two_mb * 2, content_type=kind)
    assert r.status_code == 413 and "超过 3 MB" in r.json["error"]["message"]


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
def test_deeply_nested_json_is_400(app: Flask, users: None, content_type: str) -> None:
    client = app.test_client()
    _login(client)
    r = client.post("/api/plans/1/edits", data="[" * 100_000 + "]" * 100_000, content_type=content_type)
    assert r.status_code == 400 and "嵌套过深" in r.json["error"]["message"]


@pytest.mark.parametrize("how", ["query", "json", "form"])
def test_a_nul_character_is_400_on_every_backend(app: Flask, users: None, how: str) -> None:
    """PostgreSQL cannot store NUL in text (it raised a 500 from psycopg); both backends refuse it alike."""
    client = app.test_client()
    _login(client)
    if how == "query":
        r = client.get("/api/grids?community_id=C1%00")
    elif how == "json":
        r = client.post("/api/plans/1/edits", json={"op": "rename", "grid_id": "G1", "name": "甲\u0000乙"})
    else:
        r = client.post("/admin/users", data={"username": "x\x00y", "role": "viewer"})
    text = r.json["error"]["message"] if r.is_json else r.get_data(as_text=True)
    assert r.status_code == 400 and "空字符" in text


def test_huge_integer_ids_are_404(app: Flask, users: None) -> None:
    client = app.test_client()
    _login(client)
    for path in ("/api/plans/99999999999999999999", "/api/plans/99999999999999999999/grids.geojson",
                 "/plans/99999999999999999999", "/api/plans/1/diff/99999999999999999999"):
        assert client.get(path).status_code == 404, path
    assert client.get("/api/plans/2147483648").status_code == 404  # beyond PostgreSQL's INTEGER
    assert client.get("/api/plans/2147483647").json["error"]["code"] == "plan_not_found"


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert json_depth(b'{"a": [1, {"b": "[[[[{{{{"}]}') == 3
    assert json_depth(b'"\\"[[["') == 0
    assert json_depth(b"") == 0
