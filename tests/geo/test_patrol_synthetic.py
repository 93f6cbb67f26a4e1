"""Synthetic demo tracks: cleaning removes exactly the planted outliers, gaps split sessions, coverage is plausible."""

from __future__ import annotations

from datetime import UTC, date, datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer

from geo.errors import LayerError
from geo.patrol.clean import clean_fixes
from geo.patrol.coverage import coverage_table, visits_from_tracks
from geo.patrol.synthetic import synthetic_tracks

DAYS = [date(2024, 5, 6), date(2024, 5, 7), date(2024, 5, 8)]


def lattice(n_side: int = 10) -> gpd.GeoDataFrame:
    i = np.arange(n_side * n_side)
    x0, y0 = 440_000 + (i % n_side) * 50.0, 4_420_000 + (i // n_side) * 50.0
    return gpd.GeoDataFrame({"building_id": i.astype(str), "grid": "G", "households": 10},
                            geometry=shapely.box(x0, y0, x0 + 20, y0 + 20), crs="EPSG:32650")


def test_demo_tracks_clean_and_cover() -> None:
    b = lattice()
    f = synthetic_tracks(b, DAYS, seed=3)
    lon, lat = Transformer.from_crs(32650, 4326, always_xy=True).transform(f["x"].to_numpy(), f["y"].to_numpy())
    fixes = pd.DataFrame({"worker": "w", "t": f["t"], "lon": lon, "lat": lat})
    r = clean_fixes(fixes, now=datetime(2024, 6, 1, tzinfo=UTC), crs="EPSG:32650")
    assert r.dropped["speed_jump"] == 2 * len(DAYS)
    assert sum(r.dropped.values()) == 2 * len(DAYS)
    per_day = r.fixes.groupby(r.fixes["t"].dt.tz_convert("Asia/Shanghai").dt.date)["session"].nunique()
    assert (per_day == 2).all()  # the ten-minute gap splits each day in two
    visits = visits_from_tracks(r.fixes, b, visit_m=20.0)
    table = coverage_table(visits, b, start=DAYS[0], end=DAYS[-1], period="day")
    assert table["building_coverage"].between(0.7, 1.0).all()


def test_same_seed_same_tracks_and_bad_input() -> None:
    b = lattice(4)
    pd.testing.assert_frame_equal(synthetic_tracks(b, DAYS[:1], seed=9), synthetic_tracks(b, DAYS[:1], seed=9))
    with pytest.raises(LayerError, match="needs at least 2 buildings"):
        synthetic_tracks(b.iloc[:1], DAYS[:1])
