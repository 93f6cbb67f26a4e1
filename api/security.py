"""Web security controls: response headers with a nonce CSP, session cookie and timeouts,
rate limits, request body limits (docs/SECURITY.md).

* Every response carries a strict Content-Security-Policy (scripts only from this site or
  inline blocks holding the request's nonce, no external origins except the configured
  base-map tile host for images), ``X-Frame-Options: DENY``, ``X-Content-Type-Options:
  nosniff`` and ``Referrer-Policy``. Templates put ``nonce="{{ csp_nonce() }}"`` on their
  inline scripts and pass folium's header through the ``nonced`` filter.
* The session cookie is ``HttpOnly``, ``SameSite=Lax`` and ``Secure`` when the request came
  over HTTPS (always, with ``session_cookie_secure``). Sessions end after
  ``session_idle_minutes`` without a request and ``session_max_hours`` after login.
* :data:`limiter` (Flask-Limiter, storage ``ratelimit_storage_uri``) limits requests per
  client address; :func:`public_limit` and :func:`login_limit` are the limits of pages that
  need no login and of login attempts.
* Request bodies are capped at ``max_request_kb`` except on views marked with
  :func:`upload_route` (``max_upload_mb``); JSON bodies nested deeper than ``max_json_depth``
  are refused with 400, and integer URL parts beyond 64 bits are simply not found (404).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, current_app, g, request, session
from flask.sessions import SecureCookieSessionInterface
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import logout_user
from markupsafe import Markup
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter
from werkzeug.wrappers import Response

__all__ = [
    "json_object",
    "BoundedIntConverter",
    "JSON_TOO_DEEP",
    "NUL_CHARACTER",
    "MAX_ID",
    "LOGIN_AT",
    "SEEN_AT",
    "TIMED_OUT",
    "content_security_policy",
    "csp_nonce",
    "init_app",
    "json_depth",
    "limiter",
    "login_limit",
    "nonce_scripts",
    "public_limit",
    "start_session",
    "tile_origins",
    "upload_route",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Session keys: when the user logged in and when the session last saw a request (epoch s).
LOGIN_AT = "_wg_login_at"
SEEN_AT = "_wg_seen_at"
#: Set when a session timed out, until the login page has told the user.
TIMED_OUT = "_wg_timed_out"
#: The last-seen time is rewritten at most this often, so not every response sets a cookie.
_SEEN_RESOLUTION_S = 30
JSON_TOO_DEEP = "请求体 JSON 嵌套过深"
NUL_CHARACTER = "请求中含有空字符（NUL，\\0），无法保存；请删去该字符后重试"
_UPLOAD_MARK = "_wangge_upload_route"
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_SCRIPT_TAG = re.compile(r"<script(?![^>]*\bnonce=)", re.IGNORECASE)
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")
#: Tile hosts of the built-in base maps other than OSM (whose URL is a setting).
_BASEMAP_ORIGINS: dict[str, tuple[str, ...]] = {
    "tianditu": ("https://*.tianditu.gov.cn",),
    "gaode": ("https://*.is.autonavi.com",),
}

limiter = Limiter(get_remote_address, default_limits=[], headers_enabled=True)


#: The largest id an ``Integer`` column holds on every backend (PostgreSQL's is 32-bit).
MAX_ID = 2**31 - 1


class BoundedIntConverter(IntegerConverter):
    """``<int:...>`` limited to what an id column holds (:data:`MAX_ID`): bigger ids are 404, not 500."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session whose cookie is Secure on every HTTPS request."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def csp_nonce() -> str:
    """The nonce of this request's inline scripts (made on first use)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return str(g.csp_nonce)


def nonce_scripts(html: str) -> Markup:
    """*html* (trusted markup made by folium, never user data) with the nonce on every ``<script>``."""
    return Markup(_SCRIPT_TAG.sub(f'<script nonce="{csp_nonce()}"', str(html)))


def tile_origins(settings: dict[str, Any]) -> tuple[str, ...]:
    """Origins the configured base map loads tiles from (none for the offline base map)."""
    basemap = settings.get("basemap", "none")
    if basemap == "osm":
        parts = urlsplit(str(settings.get("osm_tile_url", "")).replace("{s}", "*"))
        return (f"{parts.scheme}://{parts.netloc}",) if parts.scheme in ("http", "https") else ()
    return _BASEMAP_ORIGINS.get(basemap, ())


def content_security_policy(nonce: str, settings: dict[str, Any]) -> str:
    """The CSP header value: this site only, inline scripts by *nonce*, no framing."""
    images = " ".join(("'self'", "data:", "blob:", *tile_origins(settings)))
    return "; ".join((
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}'",
        # folium and Leaflet write inline <style> blocks and style attributes.
        "style-src 'self' 'unsafe-inline'",
        f"img-src {images}",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ))


def json_object() -> dict[str, Any]:
    """The request's JSON body as an object (no body: empty), or 400 naming the fix (malformed JSON, not an object)."""
    body = request.get_json(silent=True)
    if body is None:
        if request.is_json and request.get_data():
            raise BadRequest('请求体不是合法的 JSON（括号、引号或逗号有误）；请发送 JSON 对象，例如 {"reason": "核实身份"}')
        return {}
    if not isinstance(body, dict):
        raise BadRequest('请求体须为 JSON 对象（{...}），不能是数组或单个值；例如 {"reason": "核实身份"}')
    return body


def upload_route(view: F) -> F:
    """Mark *view* as a file upload: its body may reach ``max_upload_mb`` (others: ``max_request_kb``)."""
    setattr(view, _UPLOAD_MARK, True)
    return view


def public_limit() -> str:
    """Rate limit of pages that need no login (setting ``public_rate_limit``)."""
    return str(current_app.config["WANGGE"]["public_rate_limit"])


def login_limit() -> str:
    """Rate limit of login attempts per client address (setting ``login_rate_limit``)."""
    return str(current_app.config["WANGGE"]["login_rate_limit"])


def json_depth(raw: bytes) -> int:
    """Deepest nesting of arrays/objects in the JSON text *raw* (brackets inside strings ignored)."""
    depth = deepest = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub(b'""', raw)):
        depth += 1 if match.group() in (b"[", b"{") else -1
        deepest = max(deepest, depth)
    return deepest


def start_session() -> None:
    """Stamp the login time on the session (call right after ``login_user``)."""
    now = int(time.time())
    session[LOGIN_AT] = now
    session[SEEN_AT] = now


def _session_expired(settings: dict[str, Any], now: float) -> str | None:
    login_at, seen_at = session.get(LOGIN_AT), session.get(SEEN_AT)
    if not isinstance(login_at, int) or not isinstance(seen_at, int):
        return "no_stamp"
    if now - login_at > float(settings["session_max_hours"]) * 3600:
        return "absolute"
    if now - seen_at > float(settings["session_idle_minutes"]) * 60:
        return "idle"
    return None


def _expire_sessions() -> None:
    """End a session that idled or lived too long; otherwise note that it was seen."""
    if "_user_id" not in session:
        return
    now = time.time()
    reason = _session_expired(current_app.config["WANGGE"], now)
    if reason is not None:
        logout_user()
        session.pop(LOGIN_AT, None)
        session.pop(SEEN_AT, None)
        if reason != "no_stamp":
            session[TIMED_OUT] = reason  # the login page says why, whichever page comes next
        return
    if now - session[SEEN_AT] >= _SEEN_RESOLUTION_S:
        session[SEEN_AT] = int(now)


def _limit_body() -> None:
    """Per-route body cap, then refuse JSON nested deeper than ``max_json_depth``."""
    settings = current_app.config["WANGGE"]
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and getattr(view, _UPLOAD_MARK, False):
        request.max_content_length = int(settings["max_upload_mb"]) * 1024 * 1024
    if request.method in ("GET", "HEAD", "OPTIONS") or request.mimetype in _FORM_TYPES:
        return
    max_depth = int(settings["max_json_depth"])
    if json_depth(request.get_data(cache=True)) > max_depth:
        raise BadRequest(f"{JSON_TOO_DEEP}（超过 {max_depth} 层）；请发送扁平的 JSON 对象")


def _refuse_nul() -> None:
    """Refuse a NUL character in the path, query, form fields or body (PostgreSQL cannot store one)."""
    texts = [request.path, *request.args.keys(), *request.args.values()]
    if request.mimetype in _FORM_TYPES:
        texts += [*request.form.keys(), *request.form.values()]
    elif request.method not in ("GET", "HEAD", "OPTIONS"):
        if request.is_json:
            texts += _json_strings(request.get_json(silent=True))
        elif b"\x00" in request.get_data(cache=True):
            raise BadRequest(NUL_CHARACTER)
    if any("\x00" in t for t in texts):
        raise BadRequest(NUL_CHARACTER)


def _json_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [*value.keys(), *(t for v in value.values() for t in _json_strings(v))]
    if isinstance(value, list):
        return [t for v in value for t in _json_strings(v)]
    return []


def _set_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy",
                       content_security_policy(csp_nonce(), current_app.config["WANGGE"]))
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), payment=(), usb=()")
    hsts = int(current_app.config["WANGGE"]["hsts_max_age_s"])
    if hsts > 0 and request.is_secure:  # browsers ignore HSTS over plain HTTP; never sent there
        headers.setdefault("Strict-Transport-Security", f"max-age={hsts}; includeSubDomains")
    return response


def init_app(app: Flask) -> None:
    """Install the controls on *app*; call before any blueprint (the int converter)."""
    settings = app.config["WANGGE"]
    app.url_map.converters["int"] = BoundedIntConverter
    # Flask's default for SameSite is None (key present), so setdefault would not take.
    app.config["SESSION_COOKIE_SAMESITE"] = app.config.get("SESSION_COOKIE_SAMESITE") or "Lax"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SECURE"] = bool(settings["session_cookie_secure"])
    app.session_interface = _SessionInterface()
    # forwarded client address and https (rate limits, audit, Secure cookie): api.proxy
    app.config.setdefault("RATELIMIT_STORAGE_URI", settings["ratelimit_storage_uri"])
    limiter.init_app(app)
    app.before_request(_limit_body)
    app.before_request(_refuse_nul)
    app.before_request(_expire_sessions)
    app.after_request(_set_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.jinja_env.filters["nonced"] = nonce_scripts
