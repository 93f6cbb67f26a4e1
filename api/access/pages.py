"""The 15-minute service circle in the map app (issue 5): ``/access`` and its JSON routes.

The analysis of each import run (and set of active plans) runs once, as an ``access`` job on
the durable queue (:mod:`api.access.analysis`): a page waits up to ``access_wait_s`` for it,
else answers 202 with the job's progress (a page that reloads itself). The finished result
is kept in ``app.extensions``; isochrones are drawn per category and level on first request. Routes stay thin: parse, take the cached result, hand it to
:mod:`geo.isochrones` and :mod:`webmap.access_map`.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import geopandas as gpd
import pandas as pd
from flask import Blueprint, Flask, current_app, jsonify, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from api.access.analysis import AccessState, analysis_job, analysis_key, stored_state
from api.access.suggest import SuggestError, suggest_new_sites
from api.db import get_session
from api.error_text import web_wording
from api.errors import RequestError, wants_json
from api.jobs import Job, get_job
from api.pagecache import cached
from api.workspace import load_layer
from geo.access import AccessResult, euclidean_overstatement
from geo.isochrones import access_map_layers, zone_coverage
from geo.lifecircle import (
    CATEGORY_LABELS_ZH,
    DEFAULT_CHECKLIST,
    LEVEL_LABELS_ZH,
)
from geo.maxcover import SiteSuggestion
from webmap.access_map import access_map
from webmap.basemaps import BasemapError

__all__ = ["bp", "AccessState", "AnalysisPending", "SCREENING_LABEL", "access_state", "category_options", "suggestion_numbers"]

log = logging.getLogger(__name__)

bp = Blueprint("access_pages", __name__)

#: Banner of the straight-line mode: it is a screening view, never the result.
SCREENING_LABEL = "直线距离筛查，仅供参考：直线距离不沿道路，会高估覆盖"
_EXTENSION = "wangge_access"
_LOCK = threading.Lock()


class AnalysisPending(Exception):
    """The workspace's analysis job did not finish within ``access_wait_s``: answer its progress."""

    def __init__(self, job: Job) -> None:
        super().__init__(job.job_id)
        self.job = job


def _wait_for_job(app: Flask, key: tuple[Any, ...]) -> AccessState:
    """Queue (or join) the analysis job of *key*; its result if it ends within ``access_wait_s``."""
    job = analysis_job(app, key, user=current_user.username)
    deadline = time.monotonic() + float(app.config["WANGGE"]["access_wait_s"])
    while job.state in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.1)
        job = get_job(job.job_id, app) or job
    if job.state in ("queued", "running"):
        raise AnalysisPending(job)
    state = stored_state(app, key)
    if state is None:
        raise RequestError(503, "access_failed", job.message or "生活圈分析没有完成",
                           "刷新页面重新计算；如仍失败，请把任务编号告诉管理员（详情见服务日志）", job_id=job.job_id)
    return state


def access_state() -> AccessState:
    """The analysis of the current import run and active plans: cached, else stored, else its job's.

    The analysis runs as an ``access`` job (:mod:`api.access.analysis`); a request waits up
    to ``access_wait_s`` for it, then raises :class:`AnalysisPending`.
    """
    key = analysis_key(get_session())
    if key is None:
        raise RequestError(409, "empty_workspace", "工作区还没有楼栋数据，无法计算生活圈覆盖", "先在“导入数据”页导入楼栋和服务点")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    cache = app.extensions.setdefault(_EXTENSION, {})
    state = cache.get("state")
    if state is not None and state.key == key:
        return state
    state = stored_state(app, key) or _wait_for_job(app, key)
    with _LOCK:
        cache["state"] = state
    return state


@bp.errorhandler(AnalysisPending)
def _pending(exc: AnalysisPending) -> tuple[Response | str, int, dict[str, str]]:
    """202 while the analysis job runs: its progress as JSON, or a page that reloads itself."""
    headers = {"Retry-After": "3"}
    if wants_json():
        return jsonify({"state": "computing", "job": exc.job.json()}), 202, headers
    return render_template("access_pending.html", job=exc.job.json()), 202, headers


def category_options(result: AccessResult) -> list[dict[str, Any]]:
    """Categories with facilities, checklist order first: value, Chinese label, own level (m)."""
    present = set(result.summary["categories"])
    dist = dict(enumerate(result.levels_m, start=1))
    out = [{"value": i.category, "label": i.label_zh, "level_m": dist.get(i.level, result.levels_m[-1])}
           for i in DEFAULT_CHECKLIST.items if i.category in present]
    listed = {o["value"] for o in out}
    out += [{"value": c, "label": CATEGORY_LABELS_ZH.get(c, c), "level_m": result.levels_m[-1]}
            for c in sorted(present - listed)]
    return out


def _level_label(levels_m: tuple[float, ...], level: float) -> str:
    rank = levels_m.index(level) + 1
    return f"{LEVEL_LABELS_ZH.get(rank, f'{level:g} 米')}（{level:g} 米）"


def _args(state: AccessState, *, need_category: bool = True) -> tuple[str | None, float | None, str]:
    """``(category, level_m, mode)`` from the query string, 400 on unknown values."""
    options = category_options(state.network)
    known = {o["value"]: o for o in options}
    category = request.args.get("category") or None
    if category is None and need_category:
        if not options:
            raise RequestError(409, "no_service_points", "工作区没有可识别类别的服务点",
                               "导入服务点时在“列映射”中把类别列映射为 category")
        category = options[0]["value"]
    if category is not None and category not in known:
        raise RequestError(400, "unknown_category", f"未知的设施类别 {category!r}", f"可选：{'、'.join(known) or '无'}",
                           field="category")
    levels = state.network.levels_m
    raw = request.args.get("level")
    if raw in (None, ""):
        level = known[category]["level_m"] if category is not None else None
    else:
        try:
            level = float(raw)
        except ValueError:
            level = -1.0
        if level not in levels:
            raise RequestError(400, "bad_level", f"步行距离 level={raw!r} 不可用",
                               f"可选：{'、'.join(f'{v:g}' for v in levels)}", field="level")
    mode = request.args.get("mode", "network")
    if mode not in ("network", "euclidean"):
        raise RequestError(400, "bad_mode", f"mode={mode!r} 不可用", "可选：network（步行网络）、euclidean（直线筛查）",
                           field="mode")
    return category, level, mode


def _layers(state: AccessState, category: str, level: float, mode: str) -> dict[str, Any]:
    key = (category, level, mode)
    if key not in state.layers:
        result = state.network if mode == "network" else state.screening
        settings = current_app.config["WANGGE"]
        state.layers[key] = access_map_layers(result, category=category, level_m=level,
                                              width_m=settings["isochrone_width_m"],
                                              walk_speed_mps=settings["walk_speed_mps"],
                                              max_snap_m=settings["walk_max_snap_m"])
    return state.layers[key]


def _area_numbers(state: AccessState, category: str, level: float) -> dict[str, Any]:
    """Whole-area shares (network, straight line, their difference) and uncovered buildings."""
    net = _rows(state.network, "area", category, level)
    both = euclidean_overstatement(net, _rows(state.screening, "area", category, level))

    def number(column: str) -> float | None:
        value = both[column].iloc[0] if len(both) else None
        return None if value is None or pd.isna(value) else float(value)

    dist = state.network.buildings[f"dist_{category}"]
    return {
        "households": float(net["households"].sum()),
        "covered_households": float(net["covered_households"].sum()),
        "share": number("share_network"), "share_euclidean": number("share_euclidean"),
        "overstatement": number("overstatement"),
        "uncovered_buildings": int((~(dist <= level)).sum()),
    }


def _rows(result: AccessResult, group_by: str, category: str | None, level: float | None) -> pd.DataFrame:
    cov = result.coverage[result.coverage.group_by == group_by]
    if category is not None:
        cov = cov[cov.category == category]
    if level is not None:
        cov = cov[cov.level_m == float(level)]
    return cov.drop(columns="group_by")


def _suggest_k(param: str = "suggest", *, required: bool = False) -> int | None:
    """K of ``?<param>=K`` (None when absent and not *required*), 400 unless a whole number."""
    raw = request.args.get(param, "").strip()
    if not raw and not required:
        return None
    try:
        return int(raw)
    except ValueError:
        raise RequestError(400, "bad_suggest", f"建议新址数 {param}={raw!r} 须为整数", f"例如 {param}=3",
                           field=param) from None


def _suggestion(state: AccessState, category: str, level: float, k: int, *, option: str = "suggest") -> SiteSuggestion:
    key = (category, level, k)
    if key not in state.suggestions:
        try:
            state.suggestions[key] = suggest_new_sites(state.network, category, k, level_m=level,
                                                       settings=current_app.config["WANGGE"], option=option)
        except SuggestError as exc:
            raise RequestError(400, "suggest_refused", exc.message_zh, exc.fix_zh, field=option) from None
    return state.suggestions[key]


def suggestion_numbers(suggestion: SiteSuggestion) -> dict[str, Any]:
    """What the page and the JSON route say about a suggestion (sites ranked, households each adds)."""
    sites = suggestion.sites.to_crs(4326)
    return {"k": suggestion.k, "level_m": suggestion.level_m, "method": suggestion.method,
            "gap": round(suggestion.gap, 4), "candidates": suggestion.candidates,
            "uncovered_households": round(suggestion.uncovered_households),
            "newly_covered_households": round(suggestion.newly_covered_households),
            "sites": [{"rank": int(r.rank), "households_added": round(r.households_added),
                       "households_in_reach": round(r.households_in_reach),
                       "lon": round(r.geometry.x, 6), "lat": round(r.geometry.y, 6)}
                      for r in sites.itertuples()]}


def _map_parts(state: AccessState, category: str, level: float, mode: str, title: str,
               suggested: gpd.GeoDataFrame | None = None) -> dict[str, Any]:
    settings = current_app.config["WANGGE"]
    layers = _layers(state, category, level, mode)
    zones = None
    if state.zones is not None:  # the screening view shades its own (overstated) shares
        result = state.network if mode == "network" else state.screening
        zones = zone_coverage(result, state.zones, key=state.zone_key, category=category,
                              level_m=level)
        zones["name"] = zones["name"].where(zones["name"].notna(), zones[state.zone_key])
    services = state.network.services
    streets = cached("access-streets", state.key, lambda: load_layer(get_session(), "streets", columns=["name"]),
                     keep=1)
    data = {"zones": zones, "streets": streets, "isochrones": layers["isochrones"],
            "buildings": layers["buildings"],
            "services": services[services["category"].astype(str) == category].to_crs(4326),
            "suggested": None if suggested is None else suggested.to_crs(4326)}
    options = {"title": title, "zone_label": state.zone_label, "screening": mode == "euclidean",
               "label": SCREENING_LABEL if mode == "euclidean" else None,
               "tianditu_tk": settings["tianditu_tk"], "osm_tile_url": settings["osm_tile_url"],
               "simplify_m": settings["map_simplify_m"], "vendor_url": url_for("static", filename="vendor")}
    basemap_error = None
    try:
        m = access_map(data, basemap=settings["basemap"], **options)
    except BasemapError as exc:
        basemap_error = web_wording(exc)
        m = access_map(data, basemap="none", **options)
    root = m.get_root()
    root.render()
    return {"map_header": root.header.render(), "map_html": root.html.render(),
            "map_script": root.script.render(), "basemap_error": basemap_error}


def _parts_key(state: AccessState, category: str, level: float, mode: str, k: int | None) -> tuple[Any, ...]:
    """What the map of one view is drawn from: the analysis (import run, active plans), the view,
    the display settings and the asset URL; equal keys, equal maps."""
    settings = current_app.config["WANGGE"]
    names = ("basemap", "tianditu_tk", "osm_tile_url", "map_simplify_m", "isochrone_width_m", "walk_speed_mps",
             "walk_max_snap_m")
    return (state.key, category, level, mode, k, tuple(repr(settings[n]) for n in names),
            url_for("static", filename="vendor"))


@bp.route("/access")
@login_required
def access_page() -> str:
    """生活圈覆盖: service circles of one category and level, coverage per grid or community."""
    started = time.perf_counter()
    state = access_state()
    category, level, mode = _args(state)
    assert category is not None and level is not None
    cat_label = CATEGORY_LABELS_ZH.get(category, category)
    title = f"{cat_label} · {_level_label(state.network.levels_m, level)}"
    k = _suggest_k()
    suggestion = None if k is None else _suggestion(state, category, level, k)
    parts = cached("access", _parts_key(state, category, level, mode, k),
                   lambda: _map_parts(state, category, level, mode, title,
                                      suggested=None if suggestion is None else suggestion.sites), keep=16)
    numbers = _area_numbers(state, category, level)
    log.info("access page %s/%g/%s for %s in %.2f s", category, level, mode, current_user.username,
             time.perf_counter() - started)
    return render_template(
        "access.html", categories=category_options(state.network), category=category,
        levels=[{"value": v, "label": _level_label(state.network.levels_m, v)}
                for v in state.network.levels_m],
        level=level, mode=mode, title=title, numbers=numbers, zone_label=state.zone_label,
        plan_names=state.plan_names, screening_label=SCREENING_LABEL,
        unsnapped=len(state.network.unsnapped_buildings),
        suggestion=None if suggestion is None else suggestion_numbers(suggestion), suggest_k=k or 3,
        max_sites=current_app.config["WANGGE"]["maxcover_max_sites"], **parts)


@bp.route("/api/access/summary")
@login_required
def summary() -> Response:
    """Coverage per area and grid (active plan) or community, per category and level, as JSON.

    ``category`` and ``level`` filter the rows; ``share_euclidean`` is the straight-line
    screening share of the same group (it overstates coverage).
    """
    state = access_state()
    category, level, _ = _args(state, need_category=False)
    out: dict[str, Any] = {"label_zh": state.network.label_zh, "levels_m": list(state.network.levels_m),
                           "categories": category_options(state.network),
                           "group_by": state.zone_key, "zone_label": state.zone_label,
                           "plans": list(state.plan_names)}
    for name, group_by in (("area", "area"), ("groups", state.zone_key)):
        net = _rows(state.network, group_by, category, level)
        eu = _rows(state.screening, group_by, category, level)
        both = net.merge(eu[["group", "level_m", "category", "share"]], how="left",
                         on=["group", "level_m", "category"], suffixes=("", "_euclidean"))
        both = both.astype(object).where(both.notna(), None)
        out[name] = both.to_dict(orient="records")
    return jsonify(out)


@bp.route("/api/access/isochrones.geojson")
@login_required
def isochrones() -> Response:
    """Isochrone polygons (WGS84 GeoJSON) of one category's service points at one level."""
    state = access_state()
    category, level, mode = _args(state)
    assert category is not None and level is not None
    iso = _layers(state, category, level, mode)["isochrones"]
    keep = [c for c in ("point_id", "category", "level_m", "minutes", "reached_m", "label_zh")
            if c in iso.columns]
    return jsonify(iso[keep + ["geometry"]].to_geo_dict(drop_id=True))


@bp.route("/api/access/suggest")
@login_required
def suggest() -> Response:
    """K new sites (``k``) of one category at one level: ranked, with the households each adds."""
    state = access_state()
    category, level, _ = _args(state)
    k = _suggest_k("k", required=True)
    assert category is not None and level is not None and k is not None
    return jsonify({"category": category, **suggestion_numbers(_suggestion(state, category, level, k, option="k"))})
