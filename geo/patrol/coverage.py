"""Patrol coverage (the KPI, DOMAIN.md §3): buildings and households visited / total.

**Rule**: a building is visited when a cleaned patrol track passes within
``patrol_visit_m`` of its **footprint** (the polygon, not its door on the walk network): a
track segment between two consecutive fixes of one session, or a lone fix of a one-fix
session, lies within that distance of the polygon. Segments of a session only: a gap or a
jump never draws a line across places the worker did not walk.

Not a Python loop over fixes: :func:`geo.patrol.nearpairs.piece_polygon_visits` makes one
compiled pass over the track pieces (grid-binned footprints, exact segment-to-ring distances;
equal to ``STRtree.query(predicate="dwithin")``) and folds them per session and building,
on ``patrol_coverage_threads`` threads (cut between sessions: the rows do not depend on it).
A visit's time is the start of the segment (first visit) and its end (last visit).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import require_metric
from geo.errors import LayerError
from geo.patrol.nearpairs import piece_polygon_visits
from geo.settings import DEFAULTS

__all__ = ["PERIODS", "track_coords", "track_segments", "visits_from_tracks", "coverage_table", "unvisited_buildings"]

log = logging.getLogger(__name__)

#: Reporting periods of the coverage table.
PERIODS: tuple[str, ...] = ("day", "week", "month", "all")


def track_coords(fixes: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segments between consecutive fixes of a session, plus one point per one-fix session.

    Returns (n, 4) coordinates x0, y0, x1, y1 (a point has equal ends) and, per piece, the
    row positions (in *fixes*) of its start and end fix, in row order.
    """
    session = fixes["session"].to_numpy()
    x, y = fixes["x"].to_numpy(float), fixes["y"].to_numpy(float)
    n = len(fixes)
    if n == 0:
        return np.zeros((0, 4)), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    linked_next = np.zeros(n, dtype=bool)
    linked_next[:-1] = session[1:] == session[:-1]
    linked_prev = np.zeros(n, dtype=bool)
    linked_prev[1:] = linked_next[:-1]
    start = np.flatnonzero(linked_next | ~linked_prev)
    end = start + linked_next[start]
    return np.column_stack([x[start], y[start], x[end], y[end]]), start, end


def track_segments(fixes: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`track_coords` as shapely geometries (LineStrings; Points for one-fix sessions)."""
    coords, start, end = track_coords(fixes)
    lone = start == end
    geoms = np.empty(len(coords), dtype=object)
    if (~lone).any():
        geoms[~lone] = shapely.linestrings(coords[~lone].reshape(-1, 2, 2))
    if lone.any():
        geoms[lone] = shapely.points(coords[lone, :2])
    return geoms, start, end


def _ns(t: pd.Series) -> np.ndarray:
    return t.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[ns]").view(np.int64)


def _utc(ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(ns.astype(np.int64).view("datetime64[ns]")).tz_localize("UTC")


def _visit_rows(fixes: pd.DataFrame, buildings: gpd.GeoDataFrame, id_column: str, visit_m: float,
                threads: int) -> pd.DataFrame:
    """One row per (session, building) passed: first start and last end time of those pieces."""
    coords, start, end = track_coords(fixes)
    codes, sessions = pd.factorize(fixes["session"], sort=True)
    t = _ns(fixes["t"])
    g, b, first, last = piece_polygon_visits(coords, codes[start], t[start], t[end],
                                             np.asarray(buildings.geometry.values, dtype=object), visit_m,
                                             threads=threads)
    if (np.diff(codes) < 0).any():  # a session's rows not consecutive: it came back as several runs
        agg = pd.DataFrame({"g": g, "b": b, "first": first, "last": last}).groupby(["g", "b"]).agg(
            first=("first", "min"), last=("last", "max"))
        g, b = (agg.index.get_level_values(k).to_numpy() for k in ("g", "b"))
        first, last = agg["first"].to_numpy(), agg["last"].to_numpy()
    order = np.lexsort((g, b))  # by building (row order), then session
    g, b, first, last = g[order], b[order], first[order], last[order]
    first_row = np.zeros(len(sessions), dtype=np.int64)
    first_row[codes[::-1]] = np.arange(len(codes))[::-1]
    # take() on the columns' own arrays: no object copy of a million worker names.
    return pd.DataFrame({"building_id": buildings[id_column].array.take(b),
                         "worker": fixes["worker"].array.take(first_row[g]),
                         "session": sessions.take(g),
                         "first": _utc(first), "last": _utc(last)})


def _no_visits() -> pd.DataFrame:
    """An empty visit table with the column types of a full one (times stay datetimes)."""
    empty_time = pd.Series([], dtype="datetime64[ns, UTC]")
    return pd.DataFrame({"building_id": pd.Series([], dtype=object), "worker": pd.Series([], dtype=object),
                         "session": pd.Series([], dtype="int64"), "first": empty_time, "last": empty_time.copy()})


def visits_from_tracks(
    fixes: pd.DataFrame,
    buildings: gpd.GeoDataFrame,
    *,
    visit_m: float = DEFAULTS["patrol_visit_m"],
    id_column: str = "building_id",
    threads: int = DEFAULTS["patrol_coverage_threads"],
) -> pd.DataFrame:
    """One row per building, worker and session the track passed within *visit_m* of.

    Parameters
    ----------
    fixes
        Cleaned fixes with ``worker``, ``t``, ``session`` and metric ``x``/``y`` in the CRS
        of *buildings*; a session belongs to one worker and its fixes are consecutive rows
        in time order (as :func:`geo.patrol.clean.clean_fixes` returns them).
    buildings
        Footprints in a metric CRS with an *id_column*.
    visit_m
        A piece within this distance (m) of a footprint visits it (``patrol_visit_m``).
    threads
        Threads of the compiled pass (``patrol_coverage_threads``; 0: every core); the rows
        do not depend on it.

    Returns
    -------
    pandas.DataFrame
        ``building_id``, ``worker``, ``session``, ``first``, ``last`` (UTC times), by
        building (row order of *buildings*), then session.
    """
    require_metric(buildings, func="visits_from_tracks")
    if id_column not in buildings.columns:
        raise LayerError(f"visits_from_tracks: buildings have no column {id_column!r}; pass id_column=")
    if visit_m < 0:
        raise LayerError(f"visits_from_tracks: visit_m={visit_m} is negative; set patrol_visit_m >= 0")
    if threads < 0:
        raise LayerError(f"visits_from_tracks: threads={threads}; set patrol_coverage_threads to 0 (every core) "
                         "or a positive number")
    if len(fixes) == 0 or len(buildings) == 0:
        return _no_visits()
    visits = _visit_rows(fixes, buildings, id_column, visit_m, threads)
    log.info("visits_from_tracks: %d fixes x %d buildings -> %d visits", len(fixes), len(buildings), len(visits))
    return visits


def _period_start(t: pd.Series, period: str, tz: str, start: date) -> pd.Series:
    local = t.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
    if period == "day":
        return local.dt.date
    if period == "week":
        return (local - pd.to_timedelta(local.dt.day_of_week, unit="D")).dt.date
    if period == "month":
        return local.dt.to_period("M").dt.start_time.dt.date
    return pd.Series(start, index=t.index)


def _periods(start: date, end: date, period: str) -> list[date]:
    if period == "all":
        return [start]
    days = pd.date_range(start, end, freq="D")
    if period == "week":
        days = days - pd.to_timedelta(days.day_of_week, unit="D")
    elif period == "month":
        days = days.to_period("M").start_time
    return sorted({d.date() for d in days})


def _units(buildings: pd.DataFrame, by: Sequence[str], worker_grids: Mapping[str, Sequence[str]] | None) -> pd.DataFrame:
    """Building rows per reporting unit (grid, or worker x their grids)."""
    base = buildings[["building_id", "grid", "households"]]
    if "worker" not in by:
        return base
    if worker_grids is None:
        raise LayerError("coverage_table: by='worker' needs worker_grids (worker -> grid codes of the worker)")
    pairs = pd.DataFrame([(w, str(g)) for w, gs in worker_grids.items() for g in gs], columns=["worker", "grid"])
    return pairs.merge(base, on="grid", how="inner")


def _check_table_args(buildings: pd.DataFrame, by: Sequence[str], period: str) -> None:
    if period not in PERIODS:
        raise LayerError(f"coverage_table: period {period!r} unknown; use one of {', '.join(PERIODS)}")
    bad = [b for b in by if b not in ("grid", "worker")]
    if bad or not by:
        raise LayerError(f"coverage_table: by={list(by)!r}; use 'grid', 'worker' or both")
    missing = [c for c in ("building_id", "grid", "households") if c not in buildings.columns]
    if missing:
        raise LayerError(f"coverage_table: buildings lack {', '.join(missing)}; pass building_id, grid, households")


def coverage_table(
    visits: pd.DataFrame,
    buildings: pd.DataFrame,
    *,
    start: date,
    end: date,
    by: Sequence[str] = ("grid",),
    period: str = "all",
    worker_grids: Mapping[str, Sequence[str]] | None = None,
    timezone_name: str = DEFAULTS["patrol_timezone"],
) -> pd.DataFrame:
    """Coverage per unit (*by*: grid, worker or both) and period, zero rows included.

    A grid's denominator is its buildings; a worker's is the buildings of their grids
    (*worker_grids*), and only that worker's visits count for them. Visits are those whose
    first time falls (local date) in ``[start, end]``.

    Returns
    -------
    pandas.DataFrame
        *by* columns, ``period`` (first day), ``buildings_total``, ``buildings_visited``,
        ``households_total``, ``households_visited``, ``building_coverage``,
        ``household_coverage`` (0-1, NaN for an empty unit), ``first_visit``, ``last_visit``.
    """
    by = list(by)
    _check_table_args(buildings, by, period)
    b = buildings.assign(building_id=buildings["building_id"].astype(str), grid=buildings["grid"].astype(str))
    units = _units(b, by, worker_grids)
    periods = pd.DataFrame({"period": _periods(start, end, period)})
    grid = units.merge(periods, how="cross")
    # no visit at all comes as empty object columns: times stay datetimes so the table is still made
    v = visits.assign(building_id=visits["building_id"].astype(str), first=pd.to_datetime(visits["first"], utc=True),
                      last=pd.to_datetime(visits["last"], utc=True))
    day = v["first"].dt.tz_convert(timezone_name).dt.date
    v = v.loc[(day >= start) & (day <= end)]
    v = v.assign(period=_period_start(v["first"], period, timezone_name, start))
    keys = ["building_id", "period"] + (["worker"] if "worker" in by else [])
    hit = v.groupby(keys, as_index=False).agg(first_visit=("first", "min"), last_visit=("last", "max"))
    grid = grid.merge(hit, on=keys, how="left")
    grid["visited"] = grid["first_visit"].notna()
    grid["hh_visited"] = np.where(grid["visited"], grid["households"], 0)
    out = grid.groupby(by + ["period"], as_index=False, sort=True).agg(
        buildings_total=("building_id", "size"), buildings_visited=("visited", "sum"),
        households_total=("households", "sum"), households_visited=("hh_visited", "sum"),
        first_visit=("first_visit", "min"), last_visit=("last_visit", "max"))
    out["building_coverage"] = out["buildings_visited"] / out["buildings_total"].where(out["buildings_total"] > 0)
    out["household_coverage"] = out["households_visited"] / out["households_total"].where(out["households_total"] > 0)
    return out


def unvisited_buildings(
    visits: pd.DataFrame,
    buildings: pd.DataFrame,
    *,
    start: date,
    end: date,
    grids: Sequence[str] | None = None,
    worker: str | None = None,
    timezone_name: str = DEFAULTS["patrol_timezone"],
) -> pd.DataFrame:
    """Buildings (of *grids*, default all) nobody (or *worker*) visited in ``[start, end]``."""
    b = buildings.assign(building_id=buildings["building_id"].astype(str))
    if grids is not None:
        b = b.loc[b["grid"].astype(str).isin([str(g) for g in grids])]
    v = visits
    if worker is not None:
        v = v.loc[v["worker"].astype(str) == str(worker)]
    # no visit at all comes as an empty object column: parse so the empty case is not an error
    day = pd.to_datetime(v["first"], utc=True).dt.tz_convert(timezone_name).dt.date
    seen = set(v.loc[(day >= start) & (day <= end), "building_id"].astype(str))
    return b.loc[~b["building_id"].isin(seen)]
