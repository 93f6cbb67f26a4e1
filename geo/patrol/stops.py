"""Stops (dwells): where a worker stayed put, from cleaned fixes, vectorised.

A fix belongs to a stop when some window of ``patrol_dwell_min_s`` seconds around it, within
its session, keeps every fix inside a box whose diagonal is at most ``patrol_dwell_radius_m``
(the box diagonal bounds the set's diameter, so this is slightly stricter than movingpandas'
diameter rule). Consecutive such fixes form one stop; stops shorter than the minimum
duration are discarded. Time windows come from pandas' time-based rolling aggregates over a
"virtual clock" on which sessions are spaced apart, so one pass covers every session.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from geo.errors import LayerError
from geo.patrol.clean import epoch_s
from geo.settings import DEFAULTS

__all__ = ["detect_stops"]

_STOP_COLUMNS = ["stop", "worker", "session", "start", "end", "duration_s", "x", "y", "n_fixes"]


def _virtual_seconds(t: np.ndarray, session: np.ndarray, spacing: float) -> np.ndarray:
    """Monotone clock: real steps inside sessions, *spacing* between sessions."""
    if len(t) == 0:
        return t
    step = np.diff(t)
    step[session[1:] != session[:-1]] = spacing
    return np.concatenate([[0.0], np.cumsum(step)])


def _window_marks(df: pd.DataFrame, vt: np.ndarray, *, radius_m: float, min_s: float) -> np.ndarray:
    """Fixes inside some compact window of *min_s* seconds (closed on both ends)."""
    idx = pd.to_datetime(np.round(vt * 1e3).astype(np.int64), unit="ms")
    frame = pd.DataFrame({"x": df["x"].to_numpy(), "y": df["y"].to_numpy()}, index=idx)
    roll = frame.rolling(pd.Timedelta(seconds=min_s), closed="both")
    hi, lo = roll.max(), roll.min()
    count = roll.count()["x"].to_numpy().astype(np.int64)
    diag = np.hypot((hi["x"] - lo["x"]).to_numpy(), (hi["y"] - lo["y"]).to_numpy())
    ok = diag <= radius_m
    n = len(df)
    ends = np.flatnonzero(ok)
    delta = np.zeros(n + 1, dtype=np.int64)
    np.add.at(delta, ends - count[ends] + 1, 1)
    np.add.at(delta, ends + 1, -1)
    return np.cumsum(delta[:-1]) > 0


def detect_stops(
    fixes: pd.DataFrame,
    *,
    radius_m: float = DEFAULTS["patrol_dwell_radius_m"],
    min_duration_s: float = DEFAULTS["patrol_dwell_min_s"],
) -> tuple[pd.DataFrame, np.ndarray]:
    """Stops of cleaned fixes and, per fix, the stop it belongs to (-1 = moving).

    Parameters
    ----------
    fixes
        Cleaned fixes (``clean_fixes(...).fixes``): ``worker``, ``t``, ``x``, ``y``, ``session``,
        sorted by worker and time.

    Returns
    -------
    (stops, stop_of_fix)
        ``stops`` has one row per stop: ``stop``, ``worker``, ``session``, ``start``, ``end``,
        ``duration_s``, ``x``, ``y`` (mean position, metric) and ``n_fixes``.
    """
    for col in ("worker", "t", "x", "y", "session"):
        if col not in fixes.columns:
            raise LayerError(f"detect_stops: fixes lack column {col!r}; pass clean_fixes(...).fixes")
    if min_duration_s <= 0 or radius_m <= 0:
        raise LayerError("detect_stops: radius_m and min_duration_s must be positive; "
                         "check patrol_dwell_radius_m and patrol_dwell_min_s")
    n = len(fixes)
    if n == 0:
        return pd.DataFrame(columns=_STOP_COLUMNS), np.zeros(0, dtype=np.int64)
    t = epoch_s(fixes["t"])
    session = fixes["session"].to_numpy()
    vt = _virtual_seconds(t, session, spacing=2.0 * min_duration_s + 1.0)
    marked = _window_marks(fixes, vt, radius_m=radius_m, min_s=min_duration_s)
    new_run = marked & np.concatenate([[True], ~marked[:-1] | (session[1:] != session[:-1])])
    run = np.where(marked, np.cumsum(new_run) - 1, -1)
    if not marked.any():
        return pd.DataFrame(columns=_STOP_COLUMNS), np.full(n, -1, dtype=np.int64)
    g = pd.DataFrame({"run": run[marked], "t": t[marked], "x": fixes["x"].to_numpy()[marked],
                      "y": fixes["y"].to_numpy()[marked], "worker": fixes["worker"].to_numpy()[marked],
                      "session": session[marked]}).groupby("run")
    agg = g.agg(worker=("worker", "first"), session=("session", "first"), t0=("t", "min"),
                t1=("t", "max"), x=("x", "mean"), y=("y", "mean"), n_fixes=("t", "size"))
    agg["duration_s"] = agg["t1"] - agg["t0"]
    keep = agg["duration_s"] >= min_duration_s
    agg = agg.loc[keep]
    new_id = pd.Series(-1, index=np.arange(int(run.max()) + 1), dtype=np.int64)
    new_id.loc[agg.index] = np.arange(len(agg))
    stop_of_fix = np.where(run >= 0, new_id.to_numpy()[np.maximum(run, 0)], -1)
    stops = pd.DataFrame({
        "stop": np.arange(len(agg)), "worker": agg["worker"].to_numpy(),
        "session": agg["session"].to_numpy(),
        "start": pd.to_datetime(agg["t0"].to_numpy(), unit="s", utc=True),
        "end": pd.to_datetime(agg["t1"].to_numpy(), unit="s", utc=True),
        "duration_s": agg["duration_s"].to_numpy(), "x": agg["x"].to_numpy(),
        "y": agg["y"].to_numpy(), "n_fixes": agg["n_fixes"].to_numpy()})
    return stops, stop_of_fix
