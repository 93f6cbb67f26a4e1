"""Plan one community: exclusive and oversize units first, then every connected piece."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from geo.partition.cells import Tessellation
from geo.partition.repair import repair
from geo.partition.solve import Piece, choose_k, metis_labels

__all__ = ["CommunityPlan", "plan_community"]

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


def _local_edges(tess: Tessellation, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    local = np.full(len(tess.node_comm), -1)
    local[nodes] = np.arange(len(nodes))
    m = (local[tess.edge_u] >= 0) & (local[tess.edge_v] >= 0)
    return local[tess.edge_u[m]], local[tess.edge_v[m]], tess.edge_cost[m]


def _initial(piece: Piece, k: int, prev: np.ndarray | None, seed: int) -> np.ndarray:
    if prev is not None and (prev >= 0).any():
        _, lab = np.unique(np.where(prev >= 0, prev, -1), return_inverse=True)
        lab = lab.ravel() - (1 if (prev < 0).any() else 0)
        return lab
    return metis_labels(piece, k, seed=seed)


def plan_community(tess: Tessellation, ci: int, *, lo: int, hi: int, target: int, seed: int,
                   prev: np.ndarray | None = None) -> CommunityPlan:
    """Grids of community *ci*; *prev* holds a previous grid label per tessellation node (-1 = none)."""
    nodes = np.flatnonzero(tess.node_comm == ci)
    plan = CommunityPlan(nodes, np.full(len(nodes), -1))
    u, v, cost = _local_edges(tess, nodes)
    w = tess.node_households[nodes]
    special = tess.node_exclusive[nodes] | (w > hi)
    for i in np.flatnonzero(special):
        excl = bool(tess.node_exclusive[nodes[i]])
        plan.labels[i] = plan.new_grid(["exclusive"] if excl else ["oversize_unit"], excl)
        if not excl:
            plan.reasons.append(f"one unit holds {int(w[i])} households, more than {hi}")
    rest = ~special
    m = rest[u] & rest[v]
    n = len(nodes)
    _, comp = connected_components(coo_matrix((np.ones(m.sum()), (u[m], v[m])), shape=(n, n)), directed=False)
    for c in np.unique(comp[rest]):
        idx = np.flatnonzero(rest & (comp == c))
        _plan_piece(plan, idx, u, v, cost, w, lo=lo, hi=hi, target=target, seed=seed,
                    prev=None if prev is None else prev[nodes[idx]])
    return plan


def _plan_piece(plan: CommunityPlan, idx: np.ndarray, u: np.ndarray, v: np.ndarray, cost: np.ndarray,
                w: np.ndarray, *, lo: int, hi: int, target: int, seed: int, prev: np.ndarray | None) -> None:
    h = int(w[idx].sum())
    if h == 0:
        nb = np.r_[v[np.isin(u, idx)], u[np.isin(v, idx)]]
        nb = nb[plan.labels[nb] >= 0]
        if len(nb):
            plan.labels[idx] = plan.labels[nb].min()
        else:
            plan.labels[idx] = plan.new_grid(["empty"])
        return
    k, why = choose_k(h, lo, hi, target)
    local = np.full(len(w), -1)
    local[idx] = np.arange(len(idx))
    m = (local[u] >= 0) & (local[v] >= 0)
    piece = Piece(w[idx], local[u[m]], local[v[m]], cost[m])
    lab = _initial(piece, k, prev, seed)
    lab = repair(piece, lab, lo=lo, hi=hi, target=target, seed=seed)
    tot = np.bincount(lab, weights=piece.weight)
    base = len(plan.flags)
    for g in range(lab.max() + 1):
        f = []
        if tot[g] > hi:
            f.append("over_max")
        elif tot[g] < lo:
            f.append("under_min")
        plan.new_grid(f)
    plan.labels[idx] = base + lab
    if why:
        plan.reasons.append(why)
    elif ((tot > hi) | (tot < lo)).any():
        plan.reasons.append(f"{int(((tot > hi) | (tot < lo)).sum())} grid(s) left out of {lo}–{hi}: "
                            "indivisible buildings/compounds leave no contiguous split")
