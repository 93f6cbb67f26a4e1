"""The residents' page (no login): report an incident on the map, get a tracking code, look the status up.

Rate-limited per client address (``public_rate_limit``, and ``public_report_max_per_day`` for
reports). A resident sees only what their code opens: the category, the public state, the
times and the steps taken, never another resident's report, any reason text, who handles the
case, or staff contacts. The map shows the active grid outlines (public, as on the notice
boards). Pages use no inline script; the CSRF token protects the form.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db import get_session, session_scope
from api.errors import RequestError
from api.incidents.intake import IncidentInputError, Intake, optional_float, report_case
from api.incidents.locator import cached_active
from api.incidents.models import IncidentCase, IncidentEvent, PublicCode
from api.incidents.photos import PhotoError, check_photos, store_photos
from api.incidents.tables import load_categories
from api.security import limiter, public_limit, upload_route
from geo.incidents.categories import KINDS

__all__ = ["bp", "CODE_ALPHABET", "PUBLIC_STATES", "new_public_code", "normalise_code"]

bp = Blueprint("incident_public", __name__)
#: Tracking-code characters: no 0/O, 1/I/L look-alikes.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
#: Workflow state -> what a resident is told.
PUBLIC_STATES: dict[str, str] = {
    "reported": "已提交，待受理", "accepted": "已受理", "dispatched": "处理中", "handling": "处理中",
    "feedback": "处理中（待核查）", "closed": "已办结", "evaluated": "已办结", "visited": "已办结",
    "rejected": "不予受理", "cancelled": "已注销",
}
#: Workflow action -> the step a resident sees on the timeline (others are internal).
_PUBLIC_STEPS = {"report": "提交", "accept": "受理", "dispatch": "派遣处理", "reassign": "派遣处理",
                 "feedback": "处理完成待核查", "verify_pass": "办结", "verify_fail": "重新处理",
                 "reject": "不予受理", "cancel": "注销", "approve_extension": "延长处理时限"}


def _settings() -> dict[str, Any]:
    return current_app.config["WANGGE"]


def _daily_limit() -> str:
    return f"{int(_settings()['public_report_max_per_day'])} per day"


def new_public_code(session: Session, case_id: int, *, length: int) -> str:
    """Store and return a fresh tracking code for *case_id* (random, unguessable, unique)."""
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))
        if session.get(PublicCode, code) is None:
            session.add(PublicCode(code=code, case_id=case_id))
            session.flush()
            return code


def normalise_code(raw: str, *, length: int) -> str | None:
    """*raw* as typed (spaces, dashes, lower case) as a code, or ``None`` when it cannot be one."""
    code = "".join(ch for ch in raw.upper() if ch not in " -")
    return code if len(code) == length and all(ch in CODE_ALPHABET for ch in code) else None


def _categories(session: Session) -> list[dict[str, str]]:
    return [{"code": c.code, "label": f"{KINDS[c.kind]}·{c.major_name}·{c.minor_name}", "required": ",".join(c.required)}
            for c in load_categories(session).values()]


def _form_page(error: str | None, status: int) -> tuple[str, int]:
    s = _settings()
    with session_scope(write=False) as session:
        cats = _categories(session)
    return render_template("incidents/public_report.html", categories=cats, error=error, form=request.form,
                           max_photos=s["incident_max_photos"], max_mb=s["incident_photo_max_mb"]), status


def _intake() -> tuple[Intake, list[Any]]:
    form = request.form
    photos = check_photos([(f.filename or "photo", f.read()) for f in request.files.getlist("photos")], _settings())
    try:
        lon, lat = optional_float(form.get("lon")), optional_float(form.get("lat"))
    except ValueError:
        raise IncidentInputError("位置不是数字；请在地图上点选事发位置") from None
    if lon is None and photos and photos[0].lon is not None:
        lon, lat = photos[0].lon, photos[0].lat
    contact = form.get("phone", "").strip()[:40] or None
    return Intake(category=form.get("category", ""), description=form.get("description", ""), lon=lon, lat=lat,
                  address=form.get("address", "").strip()[:300] or None, source="public", reporter=None,
                  contact=contact, photos=len(photos)), photos


@bp.route("/report", methods=["GET", "POST"])
@limiter.limit(public_limit)
@limiter.limit(_daily_limit, methods=["POST"])
@upload_route
def report_page() -> tuple[str, int]:
    """The resident's report form (map pin or locate me, category, description, optional photo and phone)."""
    if request.method == "GET":
        return _form_page(None, 200)
    try:
        intake, photos = _intake()
        with session_scope() as s:
            case, _ = report_case(s, intake, settings=_settings(), active=cached_active(s))
            store_photos(s, photos, case_id=case.id, event_id=None, instance=current_app.instance_path,
                         settings=_settings())
            code = new_public_code(s, case.id, length=int(_settings()["public_code_length"]))
    except (IncidentInputError, PhotoError) as exc:
        return _form_page(str(exc), 400)
    return render_template("incidents/public_done.html", code=code), 201


@bp.get("/report/grids.geojson")
@limiter.limit(public_limit)
def grid_outlines() -> Response:
    """Outlines and names of the active grids (public, as on the notice boards), simplified."""
    grids = cached_active(get_session()).grids
    out = grids[["key", "name", "geometry"]].copy()
    out["geometry"] = out.geometry.simplify(0.00002)
    return Response(out.to_json(drop_id=True), mimetype="application/geo+json")


def _timeline(session: Session, case_id: int) -> list[dict[str, Any]]:
    rows = session.execute(select(IncidentEvent.action, IncidentEvent.at).where(IncidentEvent.case_id == case_id,
                                                                                IncidentEvent.action.in_(_PUBLIC_STEPS))
                           .order_by(IncidentEvent.id)).all()
    return [{"step": _PUBLIC_STEPS[a], "at": at} for a, at in rows]


@bp.get("/report/track")
@limiter.limit(public_limit)
def track_page() -> tuple[str, int]:
    """Status by tracking code: category, public state, times and steps only."""
    raw = request.args.get("code", "")
    if not raw.strip():
        return render_template("incidents/public_track.html", case=None, code=""), 200
    code = normalise_code(raw[:64], length=int(_settings()["public_code_length"]))
    if code is None:
        raise RequestError(400, "bad_code", f"查询码格式不对：应为 {_settings()['public_code_length']} 位字母和数字", "请核对回执上的查询码", field="code")
    s = get_session()
    row = s.get(PublicCode, code)
    case = s.get(IncidentCase, row.case_id) if row is not None else None
    if case is None:
        raise RequestError(404, "code_not_found", "没有这个查询码", "请核对回执上的查询码（不区分大小写）", field="code")
    cat = load_categories(s).get(case.category)
    view = {"category": cat.name if cat else case.category, "state": PUBLIC_STATES[case.state],
            "reported_at": case.reported_at, "updated_at": case.updated_at, "closed_at": case.closed_at,
            "due_at": case.due_at, "steps": _timeline(s, case.id)}
    return render_template("incidents/public_track.html", case=view, code=code), 200
