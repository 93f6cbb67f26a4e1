"""Split one connected piece of a community's node graph into grids of bounded households.

Feasibility first (:func:`choose_k`), then METIS with the contiguous option for the
initial plan (:func:`metis_labels`; a breadth-first sweep when METIS refuses the graph).
:mod:`~geo.partition.repair` turns the initial plan into contiguous grids in range.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pymetis
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import breadth_first_order

__all__ = ["Piece", "choose_k", "metis_labels", "sweep_labels"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Piece:
    """A connected sub-problem: local node weights and undirected edges (u < v).

    *off* is the length of every edge's shared boundary that runs off the streets (inside
    a street block); ``None`` when unknown.
    """

    weight: np.ndarray
    u: np.ndarray
    v: np.ndarray
    cost: np.ndarray
    off: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.weight)

    def csr(self, data: np.ndarray | None = None) -> csr_matrix:
        d = self.cost if data is None else data
        return coo_matrix((np.r_[d, d], (np.r_[self.u, self.v], np.r_[self.v, self.u])),
                          shape=(self.n, self.n)).tocsr()

    def adjacency(self, data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``indptr, indices, data`` of the symmetric CSR matrix (rows sorted), without scipy.

        The same arrays as :meth:`csr` (edges are unique), at a fraction of its per-call cost.
        """
        rows = np.concatenate((self.u, self.v))
        cols = np.concatenate((self.v, self.u))
        order = np.lexsort((cols, rows))
        indptr = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=self.n), out=indptr[1:])
        return indptr, cols[order], np.concatenate((data, data))[order]

    def contract(self, group: np.ndarray) -> Piece:
        """The piece with the nodes of each *group* (0..G-1) merged; edge costs summed."""
        ng = int(group.max()) + 1 if self.n else 0
        gu, gv = group[self.u], group[self.v]
        keep = gu != gv
        a, b = np.minimum(gu, gv)[keep], np.maximum(gu, gv)[keep]
        key, inv = np.unique(a * max(ng, 1) + b, return_inverse=True)
        cost = np.bincount(inv.ravel(), weights=self.cost[keep], minlength=len(key))
        off = None if self.off is None else np.bincount(inv.ravel(), weights=self.off[keep], minlength=len(key))
        return Piece(np.bincount(group, weights=self.weight, minlength=ng), key // max(ng, 1),
                     key % max(ng, 1), cost, off)

    def sub(self, nodes: np.ndarray) -> Piece:
        local = np.full(self.n, -1)
        local[nodes] = np.arange(len(nodes))
        m = (local[self.u] >= 0) & (local[self.v] >= 0)
        return Piece(self.weight[nodes], local[self.u[m]], local[self.v[m]], self.cost[m],
                     None if self.off is None else self.off[m])


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
    indptr, indices, data = piece.adjacency(np.maximum(np.round(piece.cost), 1))
    ew = np.maximum(data, 1).astype(np.int64)
    vw = np.maximum(piece.weight, 0).astype(np.int64)
    opts = pymetis.Options(contig=1, seed=seed, ufactor=30)
    try:
        _, parts = pymetis.part_graph(k, adjacency=pymetis.CSRAdjacency(indptr, indices),
                                      vweights=vw, eweights=ew, options=opts, recursive=False)
    except Exception as exc:  # pragma: no cover - METIS rejects odd graphs
        log.warning("METIS failed (%s); using a breadth-first sweep", exc)
        return sweep_labels(piece, k)
    return np.asarray(parts, dtype=np.int64)


def sweep_labels(piece: Piece, k: int) -> np.ndarray:
    """*k* runs of equal households along a breadth-first order (a start for the repair)."""
    order = breadth_first_order(piece.csr(), 0, directed=False, return_predecessors=False)
    rest = np.setdiff1d(np.arange(piece.n), order)
    order = np.r_[order, rest]
    cum = np.cumsum(piece.weight[order]) - piece.weight[order] / 2
    total = max(float(piece.weight.sum()), 1e-9)
    lab = np.empty(piece.n, dtype=np.int64)
    lab[order] = np.minimum((cum / total * k).astype(np.int64), k - 1)
    return lab
