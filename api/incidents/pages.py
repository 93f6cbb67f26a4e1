"""Incident pages (Chinese, phone-sized): report, list, case with timeline and actions, 我的待办, queue, map.

Routes are thin: parse the form, call :mod:`api.incidents.intake` / :mod:`api.incidents.cases`,
render. Every form carries the CSRF token; roles are checked here and again in the service.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from api import audit
from api.auth import role_required
from api.db import get_session, session_scope
from api.errors import RequestError
from api.incidents import cases as svc
from api.incidents import queries
from api.incidents.exports import EXPORT_TYPES, export_bytes, workorder_status
from api.incidents.intake import SOURCES, IncidentInputError, Intake, optional_float, report_case
from api.incidents.locator import cached_active, cached_outlines
from api.incidents.models import IncidentCase, IncidentPhoto
from api.incidents.photos import PHOTO_DIR, PhotoError, check_photos, store_photos
from api.incidents.tables import load_categories
from api.models import User, utcnow
from api.register.access import has_grant, own_grids
from geo.incidents.categories import KINDS
from geo.incidents.workflow import (
    ACTIONS,
    STATES,
    SUPERVISE_LEVELS,
    TransitionRefused,
    allowed_actions,
)
from geo.register.idnumber import mask_contact
from webmap.offline import OfflineAssetError, bundled_asset

__all__ = ["bp"]

bp = Blueprint("incident_pages", __name__)
_ACTORS = ("admin", "planner", "worker")


def _me() -> User:
    return current_user._get_current_object()  # type: ignore[attr-defined,no-any-return]


def _settings() -> dict[str, Any]:
    return current_app.config["WANGGE"]


def _float(name: str) -> float | None:
    try:
        return optional_float(request.form.get(name))
    except ValueError:
        raise IncidentInputError(f"{name} 不是数字：{request.form.get(name)!r}；请在地图上选点") from None


def _point_from_query() -> dict[str, str]:
    """``?lon=&lat=`` of a link that opens the form where the reporter stands (the patrol map); else nothing."""
    try:
        lon, lat = optional_float(request.args.get("lon")), optional_float(request.args.get("lat"))
    except ValueError:
        return {}
    if lon is None or lat is None or not (-180 <= lon <= 180 and -90 <= lat <= 90):  # NaN fails both
        return {}
    return {"lon": f"{lon:.7f}", "lat": f"{lat:.7f}"}


def _uploads() -> list[tuple[str, bytes]]:
    return [(f.filename or "photo", f.read()) for f in request.files.getlist("photos")]


def _categories_for_form(s: Any) -> list[dict[str, str]]:
    return [{"code": c.code, "label": f"{c.code} {KINDS[c.kind]}·{c.major_name}·{c.minor_name}",
             "required": ",".join(c.required)} for c in load_categories(s).values()]


@bp.route("/incidents/new", methods=["GET", "POST"])
@role_required(*_ACTORS)
def report_page() -> Response | str | tuple[str, int]:
    """Phone report page: pin or locate me, category search, description, photos."""
    error = None
    if request.method == "POST":
        try:
            photos = check_photos(_uploads(), _settings())
            lon, lat = _float("lon"), _float("lat")
            if lon is None and photos and photos[0].lon is not None:
                lon, lat = photos[0].lon, photos[0].lat
            intake = Intake(category=request.form.get("category", ""), description=request.form.get("description", ""),
                            lon=lon, lat=lat, address=request.form.get("address", "").strip() or None,
                            source="worker", reporter=_me().username, photos=len(photos))
            with session_scope() as s:
                case, dups = report_case(s, intake, settings=_settings(), active=cached_active(s))
                store_photos(s, photos, case_id=case.id, event_id=None, instance=current_app.instance_path,
                             settings=_settings())
                cid = case.id
                where = case.grid_code or "待定位（不在任何网格内，指挥中心将人工定位）"
            flash(f"已上报，案件编号 {cid}，所属网格：{where}")
            if dups:
                flash("附近有同类未结案件，可能重复：" + "、".join(f"#{d['id']}（{d['distance_m']} 米）" for d in dups))
            return redirect(url_for("incident_pages.case_page", case_id=cid))
        except (IncidentInputError, PhotoError) as exc:
            error = str(exc)
    with session_scope() as s:
        cats = _categories_for_form(s)
        own = sorted(own_grids(s, _me()))
    return render_template("incidents/report.html", page_title="上报事件", categories=cats, error=error, own_grids=own,
                           form=request.form if request.method == "POST" else _point_from_query(),
                           max_photos=_settings()["incident_max_photos"],
                           max_mb=_settings()["incident_photo_max_mb"]), (400 if error else 200)


@bp.get("/incidents")
@login_required
def list_page() -> str:
    """Case list with filters."""
    page = request.args.get("page", "1")
    page_no = int(page) if page.isdigit() and int(page) > 0 else 1
    s = get_session()
    rows, total = queries.list_cases(s, _me(), request.args, settings=_settings(), page=page_no)
    return render_template("incidents/list.html", page_title="事件列表", rows=rows, total=total, page=page_no,
                           size=_settings()["incident_page_size"], states=STATES, sources=SOURCES,
                           categories=_categories_for_form(s), args=request.args)


def _case_or_404(s: Any, case_id: int) -> IncidentCase:
    stmt = queries.visible(select(IncidentCase).where(IncidentCase.id == case_id), s, _me())
    case = s.scalar(stmt)
    if case is None:
        raise RequestError(404, "case_not_found", f"没有编号为 {case_id} 的案件，或您无权查看", "从案件列表中选择案件")
    return case


def _workers(s: Any) -> list[str]:
    return list(s.scalars(select(User.username).where(User.role == "worker", User.active.is_(True)).order_by(User.username)))


def _contact(s: Any, case: IncidentCase) -> str | None:
    """The reporter's contact for the 指挥中心: clear (and audited) with the ``unmask`` grant, else masked."""
    if not case.reporter_contact:
        return None
    if not has_grant(s, _me(), "unmask"):
        return mask_contact(case.reporter_contact)
    audit.record_read(user=_me(), action="incidents.view_contact", target=f"case:{case.id}")
    return case.reporter_contact


@bp.get("/incidents/<int:case_id>")
@login_required
def case_page(case_id: int) -> str:
    """One case: facts, photos, timeline, and the actions the user may take now."""
    s = get_session()
    case = _case_or_404(s, case_id)
    row = queries.case_row(case, load_categories(s), utcnow(), _settings()["incident_due_soon_hours"])
    role = svc.WORKFLOW_ROLES.get(_me().role)
    actions = [] if role is None else [(a, ACTIONS[a].label) for a in allowed_actions(svc.state_of(case), role, _me().username)]
    center = role == "center"
    return render_template("incidents/case.html", page_title=f"案件 {case_id}", case=row, actions=actions,
                           events=svc.case_events(s, case_id), photos=queries.case_photos(s, case_id),
                           contact=_contact(s, case) if center else None, workers=_workers(s) if center else [],
                           levels=SUPERVISE_LEVELS, states=STATES, sources=SOURCES,
                           action_labels={k: a.label for k, a in ACTIONS.items()})


def _options() -> dict[str, Any]:
    f = request.form
    out: dict[str, Any] = {}
    if f.get("assignee"):
        out["assignee"] = f["assignee"]
    if f.get("rating", "").isdigit():
        out["rating"] = int(f["rating"])
    if f.get("level"):
        out["level"] = f["level"]
    if f.get("days", "").strip():
        out["days"] = int(f["days"]) if f["days"].strip().isdigit() else -1
    return out


@bp.post("/incidents/<int:case_id>/act")
@role_required(*_ACTORS)
def act_page(case_id: int) -> Response | tuple[str, int]:
    """Take one workflow action (with reason and photos)."""
    action = request.form.get("action", "")
    try:
        photos = check_photos(_uploads(), _settings())
        with session_scope() as s:
            _case_or_404(s, case_id)
            ev = svc.act(s, case_id, action, user=s.get(User, _me().id), settings=_settings(),
                         reason=request.form.get("reason", ""), **_options())
            store_photos(s, photos, case_id=case_id, event_id=ev.id, instance=current_app.instance_path,
                         settings=_settings())
        flash(f"已{ACTIONS[action].label}")
    except (TransitionRefused, PhotoError) as exc:
        flash(f"未能办理：{exc}", "error")
    except svc.Forbidden as exc:
        raise RequestError(403, "forbidden", str(exc), "请由有相应职责的账号办理，或联系指挥中心") from None
    return redirect(url_for("incident_pages.case_page", case_id=case_id))


@bp.post("/incidents/<int:case_id>/locate")
@role_required("admin", "planner")
def locate_page(case_id: int) -> Response:
    """Place a 待定位 case by hand (the centre picks the point on the map)."""
    try:
        lon, lat = _float("lon"), _float("lat")
        with session_scope() as s:
            svc.relocate(s, case_id, lon, lat, user=s.get(User, _me().id), active=cached_active(s), settings=_settings())
        flash("已定位")
    except (IncidentInputError, TransitionRefused) as exc:
        flash(f"未能定位：{exc}", "error")
    return redirect(url_for("incident_pages.case_page", case_id=case_id))


@bp.get("/incidents/inbox")
@role_required(*_ACTORS)
def inbox_page() -> str:
    """我的待办 (the worker's open cases, soonest due first)."""
    rows = queries.inbox(get_session(), _me(), settings=_settings())
    return render_template("incidents/inbox.html", page_title="我的待办", rows=rows)


@bp.get("/incidents/queue")
@role_required("admin", "planner")
def queue_page() -> str:
    """The command centre's queue: new, 待定位, overdue and 督办, to verify, extension requests."""
    s = get_session()
    return render_template("incidents/queue.html", page_title="督办队列",
                           queue=queries.supervisor_queue(s, settings=_settings()),
                           counts=queries.supervisor_queue_counts(s), shown=queries.QUEUE_SHOWN)


@bp.get("/incidents/map")
@login_required
def map_page() -> str:
    """Incident map: markers coloured by state over the active grid outlines."""
    s = get_session()
    # The extent of the active grids: the map opens on it (or on ``bbox=``) before any layer is loaded.
    extent = [float(v) for v in cached_active(s).grids.total_bounds] if len(cached_active(s).grids) else []
    return render_template("incidents/map.html", page_title="事件地图", states=STATES,
                           categories=_categories_for_form(s), sources=SOURCES,
                           view=",".join(f"{v:.6f}" for v in (_view_bbox() or extent)))


@bp.get("/api/incidents/geojson")
@login_required
def cases_geojson() -> Response:
    """Located cases of the view (``bbox=w,s,e,n``, ``state``, ``category``, ``source``, ``days``)."""
    try:
        return jsonify(queries.cases_geojson(get_session(), _me(), request.args))
    except ValueError:
        raise _bad_bbox() from None


def _bad_bbox() -> RequestError:
    return RequestError(400, "bad_bbox", "参数 bbox 无效", "写成 4 个数字：西,南,东,北（经纬度）", field="bbox")


def _view_bbox() -> tuple[float, float, float, float] | None:
    """The ``bbox=w,s,e,n`` of the request (the map's view), or ``None`` when not given."""
    raw = request.args.get("bbox", "")
    if not raw.strip():
        return None
    try:
        box = tuple(float(v) for v in raw.split(","))
    except ValueError:
        raise _bad_bbox() from None
    if len(box) != 4 or not all(math.isfinite(v) for v in box) or box[0] > box[2] or box[1] > box[3]:
        raise _bad_bbox()
    return box[0], box[1], box[2], box[3]


@bp.get("/api/incidents/grids")
@login_required
def grids_geojson() -> Response:
    """Outlines of the active grids (simplified): open cases, and cases matching the map's filters as a
    count and a rate per 1,000 households (the choropleth)."""
    s = get_session()
    active, outlines = cached_outlines(s)
    grids = active.grids
    box = _view_bbox()
    keys = None
    if box is not None:
        # Only the grids of the view (a street office's map: ~10^2 of 10^4 grids), counted through the
        # grid_code index instead of grouping every case of the district.
        rows = np.sort(grids.sindex.query(shapely.box(*box)))
        grids, outlines = grids.iloc[rows], outlines[rows]
        keys = grids["key"].tolist()
    opened, counts = queries.open_counts(s, keys=keys), queries.grid_counts(s, _me(), request.args, keys=keys)
    features = []
    for key, name, households, outline in zip(grids["key"], grids["name"], grids["households"], outlines, strict=True):
        n = counts.get(key, 0)
        # Rate per 1,000 households; a grid without households (exclusive grids: schools, markets) has none.
        rate = round(1000.0 * n / households, 2) if households and households > 0 else None
        props = json.dumps({"key": key, "name": name, "households": int(households), "open": opened.get(key, 0),
                            "count": n, "rate": rate}, ensure_ascii=False)
        features.append(f'{{"type": "Feature", "properties": {props}, "geometry": {outline}}}')
    return Response('{"type": "FeatureCollection", "features": [' + ", ".join(features) + "]}",
                    mimetype="application/geo+json")


@bp.get("/vendor/folium/<name>")
def folium_asset(name: str) -> Response:
    """A browser asset that ships inside the folium package (Leaflet.heat), served locally."""
    try:
        path = bundled_asset(name)
    except OfflineAssetError as exc:
        raise RequestError(404, "asset_not_found", str(exc), "重新安装前端资源：make setup") from None
    response = Response(path.read_bytes(), mimetype="text/javascript")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@bp.get("/incidents/export.<kind>")
@role_required("admin", "planner")
def export_status(kind: str) -> Response:
    """Status export back to the 12345 hotline (``source`` defaults to 12345) as XLSX, CSV or JSON."""
    if kind not in EXPORT_TYPES:
        raise RequestError(404, "bad_format", f"没有 .{kind} 格式的导出", f"可选 {'、'.join(EXPORT_TYPES)}")
    source = request.args.get("source", "12345")
    if source not in SOURCES:
        raise RequestError(400, "bad_source", f"未知的来源 {source!r}", f"可选 {'、'.join(SOURCES)}", field="source")
    table = workorder_status(get_session(), settings=_settings(), source=source)
    return Response(export_bytes(table, kind), mimetype=EXPORT_TYPES[kind], headers={
        "Content-Disposition": f"attachment; filename=workorders-{source}.{kind}"})


@bp.get("/incidents/photos/<int:photo_id>")
@bp.get("/incidents/photos/<int:photo_id>/<kind>")
@login_required
def photo(photo_id: int, kind: str = "full") -> Response:
    """A photo or its thumbnail, for users who may see the case."""
    s = get_session()
    row = s.get(IncidentPhoto, photo_id)
    if row is None or kind not in ("full", "thumb"):
        raise RequestError(404, "photo_not_found", "照片不存在", "从案件详情页打开照片")
    _case_or_404(s, row.case_id)
    path = Path(current_app.instance_path) / PHOTO_DIR / (row.path if kind == "full" else row.thumb_path)
    # Bytes, not a streamed file: photos are small, and a stream left unread keeps the file open.
    response = Response(path.read_bytes(), mimetype=row.content_type if kind == "full" else "image/jpeg")
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


