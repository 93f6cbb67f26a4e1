"""Incident metrics by the DOMAIN.md §6 definitions, vectorised over a table of cases.

The denominator of every rate is the number of cases **due in the period** (``due_at`` in
``[start, end)``): 结案率 = closed / due, 按期结案率 = closed by the due time / due, 返工率 =
reworked at least once / due, 延期率 = extended at least once / due. Mean handling time is
the mean of ``closed_at - dispatched_at`` over the closed due cases, in hours. Closures
count when they happened by *as_of* (default: all known closures). Rates are percentages
rounded to two decimals; a group with no due case gets NaN rates, not 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from geo.errors import LayerError

__all__ = ["METRIC_LABELS", "COUNT_COLUMNS", "UNLOCATED", "TimeLike", "incident_metrics", "rates_from_counts"]

#: Output column -> Chinese label.
METRIC_LABELS: dict[str, str] = {
    "due": "应结案件数", "closed": "结案数", "on_time": "按期结案数", "reworked": "返工案件数",
    "extended": "延期案件数", "closure_rate": "结案率(%)", "on_time_rate": "按期结案率(%)",
    "rework_rate": "返工率(%)", "extension_rate": "延期率(%)", "mean_handling_hours": "平均处置时长(小时)",
}
_NEEDED = ("dispatched_at", "due_at", "closed_at", "rework_count", "extension_count")
#: The counts every rate is computed from (see :func:`rates_from_counts`).
COUNT_COLUMNS: tuple[str, ...] = ("due", "closed", "on_time", "reworked", "extended")
#: Group label of cases with no value in the grouping column (e.g. not located to a grid).
UNLOCATED = "（未定位）"


#: A time as callers give it: datetime, date, ISO text or pandas Timestamp.
TimeLike: TypeAlias = datetime | date | str | pd.Timestamp

def _utc(values: pd.Series) -> pd.Series:
    s = pd.to_datetime(values, utc=True)
    return s


def _flags(cases: pd.DataFrame, start: Any, end: Any, as_of: Any) -> pd.DataFrame:
    due = _utc(cases["due_at"])
    closed_at = _utc(cases["closed_at"])
    dispatched = _utc(cases["dispatched_at"])
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    if lo.tzinfo is None or hi.tzinfo is None:
        raise LayerError("incident_metrics: start and end need a time zone; e.g. pd.Timestamp('2026-01-01', tz='Asia/Shanghai')")
    in_period = (due >= lo) & (due < hi)
    closed = closed_at.notna()
    if as_of is not None:
        closed &= closed_at <= pd.Timestamp(as_of)
    handling = (closed_at - dispatched).dt.total_seconds() / 3600.0
    return pd.DataFrame({
        "due": in_period,
        "closed": in_period & closed,
        "on_time": in_period & closed & (closed_at <= due),
        "reworked": in_period & (cases["rework_count"].fillna(0).to_numpy() > 0),
        "extended": in_period & (cases["extension_count"].fillna(0).to_numpy() > 0),
        "handling_hours": handling.where(in_period & closed),
    }, index=cases.index)


def _rate(num: pd.Series, den: pd.Series) -> pd.Series:
    with np.errstate(divide="ignore", invalid="ignore"):
        return (100.0 * num / den.where(den > 0)).round(2)


def incident_metrics(cases: pd.DataFrame, *, start: TimeLike, end: TimeLike, by: str | Sequence[str] | None = None,
                     as_of: TimeLike | None = None) -> pd.DataFrame:
    """结案率, 按期结案率, 返工率, 延期率 and mean handling time of the cases due in ``[start, end)``.

    Parameters
    ----------
    cases : DataFrame with ``dispatched_at``, ``due_at``, ``closed_at`` (tz-aware or UTC;
        NaT when not closed), ``rework_count``, ``extension_count`` and the *by* columns
    start, end : tz-aware period bounds (end exclusive)
    by : column(s) to group by (e.g. ``"grid_code"``, ``"community_id"``, ``"assignee"``,
        ``"category"``); ``None`` = one row ``"全部"``
    as_of : count closures up to this time only (default: every closure recorded)

    Returns
    -------
    DataFrame indexed by the groups with the columns of :data:`METRIC_LABELS`; groups with
    cases but none due in the period are left out.

    Examples
    --------
    >>> t = pd.Timestamp("2026-03-02", tz="UTC")
    >>> df = pd.DataFrame({"dispatched_at": [t] * 4, "due_at": [t + pd.Timedelta(days=2)] * 4,
    ...     "closed_at": [t + pd.Timedelta(days=1), t + pd.Timedelta(days=3), t + pd.Timedelta(days=1), pd.NaT],
    ...     "rework_count": [0, 1, 0, 0], "extension_count": [0, 0, 0, 0]})
    >>> m = incident_metrics(df, start=t, end=t + pd.Timedelta(days=30))
    >>> m.loc["全部", ["due", "closed", "on_time"]].astype(int).tolist(), m.loc["全部", "on_time_rate"]
    ([4, 3, 2], 50.0)
    """
    missing = [c for c in _NEEDED if c not in cases.columns]
    keys = [by] if isinstance(by, str) else list(by or [])
    missing += [c for c in keys if c not in cases.columns]
    if missing:
        raise LayerError(f"incident_metrics: cases lack column(s) {', '.join(missing)}; "
                         f"pass a table with {', '.join(_NEEDED)} and the grouping columns")
    flags = _flags(cases, start, end, as_of)
    counts = list(COUNT_COLUMNS)
    if keys:
        flags[keys] = cases[keys].fillna(UNLOCATED)
        grouped = flags[flags["due"]].groupby(keys, sort=True)
        out = grouped[counts].sum().astype("int64")
        out["mean_handling_hours"] = grouped["handling_hours"].mean()
    else:
        sub = flags[flags["due"]]
        out = pd.DataFrame([sub[counts].sum().astype("int64")], index=pd.Index(["全部"], name="scope"))
        out["mean_handling_hours"] = sub["handling_hours"].mean()
    return rates_from_counts(out)


def rates_from_counts(counts: pd.DataFrame) -> pd.DataFrame:
    """The metric table (columns of :data:`METRIC_LABELS`) from per-group counts and mean handling time.

    *counts* holds :data:`COUNT_COLUMNS` and ``mean_handling_hours`` per group, however they were
    counted (pandas here, SQL aggregation in the service): the rates are derived in one place.
    """
    out = counts.copy()
    out[list(COUNT_COLUMNS)] = out[list(COUNT_COLUMNS)].astype("int64")
    out["closure_rate"] = _rate(out["closed"], out["due"])
    out["on_time_rate"] = _rate(out["on_time"], out["due"])
    out["rework_rate"] = _rate(out["reworked"], out["due"])
    out["extension_rate"] = _rate(out["extended"], out["due"])
    out["mean_handling_hours"] = out["mean_handling_hours"].astype(float).round(2)
    return out[list(METRIC_LABELS)]
