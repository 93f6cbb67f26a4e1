"""Centre-household links: bounds, same grid, exact optimum (MILP), greedy's failure, fixed links, walk distances."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import Bounds, LinearConstraint, milp
from shapely.geometry import LineString, Point

from geo.network import walk_graph_from_streets
from geo.party.distance import building_distance
from geo.party.linking import MIN_BONUS, UNLINKED_COST, assign_households, link_centres


def _objective(cost: np.ndarray, pick: np.ndarray, minimum: np.ndarray) -> float:
    linked = pick >= 0
    counts = np.bincount(pick[linked], minlength=cost.shape[1])
    return float(cost[np.flatnonzero(linked), pick[linked]].sum() + UNLINKED_COST * (~linked).sum()
                 - MIN_BONUS * np.minimum(counts, minimum).sum())


def _milp_objective(cost: np.ndarray, capacity: np.ndarray, minimum: np.ndarray, max_cost: float) -> float:
    """The same lexicographic objective solved as a MIP by HiGHS: x (h*c), unlinked (h), filled minimum (c)."""
    h, c = cost.shape
    allowed = (np.isfinite(cost) & (cost <= max_cost)).ravel()
    n = h * c + h + c
    obj = np.concatenate([np.where(allowed, np.nan_to_num(cost.ravel(), posinf=0), 0), np.full(h, UNLINKED_COST),
                          np.full(c, -MIN_BONUS)])
    one = np.zeros((h, n))
    for i in range(h):
        one[i, i * c:(i + 1) * c] = 1
        one[i, h * c + i] = 1
    cap = np.zeros((c, n))
    fill = np.zeros((c, n))
    for j in range(c):
        cap[j, j:h * c:c] = 1
        fill[j, j:h * c:c] = -1
        fill[j, h * c + h + j] = 1
    upper = np.concatenate([np.where(allowed, 1, 0), np.ones(h), np.minimum(minimum, capacity)])
    res = milp(obj, integrality=np.ones(n), bounds=Bounds(np.zeros(n), upper),
               constraints=[LinearConstraint(one, 1, 1), LinearConstraint(cap, 0, capacity),
                            LinearConstraint(fill, -np.inf, 0)])
    assert res.success, res.message
    return float(res.fun)


@pytest.mark.parametrize("seed", range(12))
def test_assignment_equals_the_exact_mip_objective_and_respects_capacity(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, c = int(rng.integers(3, 16)), int(rng.integers(1, 4))
    cost = rng.uniform(10, 900, (h, c)).round(1)
    cost[rng.random((h, c)) < 0.25] = np.inf  # unreachable pairs (adversarial: some households reach few centres)
    capacity, minimum = rng.integers(1, 6, c), rng.integers(0, 4, c)
    pick = assign_households(cost, capacity=capacity, minimum=minimum, max_cost=700.0)
    counts = np.bincount(pick[pick >= 0], minlength=c)
    assert (counts <= capacity).all()
    assert all(cost[i, j] <= 700.0 for i, j in enumerate(pick) if j >= 0)
    assert _objective(cost, pick, minimum) == pytest.approx(_milp_objective(cost, capacity, minimum, 700.0), abs=1e-3)


def test_greedy_nearest_first_would_leave_a_household_unlinked() -> None:
    # Household 0 is nearest to centre 0, but only centre 0 can reach household 1.
    cost = np.array([[100.0, 300.0], [200.0, np.inf]])
    greedy = [int(np.argmin(cost[0])), -1]  # centre 0 full after household 0
    pick = assign_households(cost, capacity=np.array([1, 1]), minimum=np.array([0, 0]))
    assert greedy == [0, -1] and pick.tolist() == [1, 0]


def _frame(n: int, grid: str, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"household": [f"h{i}" for i in range(start, start + n)], "grid": grid,
                         "building": [f"b{i}" for i in range(start, start + n)]})


def _line_distance(positions: dict[str, float]):  # type: ignore[no-untyped-def]
    def distance(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = np.abs(np.array([positions[x] for x in a])[:, None] - np.array([positions[x] for x in b])[None, :])
        return d, np.full(d.shape, "straight", dtype=object)
    return distance


def test_links_stay_in_the_grid_within_bounds_and_report_what_is_missing() -> None:
    rng = np.random.default_rng(3)
    households = pd.concat([_frame(60, "G1"), _frame(20, "G2", 60), _frame(7, "G3", 80)], ignore_index=True)
    positions = dict(zip(households["building"], rng.uniform(0, 500, len(households)), strict=True))
    centres = pd.DataFrame({"centre": ["h0", "h1", "h2", "h60"], "grid": ["G1", "G1", "G1", "G2"],
                            "building": ["b0", "b1", "b2", "b60"]})
    result = link_centres(households, centres, _line_distance(positions), min_links=5, max_links=15,
                          max_walk_m=10_000)
    grid_of = dict(zip(households["household"], households["grid"], strict=True))
    assert (result.links["household"].map(grid_of) == result.links["centre"].map(grid_of)).all()
    assert not set(result.links["household"]) & set(centres["centre"])
    by = result.centres.set_index("centre")
    assert (by.loc[["h0", "h1", "h2"], "linked"] == 15).all() and by.loc["h60", "linked"] == 15
    grids = result.grids.set_index("grid")
    # G1: 57 households, 45 places -> 12 unlinked, 1 more centre; G2: 19 - 15 = 4, 1 more; G3: no centre, 7 -> 1.
    assert grids.loc["G1", "unlinked"] == 12 and grids.loc["G1", "centres_needed"] == 1
    assert grids.loc["G2", "unlinked"] == 4 and grids.loc["G3", "unlinked"] == 7
    assert grids.loc["G3", "centres_needed"] == 1 and grids.loc["G3", "centres"] == 0
    assert len(result.unlinked) == 23 and set(result.links["method"]) == {"straight"}


def test_minimums_are_met_by_balancing_rather_than_nearest() -> None:
    households = _frame(12, "G")
    positions = {f"b{i}": float(i) for i in range(11)} | {"b11": 1000.0}
    centres = pd.DataFrame({"centre": ["h0", "h11"], "grid": "G", "building": ["b0", "b11"]})
    result = link_centres(households, centres, _line_distance(positions), min_links=5, max_links=15,
                          max_walk_m=5000)
    counts = result.centres.set_index("centre")["linked"]
    assert counts["h11"] == 5 and counts["h0"] == 5 and (result.centres["status"] == "ok").all()


def test_fixed_links_are_kept_and_overloaded_centres_reported() -> None:
    households = _frame(20, "G")
    positions = {f"b{i}": float(i) for i in range(20)}
    centres = pd.DataFrame({"centre": ["h0", "h19"], "grid": "G", "building": ["b0", "b19"]})
    fixed = pd.DataFrame({"household": ["h1", "h2"], "centre": ["h19", "h19"]})
    result = link_centres(households, centres, _line_distance(positions), fixed=fixed, min_links=1, max_links=2,
                          max_walk_m=5000)
    links = result.links.set_index("household")
    assert links.loc["h1", "centre"] == "h19" and links.loc["h1", "method"] == "fixed"
    assert (result.links["centre"] == "h19").sum() == 2  # the fixed links fill h19
    assert result.centres.set_index("centre").loc["h19", "status"] == "ok"
    over = link_centres(households, centres, _line_distance(positions), fixed=fixed, min_links=0, max_links=1,
                        max_walk_m=5000)
    assert over.centres.set_index("centre").loc["h19", "status"] == "overloaded"


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="need 0 <= min_links <= max_links"):
        link_centres(_frame(1, "G"), _frame(0, "G").rename(columns={"household": "centre"}), _line_distance({}),
                     min_links=9, max_links=5)


def test_walk_distance_follows_streets_and_falls_back_to_a_labelled_straight_line() -> None:
    # A U-shaped street: buildings at the two tips are 100 m apart in a line, 500 m on foot.
    streets = gpd.GeoDataFrame({"street_id": ["s1", "s2", "s3"]},
                               geometry=[LineString([(0, 0), (0, 200)]), LineString([(0, 200), (100, 200)]),
                                         LineString([(100, 200), (100, 0)])], crs=32651)
    buildings = gpd.GeoDataFrame({"building_id": ["a", "b", "far"]},
                                 geometry=[Point(5, 0), Point(95, 0), Point(5000, 5000)], crs=32651)
    distance = building_distance(buildings, walk_graph_from_streets(streets), limit_m=2000, max_snap_m=50)
    d, method = distance(np.array(["a"]), np.array(["b", "far", "a"]))
    assert d[0, 0] == pytest.approx(5 + 200 + 100 + 200 + 5) and method[0, 0] == "walk"
    assert method[0, 1] == "straight" and d[0, 1] == pytest.approx(np.hypot(4995, 5000))
    assert d[0, 2] == 0.0
    short = building_distance(buildings, walk_graph_from_streets(streets), limit_m=300, max_snap_m=50)
    assert np.isinf(short(np.array(["a"]), np.array(["b"]))[0][0, 0])
