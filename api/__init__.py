"""The Wangge service: app factory, persistence, workflows, routes and CLI."""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

from flask import Flask
from flask_compress import Compress

__all__ = ["create_app"]

_COMPRESSED_TYPES = (
    "text/html", "text/css", "text/plain", "text/csv", "text/javascript", "application/javascript",
    "application/json", "application/geo+json", "application/xml", "image/svg+xml",
)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the Flask app: the one composition root.

    *test_config* overrides configuration (``DATABASE_URL``, ``WANGGE`` settings, ...);
    its ``INSTANCE_PATH`` (absolute; else the ``WANGGE_INSTANCE_PATH`` environment variable)
    moves the instance folder, e.g. into a test's tmp_path.
    """
    app = _flask_app(test_config)
    _configure(app, test_config)
    _init_compression(app)
    _init_extensions(app)
    for module in _blueprint_modules():
        app.register_blueprint(module.bp)
    return app


def _flask_app(test_config: dict[str, Any] | None) -> Flask:
    """The bare Flask app: instance folder, and templates and static files from ``webmap``."""
    import webmap

    return Flask(
        __name__,
        instance_path=(test_config or {}).get("INSTANCE_PATH") or os.environ.get("WANGGE_INSTANCE_PATH"),
        instance_relative_config=True,
        template_folder=str(webmap.TEMPLATE_DIR),
        static_folder=str(webmap.STATIC_DIR),
    )


def _configure(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Load the configuration (local times checked before anything opens), then logging and the request log."""
    from api import localtime, requestlog
    from api.config import load_config

    app.config.from_mapping(load_config(app.instance_path, test_config))
    localtime.init_app(app)
    requestlog.configure_logging(app.config["WANGGE"]["log_format"])
    requestlog.init_app(app)  # first: the request id is set before any other hook logs


def _init_compression(app: Flask) -> None:
    """Compress pages, JSON and GeoJSON (4-8x; government links are often slow)."""
    app.config.setdefault("COMPRESS_MIMETYPES", [*_COMPRESSED_TYPES])
    # Streamed (static file) responses stay plain: flask-compress leaks their file handle.
    app.config.setdefault("COMPRESS_STREAMS", False)
    Compress(app)


def _init_extensions(app: Flask) -> None:
    """Security headers, proxy handling, database, login and the one error path, in that order."""
    from api import auth, db, errors, proxy, security

    security.init_app(app)  # before any blueprint: it installs the bounded <int:> converter
    proxy.init_app(app)  # forwarded headers (trusted_proxy_hops) and url_prefix
    db.init_app(app)
    auth.init_app(app)
    errors.init_app(app)


def _blueprint_modules() -> list[ModuleType]:
    """Every module whose ``bp`` blueprint the app registers, in registration order."""
    from api import admin_users, health, openapi, workspace_map
    from api.access import pages as access_pages
    from api.boards import batch_pages as board_batch_pages
    from api.boards import pages as board_pages
    from api.grids import routes as grid_routes
    from api.imports import pages as imports_pages
    from api.incidents import notify_pages as incident_notify_pages
    from api.incidents import open311 as incident_open311
    from api.incidents import pages as incident_pages
    from api.incidents import public as incident_public
    from api.jobs import routes as job_routes
    from api.party import pages as party_pages
    from api.patrol import device_pages as patrol_device_pages
    from api.patrol import pages as patrol_pages
    from api.patrol import routes as patrol_routes
    from api.plans import pages as plan_pages
    from api.plans import routes as plan_routes
    from api.register import pages as register_pages
    from api.register import routes as register_routes
    from api.register import staff_pages as register_staff_pages

    return [
        workspace_map, plan_routes, plan_pages, access_pages, imports_pages, admin_users, openapi,
        job_routes, grid_routes, register_routes, register_pages, register_staff_pages, board_pages,
        board_batch_pages, party_pages, patrol_routes, patrol_pages, patrol_device_pages, incident_open311,
        incident_pages, health, incident_notify_pages, incident_public,
    ]
