"""New sites: exact MCLP equals brute force, greedy never beats it, suggestions cover gaps."""

from __future__ import annotations

from itertools import combinations

import geopandas as gpd
import numpy as np
import pytest
from scipy import sparse
from shapely.geometry import LineString, Point, box

from geo.access import nearest_facility_distances, service_circle_analysis
from geo.errors import LayerError
from geo.maxcover import households_added, solve_max_cover, suggest_sites
from geo.network import walk_graph_from_streets
from tests.geo.access_helpers import CRS, random_layers


def _brute_force(cover: np.ndarray, w: np.ndarray, k: int) -> float:
    return max(w[cover[:, list(c)].any(axis=1)].sum() for c in combinations(range(cover.shape[1]), k))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_exact_equals_brute_force_and_greedy_is_not_better(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cover = rng.random((30, 9)) < 0.2
    w = rng.integers(1, 50, 30).astype(float)
    exact = solve_max_cover(sparse.csc_matrix(cover), w, 3, method="exact")
    greedy = solve_max_cover(sparse.csc_matrix(cover), w, 3, method="greedy")
    assert exact.method == "exact"
    assert exact.covered == pytest.approx(_brute_force(cover, w, 3))
    assert greedy.covered <= exact.covered + 1e-9
    assert exact.lp_bound >= exact.covered - 1e-6
    assert len(exact.chosen) <= 3


def test_greedy_is_suboptimal_on_the_classic_trap() -> None:
    # Greedy takes the big middle set first; the two side sets together cover more.
    cover = np.array([[1, 1, 0], [1, 1, 0], [1, 0, 1], [1, 0, 1], [0, 1, 0], [0, 0, 1]], bool)
    w = np.array([1, 1, 1, 1, 1.5, 1.5])
    exact = solve_max_cover(sparse.csc_matrix(cover), w, 2, method="exact")
    greedy = solve_max_cover(sparse.csc_matrix(cover), w, 2, method="greedy")
    assert exact.covered == pytest.approx(7.0)
    assert greedy.covered < exact.covered
    assert greedy.gap > 0


def test_suggested_sites_cover_uncovered_households_on_a_street() -> None:
    streets = gpd.GeoDataFrame({"street_id": ["a"]}, crs=CRS,
                               geometry=[LineString([(x, 0) for x in range(0, 3001, 100)])])
    xs = np.arange(0, 3001, 100.0)
    buildings = gpd.GeoDataFrame({"building_id": [f"b{int(x)}" for x in xs],
                                  "households": np.where(xs > 2000, 50, 5)},
                                 geometry=[box(x - 3, 7, x + 3, 13) for x in xs], crs=CRS)
    services = gpd.GeoDataFrame({"point_id": ["k"], "category": ["kindergarten"]}, crs=CRS,
                                geometry=[Point(0, 0)])
    graph = walk_graph_from_streets(streets)
    dist = nearest_facility_distances(graph, buildings, services)
    b = buildings.assign(dist_kindergarten=dist["dist_kindergarten"].to_numpy())
    out = suggest_sites(graph, b, category="kindergarten", level_m=300, k=1)
    assert out.method == "exact" and out.gap == pytest.approx(0.0, abs=1e-9)
    x = out.sites.geometry.iloc[0].x
    assert 2300 <= x <= 2800  # five 50-household buildings within 290 m (300 - 10 m leg)
    assert out.newly_covered_households == pytest.approx(250)
    assert out.newly_covered_households == pytest.approx(out.sites["households_in_reach"].sum())
    cands = gpd.GeoDataFrame(geometry=[Point(1000, 5), Point(2600, 5)], crs=CRS)
    picked = suggest_sites(graph, b, category="kindergarten", level_m=300, k=1, candidates=cands)
    assert picked.sites.geometry.iloc[0].x == pytest.approx(2600)
    assert picked.candidates == 2


def test_suggest_sites_on_random_network_and_errors() -> None:
    streets, buildings, services = random_layers(seed=8, n_lines=30)
    res = service_circle_analysis(buildings, streets, services)
    out = suggest_sites(res.graph, res.buildings, category="bus_stop", level_m=300, k=3,
                        n_candidates=200)
    assert len(out.sites) == 3 and out.candidates <= 200
    # what each site adds sums to what they cover together, best site first
    assert out.sites["households_added"].sum() == pytest.approx(out.newly_covered_households)
    assert out.sites["rank"].tolist() == [1, 2, 3]
    assert out.sites["households_added"].is_monotonic_decreasing
    assert (out.sites["households_added"] <= out.sites["households_in_reach"] + 1e-9).all()
    assert 0 < out.newly_covered_households <= out.uncovered_households
    greedy = suggest_sites(res.graph, res.buildings, category="bus_stop", level_m=300, k=3,
                           n_candidates=200, method="greedy")
    assert greedy.method == "greedy"
    assert greedy.newly_covered_households <= out.newly_covered_households + 1e-9
    with pytest.raises(LayerError, match="no 'dist_clinic' column"):
        suggest_sites(res.graph, res.buildings, category="clinic", level_m=300, k=1)
    with pytest.raises(LayerError, match="method must be auto, exact or greedy; got 'best'"):
        solve_max_cover(sparse.csc_matrix(np.eye(2)), np.ones(2), 1, method="best")


def test_households_added_counts_a_shared_household_once() -> None:
    cover = sparse.csc_matrix(np.array([[1, 0], [1, 1], [0, 1]], bool))
    assert households_added(cover, np.array([5.0, 3.0, 1.0])).tolist() == [8.0, 1.0]
    assert households_added(cover, np.array([1.0, 3.0, 5.0])).tolist() == [1.0, 8.0]
    assert households_added(sparse.csc_matrix((3, 0)), np.ones(3)).tolist() == []
