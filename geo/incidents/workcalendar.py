"""Working-day calendar (holidays and 调休 make-up working days) and SLA due times.

The SLA clock starts at dispatch (DOMAIN.md §6). A limit in ``hours`` is clock time; a limit
in ``workdays`` moves the dispatch time forward that many working days, keeping the time of
day; a dispatch on a rest day starts counting at 00:00 of the next working day. Days are
judged in the calendar's local time zone (setting ``incident_timezone``). Everything is
vectorised over arrays of dispatch times (the bench computes a million due times).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from geo.errors import LayerError
from geo.register.sheets import read_sheet_rows
from geo.settings import DEFAULTS

__all__ = ["WorkCalendar", "calendar_from_frame", "read_calendar", "due_times", "due_time"]

_REST = {"休", "假", "holiday", "rest", "休息", "节假日"}
_WORK = {"班", "workday", "work", "上班", "调休上班"}


@dataclass(frozen=True)
class WorkCalendar:
    """Weekends (Sat/Sun) are rest days except *workdays* (调休); *holidays* are rest days."""

    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)
    timezone: str = DEFAULTS["incident_timezone"]

    def is_working(self, day: date) -> bool:
        """Whether *day* is a working day."""
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def working_days(self, first: date, last: date) -> np.ndarray:
        """Working days from *first* to *last* inclusive, as ``datetime64[D]``."""
        days = np.arange(np.datetime64(first, "D"), np.datetime64(last, "D") + 1)
        weekday = (days.astype("int64") + 3) % 7  # 1970-01-01 was a Thursday (3)
        working = weekday < 5
        working &= ~np.isin(days, np.array(sorted(self.holidays), dtype="datetime64[D]"))
        working |= np.isin(days, np.array(sorted(self.workdays), dtype="datetime64[D]"))
        return days[working]


def calendar_from_frame(frame: pd.DataFrame, *, label: str = "calendar",
                        timezone: str = DEFAULTS["incident_timezone"]) -> WorkCalendar:
    """Calendar from a table of ``日期`` and ``类型`` (休 = holiday, 班 = make-up working day)."""
    frame = frame.rename(columns={"日期": "date", "类型": "kind"})
    if not {"date", "kind"} <= set(frame.columns):
        raise LayerError(f"{label}: calendar needs columns 日期 and 类型 (休/班); got {', '.join(map(str, frame.columns))}")
    days = pd.to_datetime(frame["date"].astype(str).str.strip(), errors="coerce", format="mixed")
    bad = days.isna()
    rows = frame["_row"].astype(int).to_numpy() if "_row" in frame.columns else np.arange(len(frame)) + 2
    if bad.any():
        at = int(np.flatnonzero(bad.to_numpy())[0])
        row = int(rows[at])
        raise LayerError(f"{label} row {row}: date {frame['date'].iloc[at]!r} unreadable; write it as 2026-10-01")
    kinds = frame["kind"].astype(str).str.strip().str.lower()
    unknown = ~kinds.isin(_REST | _WORK)
    if unknown.any():
        at = int(np.flatnonzero(unknown.to_numpy())[0])
        row = int(rows[at])
        raise LayerError(f"{label} row {row}: day type {frame['kind'].iloc[at]!r} unknown; use 休 (holiday) or 班 (make-up working day)")
    rest = frozenset(d.date() for d in days[kinds.isin(_REST)])
    work = frozenset(d.date() for d in days[kinds.isin(_WORK)])
    both = rest & work
    if both:
        raise LayerError(f"{label}: {min(both)} is both 休 and 班; keep one row per date")
    return WorkCalendar(rest, work, timezone)


def read_calendar(path: str | Path, *, timezone: str = DEFAULTS["incident_timezone"]) -> WorkCalendar:
    """Read a holiday calendar (CSV/XLSX with ``日期``, ``类型``: 休 or 班)."""
    return calendar_from_frame(read_sheet_rows(path, known={"日期", "类型", "date", "kind"}), label=str(path),
                               timezone=timezone)


def _local(times: pd.Series, tz: str) -> pd.Series:
    if times.dt.tz is None:
        raise LayerError("due_times: dispatch times have no time zone; pass tz-aware datetimes (e.g. UTC)")
    return times.dt.tz_convert(tz)


def _add_workdays(local: pd.Series, days: np.ndarray, calendar: WorkCalendar) -> pd.Series:
    day = local.dt.tz_localize(None).dt.floor("D")
    tod = local.dt.tz_localize(None) - day
    d64 = day.to_numpy().astype("datetime64[D]")
    span = int(np.nanmax(days)) if len(days) else 0
    first, last = d64.min(), d64.max() + np.timedelta64(2 * span + 60, "D")
    working = calendar.working_days(first.astype(date), last.astype(date))
    idx = np.searchsorted(working, d64)
    on_working = working[np.minimum(idx, len(working) - 1)] == d64
    tod = tod.where(on_working, pd.Timedelta(0))
    target = working[idx + days.astype("int64")]
    naive = pd.Series(target.astype("datetime64[ns]"), index=local.index) + tod
    return naive.dt.tz_localize(calendar.timezone, ambiguous="NaT", nonexistent="shift_forward")


def due_times(dispatched: pd.Series, limit_value: float | np.ndarray | pd.Series, limit_unit: str | np.ndarray | pd.Series,
              calendar: WorkCalendar) -> pd.Series:
    """Due time (UTC) of each case from its dispatch time and time limit.

    Parameters
    ----------
    dispatched : Series of tz-aware datetimes (NaT = not dispatched: due NaT)
    limit_value : number or array of numbers (hours, or whole working days)
    limit_unit : ``"hours"`` / ``"workdays"`` or an array of them
    calendar : the working-day calendar

    Examples
    --------
    >>> cal = WorkCalendar(holidays=frozenset({date(2026, 10, 1)}))
    >>> t = pd.Series(pd.to_datetime(["2026-09-30 10:00"]).tz_localize("Asia/Shanghai"))
    >>> str(due_times(t, 1, "workdays", cal)[0].tz_convert("Asia/Shanghai"))
    '2026-10-02 10:00:00+08:00'
    """
    n = len(dispatched)
    values = np.broadcast_to(np.asarray(limit_value, dtype=float), (n,))
    units = np.broadcast_to(np.asarray(limit_unit, dtype=object), (n,))
    bad = ~np.isin(units, ["hours", "workdays"])
    if bad.any():
        raise LayerError(f"due_times: time-limit unit {units[bad][0]!r} unknown; use 'hours' or 'workdays'")
    times = pd.to_datetime(dispatched)
    out = pd.Series(pd.NaT, index=dispatched.index, dtype="datetime64[ns, UTC]")
    if n == 0:
        return out
    utc = _local(times, "UTC")
    hours = (units == "hours") & utc.notna().to_numpy()
    out[hours] = utc[hours] + pd.to_timedelta(values[hours], unit="h")
    work = (units == "workdays") & utc.notna().to_numpy()
    if work.any():
        if (values[work] != np.round(values[work])).any():
            raise LayerError("due_times: a working-day limit must be a whole number of days; use hours for parts of a day")
        local = _local(utc[work], calendar.timezone)
        out[work] = _add_workdays(local, values[work], calendar).dt.tz_convert("UTC")
    return out


def due_time(dispatched: datetime, limit_value: float, limit_unit: str, calendar: WorkCalendar) -> datetime:
    """Due time (UTC) of one case; see :func:`due_times`."""
    return due_times(pd.Series([pd.Timestamp(dispatched)]), limit_value, limit_unit, calendar)[0].to_pydatetime()


