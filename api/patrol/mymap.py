"""The worker's patrol day as map data: own grids, today's track, visited vs unvisited buildings,
street length walked, and visits proposed from stops (dwells) the worker confirms.

Only the worker's own grids and own fixes are read; building footprints are simplified
for display. The caller audits the track view.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import mapping
from sqlalchemy.orm import Session

from api.grids.service import active_grids
from api.models import User
from api.patrol.reports import clean_options, patrol_buildings, period_bounds
from api.patrol.store import fixes_frame
from api.patrol.visits import visit_table
from api.register import access
from api.workspace import load_layer
from geo.crs import local_metric_crs
from geo.patrol.clean import clean_fixes
from geo.patrol.coverage import visits_from_tracks
from geo.patrol.stops import detect_stops
from geo.patrol.streets import street_length_walked, street_pieces

__all__ = ["worker_day"]


def _features(gdf: Any, props: list[str]) -> list[dict[str, Any]]:
    geoms = shapely.simplify(gdf.geometry.to_numpy(), 0.000005)
    return [{"type": "Feature", "geometry": mapping(g), "properties": {k: v for k, v in zip(props, vals, strict=True)}}
            for g, vals in zip(geoms, gdf[props].itertuples(index=False), strict=True)]


def _streets(session: Session, grids: gpd.GeoDataFrame, fixes: pd.DataFrame, crs: Any, box: tuple[float, ...],
             settings: dict[str, Any]) -> dict[str, float]:
    """Street length of the own grids and the part walked today (track-to-street buffer overlap)."""
    streets = load_layer(session, "streets", bbox=box, columns=[])  # type: ignore[arg-type]
    if streets.empty or grids.empty:
        return {"street_total_m": 0.0, "street_walked_m": 0.0}
    pieces = street_pieces(streets.to_crs(crs), grids.to_crs(crs))
    walked = street_length_walked(fixes, pieces, match_m=float(settings["patrol_street_match_m"]))
    return {"street_total_m": round(float(walked["street_total_m"].sum()), 1),
            "street_walked_m": round(float(walked["street_walked_m"].sum()), 1)}


def _proposals(session: Session, keys: list[str], day: date, fixes: pd.DataFrame, crs: Any,
               buildings: gpd.GeoDataFrame, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Visits proposed from today's stops (dwells) near buildings of key persons due a visit."""
    stops, _ = detect_stops(fixes, radius_m=settings["patrol_dwell_radius_m"],
                            min_duration_s=settings["patrol_dwell_min_s"])
    tables = [visit_table(session, k, today=day, settings=settings) for k in keys]
    due = pd.concat([t for t in tables if len(t)], ignore_index=True) if any(len(t) for t in tables) else pd.DataFrame()
    if stops.empty or due.empty:
        return []
    due = due.loc[due["status"].isin(["due", "overdue"]) & (due["last_visit"] != day)]
    homes = buildings.loc[buildings["building_id"].astype(str).isin(set(due["building_id"].astype(str)))].to_crs(crs)
    if homes.empty:
        return []
    points = shapely.points(stops["x"].to_numpy(), stops["y"].to_numpy())
    s, h = shapely.STRtree(np.asarray(homes.geometry.values)).query(points, predicate="dwithin",
                                                                    distance=float(settings["patrol_visit_m"]))
    lonlat = gpd.GeoSeries(points, crs=crs).to_crs(4326)
    out, seen = [], set()
    for i, j in zip(s, h, strict=True):
        bid = str(homes["building_id"].iat[j])
        for kp in due.loc[due["building_id"].astype(str) == bid].itertuples():
            if kp.id in seen:
                continue
            seen.add(kp.id)
            st = stops.iloc[i]
            out.append({"keyperson_id": int(kp.id), "name": kp.name, "category": kp.category, "building_id": bid,
                        "start": st["start"].isoformat(), "end": st["end"].isoformat(),
                        "minutes": round(float(st["duration_s"]) / 60, 1),
                        "lon": round(lonlat.iat[i].x, 7), "lat": round(lonlat.iat[i].y, 7)})
    return out


def worker_day(session: Session, user: User, day: date, *, settings: dict[str, Any]) -> dict[str, Any]:
    """Own grids, the day's cleaned track, buildings with ``visited`` (by this worker, that day),
    street length walked, and visits proposed from stops near key persons due a visit."""
    keys = sorted(access.own_grids(session, user))
    grids = active_grids(session)
    grids = grids.loc[grids["key"].isin(keys)]
    # A box no building meets when the worker has no grid (reads nothing).
    box = tuple(float(v) for v in grids.total_bounds) if len(grids) else (999.0, 999.0, 999.0, 999.0)
    buildings = patrol_buildings(session, bbox=box)  # type: ignore[arg-type]
    buildings = buildings.loc[buildings["grid"].isin(keys)].copy()
    lo, hi = period_bounds(day, day, settings["patrol_timezone"])
    cleaned = clean_fixes(fixes_frame(session, lo, hi, user_ids=[user.id]), **clean_options(settings))
    crs = cleaned.crs if len(cleaned.fixes) or grids.empty else local_metric_crs(
        grids, configured=settings.get("local_crs", ""))
    visited: set[str] = set()
    if len(cleaned.fixes) and len(buildings):
        visits = visits_from_tracks(cleaned.fixes, buildings.to_crs(cleaned.crs), visit_m=settings["patrol_visit_m"],
                                    threads=settings["patrol_coverage_threads"])
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
    streets = _streets(session, grids, cleaned.fixes, crs, box, settings) if len(grids) else \
        {"street_total_m": 0.0, "street_walked_m": 0.0}
    return {
        "date": day.isoformat(), "grids": _features(grids, ["key", "code", "name"]),
        "buildings": _features(buildings, ["building_id", "grid", "households", "visited"]),
        "tracks": tracks,
        "proposed_visits": _proposals(session, keys, day, cleaned.fixes, crs, buildings, settings)
        if len(cleaned.fixes) else [],
        "summary": {"buildings_total": n, "buildings_visited": v,
                    "households_total": int(hh.sum()), "households_visited": int(hh[buildings["visited"]].sum()),
                    "fixes": len(cleaned.fixes), "dropped": cleaned.dropped, **streets},
    }
