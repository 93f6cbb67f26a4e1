"""Responses are compressed for clients that accept it (slow government links)."""

from __future__ import annotations

import zlib

import brotli
from flask.testing import FlaskClient

from webmap import STATIC_DIR

CHROMIUM_ACCEPT = "gzip, deflate, br"  # what the browser offers (minus zstd, not decoded here)
LEAFLET = STATIC_DIR / "vendor" / "leaflet" / "leaflet.js"


def _decode(body: bytes, encoding: str) -> bytes:
    if encoding == "br":
        return brotli.decompress(body)
    if encoding == "gzip":
        return zlib.decompress(body, 16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompress(body)
    raise AssertionError(f"unexpected Content-Encoding {encoding!r}")


def test_pages_are_compressed_when_accepted(client: FlaskClient) -> None:
    path = "/login"
    plain = client.get(path)
    plain_body = plain.get_data()
    plain.close()
    with client.get(path, headers={"Accept-Encoding": CHROMIUM_ACCEPT}) as resp:
        assert resp.status_code == 200
        encoding = resp.headers.get("Content-Encoding", "")
        body = resp.get_data()
    assert encoding in {"br", "gzip", "deflate"}
    assert len(body) < len(plain_body)
    # the login page carries a fresh CSRF token each time: compare what precedes it
    assert _decode(body, encoding).decode().split("csrf")[0] == plain_body.decode().split("csrf")[0]


def test_static_files_are_served_whole(client: FlaskClient) -> None:
    """Streamed static files are not compressed (see create_app); they are cached instead."""
    with client.get("/static/vendor/leaflet/leaflet.js", headers={"Accept-Encoding": CHROMIUM_ACCEPT}) as resp:
        assert "Content-Encoding" not in resp.headers
        assert resp.get_data() == LEAFLET.read_bytes()


def test_no_compression_without_accept_encoding(client: FlaskClient) -> None:
    with client.get("/static/vendor/leaflet/leaflet.js") as resp:
        assert "Content-Encoding" not in resp.headers
        assert resp.get_data() == LEAFLET.read_bytes()
