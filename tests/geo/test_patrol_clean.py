"""Cleaning catalogue: one bad fix (or a few) injected into a clean walk, counted by reason."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from geo.errors import LayerError
from geo.patrol.clean import DROP_REASONS, clean_fixes
from geo.patrol.stops import detect_stops

NOW = datetime(2024, 5, 7, tzinfo=UTC)
T0 = pd.Timestamp("2024-05-06 02:00:00", tz="UTC")  # 10:00 in Beijing, inside the shift
LON0, LAT0 = 116.3200, 39.9900
M_PER_DEG_LAT = 111_000.0


def walk(n: int = 60, *, worker: str = "w1", step_s: int = 10, speed: float = 1.2, t0: pd.Timestamp = T0) -> pd.DataFrame:
    """A clean walk eastwards: *n* fixes every *step_s* seconds at *speed* m/s."""
    dx = np.arange(n) * step_s * speed / (M_PER_DEG_LAT * np.cos(np.radians(LAT0)))
    return pd.DataFrame({
        "worker": worker,
        "t": t0 + pd.to_timedelta(np.arange(n) * step_s, unit="s"),
        "lon": LON0 + dx, "lat": LAT0, "accuracy": 8.0})


def add(df: pd.DataFrame, **row: object) -> pd.DataFrame:
    base = {"worker": "w1", "t": T0 + pd.Timedelta(seconds=105), "lon": LON0, "lat": LAT0, "accuracy": 8.0}
    base.update(row)
    out = pd.concat([df, pd.DataFrame([base])], ignore_index=True)
    return out.assign(t=pd.to_datetime(out["t"], utc=True))


def at(i: int, df: pd.DataFrame) -> dict[str, object]:
    return {"t": df["t"].iloc[i] + pd.Timedelta(seconds=5), "lon": df["lon"].iloc[i], "lat": df["lat"].iloc[i]}


def east(metres: float) -> float:
    return metres / (M_PER_DEG_LAT * np.cos(np.radians(LAT0)))


Case = Callable[[pd.DataFrame], pd.DataFrame]

# name -> (inject, reason, dropped count)
CATALOGUE: dict[str, tuple[Case, str, int]] = {
    "null_island": (lambda d: add(d, lon=0.0, lat=0.0), "null_island", 1),
    "nan_lon": (lambda d: add(d, lon=np.nan), "missing", 1),
    "missing_time": (lambda d: add(d, t=pd.NaT), "missing", 1),
    "lat_95": (lambda d: add(d, lat=95.0), "out_of_range", 1),
    "lon_200": (lambda d: add(d, lon=200.0), "out_of_range", 1),
    "year_1970": (lambda d: add(d, t=pd.Timestamp("1970-01-01 02:00:05", tz="UTC")), "before_earliest", 1),
    "gps_week_rollover_1999": (lambda d: add(d, t=pd.Timestamp("1999-09-19 02:00:05", tz="UTC")), "before_earliest", 1),
    "future_day": (lambda d: add(d, t=pd.Timestamp("2024-05-08 02:00:00", tz="UTC")), "future", 1),
    "accuracy_500m": (lambda d: add(d, accuracy=500.0), "inaccurate", 1),
    "before_shift_03h": (lambda d: add(d, t=pd.Timestamp("2024-05-05 19:00:00", tz="UTC")), "off_shift", 1),
    "after_shift_2230": (lambda d: add(d, t=pd.Timestamp("2024-05-06 14:30:00", tz="UTC")), "off_shift", 1),
    "exact_duplicate": (lambda d: pd.concat([d, d.iloc[[7]]], ignore_index=True), "duplicate", 1),
    "same_time_worse_accuracy": (lambda d: add(d, **{**at(9, d), "t": d["t"].iloc[9], "accuracy": 30.0}), "duplicate", 1),
    "spike_500kmh": (lambda d: add(d, **{**at(20, d), "lon": d["lon"].iloc[20] + east(700)}), "speed_jump", 1),
    "spike_2000kmh_north": (lambda d: add(d, **{**at(30, d), "lat": LAT0 + 3000 / M_PER_DEG_LAT}), "speed_jump", 1),
    "two_fix_spike": (lambda d: add(add(d, **{**at(40, d), "lon": d["lon"].iloc[40] + east(2000)}),
                                    **{**at(40, d), "t": d["t"].iloc[40] + pd.Timedelta(seconds=7),
                                       "lon": d["lon"].iloc[40] + east(2010)}), "speed_jump", 2),
    "spike_at_start": (lambda d: add(d, t=d["t"].iloc[0] - pd.Timedelta(seconds=5), lon=LON0 + east(5000)), "speed_jump", 1),
    "spike_at_end": (lambda d: add(d, t=d["t"].iloc[-1] + pd.Timedelta(seconds=5), lon=LON0 - east(5000)), "speed_jump", 1),
}


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_cleaning_catalogue_counts_each_bad_fix(name: str) -> None:
    inject, reason, count = CATALOGUE[name]
    base = walk()
    bad = inject(base)
    r = clean_fixes(bad, now=NOW)
    assert r.dropped[reason] == count, r.dropped
    assert sum(r.dropped.values()) == count, r.dropped
    assert len(r.fixes) == len(bad) - count
    assert r.n_input == len(bad)
    # the clean walk survives whole and in one session, in time order
    assert r.fixes["session"].nunique() == 1
    assert r.fixes["t"].is_monotonic_increasing
    assert set(base["t"]) <= set(r.fixes["t"])


def test_catalogue_covers_every_reason_and_fifteen_cases() -> None:
    assert len(CATALOGUE) >= 15
    assert {reason for _, reason, _ in CATALOGUE.values()} == set(DROP_REASONS)


def test_duplicate_keeps_the_more_accurate_fix() -> None:
    base = walk()
    bad = add(base, t=base["t"].iloc[9], lon=base["lon"].iloc[9] + east(3), accuracy=3.0)
    r = clean_fixes(bad, now=NOW)
    kept = r.fixes.loc[r.fixes["t"] == base["t"].iloc[9]]
    assert kept["accuracy"].tolist() == [3.0]


def test_swapped_lat_lon_is_repaired_not_dropped() -> None:
    base = walk()
    bad = add(base, **{**at(12, base), "lon": base["lat"].iloc[12], "lat": base["lon"].iloc[12]})
    r = clean_fixes(bad, now=NOW)
    assert r.repaired["swapped"] == 1 and sum(r.dropped.values()) == 0
    assert len(r.fixes) == len(bad)
    assert (r.fixes["lon"] > 116).all() and (r.fixes["lat"] < 41).all()


def test_out_of_order_fixes_are_placed_in_time_order() -> None:
    base = walk()
    shuffled = base.sample(frac=1.0, random_state=3).reset_index(drop=True)
    r = clean_fixes(shuffled, now=NOW)
    assert r.repaired["reordered"] > 0 and sum(r.dropped.values()) == 0
    assert r.fixes["t"].tolist() == base["t"].tolist()
    assert r.fixes["session"].nunique() == 1


def test_gap_and_real_relocation_start_new_sessions() -> None:
    a = walk(30)
    later = walk(30, t0=T0 + pd.Timedelta(minutes=20))  # 20 min gap > 300 s
    # 8 km in 10 s: a jump, but 30 fixes there are no outlier: the worker really moved
    moved = walk(30, t0=later["t"].iloc[-1] + pd.Timedelta(seconds=10)).assign(lon=lambda d: d["lon"] + east(8000))
    r = clean_fixes(pd.concat([a, later, moved], ignore_index=True), now=NOW)
    assert sum(r.dropped.values()) == 0
    assert r.fixes.groupby("session").size().tolist() == [30, 30, 30]


def test_workers_never_share_a_session() -> None:
    r = clean_fixes(pd.concat([walk(10, worker="a"), walk(10, worker="b")]), now=NOW)
    assert r.fixes.groupby("session")["worker"].nunique().max() == 1
    assert r.fixes["session"].nunique() == 2


def test_shift_hours_are_settings() -> None:
    base = walk()
    r = clean_fixes(base, now=NOW, shift_start="11:00", shift_end="18:00")
    assert r.dropped["off_shift"] == len(base)
    with pytest.raises(LayerError, match="patrol_shift_start: '8h' is not a time of day; write HH:MM"):
        clean_fixes(base, now=NOW, shift_start="8h")


def test_bad_input_is_named() -> None:
    with pytest.raises(LayerError, match="fixes lack column.*lat"):
        clean_fixes(walk().drop(columns="lat"), now=NOW)
    naive = walk().assign(t=lambda d: d["t"].dt.tz_localize(None))
    with pytest.raises(LayerError, match="tz-aware datetimes; use pd.to_datetime"):
        clean_fixes(naive, now=NOW)


def test_stop_detected_where_the_worker_stays() -> None:
    rng = np.random.default_rng(5)
    go = walk(30)
    stay_t = go["t"].iloc[-1] + pd.to_timedelta(np.arange(1, 61) * 10, unit="s")  # 10 minutes
    stay = pd.DataFrame({"worker": "w1", "t": stay_t,
                         "lon": go["lon"].iloc[-1] + east(1) * rng.normal(0, 3, 60),
                         "lat": LAT0 + rng.normal(0, 3, 60) / M_PER_DEG_LAT, "accuracy": 8.0})
    back = walk(30, t0=stay_t[-1] + pd.Timedelta(seconds=10)).assign(lon=lambda d: d["lon"] + east(420))
    r = clean_fixes(pd.concat([go, stay, back], ignore_index=True), now=NOW)
    stops, of_fix = detect_stops(r.fixes, radius_m=30.0, min_duration_s=300)
    assert len(stops) == 1
    s = stops.iloc[0]
    assert 590 <= s["duration_s"] <= 640
    assert s["start"] <= stay_t[0] and s["end"] >= stay_t[-1]
    assert (of_fix >= 0).sum() == s["n_fixes"]
    walking = detect_stops(clean_fixes(walk(120), now=NOW).fixes)[0]
    assert walking.empty
