"""Grid partition on cases built so that a plan in range is known to exist (or known not to).

Feasibility argument used below: the building cells of :func:`city` form a lattice, which
has a Hamiltonian (snake) path; cutting a path whose units hold at most ``hi - lo``
households into ``k`` consecutive runs of ``lo..hi`` is possible whenever
``k·lo ≤ H ≤ k·hi``. So every such community has a contiguous plan in range.
"""

from __future__ import annotations

import numpy as np
import pytest

from geo.partition import choose_k, partition_grids
from geo.synthetic import synthetic_district
from tests.geo.partition_helpers import assert_valid_plan, city


@pytest.mark.parametrize("seed", range(6))
def test_random_households_lattice_always_in_range(seed: int) -> None:
    b, c, s = city(nx=6, ny=5, per_block=4, seed=seed)
    rng = np.random.default_rng(seed)
    b["households"] = rng.integers(1, 201, len(b))  # units ≤ hi - lo
    assert choose_k(int(b["households"].sum()), 300, 500, 400)[1] == ""
    res = partition_grids(b, c, streets=s, seed=seed)
    assert_valid_plan(res, b, c)
    assert res.report["share_in_range"] == 1.0
    assert res.report["infeasible_communities"] == {}


def test_towers_chunky_units_in_range() -> None:
    b, c, s = city(nx=5, ny=4, per_block=4, seed=3)
    rng = np.random.default_rng(11)
    b["households"] = rng.choice([40, 120, 180, 200], len(b))
    res = partition_grids(b, c, streets=s)
    assert_valid_plan(res, b, c)
    assert res.report["share_in_range"] == 1.0


def test_compounds_split_only_when_whole_ones_cannot_fit() -> None:
    # three compounds of 260: whole ones give 260 + 520, so one must be split (flagged)
    b, c, s = city(nx=3, ny=1, per_block=4, hh=65)
    b["compound_id"] = "K" + b["building_id"].str[1]
    res = partition_grids(b, c, streets=s)
    assert_valid_plan(res, b, c)
    assert res.report["share_in_range"] == 1.0
    per = res.assignment.groupby(b.set_index("building_id")["compound_id"]).nunique()
    assert (per > 1).sum() == 1
    assert res.grids["flags"].str.contains("compound_split").any()


def test_compounds_kept_whole_when_they_fit() -> None:
    b, c, s = city(nx=4, ny=1, per_block=4, hh=100)  # four compounds of 400
    b["compound_id"] = "K" + b["building_id"].str[1]
    res = partition_grids(b, c, streets=s)
    assert_valid_plan(res, b, c)
    per = res.assignment.groupby(b.set_index("building_id")["compound_id"]).nunique()
    assert (per == 1).all()
    assert not res.grids["flags"].str.contains("compound_split").any()


def test_piece_cut_off_by_exclusive_grid_is_reported() -> None:
    # a school across the whole middle column cuts 2×30 = 60 households off
    b, c, s = city(nx=3, ny=1, per_block=4, hh=30)
    b.loc[b["building_id"].str.startswith("b2"), "households"] = 150
    mid = b["building_id"].str.startswith("b1")
    b.loc[mid, ["use", "households"]] = ["school", 0]
    b["use"] = b["use"].fillna("residential")
    res = partition_grids(b, c, streets=s)
    assert_valid_plan(res, b, c)
    (reason,) = res.report["infeasible_communities"]["C1"]
    assert "120 households" in reason and "cut off" in reason


@pytest.mark.slow
def test_synthetic_district_guarantees() -> None:
    d = synthetic_district(3000, seed=5)
    res = partition_grids(d.buildings, d.communities, streets=d.streets, compounds=d.compounds)
    assert_valid_plan(res, d.buildings, d.communities)
    g = res.grids
    bad = g[g["flags"].str.contains("over_max|under_min")]
    assert set(bad["community_id"]) <= set(res.report["infeasible_communities"])
    for reasons in res.report["infeasible_communities"].values():
        assert all("cannot form grids" in r for r in reasons)
    assert res.report["mean_polsby_popper"] >= 0.45
