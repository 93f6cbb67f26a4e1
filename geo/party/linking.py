"""Link party-member centre households (党员中心户) to the households they look after.

Each centre looks after ``party_link_min``–``party_link_max`` households of its own grid,
chosen by the shortest walk (straight line where the walk network cannot say, labelled as
such). Per grid this is a capacitated assignment solved exactly: every centre is expanded into
slots (the first ``min`` slots carry a large bonus, so minimums are met wherever possible),
every household may instead take an "unlinked" slot at a prohibitive cost, and
:func:`scipy.optimize.linear_sum_assignment` finds the optimum. Priorities, lexicographic:
link as many households as possible, then fill as many minimum slots as possible, then
minimise total walking distance. Links fixed by hand are kept and use up their centre's
capacity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from geo.settings import DEFAULTS

__all__ = ["UNLINKED_COST", "MIN_BONUS", "FORBIDDEN_COST", "LinkResult", "assign_households", "link_centres"]

#: Cost of leaving a household unlinked (dominates every distance and bonus).
UNLINKED_COST = 1e9
#: Bonus of a link that fills one of a centre's minimum slots (dominates every distance).
MIN_BONUS = 1e6
#: Cost of a link beyond the walk limit (never chosen over leaving the household unlinked).
FORBIDDEN_COST = 1e12


@dataclass(frozen=True)
class LinkResult:
    """Links and what is left to fix.

    Attributes
    ----------
    links : DataFrame
        ``household``, ``centre``, ``grid``, ``distance_m``, ``method`` (walk, straight or
        fixed) — one row per linked household.
    unlinked : DataFrame
        ``household``, ``grid``: households no centre of their grid can take.
    centres : DataFrame
        ``centre``, ``grid``, ``linked``, ``status`` (ok, under: fewer than the minimum,
        overloaded: more fixed links than the maximum).
    grids : DataFrame
        ``grid``, ``households``, ``centres``, ``linked``, ``unlinked``, ``centres_needed``
        (more centre households the grid needs so that everybody can be linked).
    """

    links: pd.DataFrame
    unlinked: pd.DataFrame
    centres: pd.DataFrame
    grids: pd.DataFrame


def assign_households(cost: np.ndarray, *, capacity: np.ndarray, minimum: np.ndarray,
                      max_cost: float = math.inf) -> np.ndarray:
    """Optimal centre of each household (``-1`` = unlinked) for a households × centres *cost*.

    Parameters
    ----------
    cost : ndarray, shape (h, c)
        Distance of household *i* from centre *j* (m).
    capacity, minimum : ndarray of int, shape (c,)
        Free slots of each centre, and how many of them should be filled at least.
    max_cost : float
        Links costing more are not allowed.

    Examples
    --------
    Greedy nearest-first would give household 0 centre 0 and leave household 1 unlinked:

    >>> assign_households(np.array([[1.0, 2.0], [1.0, np.inf]]), capacity=np.array([1, 1]),
    ...                   minimum=np.array([0, 0])).tolist()
    [1, 0]
    """
    h, c = cost.shape
    capacity = np.maximum(np.asarray(capacity, dtype=int), 0)
    minimum = np.minimum(np.maximum(np.asarray(minimum, dtype=int), 0), capacity)
    if h == 0:
        return np.zeros(0, dtype=int)
    slot_centre = np.repeat(np.arange(c), capacity)
    first = np.arange(len(slot_centre)) - np.repeat(np.cumsum(capacity) - capacity, capacity)
    bonus = np.where(first < minimum[slot_centre], MIN_BONUS, 0.0)
    base = np.where(np.isfinite(cost) & (cost <= max_cost), cost, FORBIDDEN_COST)
    matrix = np.hstack([base[:, slot_centre] - bonus, np.full((h, h), UNLINKED_COST)])
    rows, cols = linear_sum_assignment(matrix)
    out = np.full(h, -1, dtype=int)
    real = (cols < len(slot_centre))
    chosen = slot_centre[cols[real]]
    allowed = base[rows[real], chosen] < FORBIDDEN_COST
    out[rows[real][allowed]] = chosen[allowed]
    return out


def _grid_links(hh: pd.DataFrame, ce: pd.DataFrame, dist: np.ndarray, method: np.ndarray, fixed_count: np.ndarray,
                *, min_links: int, max_links: int, max_walk_m: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    capacity = max_links - fixed_count
    minimum = min_links - fixed_count
    pick = assign_households(dist, capacity=capacity, minimum=minimum, max_cost=max_walk_m)
    ok = pick >= 0
    rows = np.flatnonzero(ok)
    links = pd.DataFrame({"household": hh["household"].to_numpy()[ok], "centre": ce["centre"].to_numpy()[pick[ok]],
                          "grid": hh["grid"].to_numpy()[ok], "distance_m": dist[rows, pick[ok]],
                          "method": method[rows, pick[ok]]})
    return links, hh.loc[~ok, ["household", "grid"]]


def link_centres(households: pd.DataFrame, centres: pd.DataFrame, distance: object, *,
                 fixed: pd.DataFrame | None = None, min_links: int = DEFAULTS["party_link_min"],
                 max_links: int = DEFAULTS["party_link_max"],
                 max_walk_m: float = DEFAULTS["party_link_max_walk_m"]) -> LinkResult:
    """Link every household to a centre household of its grid (see the module docstring).

    Parameters
    ----------
    households : DataFrame
        ``household`` (id), ``grid``, ``building``: every household, centres included
        (they are not linked to anybody).
    centres : DataFrame
        ``centre`` (a household id), ``grid``, ``building``.
    distance : callable
        ``distance(centre_buildings, household_buildings) -> (metres, method)``: two arrays
        of shape (c, h); method is ``"walk"`` or ``"straight"`` per pair.
    fixed : DataFrame, optional
        ``household``, ``centre``: links fixed by hand (kept as they are).
    min_links, max_links, max_walk_m
        Households per centre, and the longest link allowed (m).
    """
    if min_links < 0 or max_links < max(1, min_links):
        raise ValueError(f"link_centres: need 0 <= min_links <= max_links and max_links >= 1; "
                         f"got min {min_links}, max {max_links}")
    fixed = fixed if fixed is not None else pd.DataFrame({"household": [], "centre": []})
    fixed = fixed[fixed["centre"].isin(centres["centre"])]
    held = set(fixed["household"]) | set(centres["centre"])
    free = households[~households["household"].isin(held)]
    fixed_n = fixed.groupby("centre").size()
    links, unlinked = [], []
    for grid, ce in centres.groupby("grid", sort=True):
        hh = free[free["grid"] == grid].reset_index(drop=True)
        ce = ce.reset_index(drop=True)
        dist, method = distance(ce["building"].to_numpy(), hh["building"].to_numpy())  # type: ignore[operator]
        lk, un = _grid_links(hh, ce, np.asarray(dist, dtype=float).T, np.asarray(method).T,
                             fixed_n.reindex(ce["centre"]).fillna(0).astype(int).to_numpy(),
                             min_links=min_links, max_links=max_links, max_walk_m=max_walk_m)
        links.append(lk)
        unlinked.append(un)
    unlinked.append(free.loc[~free["grid"].isin(centres["grid"]), ["household", "grid"]])
    kept = fixed.merge(households[["household", "grid"]], on="household").assign(distance_m=np.nan, method="fixed")
    all_links = pd.concat([kept[["household", "centre", "grid", "distance_m", "method"]], *links], ignore_index=True)
    all_unlinked = pd.concat(unlinked, ignore_index=True)
    return LinkResult(all_links, all_unlinked, *_summaries(households, centres, all_links, all_unlinked,
                                                           min_links=min_links, max_links=max_links))


def _summaries(households: pd.DataFrame, centres: pd.DataFrame, links: pd.DataFrame, unlinked: pd.DataFrame, *,
               min_links: int, max_links: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    counts = links.groupby("centre").size()
    per_centre = centres[["centre", "grid"]].assign(
        linked=counts.reindex(centres["centre"]).fillna(0).astype(int).to_numpy())
    per_centre["status"] = np.select([per_centre["linked"] > max_links, per_centre["linked"] < min_links],
                                     ["overloaded", "under"], "ok")
    grids = pd.DataFrame({"households": households.groupby("grid").size(),
                          "centres": centres.groupby("grid").size(),
                          "linked": links.groupby("grid").size(),
                          "unlinked": unlinked.groupby("grid").size()}).fillna(0).astype(int)
    grids["centres_needed"] = np.ceil(grids["unlinked"] / max_links).astype(int)
    return per_centre, grids.rename_axis("grid").reset_index()
