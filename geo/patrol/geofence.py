"""Geofence alerts (电子围栏) for workers on shift, as pure rules over cleaned fixes.

Three rules, thresholds from settings:

- ``outside``: consecutive fixes of a worker all outside every one of their grids (farther
  than ``tolerance_m``) spanning at least ``patrol_alert_outside_min`` minutes;
- ``stationary``: a stop (:func:`geo.patrol.stops.detect_stops`, radius
  ``patrol_dwell_radius_m``) lasting at least ``patrol_alert_stationary_min`` minutes;
- ``silent``: no fix for at least ``patrol_alert_silent_min`` minutes between two fixes of
  the same shift day, or from the last fix until *now* while the shift is on.

Fixes must be cleaned (``clean_fixes`` already dropped off-shift fixes) and carry metric
``x``/``y`` in the CRS of the grids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
import pandas as pd
import shapely

from geo.patrol.clean import epoch_s, parse_hhmm
from geo.patrol.stops import detect_stops
from geo.settings import DEFAULTS

__all__ = ["ALERT_KINDS", "geofence_alerts"]

#: Values of the ``kind`` column.
ALERT_KINDS: tuple[str, ...] = ("outside", "stationary", "silent")

_COLUMNS = ["worker", "kind", "start", "end", "minutes", "x", "y"]


def _outside(fixes: pd.DataFrame, areas: Mapping[str, object], tolerance_m: float, min_s: float) -> pd.DataFrame:
    inside = np.zeros(len(fixes), dtype=bool)
    workers = fixes["worker"].to_numpy()
    for worker, area in areas.items():  # one vectorised test per worker, not per fix
        rows = np.flatnonzero(workers == worker)
        if len(rows) and area is not None:
            zone = shapely.buffer(area, tolerance_m) if tolerance_m > 0 else area
            inside[rows] = shapely.contains_xy(zone, fixes["x"].to_numpy()[rows], fixes["y"].to_numpy()[rows])
    out = ~inside
    same = np.concatenate([[False], workers[1:] == workers[:-1]])
    start_run = out & ~(np.concatenate([[False], out[:-1]]) & same)
    run = np.where(out, np.cumsum(start_run) - 1, -1)
    if not out.any():
        return pd.DataFrame(columns=_COLUMNS)
    g = pd.DataFrame({"run": run[out], "worker": workers[out], "t": fixes["t"].to_numpy()[out],
                      "x": fixes["x"].to_numpy()[out], "y": fixes["y"].to_numpy()[out]}).groupby("run")
    agg = g.agg(worker=("worker", "first"), start=("t", "min"), end=("t", "max"), x=("x", "last"), y=("y", "last"))
    agg["minutes"] = (agg["end"] - agg["start"]).dt.total_seconds() / 60
    return agg.loc[agg["minutes"] * 60 >= min_s].assign(kind="outside")[_COLUMNS]


def _silent(fixes: pd.DataFrame, now: datetime, tz: str, shift: tuple[int, int], min_s: float) -> pd.DataFrame:
    t = fixes["t"]
    local = t.dt.tz_convert(tz)
    same = (fixes["worker"].to_numpy()[1:] == fixes["worker"].to_numpy()[:-1]) & (
        local.dt.date.to_numpy()[1:] == local.dt.date.to_numpy()[:-1])
    gap = np.diff(epoch_s(t))
    hit = np.flatnonzero(same & (gap >= min_s))
    rows = [pd.DataFrame({"worker": fixes["worker"].to_numpy()[hit], "start": t.to_numpy()[hit],
                          "end": t.to_numpy()[hit + 1], "x": fixes["x"].to_numpy()[hit],
                          "y": fixes["y"].to_numpy()[hit]})]
    now_ts = pd.Timestamp(now).tz_convert("UTC")
    now_local = now_ts.tz_convert(tz)
    minute = now_local.hour * 60 + now_local.minute
    if shift[0] <= minute < shift[1]:
        last = fixes.groupby("worker", sort=False).tail(1)
        last_local = last["t"].dt.tz_convert(tz)
        # the trailing gap counts from the later of the last fix and today's shift start
        shift_start = now_local.normalize() + pd.Timedelta(minutes=shift[0])
        since = last_local.where(last_local >= shift_start, shift_start)
        quiet = (now_local - since).dt.total_seconds() >= min_s
        rows.append(pd.DataFrame({"worker": last["worker"].to_numpy()[quiet], "start": since[quiet].dt.tz_convert("UTC"),
                                  "end": now_ts, "x": last["x"].to_numpy()[quiet], "y": last["y"].to_numpy()[quiet]}))
    out = pd.concat([r for r in rows if len(r)], ignore_index=True) if any(len(r) for r in rows) else pd.DataFrame(
        columns=["worker", "start", "end", "x", "y"])
    out["start"] = pd.to_datetime(out["start"], utc=True)
    out["end"] = pd.to_datetime(out["end"], utc=True)
    out["minutes"] = (out["end"] - out["start"]).dt.total_seconds() / 60
    return out.assign(kind="silent")[_COLUMNS]


def geofence_alerts(
    fixes: pd.DataFrame,
    worker_areas: Mapping[str, object],
    *,
    now: datetime,
    workers_on_duty: Sequence[str] = (),
    tolerance_m: float = DEFAULTS["grid_point_tolerance_m"],
    outside_min: float = DEFAULTS["patrol_alert_outside_min"],
    stationary_min: float = DEFAULTS["patrol_alert_stationary_min"],
    silent_min: float = DEFAULTS["patrol_alert_silent_min"],
    dwell_radius_m: float = DEFAULTS["patrol_dwell_radius_m"],
    shift_start: str = DEFAULTS["patrol_shift_start"],
    shift_end: str = DEFAULTS["patrol_shift_end"],
    timezone_name: str = DEFAULTS["patrol_timezone"],
) -> pd.DataFrame:
    """Alerts (``worker``, ``kind``, ``start``, ``end``, ``minutes``, ``x``, ``y``) of cleaned fixes.

    Parameters
    ----------
    fixes
        ``clean_fixes(...).fixes`` (sorted by worker and time, metric ``x``/``y``).
    worker_areas
        Worker -> the union of their grids (metric polygon, same CRS as the fixes).
    now
        The time alerts are computed at (tz-aware).
    workers_on_duty
        Workers expected on shift; one with no fix at all today is ``silent`` since the shift began.
    """
    shift = (parse_hhmm(shift_start, name="patrol_shift_start"), parse_hhmm(shift_end, name="patrol_shift_end"))
    parts = [_outside(fixes, worker_areas, tolerance_m, outside_min * 60) if len(fixes) else None]
    if len(fixes):
        stops, _ = detect_stops(fixes, radius_m=dwell_radius_m, min_duration_s=stationary_min * 60)
        if len(stops):
            parts.append(stops.assign(kind="stationary", minutes=stops["duration_s"] / 60)[_COLUMNS])
        parts.append(_silent(fixes, now, timezone_name, shift, silent_min * 60))
    missing = [w for w in workers_on_duty if w not in set(fixes["worker"])]
    now_local = pd.Timestamp(now).tz_convert(timezone_name)
    begin = now_local.normalize() + pd.Timedelta(minutes=shift[0])
    minute = now_local.hour * 60 + now_local.minute
    if missing and shift[0] <= minute < shift[1] and (now_local - begin).total_seconds() >= silent_min * 60:
        parts.append(pd.DataFrame({"worker": missing, "kind": "silent", "start": begin.tz_convert("UTC"),
                                   "end": pd.Timestamp(now).tz_convert("UTC"), "minutes": (now_local - begin).total_seconds() / 60,
                                   "x": np.nan, "y": np.nan})[_COLUMNS])
    parts = [p for p in parts if p is not None and len(p)]
    if not parts:
        return pd.DataFrame(columns=_COLUMNS)
    return pd.concat(parts, ignore_index=True).sort_values(["worker", "start", "kind"], ignore_index=True)
