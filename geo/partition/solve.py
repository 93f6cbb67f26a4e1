"""Split one connected piece of a community's node graph into grids of bounded households.

Feasibility first (:func:`choose_k`), then METIS with the contiguous option for the
initial plan (:func:`metis_labels`), and a balanced spanning-tree split
(:func:`tree_labels`) that guarantees contiguity and bounds whenever it finds a cut, used
by the repair step on regions METIS left out of range.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pymetis
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import depth_first_order, minimum_spanning_tree

__all__ = ["Piece", "choose_k", "metis_labels", "tree_labels"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Piece:
    """A connected sub-problem: local node weights and undirected edges (u < v)."""

    weight: np.ndarray
    u: np.ndarray
    v: np.ndarray
    cost: np.ndarray

    @property
    def n(self) -> int:
        return len(self.weight)

    def csr(self, data: np.ndarray | None = None) -> csr_matrix:
        d = self.cost if data is None else data
        return coo_matrix((np.r_[d, d], (np.r_[self.u, self.v], np.r_[self.v, self.u])),
                          shape=(self.n, self.n)).tocsr()

    def sub(self, nodes: np.ndarray) -> Piece:
        local = np.full(self.n, -1)
        local[nodes] = np.arange(len(nodes))
        m = (local[self.u] >= 0) & (local[self.v] >= 0)
        return Piece(self.weight[nodes], local[self.u[m]], local[self.v[m]], self.cost[m])


def choose_k(total: int, lo: int, hi: int, target: int) -> tuple[int, str]:
    """Number of grids for *total* households and why it cannot be in range ("" if it can).

    Examples
    --------
    >>> choose_k(1200, 300, 500, 400)
    (3, '')
    >>> choose_k(550, 300, 500, 400)[0]
    1
    """
    if total <= 0:
        return 1, "no households"
    kmin, kmax = math.ceil(total / hi), total // lo
    if kmin <= kmax:
        return min(max(round(total / target), kmin), kmax), ""
    over = total - max(kmax, 1) * hi  # k = kmax grids, each too full
    under = kmin * lo - total  # k = kmin grids, each too empty
    k = max(kmax, 1) if over <= under else kmin
    reason = (f"{total} households cannot form grids of {lo}–{hi}: "
              f"{max(kmax, 1)} grid(s) hold more than {hi} each on average, "
              f"{kmin} grid(s) fewer than {lo}")
    return k, reason


def metis_labels(piece: Piece, k: int, *, seed: int) -> np.ndarray:
    """METIS k-way partition with contiguous parts (edge weight = cut cost)."""
    if k <= 1 or piece.n <= k:
        return np.arange(piece.n) if piece.n <= k else np.zeros(piece.n, dtype=np.int64)
    g = piece.csr(np.maximum(np.round(piece.cost), 1))
    ew = np.maximum(g.data, 1).astype(np.int64)
    vw = np.maximum(piece.weight, 0).astype(np.int64)
    opts = pymetis.Options(contig=1, seed=seed, ufactor=30)
    try:
        _, parts = pymetis.part_graph(k, adjacency=pymetis.CSRAdjacency(g.indptr, g.indices),
                                      vweights=vw, eweights=ew, options=opts, recursive=False)
    except Exception as exc:  # pragma: no cover - METIS rejects odd graphs
        log.warning("METIS failed (%s); using a spanning-tree split", exc)
        lab = tree_labels(piece, k, lo=0, hi=int(piece.weight.sum()), seed=seed)
        return lab if lab is not None else np.zeros(piece.n, dtype=np.int64)
    return np.asarray(parts, dtype=np.int64)


def _spanning_tree(piece: Piece, rng: np.random.Generator) -> csr_matrix:
    # Keep dear edges (inside blocks) in the tree so cuts fall on cheap street edges.
    r = rng.uniform(0.0, 1.0, len(piece.cost))
    w = r / (1.0 + piece.cost) if rng.random() < 0.5 else r
    t = minimum_spanning_tree(piece.csr(w))
    return (t + t.T).tocsr()


def _best_cut(piece: Piece, k1: int, k: int, lo: int, hi: int, rng: np.random.Generator,
              tries: int) -> np.ndarray | None:
    """Boolean side of a tree cut giving side A households within k1 grids' bounds."""
    w = piece.weight.astype(np.float64)
    total = w.sum()
    k2 = k - k1
    a_lo, a_hi = max(k1 * lo, total - k2 * hi), min(k1 * hi, total - k2 * lo)
    if a_lo > a_hi:
        return None
    ideal = total * k1 / k
    for _ in range(tries):
        tree = _spanning_tree(piece, rng)
        root = int(rng.integers(piece.n))
        order, pred = depth_first_order(tree, root, directed=False)
        if len(order) < piece.n:
            return None
        sub = w.copy()
        size = np.ones(piece.n, dtype=np.int64)
        for i in order[:0:-1]:
            p = pred[i]
            sub[p] += sub[i]
            size[p] += size[i]
        cand = order[1:]
        s = sub[cand]
        side_a = (s >= a_lo) & (s <= a_hi)
        side_b = (total - s >= a_lo) & (total - s <= a_hi)
        ok = side_a | side_b
        if not ok.any():
            continue
        cand, side_a = cand[ok], side_a[ok]
        dev = np.where(side_a, np.abs(sub[cand] - ideal), np.abs(total - sub[cand] - ideal))
        best = np.argsort(dev, kind="stable")[:8]
        pos = np.empty(piece.n, dtype=np.int64)
        pos[order] = np.arange(piece.n)
        cuts = []
        for j in best:
            c = cand[j]
            inside = (pos >= pos[c]) & (pos < pos[c] + size[c])
            cut = piece.cost[inside[piece.u] != inside[piece.v]].sum()
            cuts.append((cut + dev[j] / max(ideal, 1) * cut, j, inside))
        _, j, inside = min(cuts, key=lambda t: (t[0], t[1]))
        return inside if side_a[j] else ~inside
    return None


def tree_labels(piece: Piece, k: int, *, lo: int, hi: int, seed: int, tries: int = 30) -> np.ndarray | None:
    """Recursive balanced spanning-tree bisection: *k* connected parts within [lo, hi], or None."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(piece.n, dtype=np.int64)
    stack = [(np.arange(piece.n), k, 0)]
    next_label = 1
    while stack:
        nodes, kk, lab = stack.pop()
        if kk == 1:
            h = piece.weight[nodes].sum()
            if not lo <= h <= hi:
                return None
            labels[nodes] = lab
            continue
        sp = piece.sub(nodes)
        side = _best_cut(sp, kk // 2, kk, lo, hi, rng, tries)
        if side is None:
            return None
        stack.append((nodes[side], kk // 2, lab))
        stack.append((nodes[~side], kk - kk // 2, next_label))
        next_label += 1
    return labels
