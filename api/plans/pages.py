"""Planner HTML pages (issue 4): plan list, plan map, diff view; plus the map's context layers
(``/api/context/<kind>.geojson``).

The pages are frames: ``planner.js`` fills them from the JSON routes of ``api/plans``
(docs/PLANNER_API.md). Streets and compounds, which are workspace layers and not part of a
plan, are served here per bounding box so the page never embeds them.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from flask import Blueprint, current_app, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from api.db import get_session
from api.error_text import web_wording
from api.errors import RequestError
from api.models import Building, Community, ImportRun, PlanVersion
from api.plans.overview import opens_on_overview
from api.plans.policy import EDIT_ROLES, allowed_actions, can_edit, visible_plan
from api.plans.store import plan_communities
from api.workspace import load_layer
from webmap.maps import BasemapError
from webmap.planner import CONTEXT_COLUMNS, EXPORT_FORMATS, context_features_json, plan_map

__all__ = ["bp", "EDIT_ROLES", "MAJOR_ROAD_CLASSES", "STATUS_LABELS", "page_context", "plan_map_parts"]

log = logging.getLogger(__name__)

bp = Blueprint("plan_pages", __name__)

#: Plan status -> Chinese (the page's badge; planner.js has the same table).
STATUS_LABELS = {"draft": "草稿", "published": "已发布", "archived": "已归档", "auto": "自动结果（只读）"}
#: Characters JavaScript's encodeURIComponent leaves as they are beyond quote()'s own (so a
#: prefetched URL is the one the page script asks for).
_URI_COMPONENT_SAFE = "!*'()"
#: Road classes drawn at every zoom; the others only from ``planner_streets_min_zoom``.
MAJOR_ROAD_CLASSES = ("major", "secondary", "rail", "water")


def _can_edit() -> bool:
    return can_edit()


def _plan_bounds(plan: PlanVersion | None) -> tuple[int, int]:
    """The plan's household bounds (its settings, else the app's, micro-grid ones in micro mode)."""
    settings = current_app.config["WANGGE"]
    stored = (plan.settings if plan is not None else None) or {}
    micro = bool(stored.get("micro"))
    lo = stored.get("min_households", settings["micro_grid_min_households" if micro else "grid_min_households"])
    hi = stored.get("max_households", settings["micro_grid_max_households" if micro else "grid_max_households"])
    return int(lo), int(hi)


def _map_bbox(session: Any) -> tuple[float, float, float, float] | None:
    """Where the plan map opens: the communities' extent (thousands of rows), else the buildings'
    (the workspace's statistics summed a million buildings: 0.3 s of every plan page)."""
    for model in (Community, Building):
        t = model.__table__
        row = session.execute(select(func.min(t.c.minx), func.min(t.c.miny), func.max(t.c.maxx),
                                     func.max(t.c.maxy))).one()
        if row[0] is not None:
            return tuple(float(v) for v in row)  # type: ignore[return-value]
    return None


def plan_map_parts(*, plan: PlanVersion | None, editable: bool) -> dict[str, Any]:
    """Build the plan map with the app's settings; its header/html/script parts for the template.

    A base map that cannot be shown falls back to the blank one; the reason comes back as
    ``basemap_error``.
    """
    settings = current_app.config["WANGGE"]
    session = get_session()
    bbox = _map_bbox(session)
    lo, hi = _plan_bounds(plan)
    options = {
        "tianditu_tk": settings["tianditu_tk"], "osm_tile_url": settings["osm_tile_url"],
        "min_households": lo, "max_households": hi, "editable": editable,
        "bounds": None if bbox is None else [[bbox[1], bbox[0]], [bbox[3], bbox[2]]],
        "labels_min_zoom": settings["planner_labels_min_zoom"],
        "buildings_min_zoom": settings["planner_buildings_min_zoom"],
        "streets_min_zoom": settings["planner_streets_min_zoom"],
        "label": session.scalar(select(ImportRun.note).where(ImportRun.status == "success")
                                .order_by(ImportRun.id.desc()).limit(1)) or None,
        "vendor_url": url_for("static", filename="vendor"),
    }
    basemap_error = None
    try:
        m = plan_map(basemap=settings["basemap"], **options)
    except BasemapError as exc:
        basemap_error = web_wording(exc)
        log.warning("base map %r not shown on the plan page: %s", settings["basemap"], exc)
        m = plan_map(basemap="none", **options)
    root = m.get_root()
    root.render()
    return {"map_header": root.header.render(), "map_html": root.html.render(),
            "map_script": root.script.render(), "basemap_error": basemap_error}


def page_context(**extra: Any) -> dict[str, Any]:
    """The JSON the page scripts read: role, API base, defaults of the partition form."""
    s = current_app.config["WANGGE"]
    return {
        "canEdit": _can_edit(),
        "user": current_user.username,
        "api": f"{request.script_root}/api",
        "pages": url_for("plan_pages.plans_page"),
        "context": f"{request.script_root}/api/context",
        "defaults": {
            "normal": {"min": s["grid_min_households"], "max": s["grid_max_households"],
                       "target": s["grid_target_households"]},
            "micro": {"min": s["micro_grid_min_households"], "max": s["micro_grid_max_households"],
                      "target": s["micro_grid_target_households"]},
            "seed": s["partition_seed"],
            "register_households": bool(s["partition_register_households"]),
        },
        **extra,
    }


def _plan_or_404(plan_id: int) -> PlanVersion:
    """The plan if the user may see it (workers and viewers: published plans only), else 404."""
    try:
        return visible_plan(get_session(), plan_id)
    except RequestError:
        raise RequestError(404, "plan_not_found", f"方案 #{plan_id} 不存在或尚未发布",
                           "网格员和只读用户只能查看已发布的方案；从“网格方案”列表选择") from None


@bp.route("/plans")
@login_required
def plans_page() -> str:
    """网格方案: list of plan versions; planners get the automatic-partition form."""
    return render_template("plans.html", page=page_context(page="plans"), can_edit=_can_edit())


@bp.route("/plans/<int:plan_id>")
@login_required
def plan_page(plan_id: int) -> str:
    """方案地图: the plan's grids on the map beside the per-grid table; edit toolbar for planners.

    ``?community_id=``: one community's grids only (its own state, never the city's). A plan of
    more than ``planner_overview_min_grids`` grids opened without one shows the overview of its
    communities instead (api.plans.overview), never loading the whole plan.
    """
    plan = _plan_or_404(plan_id)
    session = get_session()
    community = _community_arg(session, plan_id)
    overview = opens_on_overview(session, plan, current_app.config["WANGGE"], community)
    actions = allowed_actions(plan)
    parts = plan_map_parts(plan=plan, editable="edit" in actions and not overview)
    log.info("plan page %d (%s%s) for %s (%s): %s", plan_id, plan.status,
             ", overview" if overview else f", community {community}" if community else "", current_user.username,
             current_user.role, actions)
    api = f"{request.script_root}/api/plans/{plan_id}"
    prefetch = [api, f"{api}/communities" if overview else f"{api}/grids.geojson?display=1" + (
        f"&community_id={quote(community, safe=_URI_COMPONENT_SAFE)}" if community else "")]
    name = _community_name(session, community)
    return render_template("plan.html", plan=plan, can_edit=_can_edit(), actions=actions, exports=EXPORT_FORMATS,
                           status_label=STATUS_LABELS.get(plan.status, plan.status), overview=overview,
                           community=community, community_name=name, prefetch=prefetch,
                           page=page_context(page="plan", planId=plan_id, actions=actions, parentId=plan.parent_id,
                                             community=community, communityName=name, overview=overview),
                           **parts)


def _community_arg(session: Any, plan_id: int) -> str | None:
    """``?community_id=`` when given: a community of the plan's grids, else 404 naming it."""
    community = request.args.get("community_id") or None
    if community is not None and not plan_communities(session, plan_id, among=[community]):
        raise RequestError(404, "community_not_in_plan", f"方案 #{plan_id} 中没有社区 {community}",
                           "从方案的社区概览或社区边界选择社区", field="community_id")
    return community


def _community_name(session: Any, community: str | None) -> str | None:
    if community is None:
        return None
    name = session.scalar(select(Community.name).where(Community.community_id == community))
    return str(name) if name else community


@bp.route("/plans/<int:a>/diff/<int:b>")
@login_required
def plan_diff_page(a: int, b: int) -> str:
    """方案对比: buildings that changed grid between versions *a* and *b*, highlighted."""
    plan_a, plan_b = _plan_or_404(a), _plan_or_404(b)
    parts = plan_map_parts(plan=plan_b, editable=False)
    return render_template("plan_diff.html", plan_a=plan_a, plan_b=plan_b,
                           page=page_context(page="diff", planA=a, planB=b), **parts)


def _bbox_arg() -> tuple[float, float, float, float] | None:
    raw = request.args.get("bbox")
    if not raw:
        return None
    try:
        minx, miny, maxx, maxy = (float(v) for v in raw.split(","))
    except ValueError:
        raise RequestError(400, "bad_bbox", f"参数 bbox={raw!r} 无效", "写成 minx,miny,maxx,maxy（经纬度）四个数",
                           field="bbox") from None
    return minx, miny, maxx, maxy


@bp.route("/api/context/<kind>.geojson")
@login_required
def context_layer(kind: str) -> Response:
    """Streets or compounds in ``?bbox=`` (all when absent); ``?major=1``: major roads only."""
    if kind not in CONTEXT_COLUMNS:
        raise RequestError(404, "layer_not_found", f"图层 {kind} 不存在", f"可用：{', '.join(CONTEXT_COLUMNS)}",
                           field="kind")
    gdf = load_layer(get_session(), kind, bbox=_bbox_arg(), columns=CONTEXT_COLUMNS[kind])
    major = request.args.get("major") == "1"
    body = context_features_json(gdf, kind, simplify_m=current_app.config["WANGGE"]["map_simplify_m"],
                                 road_classes=MAJOR_ROAD_CLASSES if major and kind == "streets" else None)
    response = Response(body, mimetype="application/json")
    response.headers["Cache-Control"] = "private, max-age=300"
    return response
