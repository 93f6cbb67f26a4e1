"""HTML pages: the workspace map; plus ``/api/health``. Routes stay thin: load, build, render."""

from __future__ import annotations

import logging
import time
from typing import Any

import geopandas as gpd
import shapely
from flask import Blueprint, current_app, jsonify, redirect, render_template, url_for
from flask_login import current_user, login_required
from sqlalchemy import select, text, type_coerce
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from api.db import get_session
from api.error_text import web_wording
from api.models import WKB, PlanGrid, PlanVersion
from api.pagecache import cached
from api.security import limiter, public_limit
from api.workspace import load_layer, workspace_stats
from webmap.maps import BasemapError, workspace_map

__all__ = ["bp", "MAP_COLUMNS", "NO_ACTIVE_PLAN", "active_plan_grids", "map_parts", "cached_map_parts"]

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


#: The legend note of /map when no plan is published.
NO_ACTIVE_PLAN = "尚无已发布的网格方案：规划员在“网格方案”页发布方案后，网格显示在此地图上"


def active_plan_grids(session: Session) -> tuple[gpd.GeoDataFrame | None, str]:
    """Grids of the active (published) plans for the workspace map, and the legend note.

    Returns ``(None, NO_ACTIVE_PLAN)`` when no plan is published (or it has no outlines).
    """
    plans = session.scalars(select(PlanVersion).where(PlanVersion.is_active.is_(True))
                            .order_by(PlanVersion.id)).all()
    rows = session.execute(
        select(PlanGrid.grid_id, PlanGrid.code, PlanGrid.name, PlanGrid.households,
               type_coerce(PlanGrid.geometry, WKB))
        .where(PlanGrid.plan_version_id.in_([p.id for p in plans]), PlanGrid.geometry.is_not(None))
        .order_by(PlanGrid.plan_version_id, PlanGrid.grid_id)).all() if plans else []
    if not rows:
        return None, NO_ACTIVE_PLAN
    columns = ["grid_id", "code", "name", "households"]
    grids = gpd.GeoDataFrame({c: [r[i] for r in rows] for i, c in enumerate(columns)},
                             geometry=shapely.from_wkb([bytes(r[4]) for r in rows]), crs=4326)
    names = "、".join(f"#{p.id} {p.name}" for p in plans)
    return grids, f"生效方案：{names}（{len(grids)} 个网格）"


def map_parts(layers: dict[str, gpd.GeoDataFrame], *, label: str | None,
              grids_note: str | None = None) -> dict[str, Any]:
    """Build the map with the app's base-map settings and render its header/html/script parts.

    A base map that cannot be shown (e.g. Tianditu without key) falls back to the blank
    base map and the reason is returned as ``basemap_error`` for the page to show.
    """
    settings = current_app.config["WANGGE"]
    options = {
        "tianditu_tk": settings["tianditu_tk"], "osm_tile_url": settings["osm_tile_url"], "label": label,
        "simplify_m": settings["map_simplify_m"], "household_breaks": tuple(settings["map_household_breaks"]),
        "vendor_url": url_for("static", filename="vendor"), "grids_note": grids_note,
    }
    basemap_error = None
    try:
        m = workspace_map(layers, basemap=settings["basemap"], **options)
    except BasemapError as exc:
        basemap_error = web_wording(exc)
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


def _parts_key(session: Session, last: dict[str, Any]) -> tuple[Any, ...]:
    """What the workspace map is drawn from: the newest import, the active plans and their versions,
    the base-map settings and the asset URL. Nothing else changes the map, so equal keys, equal maps."""
    settings = current_app.config["WANGGE"]
    active = session.execute(select(PlanVersion.id, PlanVersion.version_counter)
                             .where(PlanVersion.is_active.is_(True)).order_by(PlanVersion.id)).all()
    return (last.get("id"), last.get("note"), tuple((a, v) for a, v in active), settings["basemap"],
            settings["tianditu_tk"], settings["osm_tile_url"], settings["map_simplify_m"],
            tuple(settings["map_household_breaks"]), url_for("static", filename="vendor"))


def cached_map_parts(session: Session, last: dict[str, Any]) -> dict[str, Any]:
    """The workspace map's parts (:func:`map_parts`), built once per key and app process.

    Building them reads every layer and serialises it (2-4 s for the 3,000-building demo on a
    busy machine) although the map changes only with an import or a publish/rollback: the
    landing page of every role now costs that once.
    """
    def build() -> dict[str, Any]:
        layers = {kind: load_layer(session, kind, columns=cols) for kind, cols in MAP_COLUMNS.items()}
        layers["grids"], grids_note = active_plan_grids(session)
        return map_parts(layers, label=last.get("note") or None, grids_note=grids_note)

    return cached("map", _parts_key(session, last), build)


@bp.route("/map")
@login_required
def map_page() -> str:
    """工作区地图: every layer of the workspace, the active plan's grids, stats and the data label (any role)."""
    started = time.perf_counter()
    session = get_session()
    stats = workspace_stats(session)
    last = stats.get("last_import") or {}
    parts = cached_map_parts(session, last)
    log.info("map page for %s: %d buildings in %.2f s", current_user.username,
             stats["counts"]["buildings"], time.perf_counter() - started)
    return render_template("map.html", stats=stats, label=last.get("note") or None, **parts)


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
