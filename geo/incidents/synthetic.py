"""A seeded year of synthetic incidents (合成数据) with realistic timing, for the demo and the bench.

Cases are reported in daytime hours at random points inside the grids, accepted and
dispatched within hours, handled within their time limit mostly (some late, some reworked,
some extended, a few refused), and closed — except the most recent ones, still open.
Everything is vectorised (the bench makes a million cases).
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.incidents.categories import Category
from geo.incidents.workcalendar import WorkCalendar, due_times

__all__ = ["SyntheticRates", "random_points_in", "synthetic_cases"]

_TEXT = ("（合成数据）{}：现场发现问题，请尽快处置", "（合成数据）群众反映{}，影响通行", "（合成数据）巡查发现{}")


@dataclass(frozen=True)
class SyntheticRates:
    """Shares of the synthetic lifecycle (demo defaults give 结案率 ≈ 93 %, 按期 ≈ 75 %)."""

    rejected: float = 0.02
    stuck: float = 0.06
    late: float = 0.18
    rework: float = 0.08
    extension: float = 0.05
    evaluated: float = 0.6


def random_points_in(grids: gpd.GeoDataFrame, which: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One random point inside grid ``which[i]`` for each i (rejection sampling in each grid's bounds)."""
    geoms = np.asarray(grids.geometry.values)
    bounds = shapely.bounds(geoms)
    x, y = np.empty(which.size), np.empty(which.size)
    todo = np.arange(which.size)
    for _ in range(50):
        if todo.size == 0:
            break
        b = bounds[which[todo]]
        px = b[:, 0] + rng.random(todo.size) * (b[:, 2] - b[:, 0])
        py = b[:, 1] + rng.random(todo.size) * (b[:, 3] - b[:, 1])
        inside = shapely.contains_xy(geoms[which[todo]], px, py)
        x[todo[inside]], y[todo[inside]] = px[inside], py[inside]
        todo = todo[~inside]
    if todo.size:  # thin slivers: their representative point
        reps = shapely.point_on_surface(geoms[which[todo]])
        x[todo], y[todo] = shapely.get_x(reps), shapely.get_y(reps)
    return x, y


def _times(n: int, start: pd.Timestamp, days: int, tz: str, rng: np.random.Generator) -> pd.Series:
    day = rng.integers(0, days, n)
    hour = np.clip(rng.normal(13, 3.5, n), 6, 22)
    local = pd.Timestamp(start).tz_convert(tz).normalize() + pd.to_timedelta(day, unit="D") + pd.to_timedelta(hour, unit="h")
    return pd.Series(local).dt.tz_convert("UTC")


def _hours(s: pd.Series) -> np.ndarray:
    return s.dt.total_seconds().to_numpy() / 3600.0


def synthetic_cases(grids: gpd.GeoDataFrame, categories: tuple[Category, ...], calendar: WorkCalendar, *,
                    n: int, start: pd.Timestamp, now: pd.Timestamp, days: int = 365, seed: int = 42,
                    rates: SyntheticRates | None = None) -> pd.DataFrame:
    """*n* cases reported over *days* from *start* in *grids* (EPSG:4326 with ``key``, ``community_id``,
    ``plan_version_id``), with lifecycle columns as the service stores them, judged at *now*."""
    r, rng = rates or SyntheticRates(), np.random.default_rng(seed)
    which = rng.integers(0, len(grids), n)
    lon, lat = random_points_in(grids, which, rng)
    cat = np.array(categories, dtype=object)[rng.integers(0, len(categories), n)]
    reported = _times(n, start, days, calendar.timezone, rng)
    dispatched = reported + pd.to_timedelta(rng.uniform(0.3, 6.0, n), unit="h")
    value = np.array([c.limit_value for c in cat], dtype=float)
    unit = np.array([c.limit_unit for c in cat], dtype=object)
    due = due_times(dispatched, value, unit, calendar)
    extended = rng.random(n) < r.extension
    if extended.any():
        due[extended] = due_times(due[extended], rng.integers(1, 4, int(extended.sum())), "workdays", calendar)
    span = _hours(due - dispatched)
    late = rng.random(n) < r.late
    took = np.where(late, span * rng.uniform(1.05, 2.5, n), span * rng.uniform(0.1, 0.95, n))
    closed = dispatched + pd.to_timedelta(took, unit="h")
    rejected = rng.random(n) < r.rejected
    rework = np.where(rng.random(n) < r.rework, rng.integers(1, 3, n), 0)
    now = pd.Timestamp(now)
    stuck = rng.random(n) < r.stuck
    done = (closed <= now).to_numpy() & ~rejected & ~stuck
    state = np.where(done, np.where(rng.random(n) < r.evaluated, "evaluated", "closed"), "handling")
    state = np.where(~done & (dispatched > now).to_numpy(), "accepted", state)
    state = np.where(rejected, "rejected", state)
    meta = grids.iloc[which]
    return pd.DataFrame({
        "grid_index": which, "grid_code": meta["key"].to_numpy(), "community_id": meta["community_id"].to_numpy(),
        "plan_version_id": meta["plan_version_id"].astype(int).to_numpy(), "lon": lon, "lat": lat,
        "category": [c.code for c in cat], "description": [_TEXT[i % 3].format(c.minor_name) for i, c in enumerate(cat)],
        "limit_value": value, "limit_unit": unit, "reported_at": reported,
        "dispatched_at": dispatched.where(~rejected & (state != "accepted")),
        "due_at": due.where(~rejected & (state != "accepted")),
        "closed_at": closed.where(done), "rework_count": np.where(rejected, 0, rework),
        "extension_count": (extended & ~rejected).astype(int), "state": state,
        "rating": np.where(state == "evaluated", rng.integers(3, 6, n), 0),
        "locate_how": "inside",
    })
