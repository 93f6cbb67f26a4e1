"""Seeded synthetic patrol tracks for demos: a worker walking between the buildings of a grid.

Each day the worker leaves at a random time in the morning and walks in straight legs
between the doors (representative points) of a random share of the grid's buildings at
walking speed, one fix every ``step_s`` seconds, with GPS noise, one silent gap (phone in a
pocket) and a few outliers (multipath jumps) for cleaning to remove. Vectorised over legs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.crs import require_metric
from geo.errors import LayerError

__all__ = ["synthetic_tracks"]


def _one_day(pts: np.ndarray, rng: np.random.Generator, *, share: float, speed: float,
             step_s: float) -> np.ndarray:
    """(n, 2) fixes walking through a random subset of *pts*, nearest-first from a random start."""
    k = max(2, int(round(share * len(pts))))
    pick = pts[rng.permutation(len(pts))[:k]]
    order = np.argsort(np.hypot(*(pick - pick[0]).T) + rng.uniform(0, 30, k))
    stops = pick[order]
    legs = np.diff(stops, axis=0)
    n = np.maximum(1, np.ceil(np.hypot(*legs.T) / (speed * step_s)).astype(int))
    leg = np.repeat(np.arange(len(legs)), n)
    frac = (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)) / np.repeat(n, n)
    return np.vstack([stops[:-1][leg] + legs[leg] * frac[:, None], stops[-1:]])


def synthetic_tracks(
    buildings: gpd.GeoDataFrame,
    days: Sequence[date],
    *,
    seed: int = 42,
    share: float = 0.8,
    speed_mps: float = 1.2,
    step_s: float = 10.0,
    noise_m: float = 5.0,
    outliers_per_day: int = 2,
    timezone_name: str = "Asia/Shanghai",
) -> pd.DataFrame:
    """Fixes ``t`` (UTC), ``x``, ``y`` (metric, CRS of *buildings*) for each of *days*.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> b = gpd.GeoDataFrame(geometry=[box(i * 60, 0, i * 60 + 20, 20) for i in range(10)], crs=32650)
    >>> f = synthetic_tracks(b, [date(2024, 5, 6)], seed=1)
    >>> bool(f["t"].is_monotonic_increasing), len(f) > 50
    (True, True)
    """
    require_metric(buildings, func="synthetic_tracks")
    if len(buildings) < 2:
        raise LayerError("synthetic_tracks: needs at least 2 buildings to walk between; pass a grid's buildings")
    rng = np.random.default_rng(seed)
    rp = buildings.geometry.representative_point()
    pts = np.column_stack([rp.x, rp.y])
    zone = ZoneInfo(timezone_name)
    frames = []
    for day in days:
        xy = _one_day(pts, rng, share=share, speed=speed_mps, step_s=step_s)
        xy = xy + rng.normal(0.0, noise_m, xy.shape)
        start = datetime.combine(day, time(8, 30), zone) + timedelta(minutes=int(rng.integers(0, 90)))
        t = pd.Timestamp(start).tz_convert("UTC") + pd.to_timedelta(np.arange(len(xy)) * step_s, unit="s")
        keep = np.ones(len(xy), dtype=bool)
        if len(xy) > 200:  # one silent gap of about ten minutes
            g = int(rng.integers(50, len(xy) - 100))
            keep[g:g + int(600 / step_s)] = False
        jump = rng.choice(np.flatnonzero(keep)[1:-1], size=min(outliers_per_day, int(keep.sum()) - 2), replace=False)
        xy[jump] += rng.choice([-1.0, 1.0], (len(jump), 2)) * 800.0
        frames.append(pd.DataFrame({"t": t[keep], "x": xy[keep, 0], "y": xy[keep, 1]}))
    return pd.concat(frames, ignore_index=True)
