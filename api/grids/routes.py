"""JSON routes of the active grids: list, locate points, one grid (any logged-in user; no people)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask_login import login_required
from shapely.geometry import mapping
from werkzeug.wrappers import Response

from api.db import get_session
from api.errors import RequestError
from api.grids import service
from api.grids.cache import cached_active

__all__ = ["bp"]

bp = Blueprint("grids", __name__)

_MAX_POINTS = 10_000


def _floats(name: str) -> list[float]:
    raw = request.args.get(name, "")
    try:
        values = [float(v) for v in raw.split(",") if v.strip()]
    except ValueError:
        raise RequestError(400, "bad_coordinates", f"参数 {name} 须为逗号分隔的数字，收到 {raw[:40]!r}",
                           f"写成 {name}=121.47,121.48（WGS84 经纬度）", field=name) from None
    if not values:
        raise RequestError(400, "missing_coordinates", f"缺少参数 {name}", "填写 WGS84 经纬度，可用逗号分隔多个点",
                           field=name)
    return values


@bp.get("/api/grids")
@login_required
def list_grids() -> Response:
    """Active grids (no geometry): key, code, name, community, households, buildings."""
    grids = service.active_grids(get_session(), community_id=request.args.get("community_id"))
    rows = grids.drop(columns="geometry").astype(object).where(grids.notna(), None).to_dict("records")
    return jsonify({"grids": rows, "count": len(rows)})


@bp.get("/api/grids/locate")
@login_required
def locate() -> Response:
    """Grid of one or many WGS84 points: ``?lon=121.47,121.48&lat=31.23,31.24``."""
    lon, lat = _floats("lon"), _floats("lat")
    if len(lon) != len(lat) or len(lon) > _MAX_POINTS:
        raise RequestError(400, "bad_coordinates", f"lon 与 lat 个数不同或过多（收到 {len(lon)} 与 {len(lat)}）",
                           f"lon 与 lat 须一一对应，且不超过 {_MAX_POINTS} 个点", field="lat")
    settings = current_app.config["WANGGE"]
    active = cached_active(get_session(), settings)
    found = active.grid_of_points(lon, lat, tolerance_m=settings["grid_point_tolerance_m"],
                                  nearest_max_m=settings["grid_nearest_max_m"])
    out: list[dict[str, Any]] = [{"lon": x, "lat": y, "grid": g, "how": h,
                                  "distance_m": None if d != d else round(float(d), 2)}
                                 for x, y, g, h, d in zip(lon, lat, found["grid_id"], found["how"],
                                                          found["distance_m"], strict=True)]
    return jsonify({"points": out})


@bp.get("/api/grids/<key>")
@login_required
def one_grid(key: str) -> Response:
    """One active grid with its GeoJSON geometry."""
    try:
        meta = service.grid_meta(get_session(), key)
    except service.GridNotFound as exc:
        raise RequestError(404, "grid_not_found", str(exc).strip("'\""),
                           "检查网格编码；网格编码可能已在重新划分后停用（GET /api/grids 列出生效网格）") from None
    meta["geometry"] = mapping(meta["geometry"]) if meta["geometry"] is not None else None
    return jsonify(meta)
