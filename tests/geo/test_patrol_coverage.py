"""Coverage equals a straightforward shapely reference (loop over buildings and segments)."""

from __future__ import annotations

from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, Point

from geo.errors import CRSError, LayerError
from geo.patrol.coverage import coverage_table, unvisited_buildings, visits_from_tracks

CRS = "EPSG:32650"
T0 = pd.Timestamp("2024-05-06 01:00:00", tz="UTC")


def random_city(seed: int, n_buildings: int = 120, n_workers: int = 3) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Random boxes in a 1 km square and random walks (sessions with 1-40 fixes) over two days."""
    rng = np.random.default_rng(seed)
    x0, y0 = rng.uniform(0, 1000, n_buildings), rng.uniform(0, 1000, n_buildings)
    w, h = rng.uniform(5, 30, n_buildings), rng.uniform(5, 30, n_buildings)
    buildings = gpd.GeoDataFrame({
        "building_id": [f"b{i}" for i in range(n_buildings)],
        "grid": np.where(x0 < 500, "G1", "G2"),
        "households": rng.integers(0, 40, n_buildings)},
        geometry=shapely.box(x0, y0, x0 + w, y0 + h), crs=CRS)
    rows = []
    session = 0
    for k in range(n_workers):
        for day in range(2):
            for _ in range(rng.integers(1, 4)):
                n = int(rng.integers(1, 40))
                start = T0 + pd.Timedelta(days=day, minutes=int(rng.integers(0, 300)))
                xy = rng.uniform(0, 1000, 2) + np.cumsum(rng.normal(0, 15, (n, 2)), axis=0)
                for i in range(n):
                    rows.append((f"w{k}", start + pd.Timedelta(seconds=10 * i), xy[i, 0], xy[i, 1], session))
                session += 1
    fixes = pd.DataFrame(rows, columns=["worker", "t", "x", "y", "session"])
    return buildings, fixes


def reference_visits(fixes: pd.DataFrame, buildings: gpd.GeoDataFrame, d: float) -> dict[tuple, tuple]:
    """(building, worker, session) -> (first, last) by plain shapely distance, in Python loops."""
    out: dict[tuple, tuple] = {}
    for _, s in fixes.groupby("session"):
        pts = list(zip(s["x"], s["y"], strict=True))
        pieces = [(LineString([pts[i], pts[i + 1]]), s["t"].iloc[i], s["t"].iloc[i + 1]) for i in range(len(pts) - 1)]
        if len(pts) == 1:
            pieces = [(Point(pts[0]), s["t"].iloc[0], s["t"].iloc[0])]
        for bid, poly in zip(buildings["building_id"], buildings.geometry, strict=True):
            hits = [(a, b) for g, a, b in pieces if g.distance(poly) <= d]
            if hits:
                key = (bid, s["worker"].iloc[0], s["session"].iloc[0])
                out[key] = (min(a for a, _ in hits), max(b for _, b in hits))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("d", [0.0, 12.5, 40.0])
def test_visits_equal_the_shapely_reference(seed: int, d: float) -> None:
    buildings, fixes = random_city(seed)
    got = visits_from_tracks(fixes, buildings, visit_m=d)
    ref = reference_visits(fixes, buildings, d)
    assert len(ref) > 0
    as_dict = {(r.building_id, r.worker, r.session): (r.first, r.last) for r in got.itertuples()}
    assert as_dict == ref


def reference_table(ref: dict[tuple, tuple], buildings: gpd.GeoDataFrame, day: date) -> dict[str, tuple[int, int]]:
    seen = {b for (b, _, _), (first, _) in ref.items() if first.tz_convert("Asia/Shanghai").date() == day}
    out = {}
    for g, part in buildings.groupby("grid"):
        vis = part["building_id"].isin(seen)
        out[g] = (int(vis.sum()), int(part.loc[vis, "households"].sum()))
    return out


@pytest.mark.parametrize("seed", [5, 6])
def test_coverage_table_per_grid_and_day_matches_reference(seed: int) -> None:
    buildings, fixes = random_city(seed, n_buildings=200)
    visits = visits_from_tracks(fixes, buildings, visit_m=20.0)
    ref = reference_visits(fixes, buildings, 20.0)
    days = [date(2024, 5, 6), date(2024, 5, 7)]
    table = coverage_table(visits, buildings, start=days[0], end=days[1], by=["grid"], period="day")
    assert len(table) == 4  # 2 grids x 2 days, zero rows included
    for day in days:
        expect = reference_table(ref, buildings, day)
        for g, (nb, nh) in expect.items():
            row = table.loc[(table["grid"] == g) & (table["period"] == day)].iloc[0]
            assert (row["buildings_visited"], row["households_visited"]) == (nb, nh)
            part = buildings.loc[buildings["grid"] == g]
            assert row["buildings_total"] == len(part)
            assert row["building_coverage"] == pytest.approx(nb / len(part))


def test_no_fixes_give_zero_coverage_rows_not_an_error() -> None:
    """A day without tracks (a fresh demo, a holiday) reports 0 visited per grid."""
    buildings, fixes = random_city(3, n_buildings=50)
    visits = visits_from_tracks(fixes.iloc[:0], buildings, visit_m=20.0)
    assert visits.empty and str(visits["first"].dtype) == "datetime64[ns, UTC]"
    table = coverage_table(visits, buildings, start=date(2024, 5, 6), end=date(2024, 5, 6), by=["grid"])
    assert sorted(table["grid"]) == sorted(buildings["grid"].unique())
    assert (table["buildings_visited"] == 0).all() and (table["building_coverage"] == 0).all()
    assert table["buildings_total"].sum() == len(buildings)


def test_worker_coverage_counts_only_their_grids_and_visits() -> None:
    buildings, fixes = random_city(7, n_buildings=200)
    visits = visits_from_tracks(fixes, buildings, visit_m=20.0)
    table = coverage_table(visits, buildings, start=date(2024, 5, 6), end=date(2024, 5, 7),
                           by=["worker"], worker_grids={"w0": ["G1"], "w1": ["G1", "G2"]})
    w0 = table.loc[table["worker"] == "w0"].iloc[0]
    own = visits.loc[(visits["worker"] == "w0") & visits["building_id"].isin(
        buildings.loc[buildings["grid"] == "G1", "building_id"])]
    assert w0["buildings_visited"] == own["building_id"].nunique()
    assert w0["buildings_total"] == (buildings["grid"] == "G1").sum()
    assert table.loc[table["worker"] == "w1", "buildings_total"].item() == len(buildings)
    assert w0["first_visit"] == own["first"].min()
    left = unvisited_buildings(visits, buildings, start=date(2024, 5, 6), end=date(2024, 5, 7),
                               grids=["G1"], worker="w0")
    assert len(left) == w0["buildings_total"] - w0["buildings_visited"]
    assert not set(left["building_id"]) & set(own["building_id"])


def test_month_period_and_errors() -> None:
    buildings, fixes = random_city(8)
    visits = visits_from_tracks(fixes, buildings)
    table = coverage_table(visits, buildings, start=date(2024, 5, 1), end=date(2024, 5, 31), period="month")
    assert table["period"].tolist() == [date(2024, 5, 1)] * 2
    assert table["buildings_visited"].sum() == visits["building_id"].nunique()
    with pytest.raises(LayerError, match="period 'year' unknown; use one of day, week, month, all"):
        coverage_table(visits, buildings, start=date(2024, 5, 1), end=date(2024, 5, 2), period="year")
    with pytest.raises(LayerError, match="by='worker' needs worker_grids"):
        coverage_table(visits, buildings, start=date(2024, 5, 1), end=date(2024, 5, 2), by=["worker"])
    with pytest.raises(CRSError, match="to_crs"):
        visits_from_tracks(fixes, buildings.to_crs(4326))
    lone = fixes.iloc[:1].assign(x=buildings.geometry.iloc[0].centroid.x, y=buildings.geometry.iloc[0].centroid.y)
    assert visits_from_tracks(lone, buildings[:1])["building_id"].tolist() == ["b0"]
    assert visits_from_tracks(fixes.iloc[:0], buildings).empty


def test_week_periods_start_on_monday_and_sum_to_the_whole() -> None:
    buildings, fixes = random_city(9)
    visits = visits_from_tracks(fixes, buildings)
    weeks = coverage_table(visits, buildings, start=date(2024, 5, 1), end=date(2024, 5, 14), period="week")
    assert sorted(set(weeks["period"])) == [date(2024, 4, 29), date(2024, 5, 6), date(2024, 5, 13)]
    days = coverage_table(visits, buildings, start=date(2024, 5, 1), end=date(2024, 5, 14), period="day")
    monday = pd.to_datetime(days["period"]).dt.to_period("W-SUN").dt.start_time.dt.date
    per_week = days.assign(period=monday).groupby(["grid", "period"])["buildings_visited"].sum()
    assert (weeks.set_index(["grid", "period"])["buildings_visited"] <= per_week.reindex(
        weeks.set_index(["grid", "period"]).index, fill_value=0)).all()
    none = visits.iloc[:0].astype(object)
    assert len(unvisited_buildings(none, buildings, start=date(2024, 5, 1), end=date(2024, 5, 2))) == len(buildings)


def holed_city(seed: int) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """The random city with courtyards (holes), two-part footprints and a few long jumps."""
    buildings, fixes = random_city(seed, n_buildings=60)
    rng = np.random.default_rng(seed)
    geoms = []
    for g in buildings.geometry:
        x0, y0, x1, y1 = g.bounds
        big = shapely.box(x0 - 30, y0 - 30, x1 + 30, y1 + 30)
        geoms.append(big.difference(g) if rng.random() < 0.5 else shapely.MultiPolygon([g, shapely.box(
            x1 + 40, y0, x1 + 55, y0 + 12)]))
    jumps = rng.choice(len(fixes), 5, replace=False)
    fixes.loc[jumps, ["x", "y"]] = rng.uniform(-3000, 4000, (5, 2))
    return buildings.set_geometry(geoms), fixes


@pytest.mark.parametrize("seed", [11, 12])
@pytest.mark.parametrize("d", [0.0, 8.0])
def test_visits_with_holes_multipolygons_and_jumps_equal_the_reference(seed: int, d: float) -> None:
    buildings, fixes = holed_city(seed)
    assert set(buildings.geom_type) == {"Polygon", "MultiPolygon"}
    got = visits_from_tracks(fixes, buildings, visit_m=d)
    ref = reference_visits(fixes, buildings, d)
    assert len(ref) > 0
    assert {(r.building_id, r.worker, r.session): (r.first, r.last) for r in got.itertuples()} == ref


def test_a_fix_in_a_courtyard_is_a_visit_only_within_reach_of_the_ring() -> None:
    ring = shapely.box(0, 0, 100, 100).difference(shapely.box(20, 20, 80, 80))
    buildings = gpd.GeoDataFrame({"building_id": ["yard"]}, geometry=[ring], crs=CRS)
    fix = pd.DataFrame({"worker": ["w"], "t": [T0], "session": [1], "x": [50.0], "y": [50.0]})
    assert visits_from_tracks(fix, buildings, visit_m=29.0).empty
    assert visits_from_tracks(fix, buildings, visit_m=30.0)["building_id"].tolist() == ["yard"]
    inside_wall = fix.assign(x=10.0)
    assert visits_from_tracks(inside_wall, buildings, visit_m=0.0)["building_id"].tolist() == ["yard"]


def test_sessions_out_of_order_give_one_row_per_session_and_building() -> None:
    buildings, fixes = random_city(13)
    order = fixes["session"].rank(method="dense", ascending=False)
    shuffled = fixes.assign(order=order).sort_values(["order", "t"], kind="stable").drop(columns="order")
    got = visits_from_tracks(shuffled.reset_index(drop=True), buildings, visit_m=20.0)
    assert not got.duplicated(["building_id", "session"]).any()
    ref = reference_visits(fixes, buildings, 20.0)
    assert {(r.building_id, r.worker, r.session): (r.first, r.last) for r in got.itertuples()} == ref


def mixed_city(seed: int) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Plain boxes mixed with courtyards, two-part footprints, a triangle and an empty footprint."""
    buildings, fixes = random_city(seed, n_buildings=90)
    rng = np.random.default_rng(seed)
    geoms = list(buildings.geometry)
    for k in rng.choice(len(geoms), 40, replace=False):
        x0, y0, x1, y1 = geoms[k].bounds
        geoms[k] = (shapely.box(x0 - 25, y0 - 25, x1 + 25, y1 + 25).difference(geoms[k]) if k % 2
                    else shapely.MultiPolygon([geoms[k], shapely.box(x1 + 30, y0, x1 + 42, y0 + 9)]))
    geoms[0] = shapely.Polygon([(500, 500), (560, 510), (520, 580)])
    geoms[1] = shapely.Polygon()
    return buildings.set_geometry(geoms), fixes


@pytest.mark.parametrize("seed", [21, 22])
def test_plain_footprints_mixed_with_holed_and_multipart_ones_equal_the_reference(seed: int) -> None:
    """Plain polygons take their edges from their coordinates, the others from their rings: one answer."""
    buildings, fixes = mixed_city(seed)
    assert set(buildings.geom_type) == {"Polygon", "MultiPolygon"}
    got = visits_from_tracks(fixes, buildings, visit_m=15.0)
    ref = reference_visits(fixes, buildings, 15.0)
    assert len(ref) > 0 and "b1" not in {b for b, _, _ in ref}
    assert {(r.building_id, r.worker, r.session): (r.first, r.last) for r in got.itertuples()} == ref


def test_fixes_around_a_corner_are_visits_exactly_within_the_distance() -> None:
    """Where a geopandas buffer (chords inside the arc) misses: just inside d of a corner counts, just outside not."""
    buildings = gpd.GeoDataFrame({"building_id": ["b"]}, geometry=[shapely.box(0, 0, 10, 10)], crs=CRS)
    d = 20.0
    angles = np.linspace(0.01, np.pi / 2 - 0.01, 37)
    for r, expect in ((d * (1 - 1e-9), ["b"]), (d * (1 + 1e-9), [])):
        for a in angles:
            fix = pd.DataFrame({"worker": ["w"], "t": [T0], "session": [1],
                                "x": [10 + r * np.cos(a)], "y": [10 + r * np.sin(a)]})
            assert visits_from_tracks(fix, buildings, visit_m=d)["building_id"].tolist() == expect, (r, a)
    # A segment passing the corner at 0.999 d (its ends far outside the buffer's chord) is a visit.
    gap = 0.999 * d / np.sqrt(2)
    seg = pd.DataFrame({"worker": ["w", "w"], "t": [T0, T0 + pd.Timedelta(seconds=10)], "session": [1, 1],
                        "x": [10 + gap - 50, 10 + gap + 50], "y": [10 + gap + 50, 10 + gap - 50]})
    assert visits_from_tracks(seg, buildings, visit_m=d)["building_id"].tolist() == ["b"]
    assert visits_from_tracks(seg, buildings, visit_m=0.998 * d).empty


@pytest.mark.parametrize("threads", [0, 2, 3, 7])
def test_visits_do_not_depend_on_threads(threads: int) -> None:
    """The pass is cut between sessions: the same rows in the same order on any number of threads."""
    buildings, fixes = random_city(31, n_buildings=150, n_workers=6)
    one = visits_from_tracks(fixes, buildings, visit_m=20.0, threads=1)
    many = visits_from_tracks(fixes, buildings, visit_m=20.0, threads=threads)
    assert len(one) > 0
    pd.testing.assert_frame_equal(many, one)
    assert {(r.building_id, r.worker, r.session): (r.first, r.last) for r in many.itertuples()} == \
        reference_visits(fixes, buildings, 20.0)
    # Sessions out of row order are cut and folded the same way.
    order = fixes["session"].rank(method="dense", ascending=False)
    shuffled = fixes.assign(order=order).sort_values(["order", "t"], kind="stable").drop(columns="order")
    pd.testing.assert_frame_equal(
        visits_from_tracks(shuffled.reset_index(drop=True), buildings, visit_m=20.0, threads=threads), one)


def test_negative_threads_are_refused() -> None:
    buildings, fixes = random_city(3, n_buildings=20)
    with pytest.raises(LayerError, match="threads=-1; set patrol_coverage_threads to 0"):
        visits_from_tracks(fixes, buildings, threads=-1)
