"""Geofence rules on scripted tracks: outside the grids, stationary, silent."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from geo.patrol.geofence import geofence_alerts

T0 = pd.Timestamp("2024-05-06 01:00:00", tz="UTC")  # 09:00 Beijing
AREA = {"w": box(0, 0, 500, 500)}


def track(legs: list[tuple[float, float, float]], *, step_s: int = 30, t0: pd.Timestamp = T0) -> pd.DataFrame:
    """Fixes every *step_s* along legs (minutes, x-speed m/s, y) starting at (100, 100)."""
    rows, x, t = [], 100.0, t0
    for minutes, vx, y in legs:
        for _ in range(int(minutes * 60 / step_s)):
            rows.append(("w", t, x, y, 0))
            x += vx * step_s
            t += pd.Timedelta(seconds=step_s)
    return pd.DataFrame(rows, columns=["worker", "t", "x", "y", "session"])


def alerts(fixes: pd.DataFrame, now: pd.Timestamp | None = None, **kw) -> pd.DataFrame:
    now = now if now is not None else fixes["t"].iloc[-1] + pd.Timedelta(seconds=30)
    return geofence_alerts(fixes, AREA, now=now.to_pydatetime(), **kw)


def kinds(a: pd.DataFrame) -> list[str]:
    return a["kind"].tolist()


def test_patrolling_inside_raises_nothing() -> None:
    zigzag = track([(10, 0.5, 100), (10, -0.5, 200), (10, 0.5, 300), (10, -0.5, 400)])
    assert alerts(zigzag).empty


@pytest.mark.parametrize(("minutes_out", "expected"), [(20, ["outside"]), (10, [])])
def test_outside_the_grid(minutes_out: int, expected: list[str]) -> None:
    f = track([(5, 0.5, 250), (minutes_out, 0.0, 250), (5, 0.5, 250)])
    out = (f["t"] >= T0 + pd.Timedelta(minutes=5)) & (f["t"] < T0 + pd.Timedelta(minutes=5 + minutes_out))
    f.loc[out, "x"] = 800 + np.arange(out.sum()) * 1.0  # walking outside
    a = alerts(f)
    assert kinds(a) == expected
    if expected:
        assert a["minutes"].iloc[0] == pytest.approx(minutes_out - 0.5)
        assert a["start"].iloc[0] == T0 + pd.Timedelta(minutes=5)


def test_within_tolerance_of_the_grid_is_inside() -> None:
    f = track([(30, 0.0, 503)])
    f["x"] = 100 + np.arange(len(f)) * 0.5
    assert "outside" not in kinds(alerts(f, tolerance_m=5.0))
    assert "outside" in kinds(alerts(f, tolerance_m=1.0))


@pytest.mark.parametrize(("minutes_still", "expected"), [(40, ["stationary"]), (20, [])])
def test_stationary(minutes_still: int, expected: list[str]) -> None:
    f = track([(5, 1.0, 250), (minutes_still, 0.0, 250), (5, 1.0, 250)])
    a = alerts(f)
    assert kinds(a) == expected
    if expected:
        assert a["minutes"].iloc[0] == pytest.approx(minutes_still, abs=1.0)


@pytest.mark.parametrize(("gap_min", "expected"), [(25, ["silent"]), (15, [])])
def test_silent_gap(gap_min: int, expected: list[str]) -> None:
    a_part = track([(10, 0.5, 250)])
    b_part = track([(10, 0.5, 300)], t0=a_part["t"].iloc[-1] + pd.Timedelta(minutes=gap_min))
    a = alerts(pd.concat([a_part, b_part], ignore_index=True))
    assert kinds(a) == expected
    if expected:
        assert a["minutes"].iloc[0] == pytest.approx(gap_min)


def test_silent_since_last_fix_only_while_on_shift() -> None:
    f = track([(10, 0.5, 250)])
    later = f["t"].iloc[-1] + pd.Timedelta(minutes=30)
    a = alerts(f, now=later)
    assert kinds(a) == ["silent"] and a["minutes"].iloc[0] == pytest.approx(30)
    night = pd.Timestamp("2024-05-06 14:30", tz="UTC")  # 22:30 Beijing, after the shift
    assert alerts(f, now=night).empty


def test_worker_on_duty_without_fixes_is_silent_since_shift_start() -> None:
    f = track([(10, 0.5, 250)])
    now = datetime.fromisoformat("2024-05-06T02:00:00+00:00")  # 10:00 Beijing, shift began 07:00
    a = geofence_alerts(f, AREA, now=now, workers_on_duty=["w", "absent"])
    row = a.loc[a["worker"] == "absent"].iloc[0]
    assert row["kind"] == "silent" and row["minutes"] == pytest.approx(180)
