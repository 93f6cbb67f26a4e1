"""Suggested patrol route of one grid and day (issue 14 §7), from the workspace and the register.

Stops: the buildings of key persons due or overdue a visit, plus (unless *due_only*) the
grid's buildings the worker has not passed yet that day. The walk network is the
workspace's streets around the grid (the grid's envelope grown by ``walk_max_snap_m``).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import geopandas as gpd
import shapely
from shapely.geometry import mapping
from sqlalchemy.orm import Session

from api.grids.service import GridNotFound, active_grids
from api.models import User
from api.patrol.reports import clean_options, patrol_buildings, period_bounds
from api.patrol.store import fixes_frame
from api.patrol.visits import visit_table
from api.workspace import load_layer
from geo.crs import local_metric_crs
from geo.errors import LayerError
from geo.network import walk_graph_from_streets
from geo.patrol.clean import clean_fixes
from geo.patrol.coverage import visits_from_tracks
from geo.patrol.route import patrol_route

__all__ = ["route_of_grid"]


def _stops(session: Session, key: str, day: date, user: User | None, settings: dict[str, Any], *,
           due_only: bool, buildings: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Stop buildings with ``reason`` (due = a key person due or overdue; unvisited)."""
    table = visit_table(session, key, today=day, settings=settings)
    due = set(table.loc[table["status"].isin(["due", "overdue"]), "building_id"].astype(str)) if len(table) else set()
    reason = buildings["building_id"].astype(str).map(lambda b: "due" if b in due else "unvisited")
    out = buildings.assign(reason=reason.to_numpy())
    if due_only:
        return out.loc[out["reason"] == "due"]
    if user is None:
        return out
    lo, hi = period_bounds(day, day, settings["patrol_timezone"])
    cleaned = clean_fixes(fixes_frame(session, lo, hi, user_ids=[user.id]), **clean_options(settings))
    if len(cleaned.fixes):
        seen = visits_from_tracks(cleaned.fixes, buildings.to_crs(cleaned.crs), visit_m=settings["patrol_visit_m"],
                                  threads=settings["patrol_coverage_threads"])
        out = out.loc[(out["reason"] == "due") | ~out["building_id"].astype(str).isin(set(seen["building_id"]))]
    return out


def route_of_grid(session: Session, key: str, day: date, *, settings: dict[str, Any], user: User | None = None,
                  due_only: bool = False, start: tuple[float, float] | None = None) -> dict[str, Any]:
    """The suggested loop of grid *key* on *day* as JSON-ready data (WGS84 line, ordered stops).

    *user*'s own track of the day removes buildings already passed (without a user every
    building of the grid is a stop); with *due_only* only buildings of key persons due a
    visit are.
    *start* (lon, lat) is where the worker stands. Raises :class:`GridNotFound`.
    """
    grids = active_grids(session)
    grid = grids.loc[grids["key"] == key]
    if grid.empty:
        raise GridNotFound(f"没有生效的网格 {key}；请检查网格编码")
    crs = local_metric_crs(grid, configured=settings.get("local_crs", ""))
    area = grid.to_crs(crs).buffer(float(settings["walk_max_snap_m"])).to_crs(4326)
    bbox = tuple(float(v) for v in area.total_bounds)
    buildings = patrol_buildings(session, bbox=bbox)  # type: ignore[arg-type]
    buildings = buildings.loc[buildings["grid"].astype(str) == key]
    stops = _stops(session, key, day, user, settings, due_only=due_only, buildings=buildings)
    streets = load_layer(session, "streets", bbox=bbox, columns=["road_class", "foot"])  # type: ignore[arg-type]
    out: dict[str, Any] = {"grid": key, "date": day.isoformat(), "due_only": due_only, "stops": [], "path": None,
                           "length_m": 0.0, "minutes": 0.0, "lower_bound_m": 0.0, "gap": 0.0,
                           "unreachable": [], "method": "最近邻 + 2-opt，下界为 1-tree"}
    if stops.empty:
        return out
    if streets.empty:
        raise LayerError(f"网格 {key} 周边没有道路数据，无法规划巡查路线；请先导入道路图层（wangge import streets）")
    graph = walk_graph_from_streets(streets, snap_tolerance_m=settings["walk_snap_tolerance_m"], crs=crs,
                                    excluded_classes=tuple(settings["walk_excluded_road_classes"]))
    here = None if start is None else gpd.GeoSeries([shapely.Point(start)], crs=4326).to_crs(crs).iloc[0]
    route = patrol_route(graph, stops.to_crs(crs), start=here, walk_speed_mps=float(settings["walk_speed_mps"]),
                         max_snap_m=float(settings["walk_max_snap_m"]))
    where = stops.set_index(stops["building_id"].astype(str))
    centre = where.geometry.representative_point()
    out["stops"] = [{"order": int(r.order), "building_id": r.building_id, "reason": where.at[r.building_id, "reason"],
                     "leg_m": round(float(r.leg_m), 1), "cumulative_m": round(float(r.cumulative_m), 1),
                     "lon": round(centre[r.building_id].x, 7), "lat": round(centre[r.building_id].y, 7)}
                    for r in route.stops.itertuples()]
    if route.path is not None:
        out["path"] = mapping(gpd.GeoSeries([route.path], crs=crs).to_crs(4326).iloc[0])
    out.update(length_m=round(route.length_m, 1), minutes=round(route.minutes, 1),
               lower_bound_m=round(route.lower_bound_m, 1), gap=round(route.gap, 4),
               unreachable=list(route.unreachable))
    return out
