"""Patrol persistence: devices bound to workers, unknown devices, raw fixes in and out.

Fixes are inserted idempotently (``(user_id, t)`` unique: an app retrying an upload stores
nothing twice) with the grid in force at the fix's position, asked of
:mod:`api.grids.service`. Late fixes (buffered offline by the app) keep their own time,
so reads by time place them correctly whatever order they arrived in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from api import audit
from api.grids.service import ActiveGrids, active_plans, load_active
from api.models import User, utcnow
from api.patrol.models import PatrolDevice, PatrolFix, UnknownDevice
from api.patrol.protocol import IncomingFix

__all__ = ["purge_fixes", "write_lock", "PatrolError", "UnknownDeviceError", "bind_device", "device_owner", "note_unknown", "devices_listing",
           "grids_for", "store_fixes", "fixes_frame", "user_by_name"]

# Rows per INSERT: 16 columns x 1,000 rows stays under SQLite's 32,766 bound parameters.
_BATCH = 1000
_FIX_FIELDS = ("t", "lon", "lat", "accuracy", "speed", "bearing", "altitude", "battery")


class PatrolError(ValueError):
    """A patrol request that cannot be done as asked; the message says why and what to do (Chinese)."""


class UnknownDeviceError(PatrolError):
    """Fixes from a device id bound to nobody."""


def write_lock(session: Session) -> None:
    """Take SQLite's write lock before reading (a no-op write; other databases: nothing).

    With deferred transactions in WAL mode, a transaction that reads and then writes fails
    at once ("database is locked") when another writer committed in between; taking the
    lock first makes concurrent intake requests wait their turn (busy timeout) instead.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE patrol_devices SET id = id WHERE 0"))


def user_by_name(session: Session, username: str) -> User:
    """The account *username* or a :class:`PatrolError` naming it."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise PatrolError(f"没有用户 {username}；请先用 wangge users add 创建该网格员账号")
    return user


def bind_device(session: Session, device_id: str, username: str, *, by: str, label: str | None = None) -> PatrolDevice:
    """Bind *device_id* to *username* (re-binding moves it); it leaves the unknown list. Audited."""
    user = user_by_name(session, username)
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
    return session.scalar(select(PatrolDevice.user_id).where(PatrolDevice.device_id == device_id,
                                                             PatrolDevice.active.is_(True)))


def note_unknown(session: Session, fix: IncomingFix) -> None:
    """Count a refused fix from an unbound device, for the admins' list."""
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


def grids_for(session: Session, settings: dict[str, Any], cache: dict[str, Any]) -> ActiveGrids | None:
    """The active grids, rebuilt only when the set of active plans changes (*cache* is per app)."""
    plans = tuple(p.id for p in active_plans(session))
    if not plans:
        return None
    if cache.get("plans") != plans:
        cache["plans"], cache["grids"] = plans, load_active(session, settings=settings)
    return cache["grids"]  # type: ignore[no-any-return]


def _grid_columns(grids: ActiveGrids | None, lon: np.ndarray, lat: np.ndarray,
                  settings: dict[str, Any]) -> tuple[list[str | None], list[int | None]]:
    if grids is None or len(grids.grids) == 0 or len(lon) == 0:
        return [None] * len(lon), [None] * len(lon)
    ok = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    codes: list[str | None] = [None] * len(lon)
    plans: list[int | None] = [None] * len(lon)
    if ok.any():
        hit = grids.grid_of_points(lon[ok], lat[ok], tolerance_m=settings["grid_point_tolerance_m"],
                                   nearest_fallback=False)
        plan_of = dict(zip(grids.grids["key"], grids.grids["plan_version_id"], strict=True))
        for i, key in zip(np.flatnonzero(ok), hit["grid_id"], strict=True):
            if isinstance(key, str):
                codes[i], plans[i] = key, int(plan_of[key])
    return codes, plans


def _insert(session: Session) -> Any:
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(PatrolFix)


def store_fixes(session: Session, user_id: int, fixes: pd.DataFrame, *, source: str, device_id: str | None,
                grids: ActiveGrids | None, settings: dict[str, Any]) -> tuple[int, int]:
    """Insert *fixes* (columns of :class:`IncomingFix`) for *user_id*; (stored, already present)."""
    if len(fixes) == 0:
        return 0, 0
    frame = fixes.reindex(columns=list(_FIX_FIELDS))
    codes, plans = _grid_columns(grids, frame["lon"].to_numpy(float), frame["lat"].to_numpy(float), settings)
    now = utcnow()
    rows = [{"user_id": user_id, "device_id": device_id, "source": source, "grid_code": c, "plan_version_id": p,
             "received_at": now, **{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in rec.items()}}
            for rec, c, p in zip(frame.to_dict("records"), codes, plans, strict=True)]
    for r in rows:
        r["t"] = pd.Timestamp(r["t"]).to_pydatetime()
    stored = 0
    for i in range(0, len(rows), _BATCH):
        # Count the rows RETURNING hands back: psycopg reports rowcount -1 for a multi-row VALUES.
        stmt = _insert(session).values(rows[i:i + _BATCH]).on_conflict_do_nothing(index_elements=["user_id", "t"])
        stored += len(session.execute(stmt.returning(PatrolFix.id)).all())
    return stored, len(rows) - stored


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


def purge_fixes(session: Session, before: datetime) -> int:
    """Delete raw fixes stamped before *before* (the retention period); the number deleted. Audited."""
    result = session.execute(delete(PatrolFix).where(PatrolFix.t < before))
    n = max(int(result.rowcount or 0), 0)  # type: ignore[attr-defined]
    audit.record(session, user="system", action="patrol.purge", target="patrol_fixes",
                 detail={"before": before.isoformat(), "deleted": n})
    return n
