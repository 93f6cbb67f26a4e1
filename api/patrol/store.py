"""Patrol persistence: devices bound to workers, unknown devices, raw fixes in and out.

Fixes are inserted idempotently (``(user_id, t)`` unique: an app retrying an upload stores
nothing twice) with the grid in force at the fix's position, asked of
:mod:`api.grids.service`. Late fixes (buffered offline by the app) keep their own time,
so reads by time place them correctly whatever order they arrived in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from api import audit
from api.db import lock_for_transaction
from api.grids import cache as grids_cache
from api.grids import service as grids_service
from api.grids.service import ActiveGrids
from api.models import User, utcnow
from api.patrol.models import PatrolDevice, PatrolFix, UnknownDevice
from api.patrol.protocol import IncomingFix

__all__ = ["purge_fixes", "PatrolError", "UnknownDeviceError", "bind_device", "device_owner", "note_unknown", "devices_listing",
           "grids_for", "last_positions", "store_fixes", "import_tracks", "fix_rows", "insert_fixes", "fixes_frame", "user_by_name"]

# Rows per executemany call: bounds one call's memory on a big file import.
_BATCH = 1000
_FIX_FIELDS = ("t", "lon", "lat", "accuracy", "speed", "bearing", "altitude", "battery")
# Statements every tracker fix runs, built once (building one costs more than running it).
_OWNER = select(PatrolDevice.user_id).where(PatrolDevice.device_id == bindparam("device"),
                                            PatrolDevice.active.is_(True))
_INSERTS = {name: dialect.insert(PatrolFix.__table__).on_conflict_do_nothing(index_elements=["user_id", "t"])
            for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))}


class PatrolError(ValueError):
    """A patrol request that cannot be done as asked; the message says why and what to do (Chinese)."""


class UnknownDeviceError(PatrolError):
    """Fixes from a device id bound to nobody."""


def user_by_name(session: Session, username: str) -> User:
    """The account *username* or a :class:`PatrolError` naming it."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise PatrolError(f"没有用户 {username}；请先用 wangge users create 创建该网格员账号")
    return user


def bind_device(session: Session, device_id: str, username: str, *, by: str, label: str | None = None) -> PatrolDevice:
    """Bind *device_id* to *username* (re-binding moves it); it leaves the unknown list. Audited."""
    user = user_by_name(session, username)
    # two admins binding one new device at once both saw no row: a unique violation (500) on PostgreSQL
    lock_for_transaction(session, f"lock:patrol.device:{device_id}")
    dev = session.scalar(select(PatrolDevice).where(PatrolDevice.device_id == device_id))
    if dev is None:
        dev = PatrolDevice(device_id=device_id, user_id=user.id)
        session.add(dev)
    dev.user_id, dev.active, dev.bound_by, dev.bound_at = user.id, True, by, utcnow()
    dev.label = label or dev.label
    unknown = session.get(UnknownDevice, device_id)
    if unknown is not None:
        session.delete(unknown)
    audit.record(session, user=by, action="patrol.device_bind", target=f"device:{device_id}",
                 detail={"username": username})
    session.flush()
    return dev


def device_owner(session: Session, device_id: str) -> int | None:
    """User id an active device is bound to, or ``None``."""
    # Core and a prepared statement, not an ORM query: every tracker fix asks.
    return session.connection().execute(_OWNER, {"device": device_id}).scalar()


def note_unknown(session: Session, fix: IncomingFix) -> None:
    """Count a refused fix from an unbound device, for the admins' list."""
    # a phone flushing its buffered fixes at once: each request saw no row (a 500 on PostgreSQL, a lost count)
    lock_for_transaction(session, f"lock:patrol.device:{fix.device_id}")
    row = session.get(UnknownDevice, fix.device_id)
    if row is None:
        row = UnknownDevice(device_id=fix.device_id, attempts=0)
        session.add(row)
    row.attempts = (row.attempts or 0) + 1
    row.last_seen, row.last_lon, row.last_lat = utcnow(), fix.lon, fix.lat


def devices_listing(session: Session) -> dict[str, list[dict[str, Any]]]:
    """Bound devices with their worker, and unknown devices that were refused."""
    bound = session.execute(select(PatrolDevice, User.username).join(User, User.id == PatrolDevice.user_id)
                            .order_by(PatrolDevice.device_id)).all()
    unknown = session.scalars(select(UnknownDevice).order_by(UnknownDevice.last_seen.desc())).all()
    return {
        "devices": [{"device_id": d.device_id, "username": u, "label": d.label, "active": d.active,
                     "bound_at": d.bound_at.isoformat(), "bound_by": d.bound_by} for d, u in bound],
        "unknown": [{"device_id": u.device_id, "attempts": u.attempts, "first_seen": u.first_seen.isoformat(),
                     "last_seen": u.last_seen.isoformat(), "last_lon": u.last_lon, "last_lat": u.last_lat}
                    for u in unknown],
    }


def grids_for(session: Session, settings: dict[str, Any], cache: dict[str, Any] | None = None) -> ActiveGrids | None:
    """The active grids (``None`` when no plan is active), rebuilt only when the set of active plans changes.

    In a request: the app's cached index (:func:`api.grids.cache.cached_active`); this runs on
    every intake request. Outside one (the CLI, demo batches) *cache* is a dict kept by the caller.
    """
    if cache is None:
        grids = grids_cache.cached_active(session, settings)
    else:
        grids = grids_service.cached_active(session, settings=settings, store=cache)
    return grids if len(grids.grids) else None


def _grid_columns(grids: ActiveGrids | None, lon: np.ndarray, lat: np.ndarray,
                  settings: dict[str, Any]) -> tuple[list[str | None], list[int | None]]:
    if grids is None or len(grids.grids) == 0 or len(lon) == 0:
        return [None] * len(lon), [None] * len(lon)
    ok = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    codes: list[str | None] = [None] * len(lon)
    plans: list[int | None] = [None] * len(lon)
    if ok.any():
        hit = grids.locate(lon[ok], lat[ok], tolerance_m=settings["grid_point_tolerance_m"], nearest_fallback=False)
        for i, key in zip(np.flatnonzero(ok), hit.grid_id, strict=True):
            if isinstance(key, str):
                codes[i], plans[i] = key, grids.lookup[key][0]
    return codes, plans


def _insert(session: Session) -> Any:
    """INSERT … ON CONFLICT (user_id, t) DO NOTHING, one statement (built and compiled once) for every batch."""
    return _INSERTS["postgresql" if session.get_bind().dialect.name == "postgresql" else "sqlite"]


def _column(fixes: pd.DataFrame | Mapping[str, Sequence[Any]], name: str, n: int) -> list[Any]:
    if name not in fixes:
        return [None] * n
    values = fixes[name].tolist() if isinstance(fixes, pd.DataFrame) else list(fixes[name])
    return [None if isinstance(v, float) and v != v else v for v in values]  # NaN -> NULL


def fix_rows(user_id: int, fixes: pd.DataFrame | Mapping[str, Sequence[Any]], *, source: str, device_id: str | None,
             grids: ActiveGrids | None, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for ``patrol_fixes`` from *fixes* (a frame or columns of :class:`IncomingFix` fields).

    The grid in force at each position is looked up here, before any write transaction.
    """
    n = len(fixes["t"])
    cols = {k: _column(fixes, k, n) for k in _FIX_FIELDS}
    cols["t"] = [t if type(t) is datetime else pd.Timestamp(t).to_pydatetime() for t in cols["t"]]
    codes, plans = _grid_columns(grids, np.asarray(cols["lon"], dtype=float), np.asarray(cols["lat"], dtype=float),
                                 settings)
    now = utcnow()
    fields = list(cols)
    return [{"user_id": user_id, "device_id": device_id, "source": source, "grid_code": c, "plan_version_id": p,
             "received_at": now, **dict(zip(fields, values, strict=True))}
            for c, p, *values in zip(codes, plans, *cols.values(), strict=True)]


def insert_fixes(session: Session, rows: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """Insert :func:`fix_rows` rows, a fix already stored (same worker and time) skipped; (stored, skipped)."""
    stored = 0
    # psycopg reports rowcount -1 for a batched INSERT: count the rows RETURNING hands back there.
    returning = session.get_bind().dialect.name == "postgresql"
    for i in range(0, len(rows), _BATCH):
        batch = list(rows[i:i + _BATCH])
        if returning:
            stored += len(session.execute(_insert(session).returning(PatrolFix.id), batch).all())
        else:
            result = session.execute(_insert(session), batch)
            stored += max(int(result.rowcount or 0), 0)  # type: ignore[attr-defined]
    return stored, len(rows) - stored


def store_fixes(session: Session, user_id: int, fixes: pd.DataFrame, *, source: str, device_id: str | None,
                grids: ActiveGrids | None, settings: dict[str, Any]) -> tuple[int, int]:
    """Insert *fixes* (columns of :class:`IncomingFix`) for *user_id*; (stored, already present)."""
    if len(fixes) == 0:
        return 0, 0
    rows = fix_rows(user_id, fixes, source=source, device_id=device_id, grids=grids, settings=settings)
    return insert_fixes(session, rows)


def import_tracks(session: Session, username: str, tracks: Sequence[tuple[str, pd.DataFrame]], *, by: str,
                  grids: ActiveGrids | None, settings: dict[str, Any]) -> tuple[int, int]:
    """Store the fixes of each ``(file name, fixes)`` for the worker *username*, audited as one import.

    Returns ``(stored, already present)``: re-importing a file stores nothing twice.
    """
    user = user_by_name(session, username)
    stored = skipped = 0
    for name, frame in tracks:
        a, b = store_fixes(session, user.id, frame, source="file", device_id=f"file:{name}"[:100],
                           grids=grids, settings=settings)
        stored, skipped = stored + a, skipped + b
    audit.record(session, user=by, action="patrol.import", target=f"user:{username}",
                 detail={"files": [name for name, _ in tracks], "stored": stored, "skipped": skipped})
    return stored, skipped


def fixes_frame(session: Session, start: datetime, end: datetime, *, user_ids: Sequence[int] | None = None) -> pd.DataFrame:
    """Raw fixes with ``start <= t < end`` as the frame :func:`geo.patrol.clean.clean_fixes` takes.

    Columns: ``worker`` (username), ``t`` (UTC), ``lon``, ``lat``, ``accuracy``, ``grid_code``.
    """
    stmt = (select(User.username, PatrolFix.t, PatrolFix.lon, PatrolFix.lat, PatrolFix.accuracy, PatrolFix.grid_code)
            .join(User, User.id == PatrolFix.user_id).where(PatrolFix.t >= start, PatrolFix.t < end)
            .order_by(PatrolFix.user_id, PatrolFix.t))
    if user_ids is not None:
        stmt = stmt.where(PatrolFix.user_id.in_(list(user_ids)))
    rows = session.execute(stmt).all()
    df = pd.DataFrame(rows, columns=["worker", "t", "lon", "lat", "accuracy", "grid_code"])
    df["t"] = pd.to_datetime(df["t"], utc=True)
    df["accuracy"] = pd.to_numeric(df["accuracy"]).astype(float)
    return df


def last_positions(session: Session, *, since: datetime | None = None) -> list[dict[str, Any]]:
    """Each worker's latest stored fix (of fixes stamped at or after *since*): username, time, lon, lat, grid."""
    latest = select(PatrolFix.user_id, func.max(PatrolFix.t).label("t")).group_by(PatrolFix.user_id)
    if since is not None:
        latest = latest.where(PatrolFix.t >= since)
    sub = latest.subquery()
    rows = session.execute(
        select(User.username, User.display_name, PatrolFix.t, PatrolFix.lon, PatrolFix.lat, PatrolFix.grid_code)
        .join(sub, (sub.c.user_id == PatrolFix.user_id) & (sub.c.t == PatrolFix.t))
        .join(User, User.id == PatrolFix.user_id).order_by(User.username)).all()
    # SQLite hands back naive UTC times, PostgreSQL aware ones.
    return [{"username": u, "name": n or u, "t": (t if t.tzinfo else t.replace(tzinfo=UTC)).isoformat(), "lon": lon,
             "lat": lat, "grid": g} for u, n, t, lon, lat, g in rows]


def purge_fixes(session: Session, before: datetime) -> int:
    """Delete raw fixes stamped before *before* (the retention period); the number deleted. Audited."""
    result = session.execute(delete(PatrolFix).where(PatrolFix.t < before))
    n = max(int(result.rowcount or 0), 0)  # type: ignore[attr-defined]
    audit.record(session, user="system", action="patrol.purge", target="patrol_fixes",
                 detail={"before": before.isoformat(), "deleted": n})
    return n
