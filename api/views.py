"""HTML pages: the workspace map; plus ``/api/health``. Routes stay thin: load, build, render."""

from __future__ import annotations

import logging
import time
from typing import Any

import geopandas as gpd
from flask import Blueprint, current_app, jsonify, redirect, render_template, url_for
from flask_login import current_user, login_required
from sqlalchemy import text
from werkzeug.wrappers import Response

from api.db import get_session
from api.security import limiter, public_limit
from api.workspace import load_layer, workspace_stats
from webmap.maps import BasemapError, workspace_map

__all__ = ["bp", "MAP_COLUMNS", "map_parts"]

log = logging.getLogger(__name__)

bp = Blueprint("views", __name__)

#: Attribute columns the workspace map needs per layer (the id column always comes).
MAP_COLUMNS: dict[str, list[str]] = {
    "communities": ["name"],
    "compounds": ["name"],
    "streets": ["name", "road_class"],
    "buildings": ["name", "use", "households", "households_estimated"],
    "service_points": ["name", "category"],
}


def map_parts(layers: dict[str, gpd.GeoDataFrame], *, label: str | None) -> dict[str, Any]:
    """Build the map with the app's base-map settings and render its header/html/script parts.

    A base map that cannot be shown (e.g. Tianditu without key) falls back to the blank
    base map and the reason is returned as ``basemap_error`` for the page to show.
    """
    settings = current_app.config["WANGGE"]
    options = {
        "tianditu_tk": settings["tianditu_tk"], "osm_tile_url": settings["osm_tile_url"], "label": label,
        "simplify_m": settings["map_simplify_m"], "household_breaks": tuple(settings["map_household_breaks"]),
        "vendor_url": url_for("static", filename="vendor"),
    }
    basemap_error = None
    try:
        m = workspace_map(layers, basemap=settings["basemap"], **options)
    except BasemapError as exc:
        basemap_error = str(exc)
        log.warning("base map %r not shown: %s", settings["basemap"], exc)
        m = workspace_map(layers, basemap="none", **options)
    root = m.get_root()
    root.render()
    return {
        "map_header": root.header.render(), "map_html": root.html.render(),
        "map_script": root.script.render(), "map_name": m.get_name(), "basemap_error": basemap_error,
    }


@bp.route("/")
def index() -> Response:
    return redirect(url_for("views.map_page"))


@bp.route("/map")
@login_required
def map_page() -> str:
    """工作区地图: every layer of the workspace, stats and the data label (any role)."""
    started = time.perf_counter()
    session = get_session()
    stats = workspace_stats(session)
    layers = {kind: load_layer(session, kind, columns=cols) for kind, cols in MAP_COLUMNS.items()}
    last = stats.get("last_import") or {}
    label = last.get("note") or None
    parts = map_parts(layers, label=label)
    log.info("map page for %s: %d buildings in %.2f s", current_user.username,
             stats["counts"]["buildings"], time.perf_counter() - started)
    return render_template("map.html", stats=stats, label=label, **parts)


@bp.route("/api/health")
@limiter.limit(public_limit)
def health() -> tuple[Response, int]:
    """Liveness and database check for monitoring (no login needed, no data disclosed)."""
    try:
        get_session().execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:  # noqa: BLE001 - report any database failure as unhealthy
        log.error("health check: database error: %s", exc)
        database = "error"
    status = 200 if database == "ok" else 503
    return jsonify({"status": "ok" if status == 200 else "error", "database": database}), status
