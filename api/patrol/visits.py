"""Key-person visits: who is due, overdue or done per grid, and recording a visit.

Access follows the register (:mod:`api.register.access`): workers see and visit only key
persons of their own grids, viewers none; lists are masked as the register masks them;
every list view and every recorded visit is audited.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api import audit
from api.incidents.photos import PHOTO_TYPES, Photo
from api.models import AuditEntry, User, utcnow
from api.patrol.models import PatrolVisit
from api.register import access, queries
from api.register.models import KeyPerson
from geo.patrol.visits import VISIT_STATUSES, visit_status

__all__ = ["audit_first", "visit_table", "visits_of_grid", "record_visit", "visit_photo", "VISIT_PHOTO_DIR"]

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


def record_visit(session: Session, user: User, keyperson_id: int, *, note: str | None = None,
                 lon: float | None = None, lat: float | None = None, at: datetime | None = None,
                 photo: Photo | None = None, instance: str | None = None) -> PatrolVisit:
    """Record *user*'s visit to key person *keyperson_id* (own grids only), with an optional checked *photo*
    written under ``<instance>/patrol_photos``. Audited."""
    entry = audit_first(session, user, "patrol.visit_record", f"keyperson:{keyperson_id}")
    kp = session.get(KeyPerson, keyperson_id)
    if kp is None:
        raise queries.RecordNotFound(f"重点人员 {keyperson_id} 不存在")
    grid = queries.grid_of_resident(session, kp.resident_id)
    access.require_grid(session, user, grid)
    if (lon is None) != (lat is None):
        raise ValueError("签到位置需同时提供经度 lon 和纬度 lat；或都不填")
    visit = PatrolVisit(keyperson_id=keyperson_id, user_id=user.id, at=at or utcnow(), note=note, lon=lon, lat=lat,
                        grid_code=grid)
    if photo is not None and instance is not None:
        visit.photo_path, visit.photo_type = _store_photo(photo, instance)
    session.add(visit)
    entry.detail = {"grid": grid, "located": lon is not None, "photo": visit.photo_path is not None}
    session.flush()
    return visit
