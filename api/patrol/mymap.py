"""The worker's patrol day as map data: own grids, today's track, visited vs unvisited buildings.

Only the worker's own grids and own fixes are read; building footprints are simplified
for display. The caller audits the track view.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import shapely
from shapely.geometry import mapping
from sqlalchemy.orm import Session

from api.grids.service import active_grids
from api.models import User
from api.patrol.reports import clean_options, patrol_buildings, period_bounds
from api.patrol.store import fixes_frame
from api.register import access
from geo.patrol.clean import clean_fixes
from geo.patrol.coverage import visits_from_tracks

__all__ = ["worker_day"]


def _features(gdf: Any, props: list[str]) -> list[dict[str, Any]]:
    geoms = shapely.simplify(gdf.geometry.to_numpy(), 0.000005)
    return [{"type": "Feature", "geometry": mapping(g), "properties": {k: v for k, v in zip(props, vals, strict=True)}}
            for g, vals in zip(geoms, gdf[props].itertuples(index=False), strict=True)]


def worker_day(session: Session, user: User, day: date, *, settings: dict[str, Any]) -> dict[str, Any]:
    """Own grids, the day's cleaned track and buildings with ``visited`` (by this worker, that day)."""
    keys = sorted(access.own_grids(session, user))
    grids = active_grids(session)
    grids = grids.loc[grids["key"].isin(keys)]
    # A box no building meets when the worker has no grid (reads nothing).
    box = tuple(float(v) for v in grids.total_bounds) if len(grids) else (999.0, 999.0, 999.0, 999.0)
    buildings = patrol_buildings(session, bbox=box)  # type: ignore[arg-type]
    buildings = buildings.loc[buildings["grid"].isin(keys)].copy()
    lo, hi = period_bounds(day, day, settings["patrol_timezone"])
    cleaned = clean_fixes(fixes_frame(session, lo, hi, user_ids=[user.id]), **clean_options(settings))
    visited: set[str] = set()
    if len(cleaned.fixes) and len(buildings):
        visits = visits_from_tracks(cleaned.fixes, buildings.to_crs(cleaned.crs), visit_m=settings["patrol_visit_m"])
        visited = set(visits["building_id"].astype(str))
    buildings["visited"] = buildings["building_id"].astype(str).isin(visited)
    tracks = [{"type": "Feature", "properties": {"session": int(k), "start": g["t"].iloc[0].isoformat(),
                                                  "end": g["t"].iloc[-1].isoformat()},
               "geometry": {"type": "LineString" if len(g) > 1 else "Point",
                            "coordinates": g[["lon", "lat"]].round(7).to_numpy().tolist() if len(g) > 1
                            else g[["lon", "lat"]].round(7).to_numpy()[0].tolist()}}
              for k, g in cleaned.fixes.groupby("session")]
    n, v = len(buildings), int(buildings["visited"].sum())
    hh = pd.to_numeric(buildings["households"]).fillna(0)
    return {
        "date": day.isoformat(), "grids": _features(grids, ["key", "code", "name"]),
        "buildings": _features(buildings, ["building_id", "grid", "households", "visited"]),
        "tracks": tracks,
        "summary": {"buildings_total": n, "buildings_visited": v,
                    "households_total": int(hh.sum()), "households_visited": int(hh[buildings["visited"]].sum()),
                    "fixes": len(cleaned.fixes), "dropped": cleaned.dropped},
    }
