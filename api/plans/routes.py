"""JSON routes of the planner (docs/PLANNER_API.md): thin — parse, call store/edits/jobs, answer."""

from __future__ import annotations

import copy
import io
import json
import logging
import time
from typing import Any

import numpy as np
import shapely
from flask import Blueprint, Response, current_app, jsonify, request, send_file
from flask_login import current_user, login_required
from sqlalchemy import select, type_coerce

from api import audit
from api.auth import role_required
from api.bbox import bbox_clauses
from api.db import get_session, session_scope
from api.errors import RequestError
from api.models import WKB, Building, PlanAssignment, PlanCell, PlanVersion
from api.plans import edits, jobs, rebase, store
from api.plans.exports import export_plan
from api.plans.overview import community_overview
from api.plans.policy import EDIT_ROLES, allowed_actions, visible_only, visible_plan
from api.plans.state import get_state, grid_feature, plan_bounds, plan_lock
from api.plans.summary import plan_summary
from api.workspace import load_layer
from webmap.planner import community_outlines_json, display_grids_json

__all__ = ["bp", "EDIT_ROLES"]

log = logging.getLogger(__name__)

bp = Blueprint("plans_api", __name__, url_prefix="/api")


def _body() -> dict[str, Any]:
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw or b"null")
    except ValueError as exc:
        raise RequestError(400, "malformed_json", f"请求体不是有效的 JSON：{exc}",
                           "发送 Content-Type: application/json 的 JSON 对象") from None
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise RequestError(400, "malformed_json", f"请求体须为 JSON 对象，收到 {type(body).__name__}",
                           '发送形如 {"version": 3, ...} 的对象')
    return body


def _settings() -> dict[str, Any]:
    return current_app.config["WANGGE"]


@bp.get("/plans")
@login_required
def list_plans() -> Response:
    """The plan versions the user may see (workers and viewers: published ones), newest first."""
    plans = get_session().scalars(visible_only(select(PlanVersion)).order_by(PlanVersion.id.desc())).all()
    return jsonify([store.plan_json(p) for p in plans])


@bp.post("/plans/partition")
@role_required(*EDIT_ROLES)
def start_partition() -> tuple[Response, int]:
    """Queue an automatic partition; 202 with the job id."""
    body = _body()
    params = jobs.partition_params(body, _settings())
    name = str(body.get("name") or "自动划分方案")[:200]
    job = jobs.submit_partition(current_app._get_current_object(), user=current_user.username,  # type: ignore[attr-defined]
                                params=params, name=name)
    return jsonify({"job_id": job.job_id}), 202


@bp.get("/jobs/<job_id>")
@role_required(*EDIT_ROLES)
def job_status(job_id: str) -> Response:
    return jsonify(jobs.get_job(job_id).json())


@bp.post("/jobs/<job_id>/cancel")
@role_required(*EDIT_ROLES)
def job_cancel(job_id: str) -> Response:
    job = jobs.cancel_job(job_id)
    return jsonify({"job_id": job.job_id, "state": job.state})


@bp.get("/plans/<int:plan_id>")
@login_required
def plan_detail(plan_id: int) -> Response:
    """Plan meta, version, settings, bounds, the actions its state allows and a summary of its grids."""
    plan = visible_plan(get_session(), plan_id)
    lo, hi = plan_bounds(plan, _settings())
    return jsonify({**store.plan_json(plan), "settings": plan.settings, "actions": allowed_actions(plan),
                    "bounds": {"min_households": lo, "max_households": hi},
                    "summary": plan_summary(get_session(), plan, _settings())})


@bp.get("/plans/<int:plan_id>/communities")
@login_required
def plan_community_overview(plan_id: int) -> Response:
    """The plan's communities with their numbers (api.plans.overview), one list per column."""
    session = get_session()
    plan = visible_plan(session, plan_id)
    lo, hi = plan_bounds(plan, _settings())
    body = {"version": plan.version_counter, "bounds": {"min_households": lo, "max_households": hi},
            **community_overview(session, plan_id, lo, hi)}
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), mimetype="application/json")


@bp.get("/plans/<int:plan_id>/grids.geojson")
@login_required
def plan_grids(plan_id: int) -> Response:
    """The plan's grids with numbers, status and flags (``?community_id=`` for one community).

    ``?display=1``: the map's form (webmap.planner.display_grids_json): outlines simplified by
    ``map_simplify_m`` and rounded to 6 decimals, only the properties the page reads.
    """
    session = get_session()
    plan = visible_plan(session, plan_id)
    display = request.args.get("display") == "1"
    comm = request.args.get("community_id")
    if comm is not None and not _has_cells(session, plan_id, comm):
        return jsonify({"type": "FeatureCollection", "version": plan.version_counter, "features": []})
    with plan_lock(session, plan_id, whole=comm is None):
        # one community: its cells only (api.plans.state.community_scope), never the city's
        state = get_state(session, plan, _settings(), communities=None if comm is None else [comm])
        metas = [m for m in state.grids.values() if comm is None or m.community_id == comm]
        if display:
            metas.sort(key=lambda m: (str(m.community_id), str(m.code), m.grid_id))
            feats = [grid_feature(state, _without_geometry(m)) for m in metas]
            geoms = [m.geometry for m in metas]
        else:
            feats = [grid_feature(state, m) for m in metas]
    if display:
        text = display_grids_json(feats, geoms, simplify_m=_settings()["map_simplify_m"], version=state.version)
        return Response(text, mimetype="application/json")
    feats.sort(key=lambda f: (str(f["properties"]["community_id"]), str(f["properties"]["code"]), f["id"]))
    return jsonify({"type": "FeatureCollection", "version": state.version, "features": feats})


def _has_cells(session: Any, plan_id: int, community_id: str) -> bool:
    return session.scalar(select(PlanCell.id).where(PlanCell.plan_version_id == plan_id,
                                                    PlanCell.community_id == community_id).limit(1)) is not None


def _without_geometry(meta: Any) -> Any:
    """A shallow copy of a grid's meta with no geometry (its GeoJSON form is built elsewhere)."""
    out = copy.copy(meta)
    out.geometry = None
    return out


def _bbox(raw: str) -> tuple[float, float, float, float]:
    try:
        minx, miny, maxx, maxy = (float(v) for v in raw.split(","))
    except ValueError:
        raise RequestError(400, "bad_bbox", f"bbox 须为 minx,miny,maxx,maxy 四个数：{raw!r}",
                           "例如 bbox=120.60,31.28,120.63,31.31") from None
    return minx, miny, maxx, maxy


@bp.get("/plans/<int:plan_id>/buildings.geojson")
@login_required
def plan_buildings(plan_id: int) -> Response:
    """Buildings of the plan with their cell and grid, per ``?bbox=`` or ``?grid_id=`` (simplified)."""
    session = get_session()
    visible_plan(session, plan_id)
    a, b = PlanAssignment.__table__, Building.__table__
    src: Any = b
    if request.args.get("bbox"):
        # the view's buildings first (materialised, so the planner never walks the whole
        # plan's assignments), then each one's assignment by primary key
        src = (select(b.c.building_id, b.c.households, b.c.name, type_coerce(b.c.geometry, WKB).label("geometry"))
               .where(*bbox_clauses(session, b, _bbox(request.args["bbox"]))).cte("view").prefix_with("MATERIALIZED"))
    geometry = src.c.geometry if src is not b else type_coerce(b.c.geometry, WKB)
    stmt = (select(src.c.building_id, a.c.cell_id, a.c.grid_id, src.c.households, src.c.name, geometry)
            .select_from(src.join(a, (a.c.plan_version_id == plan_id) & (a.c.building_id == src.c.building_id))))
    if request.args.get("grid_id"):
        stmt = stmt.where(a.c.grid_id == request.args["grid_id"])
    return Response(_buildings_json(session.execute(stmt).all()), mimetype="application/json")


def _buildings_json(rows: list[Any]) -> str:
    """Rows (id, cell, grid, households, name, WKB) as GeoJSON text, outlines simplified to ~0.2 m.

    Vectorised: one WKB decode, one precision pass (pointwise rounding: building outlines
    stay valid at 1e-7 degrees) and one GeoJSON encode for all rows.
    """
    if not rows:
        return '{"type":"FeatureCollection","features":[]}'
    geoms = shapely.from_wkb(np.asarray([bytes(r[-1]) for r in rows], dtype=object))
    texts = shapely.to_geojson(shapely.simplify(shapely.set_precision(geoms, 1e-7, mode="pointwise"), 2e-6))
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    feats = [f'{{"type":"Feature","id":{encode(r[0])},"geometry":{g},"properties":'
             f'{encode({"building_id": r[0], "cell_id": r[1], "grid_id": r[2], "households": r[3], "name": r[4]})}}}'
             for r, g in zip(rows, texts, strict=True)]
    return '{"type":"FeatureCollection","features":[' + ",".join(feats) + "]}"


@bp.get("/plans/<int:plan_id>/communities.geojson")
@login_required
def plan_community_outlines(plan_id: int) -> Response:
    """Outlines of the plan's communities; ``?bbox=`` those of a view only, ``?display=1`` the map's
    form (simplified by ``map_simplify_m``, ``community_id`` and ``name`` only)."""
    session = get_session()
    visible_plan(session, plan_id)
    if request.args.get("bbox"):
        comms = load_layer(session, "communities", bbox=_bbox(request.args["bbox"]))
        comms = comms[comms["community_id"].isin(store.plan_communities(session, plan_id,
                                                                        among=comms["community_id"].tolist()))]
    else:
        comms = load_layer(session, "communities", community_id=store.plan_communities(session, plan_id))
    if request.args.get("display") == "1":
        return Response(community_outlines_json(comms, simplify_m=_settings()["map_simplify_m"]),
                        mimetype="application/geo+json")
    return Response(comms.to_json(drop_id=True), mimetype="application/geo+json")


def _mutate(plan_id: int, work: Any) -> dict[str, Any]:
    """Run *work(session, plan)* under the plan's lock in one transaction; add ``server_ms``."""
    t0 = time.perf_counter()
    with session_scope() as session:
        plan = store.get_plan(session, plan_id)
        with plan_lock(session, plan_id, whole=False):  # an edit needing the whole state takes its lock too
            out = work(session, plan)
    out["server_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    return out


@bp.post("/plans/<int:plan_id>/edits")
@role_required(*EDIT_ROLES)
def plan_edit(plan_id: int) -> Response:
    """One edit (move/split/merge/lock/unlock/exclusive/rename); the affected grids come back."""
    body = _body()
    return jsonify(_mutate(plan_id, lambda s, p: edits.run_edit(s, p, body, user=current_user.username,
                                                                  defaults=_settings())))


@bp.post("/plans/<int:plan_id>/undo", defaults={"redo": False})
@bp.post("/plans/<int:plan_id>/redo", defaults={"redo": True}, endpoint="plan_redo")
@role_required(*EDIT_ROLES)
def plan_undo(plan_id: int, redo: bool) -> Response:
    """Undo the newest edit, or redo the oldest undone one."""
    body = _body()
    return jsonify(_mutate(plan_id, lambda s, p: edits.run_undo(s, p, body, user=current_user.username,
                                                                  defaults=_settings(), redo=redo)))


@bp.post("/plans/<int:plan_id>/repartition")
@role_required(*EDIT_ROLES)
def plan_repartition(plan_id: int) -> tuple[Response, int]:
    """Re-run the partition for the unlocked grids; the result is a new draft version (job's plan_id)."""
    body = _body()
    plan = store.get_plan(get_session(), plan_id)
    store.check_version(get_session(), plan, body.get("version"), editable=False)
    merged = {**{k: v for k, v in (plan.settings or {}).items() if k in jobs.PARTITION_KEYS}, **body}
    params = jobs.partition_params(merged, _settings())
    name = str(body.get("name") or f"{plan.name}（重新划分）")[:200]
    job = jobs.submit_partition(current_app._get_current_object(), user=current_user.username,  # type: ignore[attr-defined]
                                params=params, name=name, base_plan_id=plan_id)
    return jsonify({"job_id": job.job_id}), 202


@bp.post("/plans/<int:plan_id>/versions")
@role_required(*EDIT_ROLES)
def plan_new_version(plan_id: int) -> tuple[Response, int]:
    """Save a named copy of the plan (author, time, message)."""
    body = _body()
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RequestError(400, "bad_request", "新版本需要名称 name", '例如 {"name": "第二版", "message": "调整东片"}')
    message = body.get("message")
    with session_scope() as session:
        plan = store.get_plan(session, plan_id)
        new = store.copy_version(session, plan, name=name.strip()[:200],
                                 message=message if isinstance(message, str) else None, author=current_user.username)
        audit.record(session, user=current_user.username, action="plan.version", target=f"plan:{new.id}",
                     detail={"from": plan_id, "name": new.name})
        out = store.plan_json(new)
    return jsonify(out), 201


@bp.post("/plans/<int:plan_id>/rebase")
@role_required(*EDIT_ROLES)
def plan_rebase(plan_id: int) -> tuple[Response, int]:
    """A stale plan on the current workspace: same grids, buildings re-assigned by location; the report."""
    body = _body()
    name = body.get("name") if isinstance(body.get("name"), str) and body["name"].strip() else None
    with session_scope() as session:
        plan = store.get_plan(session, plan_id)
        new, report = rebase.rebase_plan(session, plan, user=current_user.username,
                                         bounds=plan_bounds(plan, _settings()), name=name)
        out = {"plan": store.plan_json(new), "report": report}
    return jsonify(out), 201


@bp.get("/plans/<int:a>/diff/<int:b>")
@login_required
def plan_diff(a: int, b: int) -> Response:
    session = get_session()
    visible_plan(session, a)
    visible_plan(session, b)
    return jsonify(store.diff_versions(session, a, b))


@bp.post("/plans/<int:plan_id>/publish")
@role_required(*EDIT_ROLES)
def plan_publish(plan_id: int) -> Response:
    body = _body()

    def work(session: Any, plan: PlanVersion) -> dict[str, Any]:
        store.check_version(session, plan, body.get("version"), editable=False)
        return store.publish(session, plan, user=current_user.username)

    return jsonify(_mutate(plan_id, work))


@bp.post("/plans/<int:plan_id>/rollback")
@role_required(*EDIT_ROLES)
def plan_rollback(plan_id: int) -> Response:
    _body()
    return jsonify(_mutate(plan_id, lambda s, p: store.rollback(s, p, user=current_user.username)))


@bp.get("/plans/<int:plan_id>/export")
@role_required(*EDIT_ROLES)
def plan_export(plan_id: int) -> Response:
    """The plan as a file: ``?format=gpkg|geojson|shp|kml|csv|xlsx`` (``&layer=buildings`` for GeoJSON,
    ``&headers=canonical`` for canonical column names in CSV/XLSX instead of Chinese).

    Planners and admins only: an export carries the household count of every building.
    """
    fmt = request.args.get("format", "gpkg")
    session = get_session()
    plan = store.get_plan(session, plan_id)
    out = export_plan(session, plan_id, fmt, bounds=plan_bounds(plan, _settings()),
                      layer=request.args.get("layer", "grids"), headers=request.args.get("headers", "zh"))
    # audited after the read, in its own short write: an export never holds the write lock
    audit.record_read(user=current_user.username, action="plan.export", target=f"plan:{plan_id}",
                      detail={"format": fmt, "bytes": len(out.data)})
    return send_file(io.BytesIO(out.data), mimetype=out.mimetype, as_attachment=True, download_name=out.filename)
