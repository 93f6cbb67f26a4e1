"""Patrol coverage reports from stored fixes: clean, match to buildings, table per grid / worker / day.

Buildings and their grid come from the workspace and the published assignments
(:mod:`api.grids.service`); households are the register's where it has records, else the
buildings' (estimated) counts. A worker's denominator is the buildings of the grids they
serve (register staff rows linked to their account).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import pandas as pd
import shapely
from pyproj import Transformer
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from api.grids.service import active_grids, grids_of_buildings
from api.models import User
from api.patrol.store import fixes_frame
from api.register.models import Staff
from api.register.queries import household_counts
from api.workspace import load_layer
from geo.patrol.clean import CleanTracks, clean_fixes
from geo.patrol.coverage import PERIODS, coverage_table, unvisited_buildings, visits_from_tracks
from geo.patrol.geofence import geofence_alerts
from geo.patrol.streets import street_length_walked, street_pieces

__all__ = ["CoverageReport", "BY_CHOICES", "PERIODS", "clean_options", "period_bounds", "patrol_buildings", "worker_grids",
           "coverage_report", "unvisited_report", "geofence_report"]

#: ``--by`` choices: per grid, per worker, per grid and day.
BY_CHOICES: tuple[str, ...] = ("grid", "worker", "day")


@dataclass(frozen=True)
class CoverageReport:
    """A coverage table with the cleaning counts behind it."""

    table: pd.DataFrame
    visits: pd.DataFrame
    cleaned: CleanTracks
    buildings: pd.DataFrame
    worker_grids: dict[str, list[str]] | None = None


def clean_options(settings: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :func:`clean_fixes` from the app settings."""
    return {"accuracy_max_m": settings["patrol_accuracy_max_m"], "max_speed_kmh": settings["patrol_max_speed_kmh"],
            "outlier_max_fixes": settings["patrol_outlier_max_fixes"], "session_gap_s": settings["patrol_session_gap_s"],
            "shift_start": settings["patrol_shift_start"], "shift_end": settings["patrol_shift_end"],
            "timezone_name": settings["patrol_timezone"], "earliest": settings["patrol_earliest_time"],
            "future_tolerance_s": settings["patrol_future_tolerance_s"], "crs": settings.get("local_crs") or None}


def period_bounds(start: date, end: date, tz: str) -> tuple[datetime, datetime]:
    """UTC instants of local midnight starting *start* and ending *end* (inclusive days)."""
    zone = ZoneInfo(tz)
    lo = datetime.combine(start, time(0), zone)
    hi = datetime.combine(end + timedelta(days=1), time(0), zone)
    return lo, hi


def patrol_buildings(session: Session, *, bbox: tuple[float, float, float, float] | None = None) -> gpd.GeoDataFrame:
    """Buildings in a published grid: ``building_id``, ``grid``, ``households``, footprint (EPSG:4326).

    *bbox* (degrees) limits the read to buildings whose envelope meets it (a worker's grids).
    """
    b = load_layer(session, "buildings", columns=["households"], bbox=bbox)
    grid = grids_of_buildings(session)
    b = b.loc[b["building_id"].isin(grid.index)].copy()
    b["grid"] = grid.reindex(b["building_id"]).to_numpy()
    register = household_counts(session)
    hh = register.reindex(b["building_id"]).to_numpy()
    b["households"] = pd.Series(hh, index=b.index).fillna(b["households"]).fillna(0).astype(int)
    return b


def worker_grids(session: Session, start: date, end: date) -> dict[str, list[str]]:
    """Username -> grid codes they served at some time in ``[start, end]`` (staff rows linked to accounts)."""
    rows = session.execute(select(User.username, Staff.grid_code).join(User, User.id == Staff.user_id).where(
        Staff.grid_code.is_not(None), or_(Staff.start_date.is_(None), Staff.start_date <= end),
        or_(Staff.end_date.is_(None), Staff.end_date >= start))).all()
    out: dict[str, list[str]] = {}
    for user, code in rows:
        out.setdefault(user, []).append(str(code))
    return out


def coverage_report(session: Session, *, settings: dict[str, Any], start: date, end: date, by: str = "grid",
                    period: str | None = None, now: datetime | None = None) -> CoverageReport:
    """Coverage from the fixes stored for ``[start, end]`` (local days), per *by* (see :data:`BY_CHOICES`).

    *period* (day, week, month or all; see :data:`~geo.patrol.coverage.PERIODS`) splits each
    unit's rows; by default ``day`` for ``by="day"`` (per grid and day), else the whole range.
    """
    tz = settings["patrol_timezone"]
    lo, hi = period_bounds(start, end, tz)
    fixes = fixes_frame(session, lo, hi)
    cleaned = clean_fixes(fixes, now=now, **clean_options(settings))
    buildings = patrol_buildings(session).to_crs(cleaned.crs)
    visits = visits_from_tracks(cleaned.fixes, buildings, visit_m=settings["patrol_visit_m"],
                                threads=settings["patrol_coverage_threads"])
    keys = ["worker"] if by == "worker" else ["grid"]
    period = period or ("day" if by == "day" else "all")
    served = worker_grids(session, start, end) if by == "worker" else None
    table = coverage_table(visits, buildings, start=start, end=end, by=keys, period=period,
                           worker_grids=served, timezone_name=tz)
    if by == "grid" and period == "all":  # street length walked is measured over the whole range
        table = table.merge(_streets_walked(session, cleaned, settings), on="grid", how="left")
    return CoverageReport(table, visits, cleaned, buildings, served)


def unvisited_report(rep: CoverageReport, *, start: date, end: date, tz: str) -> pd.DataFrame:
    """Buildings of each unit nobody visited in ``[start, end]``: ``grid``, ``building_id``, ``households``.

    With the report's worker grids (``by="worker"``), one row per worker and building of their
    grids that this worker did not pass (column ``worker`` first).
    """
    cols = ["grid", "building_id", "households"]
    if rep.worker_grids is None:
        return pd.DataFrame(unvisited_buildings(rep.visits, rep.buildings, start=start, end=end, timezone_name=tz)[cols])
    parts = [unvisited_buildings(rep.visits, rep.buildings, start=start, end=end, grids=keys, worker=w,
                                 timezone_name=tz)[cols].assign(worker=w) for w, keys in sorted(rep.worker_grids.items())]
    return pd.concat(parts, ignore_index=True)[["worker", *cols]] if parts else pd.DataFrame(columns=["worker", *cols])


def _streets_walked(session: Session, cleaned: CleanTracks, settings: dict[str, Any]) -> pd.DataFrame:
    """Street length per active grid and the part the cleaned tracks walked (``patrol_street_match_m``)."""
    grids = active_grids(session)
    streets = load_layer(session, "streets", columns=[])
    if grids.empty or streets.empty:
        return pd.DataFrame(columns=["grid", "street_total_m", "street_walked_m", "street_share"])
    pieces = street_pieces(streets.to_crs(cleaned.crs), grids.to_crs(cleaned.crs))
    out = street_length_walked(cleaned.fixes, pieces, match_m=float(settings["patrol_street_match_m"]))
    return out.assign(grid=out["grid"].astype(str))


def geofence_report(session: Session, *, settings: dict[str, Any], at: datetime) -> pd.DataFrame:
    """Geofence alerts of the local day of *at*, computed at *at*, for every worker with grids.

    Columns of :func:`geo.patrol.geofence.geofence_alerts` plus ``lon``/``lat`` (WGS84) of
    where each alert was raised (NaN for a worker never seen today).
    """
    tz = settings["patrol_timezone"]
    day = pd.Timestamp(at).tz_convert(tz).date()
    lo, _ = period_bounds(day, day, tz)
    fixes = fixes_frame(session, lo, at)
    cleaned = clean_fixes(fixes, now=at, **clean_options(settings))
    served = worker_grids(session, day, day)
    grids = active_grids(session)
    metric = grids.to_crs(cleaned.crs)
    areas = {w: shapely.union_all(metric.loc[metric["key"].isin(keys)].geometry.to_numpy()) for w, keys in served.items()}
    alerts = geofence_alerts(
        cleaned.fixes, areas, now=at, workers_on_duty=sorted(served), tolerance_m=settings["grid_point_tolerance_m"],
        outside_min=settings["patrol_alert_outside_min"], stationary_min=settings["patrol_alert_stationary_min"],
        silent_min=settings["patrol_alert_silent_min"], dwell_radius_m=settings["patrol_dwell_radius_m"],
        shift_start=settings["patrol_shift_start"], shift_end=settings["patrol_shift_end"], timezone_name=tz)
    back = Transformer.from_crs(cleaned.crs, 4326, always_xy=True)
    lon, lat = back.transform(alerts["x"].to_numpy(float), alerts["y"].to_numpy(float))
    return alerts.drop(columns=["x", "y"]).assign(lon=lon, lat=lat)
