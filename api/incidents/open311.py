"""Open311 GeoReport v2 at ``/open311/v2/`` (JSON and XML, chosen by the ``.json`` / ``.xml`` suffix).

Endpoints: ``discovery``, ``services``, ``services/{code}``, ``requests`` (GET, and POST
form-encoded with ``api_key``), ``requests/{id}``, ``tokens/{token}``. Errors are
``[{code, description}]`` with 400 (bad input), 403 (missing or invalid ``api_key`` on POST)
and 404 (unknown service code, request, token or path). GET requests takes
``service_request_id``, ``service_code``, ``start_date``, ``end_date``, ``status`` and the
common ``page`` / ``page_size`` extension. No login and no CSRF: POST needs an API key.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, current_app, g, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.auth import csrf
from api.db import get_session, session_scope
from api.errors import register_error_renderer
from api.incidents.exports import latest_reasons
from api.incidents.intake import (
    IncidentInputError,
    Intake,
    optional_float,
    prepare_report,
    store_report,
)
from api.incidents.keys import verify_key
from api.incidents.locator import cached_active
from api.incidents.models import IncidentCase
from api.incidents.open311_format import render, request_dict, service_dict
from api.incidents.tables import load_categories
from api.models import utcnow
from geo.incidents.workflow import CLOSED_STATES, OPEN_STATES

__all__ = ["bp", "Open311Error"]

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")
csrf.exempt(bp)
_FORMATS = ("json", "xml")


class Open311Error(Exception):
    """An Open311 error answer: HTTP status and description."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status, self.description = status, description


@bp.errorhandler(Open311Error)
def _error(exc: Open311Error) -> Response:
    return render([{"code": exc.status, "description": exc.description}], g.get("open311_fmt", "json"), "errors",
                  exc.status)


def _http_error(status: int, message: str, fix: str) -> Response:
    """Errors raised before or around a view (405, 413, 429, 503 …) in the Open311 shape, not as a page."""
    fmt = g.get("open311_fmt") or ("xml" if request.path.endswith(".xml") else "json")
    description = f"{message}；{fix}"
    allowed: list[str] = []
    if status == 404:
        description = f"{request.path} not found: see discovery.json / {message}"
    elif status == 405:
        allowed = sorted(current_app.url_map.bind_to_environ(request.environ).allowed_methods())
        description = (f"method {request.method} is not allowed on {request.path}; use {' or '.join(allowed)} "
                       f"/ {message}")
    response = render([{"code": status, "description": description}], fmt, "errors", status)
    if allowed:
        response.headers["Allow"] = ", ".join(allowed)
    return response


bp.record_once(lambda state: register_error_renderer(state.app, bp.url_prefix or "/open311/v2", _http_error))


def _format(fmt: str) -> str:
    g.open311_fmt = fmt if fmt in _FORMATS else "json"
    if fmt not in _FORMATS:
        raise Open311Error(400, f"unknown format {fmt!r}: use .json or .xml / 格式须为 .json 或 .xml")
    return fmt


def _settings() -> dict[str, Any]:
    return current_app.config["WANGGE"]


@bp.get("/discovery.<fmt>")
def discovery(fmt: str) -> Response:
    """The discovery document."""
    fmt = _format(fmt)
    url = url_for("open311.services", fmt=fmt, _external=True).rsplit("/", 1)[0] + "/"
    body = {"changeset": "2026-12-06T00:00:00+08:00", "contact": _settings()["open311_contact"],
            "key_service": "API keys are issued by the administrator (wangge incidents apikey create NAME)",
            "endpoints": [{"specification": "http://wiki.open311.org/GeoReport_v2", "url": url,
                           "changeset": "2026-12-06T00:00:00+08:00", "type": "production",
                           "formats": ["text/xml", "application/json"]}]}
    return render(body, fmt, "discovery")


@bp.get("/services.<fmt>")
def services(fmt: str) -> Response:
    """Every service (category)."""
    fmt = _format(fmt)
    return render([service_dict(c) for c in load_categories(get_session()).values()], fmt, "services")


@bp.get("/services/<code>.<fmt>")
def service_definition(code: str, fmt: str) -> Response:
    """The definition of one service (no extra attributes: metadata is false for every service)."""
    fmt = _format(fmt)
    if code not in load_categories(get_session()):
        raise Open311Error(404, f"service_code {code} not found / 未知的服务代码 {code}")
    return render({"service_code": code, "attributes": []}, fmt, "service_definition")


def _when(name: str) -> datetime | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name} {raw!r} is not a W3C datetime, e.g. 2026-01-01T00:00:00+08:00") from None
    if value.tzinfo is None:
        raise Open311Error(400, f"{name} {raw!r} has no offset; add Z or +08:00")
    return value


def _int_arg(name: str, default: int, high: int) -> int:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= high:
        raise Open311Error(400, f"{name} must be a whole number from 1 to {high}; got {raw!r}")
    return int(raw)


def _filters() -> list[Any]:
    ids = [s.strip() for s in request.args.get("service_request_id", "").split(",") if s.strip()]
    if ids:
        if not all(i.isdigit() for i in ids):
            raise Open311Error(400, "service_request_id must be numbers separated by commas")
        return [IncidentCase.id.in_([int(i) for i in ids])]
    out: list[Any] = []
    codes = [s.strip() for s in request.args.get("service_code", "").split(",") if s.strip()]
    if codes:
        out.append(IncidentCase.category.in_(codes))
    statuses = {s.strip() for s in request.args.get("status", "").split(",") if s.strip()}
    if statuses - {"open", "closed"}:
        raise Open311Error(400, f"status must be open or closed; got {','.join(sorted(statuses))}")
    if statuses == {"open"}:
        out.append(IncidentCase.state.in_(OPEN_STATES))
    elif statuses == {"closed"}:
        out.append(IncidentCase.state.in_(CLOSED_STATES))
    start, end = _when("start_date"), _when("end_date")
    if start is None and end is None:
        start = utcnow() - timedelta(days=int(_settings()["open311_default_days"]))
    if start is not None and end is not None and end < start:
        raise Open311Error(400, "end_date is before start_date")
    if start is not None:
        out.append(IncidentCase.reported_at >= start)
    if end is not None:
        out.append(IncidentCase.reported_at <= end)
    return out


def _notes(session: Session, cases: list[IncidentCase]) -> dict[int, str]:
    """Reason of the latest event with one, for refused and closed cases."""
    return latest_reasons(session, [c.id for c in cases if c.state in CLOSED_STATES])


def _requests_body(session: Session, cases: list[IncidentCase]) -> list[dict[str, Any]]:
    cats, tz, notes = load_categories(session), _settings()["incident_timezone"], _notes(session, cases)
    return [request_dict(c, cats, notes.get(c.id, ""), tz) for c in cases]


@bp.get("/requests.<fmt>")
def list_requests(fmt: str) -> Response:
    """Service requests, newest first, one page."""
    fmt = _format(fmt)
    s = _settings()
    size = _int_arg("page_size", int(s["open311_page_size"]), int(s["open311_max_page_size"]))
    page = _int_arg("page", 1, 10**9)
    session = get_session()
    stmt = (select(IncidentCase).where(*_filters()).order_by(IncidentCase.reported_at.desc(), IncidentCase.id.desc())
            .limit(size).offset((page - 1) * size))
    return render(_requests_body(session, list(session.scalars(stmt))), fmt, "service_requests")


@bp.get("/requests/<rid>.<fmt>")
def one_request(rid: str, fmt: str) -> Response:
    """One service request (a list of one, as the spec has it)."""
    fmt = _format(fmt)
    session = get_session()
    case = session.get(IncidentCase, int(rid)) if rid.isdigit() else None
    if case is None:
        raise Open311Error(404, f"service_request_id {rid} not found / 没有编号为 {rid} 的请求")
    return render(_requests_body(session, [case]), fmt, "service_requests")


@bp.get("/tokens/<token>.<fmt>")
def token(token: str, fmt: str) -> Response:
    """The service request id of a token."""
    fmt = _format(fmt)
    case_id = get_session().scalar(select(IncidentCase.id).where(IncidentCase.token == token))
    if case_id is None:
        raise Open311Error(404, f"token {token} not found / 没有此令牌")
    return render([{"service_request_id": str(case_id), "token": token}], fmt, "service_requests")


def _coord(name: str) -> float | None:
    try:
        return optional_float(request.form.get(name))
    except ValueError:
        raise Open311Error(400, f"{name} {request.form.get(name)!r} is not a number (WGS84 degrees)") from None


def _intake(client: str) -> Intake:
    form = request.form
    code = form.get("service_code", "").strip()
    if not code:
        raise Open311Error(400, "service_code is required / 缺少 service_code")
    lat, lon = _coord("lat"), _coord("long")
    if (lat is None or lon is None) and not form.get("address_string", "").strip():
        raise Open311Error(400, "a location is required: lat and long, or address_string / 缺少位置")
    contact = form.get("phone", "").strip() or form.get("email", "").strip() or None
    return Intake(category=code, description=form.get("description", ""), lon=lon, lat=lat,
                  address=form.get("address_string", "").strip() or None, source="open311",
                  reporter=f"open311:{client}", contact=contact, photos=1 if form.get("media_url") else 0)


@bp.post("/requests.<fmt>")
def create_request(fmt: str) -> tuple[Response, int] | Response:
    """Create a service request (form-encoded, ``api_key`` required).

    Key, category, location and duplicate search are reads; the write transaction (which
    holds SQLite's one write lock) only inserts the case and its first event.
    """
    fmt = _format(fmt)
    session = get_session()
    key = verify_key(session, request.form.get("api_key"))
    if key is None:
        raise Open311Error(403, "api_key missing or invalid / API key 缺失或无效")
    intake, categories = _intake(key.name), load_categories(session)
    if intake.category not in categories:
        raise Open311Error(404, f"service_code {intake.category} not found / 未知的服务代码")
    try:
        report = prepare_report(session, intake, settings=_settings(), active=cached_active(session),
                                categories=categories)
    except IncidentInputError as exc:
        raise Open311Error(400, str(exc)) from None
    with session_scope() as s:
        case_id = store_report(s, report).id
    dups = report.duplicates
    notice = f"已受理登记，编号 {case_id}" + (f"；附近有 {len(dups)} 件同类未结案件" if dups else "")
    body = [{"service_request_id": str(case_id), "service_notice": notice, "account_id": None}]
    return render(body, fmt, "service_requests", 201)
