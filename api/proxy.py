"""Running behind a reverse proxy: forwarded headers and a path prefix (docs/DEPLOY.md).

* ``trusted_proxy_hops`` > 0: the client address, scheme (https), host, port and path
  prefix come from the ``X-Forwarded-For/-Proto/-Host/-Port/-Prefix`` headers set by that
  many proxies (werkzeug's ``ProxyFix``); with 0 those headers are ignored, so a client
  cannot claim another address or HTTPS.
* ``url_prefix`` (e.g. ``/wangge``): the app lives under that path. Requests may arrive
  with the prefix (``proxy_pass http://app;``) or without it (``proxy_pass http://app/;``);
  either way every URL the app writes (links, redirects, assets, the pages' API calls)
  carries the prefix. Page scripts get it from ``<meta name="wangge-root">`` (``js/root.js``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

__all__ = ["PrefixMiddleware", "normalise_prefix", "init_app"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def normalise_prefix(raw: str) -> str:
    """``url_prefix`` as ``/a/b`` (no trailing slash; empty for the site root); ValueError naming the fix."""
    prefix = str(raw or "").strip().rstrip("/")
    if prefix and (not prefix.startswith("/") or "//" in prefix or any(c in prefix for c in "?#% ")):
        raise ValueError(f"setting url_prefix: {raw!r} is not a path; give it like '/wangge' "
                         "(leading slash, no query or spaces), or leave it empty for the site root")
    return prefix


class PrefixMiddleware:
    """Serve *app* under *prefix*: ``SCRIPT_NAME`` becomes the prefix, ``PATH_INFO`` loses it."""

    def __init__(self, app: WSGIApp, prefix: str) -> None:
        self.app, self.prefix = app, normalise_prefix(prefix)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or ""
        if path == self.prefix or path.startswith(self.prefix + "/"):
            environ["PATH_INFO"] = path[len(self.prefix):] or "/"
        if environ.get("SCRIPT_NAME", "").rstrip("/") != self.prefix:
            environ["SCRIPT_NAME"] = self.prefix
        return self.app(environ, start_response)


def init_app(app: Flask) -> None:
    """Trust *trusted_proxy_hops* proxies' forwarded headers and serve under ``url_prefix``."""
    settings = app.config["WANGGE"]
    prefix = normalise_prefix(settings["url_prefix"])
    if prefix:
        app.wsgi_app = PrefixMiddleware(app.wsgi_app, prefix)  # type: ignore[method-assign]
    hops = int(settings["trusted_proxy_hops"])
    if hops > 0:  # outermost: the forwarded prefix, if any, reaches the prefix middleware as SCRIPT_NAME
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops,  # type: ignore[method-assign]
                                x_port=hops, x_prefix=hops)
