"""Intake: every channel (worker page, resident page, Open311, 12345, demo) makes a case here.

A case is located by point-in-polygon on the **active** plan through :mod:`api.grids.service`
(a point within ``grid_point_tolerance_m`` of a grid counts; there is no nearest-grid guess):
outside every grid it gets no grid code and waits in the 待定位 queue. The grid code, plan
version and community in force are recorded on the case. Open cases of the same category
within ``incident_duplicate_radius_m`` are returned as duplicate suggestions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.grids.service import ActiveGrids, load_active
from api.incidents.bulk import new_tokens
from api.incidents.models import IncidentCase, IncidentEvent
from api.incidents.tables import load_categories
from api.models import utcnow
from geo.incidents.categories import FIELDS, Category
from geo.incidents.workflow import OPEN_STATES

__all__ = ["IncidentInputError", "Intake", "Report", "SOURCES", "optional_float", "check_intake", "grid_lookup",
           "locate_points", "locate_point", "nearby_open_cases", "prepare_report", "store_report", "report_case"]

#: Intake channel -> Chinese label.
SOURCES: dict[str, str] = {"worker": "网格员上报", "public": "居民上报", "open311": "Open311", "12345": "12345热线",
                           "csv": "表格导入", "demo": "演示数据"}
_EARTH_M = 6_371_008.8


class IncidentInputError(ValueError):
    """A report is incomplete or wrong; the message (Chinese) names the field and the fix."""


@dataclass(frozen=True)
class Intake:
    """What a report brings, whatever the channel."""

    category: str
    description: str = ""
    lon: float | None = None
    lat: float | None = None
    address: str | None = None
    source: str = "worker"
    reporter: str | None = None
    contact: str | None = None
    external_id: str | None = None
    reported_at: datetime | None = None
    photos: int = 0


def optional_float(raw: str | None) -> float | None:
    """A form number: ``None`` when blank; ``ValueError`` when not a number."""
    text = (raw or "").strip()
    return float(text) if text else None


def _coords_problem(lon: float | None, lat: float | None) -> str | None:
    if lon is None and lat is None:
        return None
    if lon is None or lat is None:
        return "经纬度须同时填写；请在地图上选点或同时给出经度和纬度"
    if not (math.isfinite(lon) and math.isfinite(lat)) or not (-180 <= lon <= 180 and -90 <= lat <= 90):
        return f"经纬度 ({lon}, {lat}) 超出范围；经度 -180~180，纬度 -90~90（WGS84）"
    return None


def check_intake(intake: Intake, categories: Mapping[str, Category]) -> Category:
    """The category of *intake*, or :class:`IncidentInputError` naming what is missing or wrong."""
    if intake.source not in SOURCES:
        raise IncidentInputError(f"未知的上报渠道 {intake.source!r}；应为 {'、'.join(SOURCES)} 之一")
    category = categories.get((intake.category or "").strip())
    if category is None:
        raise IncidentInputError(f"未知的事件类别 {intake.category!r}；请从类别表中选择（如 SJ-0102 暴露垃圾）")
    problem = _coords_problem(intake.lon, intake.lat)
    if problem:
        raise IncidentInputError(problem)
    if intake.lon is None and not (intake.address or "").strip():
        raise IncidentInputError("没有位置：请在地图上选点、使用定位，或填写地址")
    # Residents may report without a photo whatever the category asks of staff reports.
    given = {"description": bool(intake.description.strip()), "photos": intake.photos > 0 or intake.source == "public",
             "address": bool((intake.address or "").strip()), "reporter_phone": bool((intake.contact or "").strip())}
    missing = [FIELDS[f] for f in category.required if not given.get(f, True)]
    if missing:
        raise IncidentInputError(f"类别“{category.name}”必须填写：{'、'.join(missing)}")
    if len(intake.description) > 4000:
        raise IncidentInputError(f"问题描述过长（{len(intake.description)} 字）；请控制在 4000 字以内")
    return category


def grid_lookup(active: ActiveGrids) -> dict[str, tuple[int, str]]:
    """Grid key -> (plan version, community) of the active grids."""
    return active.lookup


def locate_points(active: ActiveGrids, lon: Any, lat: Any, *, settings: Mapping[str, Any],
                  lookup: Mapping[str, tuple[int, str]] | None = None) -> pd.DataFrame:
    """Grid code, plan version, community and ``how`` of each WGS84 point (``None`` = 待定位).

    *lookup* is :func:`grid_lookup` of *active* (taken from *active* when not given).
    """
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    n = len(lon)
    codes = np.full(n, None, dtype=object)
    plans = np.full(n, None, dtype=object)
    communities = np.full(n, None, dtype=object)
    how = np.full(n, "none", dtype=object)
    if len(active.grids) and n:
        found = active.locate(lon, lat, tolerance_m=settings["grid_point_tolerance_m"], nearest_fallback=False)
        lookup = lookup if lookup is not None else active.lookup
        hit = pd.notna(found.grid_id)
        # Per grid, not per point: a million points map through ~10^4 grid keys.
        keys, inverse = np.unique(found.grid_id[hit].astype(str), return_inverse=True)
        codes[hit] = keys.astype(object)[inverse]
        plans[hit] = np.array([lookup[k][0] for k in keys], dtype=object)[inverse]
        communities[hit] = np.array([lookup[k][1] for k in keys], dtype=object)[inverse]
        how[hit] = found.how[hit]
    return pd.DataFrame({"grid_code": codes, "plan_version_id": plans, "community_id": communities,
                         "locate_how": how}, index=range(n), dtype=object)


def locate_point(active: ActiveGrids, lon: float, lat: float, *, settings: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`locate_points` of one point as a dict (no DataFrame: one report per request)."""
    found = active.locate([lon], [lat], tolerance_m=settings["grid_point_tolerance_m"], nearest_fallback=False)
    key = found.grid_id[0]
    if len(active.grids) == 0 or key is None:
        return {"grid_code": None, "plan_version_id": None, "community_id": None, "locate_how": "none"}
    plan, community = active.lookup[key]
    return {"grid_code": str(key), "plan_version_id": plan, "community_id": community,
            "locate_how": str(found.how[0])}


def nearby_open_cases(session: Session, category: str, lon: float, lat: float, *, radius_m: float,
                      exclude: int | None = None) -> list[dict[str, Any]]:
    """Open cases of *category* within *radius_m* of the point, nearest first (duplicate suggestions)."""
    dlat = radius_m / _EARTH_M * 180 / math.pi
    dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
    rows = session.execute(select(IncidentCase.id, IncidentCase.lon, IncidentCase.lat, IncidentCase.state,
                                  IncidentCase.description)
                           .where(IncidentCase.category == category, IncidentCase.state.in_(OPEN_STATES),
                                  IncidentCase.lon.between(lon - dlon, lon + dlon),
                                  IncidentCase.lat.between(lat - dlat, lat + dlat))).all()
    out = []
    for cid, x, y, state, text in rows:
        if cid == exclude:
            continue
        dx = math.radians(x - lon) * math.cos(math.radians((y + lat) / 2))
        d = _EARTH_M * math.hypot(dx, math.radians(y - lat))
        if d <= radius_m:
            out.append({"id": cid, "distance_m": round(d, 1), "state": state, "description": (text or "")[:60]})
    return sorted(out, key=lambda r: r["distance_m"])


@dataclass(frozen=True)
class Report:
    """A checked and located report with its duplicate suggestions: the reads done, ready to store."""

    intake: Intake
    category: Category
    located: dict[str, Any]
    duplicates: list[dict[str, Any]]


def prepare_report(session: Session, intake: Intake, *, settings: Mapping[str, Any],
                   active: ActiveGrids | None = None, categories: Mapping[str, Category] | None = None) -> Report:
    """Check and locate *intake* and find its duplicate suggestions: every read of a report, no write.

    Run it before the write transaction so the database's write lock is held only for the
    INSERTs (:func:`store_report`). Raises :class:`IncidentInputError` when the report is incomplete.
    """
    category = check_intake(intake, categories if categories is not None else load_categories(session))
    located: dict[str, Any] = {"grid_code": None, "plan_version_id": None, "community_id": None, "locate_how": "none"}
    duplicates: list[dict[str, Any]] = []
    if intake.lon is not None and intake.lat is not None:
        grids = active if active is not None else load_active(session, settings=settings)
        located = locate_point(grids, intake.lon, intake.lat, settings=settings)
        duplicates = nearby_open_cases(session, category.code, intake.lon, intake.lat,
                                       radius_m=settings["incident_duplicate_radius_m"])
    return Report(intake, category, located, duplicates)


def store_report(session: Session, report: Report) -> IncidentCase:
    """Store a prepared report as a new case (state 上报) with its first event; the case (flushed, with its id)."""
    intake, category = report.intake, report.category
    at = intake.reported_at or utcnow()
    located = {k: (None if v is None else (int(v) if k == "plan_version_id" else v)) for k, v in report.located.items()}
    case = IncidentCase(token=new_tokens(1)[0], source=intake.source, external_id=intake.external_id,
                        category=category.code, description=intake.description.strip(), address=intake.address,
                        lon=intake.lon, lat=intake.lat, state="reported", reporter=intake.reporter,
                        reporter_contact=intake.contact, limit_value=category.limit_value,
                        limit_unit=category.limit_unit, reported_at=at, updated_at=at, **located)
    session.add(case)
    session.flush()
    session.add(IncidentEvent(case_id=case.id, action="report", actor=intake.reporter or intake.source,
                              role="reporter", at=at, from_state="", to_state="reported",
                              detail={"source": intake.source, "grid_code": case.grid_code,
                                      "plan_version_id": case.plan_version_id}))
    return case


def report_case(session: Session, intake: Intake, *, settings: Mapping[str, Any], active: ActiveGrids | None = None,
                categories: Mapping[str, Category] | None = None) -> tuple[IncidentCase, list[dict[str, Any]]]:
    """Check, locate and store a new case (state 上报) with its first event; the case and duplicate suggestions.

    Raises :class:`IncidentInputError` (nothing written) when the report is incomplete.
    :func:`prepare_report` then :func:`store_report`, in the caller's transaction.
    """
    report = prepare_report(session, intake, settings=settings, active=active, categories=categories)
    return store_report(session, report), report.duplicates
