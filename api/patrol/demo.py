"""Synthetic patrol tracks for the demo workers (``wangge patrol demo``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from pyproj import Transformer
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.grids.service import active_grids, buildings_of_grid
from api.models import User
from api.patrol.models import PatrolFix
from api.patrol.reports import patrol_buildings, period_bounds, worker_grids
from api.patrol.store import grids_for, store_fixes, user_by_name
from api.register.models import Staff
from api.users import DEMO_PASSWORD, create_user
from geo.crs import local_metric_crs
from geo.patrol.synthetic import synthetic_tracks

__all__ = ["demo_tracks", "ensure_demo_workers"]

#: Share of a grid's buildings the demo workers pass per day (the first keeps the synthetic default):
#: a spread of coverage, so the supervisor's choropleth and ranking have something to rank.
_SHARES = (0.8, 0.95, 0.6, 0.7, 0.5, 0.9)


def ensure_demo_workers(session: Session, total: int) -> list[str]:
    """Give grid workers of the register demo accounts (``worker2``, …) until *total* accounts serve a grid.

    Only register 网格员 rows without an account, one per grid nobody's account serves, get one
    (password :data:`api.users.DEMO_PASSWORD`). Returns the usernames created.
    """
    linked = session.execute(select(Staff.user_id, Staff.grid_code).where(Staff.user_id.is_not(None),
                                                                          Staff.grid_code.is_not(None))).all()
    need = total - len({u for u, _ in linked})
    served = {g for _, g in linked}
    rows = session.scalars(select(Staff).where(Staff.role == "grid_worker", Staff.user_id.is_(None),
                                               Staff.grid_code.is_not(None)).order_by(Staff.grid_code, Staff.id))
    taken = set(session.scalars(select(User.username)))
    made: list[str] = []
    k = 2
    for staff in rows:
        if len(made) >= need:
            break
        if staff.grid_code in served:
            continue
        while f"worker{k}" in taken:
            k += 1
        user = create_user(session, f"worker{k}", DEMO_PASSWORD, role="worker", display_name=staff.name)
        staff.user_id = user.id
        served.add(str(staff.grid_code))
        taken.add(user.username)
        made.append(user.username)
    session.flush()
    return made


def _days_with_demo_fixes(session: Session, user_id: int, span: list[date], tz: str) -> set[date]:
    lo, hi = period_bounds(span[0], span[-1], tz)
    times = session.scalars(select(PatrolFix.t).where(PatrolFix.user_id == user_id, PatrolFix.device_id == "demo",
                                                      PatrolFix.t >= lo, PatrolFix.t < hi))
    zone = ZoneInfo(tz)
    return {t.astimezone(zone).date() for t in times}


def demo_tracks(session: Session, *, settings: dict[str, Any], days: int = 30, until: date | None = None,
                seed: int = 42, now: datetime | None = None) -> dict[str, int]:
    """Store *days* of synthetic tracks (ending *until*, default today) per worker with grids; fixes stored.

    Fixes after *now* (default: the current time) are not stored, so today's walk is the part
    already walked: the phone map, last positions and alerts have a today in the demo. Days a
    worker already has demo fixes on are left as they are, so running it again (``make run``
    on another day) adds only the missing days instead of a second walk per day.
    """
    tz = settings["patrol_timezone"]
    now = now or datetime.now(UTC)
    last = until or now.astimezone(ZoneInfo(tz)).date()
    span = [last - timedelta(days=k) for k in range(days - 1, -1, -1)]
    served = worker_grids(session, span[0], last)
    grids = active_grids(session)
    cache: dict[str, Any] = {}
    out: dict[str, int] = {}
    for n, (username, keys) in enumerate(sorted(served.items())):
        ids = set(buildings_of_grid(session, keys[0]))
        box = tuple(float(v) for v in grids.loc[grids["key"] == keys[0]].total_bounds)
        b = patrol_buildings(session, bbox=box)  # type: ignore[arg-type]
        b = b.loc[b["building_id"].isin(ids)]
        if len(b) < 2:
            continue
        user = user_by_name(session, username)
        todo = [d for d in span if d not in _days_with_demo_fixes(session, user.id, span, tz)]
        if not todo:
            out[username] = 0
            continue
        crs = local_metric_crs(b, configured=settings.get("local_crs", ""))
        f = synthetic_tracks(b.to_crs(crs), todo, seed=seed + n, share=_SHARES[n % len(_SHARES)], timezone_name=tz)
        lon, lat = Transformer.from_crs(crs, 4326, always_xy=True).transform(f["x"].to_numpy(), f["y"].to_numpy())
        frame = pd.DataFrame({"t": f["t"], "lon": lon, "lat": lat, "accuracy": 8.0})
        frame = frame.loc[frame["t"] <= pd.Timestamp(now)]
        out[username], _ = store_fixes(session, user.id, frame, source="file", device_id="demo",
                                       grids=grids_for(session, settings, cache), settings=settings)
    return out
