"""The Wangge service: app factory, persistence, workflows, routes and CLI."""

from __future__ import annotations

import os
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
    import webmap
    from api import (
        admin_users,
        auth,
        db,
        errors,
        health,
        openapi,
        proxy,
        requestlog,
        security,
        workspace_map,
    )
    from api.access import pages as access_pages
    from api.boards import batch_pages as board_batch_pages
    from api.boards import pages as board_pages
    from api.config import load_config
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

    app = Flask(
        __name__,
        instance_path=(test_config or {}).get("INSTANCE_PATH") or os.environ.get("WANGGE_INSTANCE_PATH"),
        instance_relative_config=True,
        template_folder=str(webmap.TEMPLATE_DIR),
        static_folder=str(webmap.STATIC_DIR),
    )
    app.config.from_mapping(load_config(app.instance_path, test_config))
    requestlog.configure_logging(app.config["WANGGE"]["log_format"])
    requestlog.init_app(app)  # first: the request id is set before any other hook logs

    # Pages, JSON and GeoJSON compress 4-8x; government links are often slow.
    app.config.setdefault("COMPRESS_MIMETYPES", [*_COMPRESSED_TYPES])
    # Streamed (static file) responses stay plain: flask-compress leaks their file handle.
    app.config.setdefault("COMPRESS_STREAMS", False)
    Compress(app)
    security.init_app(app)  # before any blueprint: it installs the bounded <int:> converter
    proxy.init_app(app)  # forwarded headers (trusted_proxy_hops) and url_prefix
    db.init_app(app)
    auth.init_app(app)
    errors.init_app(app)
    app.register_blueprint(workspace_map.bp)
    app.register_blueprint(plan_routes.bp)
    app.register_blueprint(plan_pages.bp)
    app.register_blueprint(access_pages.bp)
    app.register_blueprint(imports_pages.bp)
    app.register_blueprint(admin_users.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(job_routes.bp)
    app.register_blueprint(grid_routes.bp)
    app.register_blueprint(register_routes.bp)
    app.register_blueprint(register_pages.bp)
    app.register_blueprint(register_staff_pages.bp)
    app.register_blueprint(board_pages.bp)
    app.register_blueprint(board_batch_pages.bp)
    app.register_blueprint(party_pages.bp)
    app.register_blueprint(patrol_routes.bp)
    app.register_blueprint(patrol_pages.bp)
    app.register_blueprint(patrol_device_pages.bp)
    app.register_blueprint(incident_open311.bp)
    app.register_blueprint(incident_pages.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(incident_notify_pages.bp)
    app.register_blueprint(incident_public.bp)
    return app
