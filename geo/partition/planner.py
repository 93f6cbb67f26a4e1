"""Plan one community: exclusive and oversize units first, then every connected piece.

Each piece is planned on *coarse* units first (whole compounds, small whole blocks): METIS
for the start, :func:`~geo.partition.repair.balance` for the bounds, then
:func:`~geo.partition.repair.smooth`. Only where no grid count reaches the bounds that
way is the piece refined to single buildings (their households, ~1–150, make the bounds
easy to meet) and balanced again; grids that then hold part of a compound are flagged
``compound_split``. Last, :func:`~geo.partition.repair.consolidate` hands whole parts of
street blocks to the neighbouring grid that shares the block, so boundaries run on streets;
:func:`~geo.partition.repair.absorb_empty` gives runs of units without households (offices,
empty blocks) to the grid that cuts least, in every piece and then across the community.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from geo.partition.cells import Tessellation
from geo.partition.repair import (
    absorb_empty,
    balance,
    components,
    consolidate,
    fix_contiguity,
    smooth,
    violation,
)
from geo.partition.solve import Piece, choose_k, metis_labels
from geo.settings import DEFAULTS

__all__ = ["Bounds", "CommunityPlan", "NodeLabels", "plan_community", "plan_communities"]

log = logging.getLogger(__name__)


@dataclass
class CommunityPlan:
    """Node → local grid labels of one community, with per-grid flags and reasons."""

    nodes: np.ndarray
    labels: np.ndarray
    flags: list[list[str]] = field(default_factory=list)
    exclusive: list[bool] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def new_grid(self, flags: list[str], exclusive: bool = False) -> int:
        self.flags.append(flags)
        self.exclusive.append(exclusive)
        return len(self.flags) - 1


@dataclass(frozen=True)
class Bounds:
    """Household bounds and solver options of a plan (``budget``: unit moves per grid)."""

    lo: int
    hi: int
    target: int
    seed: int
    budget: int = DEFAULTS["partition_balance_budget"]  # unit moves per grid (setting partition_balance_budget)


def _k_options(h: float, b: Bounds) -> list[int]:
    """Feasible grid counts for *h* households, nearest to the target first (at most 3)."""
    k0, why = choose_k(int(round(h)), b.lo, b.hi, b.target)
    if why:
        return [k0]
    kmin, kmax = -(-int(round(h)) // b.hi), int(round(h)) // b.lo
    return sorted(range(kmin, kmax + 1), key=lambda k: (abs(k - h / b.target), k))[:3]


def _fill_k(piece: Piece, lab: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Split the heaviest grids in two until there are *k* (METIS may leave parts empty)."""
    for _ in range(k):
        tot = np.bincount(lab, weights=piece.weight)
        if len(tot) >= k:
            break
        g = int(np.argmax(tot))
        nodes = np.flatnonzero(lab == g)
        if len(nodes) < 2:
            break
        half = metis_labels(piece.sub(nodes), 2, seed=seed)
        lab = lab.copy()
        lab[nodes[half == 1]] = len(tot)
        lab = fix_contiguity(piece, lab)
    return lab


def _solve(piece: Piece, k: int, b: Bounds, start: np.ndarray | None = None,
           budget: int | None = None) -> tuple[np.ndarray, float]:
    """Labels for *k* grids (or from *start*) balanced into the bounds; also their violation.

    The repair's search budget (unit moves) is ``partition_balance_budget`` per grid,
    for at least 8 grids, unless given.
    """
    lab = metis_labels(piece, k, seed=b.seed) if start is None else start
    lab = _fill_k(piece, fix_contiguity(piece, lab), k, b.seed)
    if budget is None:
        budget = b.budget * max(int(lab.max()) + 1 if len(lab) else 0, 8)
    lab = balance(piece, lab, lo=b.lo, hi=b.hi, budget=budget)
    return lab, float(violation(np.bincount(lab, weights=piece.weight), b.lo, b.hi).sum())


def _plan_labels(piece: Piece, group: np.ndarray, b: Bounds, prev: np.ndarray | None) -> np.ndarray:
    """Grid label of every node of *piece*."""
    if prev is not None and (prev >= 0).any():
        _, start = np.unique(np.where(prev >= 0, prev, -1), return_inverse=True)
        start = start.ravel() - (1 if (prev < 0).any() else 0)
        lab, _ = _solve(piece, 0, b, start)
        return smooth(piece, lab, lo=b.lo, hi=b.hi)
    coarse = piece.contract(group)
    if choose_k(int(round(piece.weight.sum())), b.lo, b.hi, b.target)[1]:
        lab_c, _ = _solve(coarse, _k_options(piece.weight.sum(), b)[0], b, budget=20)
        return smooth(coarse, lab_c, lo=b.lo, hi=b.hi)[group]
    best: tuple[float, np.ndarray, int] | None = None
    for k in _k_options(piece.weight.sum(), b):
        lab_c, bad = _solve(coarse, k, b, budget=40)
        if bad == 0:
            return smooth(coarse, lab_c, lo=b.lo, hi=b.hi)[group]
        if best is None or bad < best[0]:
            best = (bad, lab_c, k)
    assert best is not None
    fine_best: tuple[float, np.ndarray] | None = None
    for k in [best[2]] + [k for k in _k_options(piece.weight.sum(), b) if k != best[2]]:
        start = best[1][group] if k == best[2] else metis_labels(piece, k, seed=b.seed)
        lab, bad = _solve(piece, k, b, start)
        if fine_best is None or bad < fine_best[0]:
            fine_best = (bad, lab)
        if bad == 0:
            break
    assert fine_best is not None
    return smooth(piece, fine_best[1], lo=b.lo, hi=b.hi)


def plan_community(tess: Tessellation, nodes: np.ndarray, edges: np.ndarray, *, bounds: Bounds,
                   previous: np.ndarray | None = None) -> CommunityPlan:
    """Grids of one community from its sorted *nodes* and its *edges* (tessellation indices).

    *previous* holds a previous grid label per tessellation node (-1 = none).
    """
    b = bounds
    hi = b.hi
    plan = CommunityPlan(nodes, np.full(len(nodes), -1))
    u, v = np.searchsorted(nodes, tess.edge_u[edges]), np.searchsorted(nodes, tess.edge_v[edges])
    cost = tess.edge_cost[edges]
    off = tess.edge_len[edges] - tess.edge_street[edges]
    w = tess.node_households[nodes].astype(np.float64)
    special = tess.node_exclusive[nodes] | (w > hi)
    for i in np.flatnonzero(special):
        excl = bool(tess.node_exclusive[nodes[i]])
        plan.labels[i] = plan.new_grid(["exclusive"] if excl else ["oversize_unit"], excl)
        if not excl:
            plan.reasons.append(f"one unit holds {int(w[i])} households, more than {hi}")
    rest = ~special
    m = rest[u] & rest[v]
    n = len(nodes)
    comp = components(n, u[m], v[m])
    for c in np.unique(comp[rest]):
        idx = np.flatnonzero(rest & (comp == c))
        _plan_piece(plan, tess, idx, (u, v, cost, off), w, b,
                    prev=None if previous is None else previous[nodes[idx]])
    # units without households may also join an oversize unit's grid (never an exclusive one)
    closed = frozenset(int(g) for g in np.flatnonzero(plan.exclusive))
    plan.labels = absorb_empty(Piece(np.where(special, 1.0, w), u, v, cost, off), plan.labels, closed=closed)
    return plan


def _split_compounds(tess: Tessellation, nodes: np.ndarray, lab: np.ndarray, hi: int) -> np.ndarray:
    """Grids (local labels) holding part of a compound that fits in one grid but was cut."""
    comp = tess.node_compound[nodes]
    has = comp >= 0
    if not has.any():
        return np.empty(0, dtype=np.int64)
    ch: dict[int, int] = {}
    for c, h in zip(comp[has].tolist(), tess.node_households[nodes][has].tolist(), strict=True):
        ch[c] = ch.get(c, 0) + h
    pairs = np.unique(np.column_stack([comp[has], lab[has]]), axis=0)
    cnt = np.bincount(np.unique(pairs[:, 0], return_inverse=True)[1].ravel())
    multi = np.unique(pairs[:, 0])[cnt > 1]
    fits = [c for c in multi.tolist() if ch[c] <= hi]
    return np.unique(pairs[np.isin(pairs[:, 0], fits), 1])


def _refine(piece: Piece, lab: np.ndarray, b: Bounds) -> np.ndarray:
    """Boundaries onto the streets: whole block parts, units without households, single units.

    ``consolidate`` first; when ``absorb_empty`` then moves anything, it frees moves that
    ``smooth`` (on single units now, not the coarse ones) and a second ``consolidate`` take
    (Shanghai Bund, six seeds: street share 0.786 -> 0.790, mean Polsby–Popper 0.504 -> 0.514
    with the community-level pass of :func:`plan_community`). Pieces where it moves
    nothing pay for one ``absorb_empty`` only.
    """
    lab = consolidate(piece, lab, lo=b.lo, hi=b.hi)
    moved = absorb_empty(piece, lab)
    if np.array_equal(moved, lab):
        return lab
    lab = consolidate(piece, smooth(piece, moved, lo=b.lo, hi=b.hi), lo=b.lo, hi=b.hi)
    return absorb_empty(piece, lab)


def _plan_piece(plan: CommunityPlan, tess: Tessellation, idx: np.ndarray,
                edges: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], w: np.ndarray, b: Bounds, *,
                prev: np.ndarray | None) -> None:
    u, v, cost, off = edges
    h = float(w[idx].sum())
    if h == 0:
        nb = np.r_[v[np.isin(u, idx)], u[np.isin(v, idx)]]
        nb = nb[plan.labels[nb] >= 0]
        plan.labels[idx] = plan.labels[nb].min() if len(nb) else plan.new_grid(["empty"])
        return
    _, why = choose_k(int(round(h)), b.lo, b.hi, b.target)
    local = np.full(len(w), -1)
    local[idx] = np.arange(len(idx))
    m = (local[u] >= 0) & (local[v] >= 0)
    piece = Piece(w[idx], local[u[m]], local[v[m]], cost[m], off[m])
    nodes = plan.nodes[idx]
    _, group = np.unique(tess.node_group[nodes], return_inverse=True)
    lab = _refine(piece, _plan_labels(piece, group.ravel(), b, prev), b)
    _, lab = np.unique(lab, return_inverse=True)
    lab = lab.ravel()
    tot = np.bincount(lab, weights=piece.weight)
    split = set(_split_compounds(tess, nodes, lab, b.hi).tolist())
    base = len(plan.flags)
    for g in range(len(tot)):
        f = ["over_max"] if tot[g] > b.hi else ["under_min"] if tot[g] < b.lo else []
        plan.new_grid(f + (["compound_split"] if g in split else []))
    plan.labels[idx] = base + lab
    if why and len(idx) < len(plan.nodes):
        plan.reasons.append(f"a part cut off from the rest of the community (by exclusive grids, oversize "
                            f"buildings or a gap in its outline): {why}")
    elif why:
        plan.reasons.append(why)
    elif ((tot > b.hi) | (tot < b.lo)).any():
        plan.reasons.append(f"{int(((tot > b.hi) | (tot < b.lo)).sum())} grid(s) left out of {b.lo}–{b.hi}: "
                            "indivisible buildings leave no contiguous split")


@dataclass(frozen=True)
class NodeLabels:
    """Grid of every tessellation node, and what is known of every grid.

    Attributes
    ----------
    node_grid : (M,) int array, grid index of every node (-1 outside every community).
    grid_community : (G,) int array, community index of every grid.
    grid_flags : list of list of str, per grid (``over_max``, ``exclusive``, …).
    grid_exclusive : list of bool, per grid.
    reasons : dict of int to list of str
        Why a community (index) could not meet the rules; only communities with a grid.
    """

    node_grid: np.ndarray
    grid_community: np.ndarray
    grid_flags: list[list[str]]
    grid_exclusive: list[bool]
    reasons: dict[int, list[str]]


def plan_communities(tess: Tessellation, n_communities: int, *, bounds: Bounds, previous: np.ndarray | None,
                     say: Callable[[str, float], None]) -> NodeLabels:
    """Plan every community of *tess* on its own (:func:`plan_community`), grids numbered in order."""
    node_grid = np.full(len(tess.node_comm), -1)
    community: list[int] = []
    flags: list[list[str]] = []
    exclusive: list[bool] = []
    reasons: dict[int, list[str]] = {}
    norder = np.argsort(tess.node_comm, kind="stable")
    nstart = np.searchsorted(tess.node_comm[norder], np.arange(n_communities + 1))
    ecomm = tess.node_comm[tess.edge_u]
    eorder = np.argsort(ecomm, kind="stable")
    estart = np.searchsorted(ecomm[eorder], np.arange(n_communities + 1))
    for ci in range(n_communities):
        plan = plan_community(tess, norder[nstart[ci]:nstart[ci + 1]], eorder[estart[ci]:estart[ci + 1]],
                              bounds=bounds, previous=previous)
        node_grid[plan.nodes] = len(flags) + plan.labels
        community += [ci] * len(plan.flags)
        flags += plan.flags
        exclusive += plan.exclusive
        if plan.flags and plan.reasons:
            reasons[ci] = list(dict.fromkeys(plan.reasons))
        if ci % 50 == 0:
            say("partition", 0.4 + 0.4 * ci / max(n_communities, 1))
    return NodeLabels(node_grid, np.asarray(community, dtype=np.int64), flags, exclusive, reasons)
