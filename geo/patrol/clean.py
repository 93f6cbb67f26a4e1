"""Clean raw GPS fixes into patrol sessions, every dropped fix counted by reason.

A fix frame has the columns ``worker`` (str), ``t`` (tz-aware UTC datetimes), ``lon``,
``lat`` (WGS84 degrees) and optionally ``accuracy`` (m, radius as the phone reports it).
Steps, in order (each vectorised over all fixes):

1. ``missing``: no time or no coordinate; ``out_of_range``: |lat| > 90 or |lon| > 180;
   ``null_island``: the (0, 0) point phones send before a first fix.
2. Swapped lat/lon are *repaired* (counted in ``repaired["swapped"]``) when the fix lies
   outside China and the swapped pair inside it.
3. ``before_earliest`` (unset clocks: 1970; GPS week roll-over: 1999), ``future`` (more than
   the tolerance after the intake time), ``inaccurate`` (accuracy worse than the limit),
   ``off_shift`` (local time of day outside the shift).
4. Out-of-order fixes are sorted (counted in ``repaired["reordered"]``); ``duplicate``: the
   same worker and time again (the most accurate is kept).
5. ``speed_jump``: an implied speed above the limit is a jump; a run of at most
   ``patrol_outlier_max_fixes`` fixes between two jumps (or a jump and the track's end) is
   an outlier and is dropped. A longer run is kept: the worker really moved (a bus ride)
   and a new session starts there.
6. Sessions: a new session starts at a new worker, a gap longer than
   ``patrol_session_gap_s`` or a remaining jump.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from pyproj import CRS, Transformer

from geo.chinacoords import out_of_china
from geo.crs import local_metric_crs
from geo.errors import LayerError
from geo.settings import DEFAULTS

__all__ = ["DROP_REASONS", "CleanTracks", "clean_fixes", "metric_xy", "epoch_s", "local_times", "parse_hhmm"]

log = logging.getLogger(__name__)

#: Every reason a fix is dropped, in the order the checks run.
DROP_REASONS: tuple[str, ...] = (
    "missing", "out_of_range", "null_island", "before_earliest", "future",
    "inaccurate", "off_shift", "duplicate", "speed_jump",
)

_REQUIRED = ("worker", "t", "lon", "lat")


@dataclass(frozen=True)
class CleanTracks:
    """Result of :func:`clean_fixes`.

    ``fixes`` holds the kept fixes sorted by worker and time with metric ``x``/``y``
    (in ``crs``), ``session`` (int, unique over workers) and the input columns;
    ``dropped`` and ``repaired`` count fixes per reason (every reason present, zeros
    included); ``n_input`` is the number of fixes handed in.
    """

    fixes: pd.DataFrame
    crs: CRS
    n_input: int
    dropped: dict[str, int] = field(default_factory=dict)
    repaired: dict[str, int] = field(default_factory=dict)


def parse_hhmm(value: str, *, name: str) -> int:
    """Minutes after midnight of ``"HH:MM"``; raises naming the setting and the fix."""
    try:
        hh, mm = str(value).split(":")
        minutes = int(hh) * 60 + int(mm)
    except ValueError:
        raise LayerError(f"{name}: {value!r} is not a time of day; write HH:MM, e.g. 08:00") from None
    if not 0 <= minutes <= 24 * 60:
        raise LayerError(f"{name}: {value!r} is outside 00:00-24:00; write HH:MM, e.g. 08:00")
    return minutes


def local_times(t: pd.Series, tz: str) -> pd.Series:
    """*t* (tz-aware) converted to the time zone *tz*."""
    return t.dt.tz_convert(tz)


def epoch_s(t: pd.Series) -> np.ndarray:
    """Seconds since 1970 (float) of tz-aware datetimes."""
    naive = t.dt.tz_convert("UTC").dt.tz_localize(None)
    return naive.to_numpy().astype("datetime64[ns]").astype(np.int64) / 1e9


def metric_xy(lon: np.ndarray, lat: np.ndarray, crs: CRS) -> tuple[np.ndarray, np.ndarray]:
    """lon/lat (WGS84) projected to the metric *crs*."""
    tr = Transformer.from_crs(4326, crs, always_xy=True)
    x, y = tr.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    return np.asarray(x), np.asarray(y)


def _check_columns(fixes: pd.DataFrame) -> None:
    missing = [c for c in _REQUIRED if c not in fixes.columns]
    if missing:
        raise LayerError(f"clean_fixes: fixes lack column(s) {', '.join(missing)}; "
                         f"pass a frame with {', '.join(_REQUIRED)} (accuracy optional)")
    if not isinstance(fixes["t"].dtype, pd.DatetimeTZDtype):
        raise LayerError("clean_fixes: column t must hold tz-aware datetimes; "
                         "use pd.to_datetime(..., utc=True)")


def _swap_latlon(df: pd.DataFrame) -> int:
    lon, lat = df["lon"].to_numpy(float), df["lat"].to_numpy(float)
    swapped = out_of_china(lon, lat) & ~out_of_china(lat, lon)
    df.loc[swapped, ["lon", "lat"]] = np.column_stack([lat[swapped], lon[swapped]])
    return int(swapped.sum())


def _basic_masks(df: pd.DataFrame, *, earliest: pd.Timestamp, latest: pd.Timestamp,
                 accuracy_max_m: float, shift: tuple[int, int], tz: str) -> dict[str, np.ndarray]:
    lon, lat = df["lon"].to_numpy(float), df["lat"].to_numpy(float)
    t = df["t"]
    masks: dict[str, np.ndarray] = {
        "missing": (t.isna() | df["lon"].isna() | df["lat"].isna()).to_numpy(),
        "out_of_range": (np.abs(lat) > 90) | (np.abs(lon) > 180),
        "null_island": (np.abs(lon) < 1e-6) & (np.abs(lat) < 1e-6),
        "before_earliest": (t < earliest).to_numpy(),
        "future": (t > latest).to_numpy(),
    }
    acc = df["accuracy"].to_numpy(float) if "accuracy" in df.columns else np.full(len(df), np.nan)
    masks["inaccurate"] = acc > accuracy_max_m
    lt = local_times(t, tz)
    minute = (lt.dt.hour * 60 + lt.dt.minute).to_numpy(dtype=float, na_value=-1)
    masks["off_shift"] = (minute < shift[0]) | (minute >= shift[1])
    return masks


def _first_reason(masks: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Index into DROP_REASONS of the first failed check per fix (-1 = kept)."""
    reason = np.full(n, -1, dtype=np.int16)
    for i, name in enumerate(DROP_REASONS):
        if name in masks:
            m = np.asarray(masks[name], dtype=bool) & (reason < 0)
            reason[m] = i
    return reason


def _sort_dedupe(df: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """Sorted by worker and time (stable); duplicates (same worker and time) dropped."""
    order = np.lexsort((epoch_s(df["t"]), df["worker"].to_numpy()))
    reordered = int((order != np.arange(len(order))).sum())
    df = df.iloc[order]
    if "accuracy" in df.columns:
        best = df.assign(_acc=df["accuracy"].fillna(np.inf)).sort_values(
            ["worker", "t", "_acc"], kind="stable").drop(columns="_acc")
    else:
        best = df
    dup = best.duplicated(["worker", "t"], keep="first")
    kept = best.loc[~dup].sort_values(["worker", "t"], kind="stable")
    return kept, reordered, int(dup.sum())


def _steps(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance (m), seconds and same-worker flag from each fix to the next."""
    x, y = df["x"].to_numpy(), df["y"].to_numpy()
    t = epoch_s(df["t"])
    w = df["worker"].to_numpy()
    dist = np.hypot(np.diff(x), np.diff(y))
    dt = np.diff(t)
    same = w[1:] == w[:-1]
    return dist, dt, same


def _jumps(df: pd.DataFrame, max_speed_mps: float) -> np.ndarray:
    """Per step to the next fix: is it an implied-speed jump within one worker."""
    dist, dt, same = _steps(df)
    speed = dist / np.maximum(dt, 1e-3)
    return same & (speed > max_speed_mps)


def _bypass_ok(df: pd.DataFrame, before: np.ndarray, after: np.ndarray, max_speed_mps: float) -> np.ndarray:
    """Is the speed from fix *before* straight to fix *after* (skipping a run) plausible."""
    x, y, t = df["x"].to_numpy(), df["y"].to_numpy(), epoch_s(df["t"])
    dist = np.hypot(x[after] - x[before], y[after] - y[before])
    return dist / np.maximum(t[after] - t[before], 1e-3) <= max_speed_mps


def _outlier_runs(df: pd.DataFrame, *, max_speed_mps: float, max_fixes: int) -> np.ndarray:
    """Mask of fixes in outlier runs: short runs the track jumps to and back from.

    Inside a track a short run between two jumps is an outlier when skipping it leaves a
    plausible speed (a spike); sustained fast travel (a car) is not, it only splits sessions.
    At the start or end of a worker's track a short run behind a jump is an outlier when
    the run on the other side of the jump is long.
    """
    n = len(df)
    if n < 2:
        return np.zeros(n, dtype=bool)
    jump = _jumps(df, max_speed_mps)
    _, _, same = _steps(df)
    brk = np.concatenate([[True], jump | ~same])  # a run starts here
    run = np.cumsum(brk) - 1
    size = np.bincount(run)
    starts = np.flatnonzero(brk)
    ends = np.append(starts[1:], n) - 1
    jump_before = np.zeros(len(starts), dtype=bool)
    jump_before[1:] = jump[starts[1:] - 1]
    jump_after = np.zeros(len(starts), dtype=bool)
    jump_after[:-1] = jump[ends[:-1]]
    inner = np.flatnonzero(jump_before & jump_after)
    spike = np.zeros(len(starts), dtype=bool)
    spike[inner] = _bypass_ok(df, starts[inner] - 1, ends[inner] + 1, max_speed_mps)
    size_next = np.append(size[1:], 0)
    size_prev = np.concatenate([[0], size[:-1]])
    edge = (jump_after & ~jump_before & (size_next > max_fixes)) | (jump_before & ~jump_after & (size_prev > max_fixes))
    outlier = (size <= max_fixes) & (spike | edge)
    return outlier[run]


def _drop_outliers(df: pd.DataFrame, *, max_speed_mps: float, max_fixes: int) -> tuple[pd.DataFrame, int]:
    """Short runs between jumps removed, repeated until none is left (a few rounds)."""
    total = 0
    for _ in range(8):
        mask = _outlier_runs(df, max_speed_mps=max_speed_mps, max_fixes=max_fixes)
        # Never drop a worker's whole track: keep runs when every run of the worker is short.
        worker_all = pd.Series(mask).groupby(df["worker"].to_numpy()).transform("all").to_numpy()
        mask &= ~worker_all
        if not mask.any():
            break
        total += int(mask.sum())
        df = df.loc[~mask]
    return df, total


def _sessions(df: pd.DataFrame, *, gap_s: float, max_speed_mps: float) -> np.ndarray:
    if len(df) == 0:
        return np.zeros(0, dtype=np.int64)
    _, dt, same = _steps(df)
    brk = ~same | (dt > gap_s) | _jumps(df, max_speed_mps)
    return np.concatenate([[0], np.cumsum(brk)]).astype(np.int64)


def clean_fixes(
    fixes: pd.DataFrame,
    *,
    now: datetime | None = None,
    crs: CRS | str | None = None,
    accuracy_max_m: float = DEFAULTS["patrol_accuracy_max_m"],
    max_speed_kmh: float = DEFAULTS["patrol_max_speed_kmh"],
    outlier_max_fixes: int = DEFAULTS["patrol_outlier_max_fixes"],
    session_gap_s: float = DEFAULTS["patrol_session_gap_s"],
    shift_start: str = DEFAULTS["patrol_shift_start"],
    shift_end: str = DEFAULTS["patrol_shift_end"],
    timezone_name: str = DEFAULTS["patrol_timezone"],
    earliest: str = DEFAULTS["patrol_earliest_time"],
    future_tolerance_s: float = DEFAULTS["patrol_future_tolerance_s"],
) -> CleanTracks:
    """Cleaned patrol fixes split into sessions; every dropped fix counted by reason.

    Parameters
    ----------
    fixes
        Columns ``worker``, ``t`` (tz-aware), ``lon``, ``lat`` (WGS84), optional ``accuracy`` (m).
    now
        Intake time for the ``future`` check (default: the current UTC time).
    crs
        Metric CRS for ``x``/``y``; default the UTM zone of the fixes.

    Returns
    -------
    CleanTracks
        Kept fixes with ``x``, ``y``, ``session``; counts in ``dropped`` and ``repaired``.

    Examples
    --------
    >>> t = pd.to_datetime(["2024-05-06 01:00:00", "2024-05-06 01:00:10"], utc=True)
    >>> f = pd.DataFrame({"worker": "w", "t": t, "lon": [116.3, 0.0], "lat": [39.9, 0.0]})
    >>> r = clean_fixes(f)
    >>> len(r.fixes), r.dropped["null_island"]
    (1, 1)
    """
    _check_columns(fixes)
    df = fixes.copy()
    df["worker"] = df["worker"].astype(str)
    df["lon"] = pd.to_numeric(df["lon"], errors="coerce")
    df["lat"] = pd.to_numeric(df["lat"], errors="coerce")
    repaired = {"swapped": _swap_latlon(df), "reordered": 0}
    now_ts = pd.Timestamp(now or datetime.now(UTC))
    now_ts = now_ts.tz_localize("UTC") if now_ts.tzinfo is None else now_ts
    shift = (parse_hhmm(shift_start, name="patrol_shift_start"), parse_hhmm(shift_end, name="patrol_shift_end"))
    masks = _basic_masks(
        df, earliest=pd.Timestamp(earliest, tz="UTC"), accuracy_max_m=accuracy_max_m,
        latest=now_ts + pd.Timedelta(seconds=future_tolerance_s), shift=shift, tz=timezone_name)
    reason = _first_reason(masks, len(df))
    dropped = {name: int((reason == i).sum()) for i, name in enumerate(DROP_REASONS)}
    df = df.loc[reason < 0]
    df, repaired["reordered"], dropped["duplicate"] = _sort_dedupe(df)
    crs_obj = CRS.from_user_input(crs) if crs is not None else _metric_crs(df)
    df["x"], df["y"] = metric_xy(df["lon"].to_numpy(), df["lat"].to_numpy(), crs_obj)
    vmax = max_speed_kmh / 3.6
    df, dropped["speed_jump"] = _drop_outliers(df, max_speed_mps=vmax, max_fixes=outlier_max_fixes)
    df = df.reset_index(drop=True)
    df["session"] = _sessions(df, gap_s=session_gap_s, max_speed_mps=vmax)
    log.info("clean_fixes: %d fixes in, %d kept in %d sessions; dropped %s; repaired %s",
             len(fixes), len(df), df["session"].nunique(), dropped, repaired)
    return CleanTracks(df, crs_obj, len(fixes), dropped, repaired)


def _metric_crs(df: pd.DataFrame) -> CRS:
    if len(df) == 0:
        return CRS.from_epsg(3857)
    bounds = (float(df["lon"].min()), float(df["lat"].min()), float(df["lon"].max()), float(df["lat"].max()))
    return local_metric_crs(bounds)
