"""geo.partition.shards: large districts planned in shards of whole communities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geo.codes import validate_grid_code
from geo.errors import LayerError
from geo.partition import partition_grids
from geo.partition.shards import plan_shards, resolve_workers
from geo.synthetic import synthetic_district
from tests.geo.partition_helpers import assert_valid_plan


@pytest.fixture(scope="module")
def district():
    return synthetic_district(2500, seed=7)


def _bcomm(d) -> np.ndarray:
    ids = {c: i for i, c in enumerate(d.communities["community_id"].astype(str))}
    return d.buildings["community_id"].astype(str).map(ids).to_numpy()


def test_shards_hold_whole_communities_once(district) -> None:
    cm = district.communities.to_crs(32651)
    bcomm = _bcomm(district)
    shards = plan_shards(cm, bcomm, shard_buildings=500)
    assert len(shards) > 2
    comms = np.concatenate([s.communities for s in shards])
    assert np.array_equal(np.sort(comms), np.arange(len(cm)))
    members = np.concatenate([s.buildings for s in shards])
    assert np.array_equal(np.sort(members), np.arange(len(bcomm)))
    for s in shards:
        assert set(bcomm[s.buildings]) == set(s.communities.tolist())
        # over the size only when one community alone is larger
        assert len(s.buildings) <= 500 or len(s.communities) == 1


def test_communities_without_buildings_ride_with_a_neighbour_shard(district) -> None:
    cm = district.communities.to_crs(32651)
    bcomm = _bcomm(district)
    keep = np.isin(bcomm, np.arange(0, len(cm), 3))  # two communities in three lose their buildings
    shards = plan_shards(cm, bcomm[keep], shard_buildings=200)
    assert len(shards) > 1 and all(len(s.buildings) for s in shards)
    assert np.array_equal(np.sort(np.concatenate([s.communities for s in shards])), np.arange(len(cm)))


def test_small_district_is_one_shard(district) -> None:
    cm = district.communities.to_crs(32651)
    (only,) = plan_shards(cm, _bcomm(district), shard_buildings=10 * len(district.buildings))
    assert len(only.communities) == len(cm) and len(only.buildings) == len(district.buildings)


@pytest.mark.slow
def test_sharded_plan_keeps_every_rule_and_ignores_worker_count(district) -> None:
    d = district
    kw = {"streets": d.streets, "compounds": d.compounds, "shard_buildings": 700}
    two = partition_grids(d.buildings, d.communities, workers=2, **kw)
    one = partition_grids(d.buildings, d.communities, workers=1, **kw)
    assert two.report["shards"] > 2
    assert_valid_plan(two, d.buildings, d.communities)
    g1, g2 = one.grids, two.grids
    assert g1[["grid_id", "code", "households"]].equals(g2[["grid_id", "code", "households"]])
    assert all(a.equals(b) for a, b in zip(g1.geometry, g2.geometry, strict=True))
    assert one.assignment.equals(two.assignment)
    # codes numbered once over the district: unique and valid
    assert g2["code"].is_unique
    for code in g2["code"]:
        validate_grid_code(code)
    # stitched cells and report agree with the grids
    assert set(two.building_cell.index) == set(d.buildings["building_id"])
    cell_grid = two.cells.set_index("cell_id")["grid_id"]
    assert np.array_equal(two.building_cell.map(cell_grid).to_numpy(),
                          two.assignment.reindex(two.building_cell.index).to_numpy())
    assert two.report["grids"] == len(g2)
    assert two.report["households"] == int(d.buildings["households"].sum())
    bad = g2[g2["flags"].str.contains("over_max|under_min")]
    assert set(bad["community_id"]) <= set(two.report["infeasible_communities"])


@pytest.mark.slow
def test_sharded_replan_keeps_locked_grid_and_most_buildings(district) -> None:
    d = district
    kw = {"streets": d.streets, "compounds": d.compounds, "shard_buildings": 700, "workers": 2}
    first = partition_grids(d.buildings, d.communities, **kw)
    lock = first.grids["grid_id"].iloc[len(first.grids) // 2]
    b2 = d.buildings.copy()
    rng = np.random.default_rng(3)
    pick = rng.random(len(b2)) < 0.05
    b2.loc[pick, "households"] = np.round(b2.loc[pick, "households"] * rng.uniform(0.7, 1.3, pick.sum()))
    second = partition_grids(b2, d.communities, previous=first, locked=[lock], **kw)
    assert_valid_plan(second, b2, d.communities)
    g1 = first.grids.set_index("grid_id").geometry[lock]
    g2 = second.grids.set_index("grid_id")
    assert g1.equals(g2.geometry[lock]) and bool(g2.loc[lock, "locked"])
    kept = (first.assignment == second.assignment.reindex(first.assignment.index)).mean()
    assert kept >= 0.9


def test_locked_grid_unknown_to_the_previous_plan_is_refused(district) -> None:
    d = district
    prev = pd.Series("C-001", index=d.buildings["building_id"])
    with pytest.raises(LayerError, match="locked grids need previous=PartitionResult"):
        partition_grids(d.buildings, d.communities, previous=prev, locked=["C-001"], shard_buildings=700)


def test_negative_workers_are_refused() -> None:
    with pytest.raises(LayerError, match="workers must be ≥ 0"):
        resolve_workers(-1)
    assert resolve_workers(3) == 3 and resolve_workers(0) >= 1
