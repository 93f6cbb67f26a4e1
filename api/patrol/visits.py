"""Key-person visits: who is due, overdue or done per grid, and recording a visit.

Access follows the register (:mod:`api.register.access`): workers see and visit only key
persons of their own grids, viewers none; lists are masked as the register masks them;
every list view and every recorded visit is audited.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api import audit
from api.db import lock_for_transaction
from api.grids.service import grid_meta
from api.incidents.photos import PHOTO_TYPES, Photo
from api.models import AuditEntry, User, utcnow
from api.patrol.models import PatrolVisit
from api.register import access, queries
from api.register.models import Household, KeyPerson, KeyPersonCategory, Resident
from api.workspace import load_layer
from geo.crs import local_metric_crs
from geo.patrol.visits import VISIT_STATUSES, visit_status

__all__ = ["audit_first", "visit_table", "visits_of_grid", "visit_history", "record_visit", "visit_photo",
           "VISIT_PHOTO_DIR"]

#: Folder of visit photos under the instance folder.
VISIT_PHOTO_DIR = "patrol_photos"


def audit_first(session: Session, user: User | str, action: str, target: str) -> AuditEntry:
    """Write the audit row before reading anything.

    On SQLite the transaction then holds the write lock before its reads, so a concurrent
    writer cannot make its snapshot stale ("database is locked" on the late upgrade); a
    refused request rolls the row back with everything else.
    """
    entry = audit.record(session, user=user, action=action, target=target)
    session.flush()
    return entry


def _last_visits(session: Session, ids: list[int], tz: str) -> pd.Series:
    rows = session.execute(select(PatrolVisit.keyperson_id, func.max(PatrolVisit.at))
                           .where(PatrolVisit.keyperson_id.in_(ids)).group_by(PatrolVisit.keyperson_id)).all()
    zone = ZoneInfo(tz)
    return pd.Series({k: pd.Timestamp(t).tz_convert(zone).date() for k, t in rows}, dtype=object)


def visit_table(session: Session, key: str, *, today: date, settings: dict[str, Any]) -> pd.DataFrame:
    """Key persons of grid *key* (masked) with last visit, due date and status, most urgent first.

    No access check and no audit: callers do both.
    """
    kps = pd.DataFrame(queries.keypersons_of_grid(session, key))
    if kps.empty:
        return kps
    last = _last_visits(session, kps["id"].astype(int).tolist(), settings["patrol_timezone"])
    out = visit_status(kps, last, today=today, due_soon_days=settings["patrol_visit_due_soon_days"])
    out["rank"] = out["status"].map({s: i for i, s in enumerate(VISIT_STATUSES)})
    out = out.sort_values(["rank", "due_date", "id"], na_position="first").drop(columns="rank")
    out["grid"] = key
    return out


def visits_of_grid(session: Session, user: User, key: str, *, today: date, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Masked key persons of grid *key* with last visit, due date and status, most urgent first. Audited."""
    entry = audit_first(session, user, "patrol.visits_view", f"grid:{key}")
    access.require_grid(session, user, key)
    out = visit_table(session, key, today=today, settings=settings)
    entry.detail = {"rows": len(out)}
    if out.empty:
        return []
    records = out.astype(object).where(out.notna(), None).to_dict("records")
    for r in records:
        for k in ("last_visit", "due_date"):
            r[k] = None if r[k] is None else r[k].isoformat()
    return records


def _store_photo(photo: Photo, instance: str) -> tuple[str, str]:
    """Write *photo* under the instance folder; its relative path and content type."""
    ext, mime = PHOTO_TYPES[photo.fmt]
    folder = Path(instance) / VISIT_PHOTO_DIR
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{uuid.uuid4().hex}.{ext}"
    (folder / name).write_bytes(photo.data)
    return name, mime


def visit_photo(session: Session, user: User, visit_id: int, instance: str) -> tuple[bytes, str]:
    """The photo of visit *visit_id* for *user* (who may see the visit's grid), as bytes and content type. Audited."""
    audit_first(session, user, "patrol.visit_photo_view", f"visit:{visit_id}")
    visit = session.get(PatrolVisit, visit_id)
    if visit is None or visit.photo_path is None:
        raise queries.RecordNotFound(f"走访 {visit_id} 没有照片")
    if visit.user_id != user.id:
        access.require_grid(session, user, visit.grid_code)
    return (Path(instance) / VISIT_PHOTO_DIR / visit.photo_path).read_bytes(), str(visit.photo_type)


def _same(column: Any, value: Any) -> Any:
    return column.is_(None) if value is None else column == value


def _same_photo(visit: PatrolVisit, photo: Photo | None, instance: str | None) -> bool:
    if photo is None or visit.photo_path is None:
        return photo is None and visit.photo_path is None
    stored = Path(instance or "") / VISIT_PHOTO_DIR / visit.photo_path
    return stored.is_file() and stored.read_bytes() == photo.data


def _earlier_record(session: Session, user: User, keyperson_id: int, sent: dict[str, Any],
                    photo: Photo | None, instance: str | None, repeat_s: float) -> PatrolVisit | None:
    """*user*'s record in the last *repeat_s* seconds of a visit to *keyperson_id* with exactly what was *sent*
    (note, check-in point, photo bytes): the same record sent again."""
    since = utcnow() - timedelta(seconds=repeat_s)
    rows = session.scalars(select(PatrolVisit).where(
        PatrolVisit.keyperson_id == keyperson_id, PatrolVisit.user_id == user.id, PatrolVisit.at >= since,
        *(_same(getattr(PatrolVisit, k), v) for k, v in sent.items())).order_by(PatrolVisit.id.desc()).limit(5))
    return next((v for v in rows if _same_photo(v, photo, instance)), None)


def record_visit(session: Session, user: User, keyperson_id: int, *, note: str | None = None,
                 lon: float | None = None, lat: float | None = None, at: datetime | None = None,
                 photo: Photo | None = None, instance: str | None = None,
                 repeat_s: float = 0) -> tuple[PatrolVisit, bool]:
    """Record *user*'s visit to key person *keyperson_id* (own grids only), with an optional checked *photo*
    written under ``<instance>/patrol_photos``. Audited.

    A second record by the same worker of the same key person with the same note, check-in point and
    photo within *repeat_s* seconds (setting ``patrol_visit_repeat_s``: a double tap, a phone resending on a bad network) is
    the same visit: the earlier one is returned with ``True`` and nothing is added.
    """
    entry = audit_first(session, user, "patrol.visit_record", f"keyperson:{keyperson_id}")
    kp = session.get(KeyPerson, keyperson_id)
    if kp is None:
        raise queries.RecordNotFound(f"重点人员 {keyperson_id} 不存在")
    grid = queries.grid_of_resident(session, kp.resident_id)
    access.require_grid(session, user, grid)
    if (lon is None) != (lat is None):
        raise ValueError("签到位置需同时提供经度 lon 和纬度 lat；或都不填")
    if repeat_s > 0 and at is None:
        lock_for_transaction(session, f"lock:patrol.visit:{user.id}:{keyperson_id}")
        earlier = _earlier_record(session, user, keyperson_id, {"note": note, "lon": lon, "lat": lat}, photo,
                                  instance, repeat_s)
        if earlier is not None:
            entry.detail = {"grid": grid, "repeat_of": earlier.id}
            return earlier, True
    visit = PatrolVisit(keyperson_id=keyperson_id, user_id=user.id, at=at or utcnow(), note=note, lon=lon, lat=lat,
                        grid_code=grid)
    if photo is not None and instance is not None:
        visit.photo_path, visit.photo_type = _store_photo(photo, instance)
    session.add(visit)
    entry.detail = {"grid": grid, "located": lon is not None, "photo": visit.photo_path is not None}
    session.flush()
    return visit, False


def _history_rows(session: Session, key: str, limit: int) -> list[dict[str, Any]]:
    """Visits recorded in grid *key*, newest first: worker, masked key person, note, check-in point."""
    stmt = (select(PatrolVisit.id, PatrolVisit.at, PatrolVisit.note, PatrolVisit.lon, PatrolVisit.lat,
                   PatrolVisit.photo_path, PatrolVisit.keyperson_id, User.username.label("worker"),
                   User.display_name.label("worker_name"), Resident.name, Resident.id_masked,
                   KeyPersonCategory.name.label("category"), Household.building_id)
            .join(User, User.id == PatrolVisit.user_id)
            .join(KeyPerson, KeyPerson.id == PatrolVisit.keyperson_id)
            .join(Resident, Resident.id == KeyPerson.resident_id)
            .outerjoin(Household, Household.id == Resident.household_id)
            .outerjoin(KeyPersonCategory, KeyPersonCategory.code == KeyPerson.category)
            .where(PatrolVisit.grid_code == key)
            .order_by(PatrolVisit.at.desc(), PatrolVisit.id.desc()).limit(limit))
    return [dict(r) for r in session.execute(stmt).mappings()]


def _checkin_distances(session: Session, grid: Any, rows: list[dict[str, Any]]) -> dict[int, float]:
    """Visit id -> metres from its check-in point to its key person's building footprint (located visits only).

    Buildings are read in the box of the *grid* geometry (or None) and the check-in points (one bounded read).
    """
    located = [r for r in rows if r["lon"] is not None and r["building_id"] is not None]
    if not located:
        return {}
    points = gpd.GeoSeries(gpd.points_from_xy([r["lon"] for r in located], [r["lat"] for r in located]), crs=4326)
    boxes = [points.total_bounds] + ([grid.bounds] if grid is not None else [])
    bbox = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
    b = load_layer(session, "buildings", bbox=bbox)
    feet = b.assign(building_id=b["building_id"].astype(str)).drop_duplicates("building_id").set_index("building_id")
    known = [(r, str(r["building_id"])) for r in located if str(r["building_id"]) in feet.index]
    if not known:
        return {}
    crs = local_metric_crs(points)
    pts = gpd.GeoSeries(gpd.points_from_xy([r["lon"] for r, _ in known], [r["lat"] for r, _ in known]), crs=4326)
    homes = gpd.GeoSeries(feet.geometry.loc[[i for _, i in known]].to_numpy(), crs=4326)
    dist = pts.to_crs(crs).distance(homes.to_crs(crs), align=False)
    return {int(r["id"]): round(float(d), 1) for (r, _), d in zip(known, dist, strict=True)}


def visit_history(session: Session, user: User, key: str, *, limit: int) -> list[dict[str, Any]]:
    """The last *limit* visits recorded in grid *key*, newest first, for *user* (who may see the grid). Audited.

    Parameters
    ----------
    session : Session
        Open session; the audit row is written first.
    user : User
        The reader: workers their own grids only (:class:`api.register.access.Forbidden` otherwise).
    key : str
        Grid code.
    limit : int
        Most rows returned (setting ``patrol_visit_history_limit``).

    Returns
    -------
    list of dict
        ``id``, ``at`` (aware UTC), ``note``, ``lon``/``lat``, ``distance_m`` (check-in point to the
        building footprint, None when not located), ``has_photo``, ``worker``/``worker_name``, and the
        key person masked as the visit lists mask it (``name``, ``id_masked``, ``category``).
    """
    entry = audit_first(session, user, "patrol.visit_history_view", f"grid:{key}")
    access.require_grid(session, user, key)
    grid = grid_meta(session, key)["geometry"]  # GridNotFound for an unknown code
    rows = _history_rows(session, key, limit)
    dist = _checkin_distances(session, grid, rows)
    entry.detail = {"rows": len(rows)}
    for r in rows:
        r["has_photo"] = r.pop("photo_path") is not None
        r["distance_m"] = dist.get(int(r["id"]))
    return rows
