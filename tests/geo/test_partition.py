"""Grid partition engine: hard guarantees on small synthetic and adversarial districts."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, MultiPolygon, box

from geo.errors import CRSError, LayerError
from geo.partition import choose_k, partition_grids
from geo.synthetic import synthetic_district
from tests.geo.partition_helpers import CRS, X0, Y0, assert_valid_plan, city


def test_regular_city_all_grids_in_range() -> None:
    b, c, s = city()
    res = partition_grids(b, c, streets=s)
    assert_valid_plan(res, b, c)
    assert res.report["share_in_range"] == 1.0
    assert len(res.grids) == round(b["households"].sum() / 400)
    assert res.report["infeasible_communities"] == {}


def test_boundaries_follow_streets_when_blocks_fit() -> None:
    b, c, s = city(nx=4, ny=4, per_block=4, hh=25)  # 100 households per block
    res = partition_grids(b, c, streets=s)
    assert_valid_plan(res, b, c)
    assert res.grids["street_share"].dropna().mean() > 0.8


def test_infeasible_community_is_reported_with_least_bad_plan() -> None:
    b, c, s = city(nx=1, ny=1, per_block=2, hh=275)
    res = partition_grids(b, c)
    assert_valid_plan(res, b, c)
    assert len(res.grids) == 1
    (reason,) = res.report["infeasible_communities"]["C1"]
    assert "550 households" in reason


def test_choose_k_feasibility() -> None:
    assert choose_k(1200, 300, 500, 400) == (3, "")
    k, why = choose_k(550, 300, 500, 400)
    assert k == 1 and "550" in why
    assert choose_k(0, 300, 500, 400)[1] == "no households"


def test_compound_kept_whole_unless_over_max() -> None:
    b, c, s = city(nx=4, ny=2, per_block=4, hh=40)
    b["compound_id"] = None
    b.loc[b["building_id"].str.startswith(("b0_0", "b1_0")), "compound_id"] = "K1"  # 320 households
    res = partition_grids(b, c, streets=s)
    assert_valid_plan(res, b, c)
    assert res.assignment[b.loc[b["compound_id"] == "K1", "building_id"]].nunique() == 1


def test_giant_compound_is_split() -> None:
    b, c, s = city(nx=2, ny=2, per_block=4, hh=60)
    b["compound_id"] = "K1"  # 960 households > 500
    res = partition_grids(b, c, streets=s)
    assert_valid_plan(res, b, c)
    assert res.assignment.nunique() == 2


def test_single_building_community() -> None:
    b, c, _ = city(nx=1, ny=1, per_block=1, hh=350)
    res = partition_grids(b, c)
    assert_valid_plan(res, b, c)
    assert res.grids["households"].tolist() == [350]


def test_multipolygon_community_with_hole() -> None:
    b, c, s = city(nx=4, ny=2, per_block=4, hh=40)
    outer = c.geometry.iloc[0]
    hole = box(X0 + 140, Y0 + 140, X0 + 160, Y0 + 160)
    island = box(X0 + 500, Y0, X0 + 600, Y0 + 100)
    ib = gpd.GeoDataFrame({"building_id": ["i1", "i2"], "households": [160, 160]},
                          geometry=[box(X0 + 510, Y0 + 10, X0 + 530, Y0 + 30),
                                    box(X0 + 560, Y0 + 60, X0 + 580, Y0 + 80)], crs=CRS)
    b = pd.concat([b, ib], ignore_index=True)
    c = c.set_geometry([MultiPolygon([outer.difference(hole), island])], crs=CRS)
    res = partition_grids(b, c, streets=s)
    assert_valid_plan(res, b, c)
    assert res.assignment[["i1", "i2"]].nunique() == 1


def test_exclusive_and_empty_blocks() -> None:
    b, c, s = city(nx=4, ny=2, per_block=4, hh=40)
    b = b[~b["building_id"].str.startswith("b3_1")].reset_index(drop=True)  # an empty block
    b["use"] = "residential"
    b.loc[b["building_id"] == "b0_0_0", ["use", "households"]] = ["school", 0]
    res = partition_grids(b, c, streets=s)
    assert_valid_plan(res, b, c)
    school = res.grids.set_index("grid_id").loc[res.assignment["b0_0_0"]]
    assert bool(school["exclusive"]) and school["buildings"] == 1


def test_same_seed_same_plan_and_wgs84_round_trip() -> None:
    b, c, s = city()
    bw, cw, sw = (x.to_crs("EPSG:4326") for x in (b, c, s))
    r1 = partition_grids(bw, cw, streets=sw, seed=7)
    r2 = partition_grids(bw, cw, streets=sw, seed=7)
    assert r1.grids.crs.to_epsg() == 4326
    pd.testing.assert_series_equal(r1.assignment, r2.assignment)
    assert r1.grids["code"].tolist() == r2.grids["code"].tolist()
    assert_valid_plan(r1, bw, cw)


def test_stability_after_small_changes() -> None:
    b, c, s = city(nx=6, ny=6, per_block=4, hh=30)
    first = partition_grids(b, c, streets=s)
    rng = np.random.default_rng(3)
    b2 = b.copy()
    pick = rng.choice(len(b2), size=len(b2) // 20, replace=False)
    b2.loc[pick, "households"] = (b2.loc[pick, "households"] * rng.choice([0.7, 1.3], len(pick))).round()
    b2 = b2.drop(index=[0, 1]).reset_index(drop=True)
    new = gpd.GeoDataFrame({"building_id": ["n1"], "households": [30]},
                           geometry=[box(X0 + 3, Y0 + 3, X0 + 10, Y0 + 10)], crs=CRS)
    b2 = pd.concat([b2, new], ignore_index=True)
    second = partition_grids(b2, c, streets=s, previous=first)
    assert_valid_plan(second, b2, c)
    common = b2["building_id"][b2["building_id"].isin(first.assignment.index)]
    kept = (first.assignment[common].to_numpy() == second.assignment[common].to_numpy()).mean()
    assert kept >= 0.9


def test_locked_grid_untouched() -> None:
    b, c, s = city(nx=6, ny=4, per_block=4, hh=30)
    first = partition_grids(b, c, streets=s)
    lock = first.grids["grid_id"].iloc[0]
    b2 = b.copy()
    b2["households"] = 35
    second = partition_grids(b2, c, streets=s, previous=first, locked=[lock])
    g1 = first.grids.set_index("grid_id").geometry[lock]
    g2 = second.grids.set_index("grid_id").geometry[lock]
    assert g1.equals(g2)
    members = first.assignment.index[first.assignment == lock]
    assert (second.assignment[members] == lock).all()
    assert bool(second.grids.set_index("grid_id").loc[lock, "locked"])


def test_new_grids_never_take_a_locked_grids_id() -> None:
    # a locked grid's buildings are set aside, so its id once looked free to the new grids
    # of its community: 6 repeated ids here (a sharded run stopped: "came out of two shards")
    d = synthetic_district(300, seed=7)
    kw = {"streets": d.streets, "compounds": d.compounds, "shard_buildings": 0}
    first = partition_grids(d.buildings, d.communities, **kw)
    locked = list(first.grids["grid_id"][::3])
    second = partition_grids(d.buildings, d.communities, previous=first, locked=locked, **kw)
    assert second.grids["grid_id"].is_unique
    assert set(second.grids.loc[second.grids["locked"], "grid_id"]) == set(locked)
    assert set(second.assignment.dropna()) <= set(second.grids["grid_id"])


@pytest.mark.parametrize("shard_buildings", [0, 120])
def test_locked_grids_in_several_communities_keep_a_valid_plan(shard_buildings: int) -> None:
    # locked grids came back from WGS84 a hair off the streets they follow; the communities
    # minus them then ran a hair beside those streets, and vertices rounded on either side of
    # a grid step left sliver faces open at both ends: 58 of 300 buildings ended outside their
    # grid, and a shard whose communities were all locked away stopped with an IndexError
    d = synthetic_district(300, seed=7)
    kw = {"streets": d.streets, "compounds": d.compounds, "shard_buildings": shard_buildings, "workers": 1}
    first = partition_grids(d.buildings, d.communities, **kw)
    second = partition_grids(d.buildings, d.communities, previous=first, locked=list(first.grids["grid_id"][::3]),
                             **kw)
    assert_valid_plan(second, d.buildings, d.communities)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda b: b.drop(columns="households"), "no column 'households'"),
        (lambda b: b.assign(households=-1), "non-negative"),
        (lambda b: b.assign(building_id="x"), "repeats building_id"),
        (lambda b: b.iloc[:0], "empty"),
    ],
)
def test_bad_buildings_raise(change, match) -> None:
    b, c, _ = city(nx=1, ny=1)
    with pytest.raises(LayerError, match=match):
        partition_grids(change(b), c)


def test_missing_crs_and_bad_bounds_raise() -> None:
    b, c, _ = city(nx=1, ny=1)
    with pytest.raises(CRSError, match="no CRS"):
        partition_grids(b.set_crs(None, allow_override=True), c)
    with pytest.raises(LayerError, match="min ≤ target ≤ max"):
        partition_grids(b, c, min_households=500, max_households=300)


def test_micro_grids() -> None:
    b, c, s = city(nx=2, ny=2, per_block=4, hh=20)
    res = partition_grids(b, c, streets=s, micro=True)
    assert_valid_plan(res, b, c, lo=50, hi=80)
    assert res.report["share_in_range"] == 1.0


def test_streets_whose_near_ends_all_touch_another_street() -> None:
    # a T-junction exactly on the other street and nothing else to snap: used to crash the
    # street-end snapping (an empty candidate list indexed by a one-element mask)
    b, c, _ = city(nx=2, ny=2, per_block=4, hh=40)
    x_mid = X0 + 100.0
    s = gpd.GeoDataFrame({"street_id": ["a", "b"], "road_class": "minor"},
                         geometry=[LineString([(X0, Y0 + 100), (X0 + 200, Y0 + 100)]),
                                   LineString([(x_mid, Y0 + 100), (x_mid, Y0 + 200)])], crs=CRS)
    res = partition_grids(b, c, streets=s)
    assert_valid_plan(res, b, c)
    assert res.report["share_in_range"] == 1.0
