"""Behind a reverse proxy and on HTTPS (issue 17 §3): url_prefix and X-Forwarded-Prefix, forwarded
headers only from trusted hops, HSTS only over HTTPS, TLS files from the settings."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
import requests
from flask import Flask

from api import create_app, db
from api.cli.serve import _tls_files
from api.proxy import normalise_prefix
from tests.api.prod_helpers import ProdServer, server_env
from tests.api.test_serve_https import _self_signed

ROOT_META = '<meta name="wangge-root" content="{}">'


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[..., Flask]:
    apps: list[Flask] = []

    def make(**settings: Any) -> Flask:
        app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "t",
                          "DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}", "WANGGE": settings})
        apps.append(app)
        return app

    yield make
    for app in apps:
        db.dispose(app)


@pytest.mark.parametrize("path", ["/wangge/login", "/login"])  # proxy keeps or strips the prefix
def test_url_prefix_puts_every_link_asset_and_redirect_under_it(make_app: Callable[..., Flask], path: str) -> None:
    client = make_app(url_prefix="/wangge/").test_client()
    page = client.get(path)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert ROOT_META.format("/wangge") in html
    assert 'src="/wangge/static/js/root.js"' in html and 'href="/wangge/static/css/wangge.css"' in html
    assert 'href="/static/' not in html and 'src="/static/' not in html
    gone = client.get("/wangge/map")
    assert gone.status_code == 302 and gone.headers["Location"].startswith("/wangge/login")
    assert client.get("/wangge/healthz").get_json() == {"status": "ok"}
    with client.get("/wangge/static/js/root.js") as script:  # a streamed file: closed here
        assert script.status_code == 200


def test_forwarded_prefix_and_scheme_count_only_from_trusted_hops(make_app: Callable[..., Flask]) -> None:
    headers = {"X-Forwarded-Prefix": "/grid", "X-Forwarded-Proto": "https", "X-Forwarded-For": "10.1.2.3"}
    trusted = make_app(trusted_proxy_hops=1).test_client().get("/login", headers=headers)
    assert ROOT_META.format("/grid") in trusted.get_data(as_text=True)
    assert trusted.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Secure" in trusted.headers["Set-Cookie"]
    ignored = make_app().test_client().get("/login", headers=headers)
    assert ROOT_META.format("") in ignored.get_data(as_text=True)
    assert "Strict-Transport-Security" not in ignored.headers and "Secure" not in ignored.headers["Set-Cookie"]


def test_hsts_only_over_https_and_its_age_is_a_setting(make_app: Callable[..., Flask]) -> None:
    client = make_app(hsts_max_age_s=600).test_client()
    assert client.get("/login", base_url="https://localhost").headers["Strict-Transport-Security"] == \
        "max-age=600; includeSubDomains"
    assert "Strict-Transport-Security" not in client.get("/login").headers
    off = make_app(hsts_max_age_s=0).test_client()
    assert "Strict-Transport-Security" not in off.get("/login", base_url="https://localhost").headers


@pytest.mark.parametrize(("raw", "want"), [("", ""), ("/", ""), ("/wangge", "/wangge"), ("/a/b/", "/a/b")])
def test_url_prefix_is_normalised(raw: str, want: str) -> None:
    assert normalise_prefix(raw) == want


@pytest.mark.parametrize("raw", ["wangge", "//evil.example", "/a b", "/x?y=1"])
def test_a_url_prefix_that_is_not_a_path_is_refused(make_app: Callable[..., Flask], raw: str) -> None:
    with pytest.raises(ValueError, match=r"setting url_prefix: .* is not a path; give it like '/wangge'"):
        make_app(url_prefix=raw)


def test_tls_files_come_from_the_options_else_the_settings(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    cert, key = (str(p) for p in _self_signed(tmp_path))
    app = make_app(tls_cert_file=cert, tls_key_file=key)
    assert _tls_files(app, None, None) == (cert, key)
    assert _tls_files(make_app(), None, None) == (None, None)
    with pytest.raises(click.UsageError, match="the settings tls_cert_file and tls_key_file go together"):
        _tls_files(make_app(tls_cert_file=cert), None, None)
    with pytest.raises(click.UsageError, match="--cert and --key: file '/nope.pem' does not exist"):
        _tls_files(app, "/nope.pem", key)


@pytest.mark.slow
def test_serve_prod_serves_https_with_hsts_from_the_tls_settings(make_app: Callable[..., Flask],
                                                                  tmp_path: Path) -> None:
    app = make_app()
    cert, key = _self_signed(tmp_path)
    env = server_env(tmp_path, app.config["DATABASE_URL"], job_processes=0, tls_cert_file=cert, tls_key_file=key)
    server = ProdServer(env, "--workers", "1", scheme="https")
    try:
        server.wait_ready(verify=str(cert))
        r = requests.get(f"{server.url}/login", verify=str(cert), timeout=10)
        assert r.status_code == 200 and "登录" in r.text
        assert r.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
        assert "Secure" in r.headers["Set-Cookie"]
        with pytest.raises(requests.exceptions.SSLError):  # the certificate is checked, not waved through
            requests.get(f"{server.url}/healthz", verify=ssl.get_default_verify_paths().cafile or True, timeout=10)
    finally:
        assert server.stop() == 0
