"""Repair a labelling of a piece: contiguity first, then household bounds.

Single boundary moves that never break a grid's contiguity come first (they move the
fewest buildings, which keeps re-plans stable); grids still out of range are re-split
together with their neighbours by the balanced spanning-tree split, widening the region
until a split is found or the whole piece has been tried.
"""

from __future__ import annotations

import logging
from collections import deque

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from geo.partition.solve import Piece, choose_k, tree_labels

__all__ = ["fix_contiguity", "balance", "repair"]

log = logging.getLogger(__name__)


def fix_contiguity(piece: Piece, labels: np.ndarray) -> np.ndarray:
    """Keep each grid's heaviest connected part; give the rest (and -1 nodes) to neighbours."""
    lab = labels.copy()
    same = (lab[piece.u] == lab[piece.v]) & (lab[piece.u] >= 0)
    g = coo_matrix((np.ones(same.sum()), (piece.u[same], piece.v[same])), shape=(piece.n, piece.n))
    _, comp = connected_components(g, directed=False)
    w = piece.weight + 1e-6
    cw = np.bincount(comp, weights=w)
    idx = np.flatnonzero(lab >= 0)
    o = idx[np.lexsort((idx, -cw[comp[idx]], lab[idx]))]
    first = o[np.r_[True, lab[o][1:] != lab[o][:-1]]] if len(o) else o
    best = np.full(int(lab.max()) + 1 if len(idx) else 1, -1)
    best[lab[first]] = comp[first]
    keep = (lab >= 0) & (best[np.maximum(lab, 0)] == comp)
    lab[~keep] = -1
    aa, bb, cc = np.r_[piece.u, piece.v], np.r_[piece.v, piece.u], np.r_[piece.cost, piece.cost]
    while (lab < 0).any():
        m = (lab[aa] < 0) & (lab[bb] >= 0)
        if not m.any():
            lab[lab < 0] = lab.max() + 1 if (lab >= 0).any() else 0
            break
        fa, fb, fc = aa[m], bb[m], cc[m]
        o = np.lexsort((-fc, fa))
        first = o[np.r_[True, fa[o][1:] != fa[o][:-1]]]
        lab[fa[first]] = lab[fb[first]]
    return lab


def _viol(h: float, lo: int, hi: int) -> float:
    return max(0.0, h - hi) + max(0.0, lo - h)


def _connected_without(adj: list[np.ndarray], members: set[int], v: int) -> bool:
    rest = members - {v}
    if not rest:
        return False
    start = next(iter(rest))
    seen = {start}
    dq = deque([start])
    while dq:
        x = dq.popleft()
        for y in adj[x]:
            y = int(y)
            if y in rest and y not in seen:
                seen.add(y)
                dq.append(y)
    return len(seen) == len(rest)


def balance(piece: Piece, labels: np.ndarray, *, lo: int, hi: int, max_moves: int = 2000) -> np.ndarray:
    """Greedy single-node moves between neighbouring grids that reduce total violation."""
    lab = labels.copy()
    g = piece.csr()
    adj = [g.indices[g.indptr[i]:g.indptr[i + 1]] for i in range(piece.n)]
    cst = [g.data[g.indptr[i]:g.indptr[i + 1]] for i in range(piece.n)]
    members: dict[int, set[int]] = {}
    for i, lb in enumerate(lab.tolist()):
        members.setdefault(lb, set()).add(i)
    tot = {lb: float(piece.weight[list(m)].sum()) for lb, m in members.items()}
    stuck: set[int] = set()
    for _ in range(max_moves):
        bad = [lb for lb in sorted(tot) if _viol(tot[lb], lo, hi) > 0 and lb not in stuck]
        if not bad:
            break
        gl = max(bad, key=lambda x: (_viol(tot[x], lo, hi), -x))
        best = None
        if tot[gl] > hi:
            cands = [(v, int(lab[y])) for v in members[gl] for y in adj[v] if lab[y] != gl]
        else:
            cands = [(int(y), gl) for v in members[gl] for y in adj[v] if lab[y] != gl]
        for v, to in sorted(set(cands)):
            fr = int(lab[v])
            w = float(piece.weight[v])
            d = (_viol(tot[fr] - w, lo, hi) + _viol(tot[to] + w, lo, hi)
                 - _viol(tot[fr], lo, hi) - _viol(tot[to], lo, hi))
            if d >= 0:
                continue
            cut = sum(c for y, c in zip(adj[v], cst[v], strict=True) if lab[y] == fr) - \
                sum(c for y, c in zip(adj[v], cst[v], strict=True) if lab[y] == to)
            key = (d, cut, v)
            if best is None or key < best[0]:
                if _connected_without(adj, members[fr], v):
                    best = (key, v, fr, to)
        if best is None:
            stuck.add(gl)
            continue
        _, v, fr, to = best
        members[fr].discard(v)
        members[to].add(v)
        tot[fr] -= piece.weight[v]
        tot[to] += piece.weight[v]
        lab[v] = to
        stuck.clear()
    return lab


def _k_options(h: int, lo: int, hi: int, target: int) -> list[int]:
    """Feasible grid counts for *h* households, nearest to the target first (at most 3)."""
    k0, why = choose_k(h, lo, hi, target)
    if why:
        return []
    kmin, kmax = -(-h // hi), h // lo
    return sorted(range(kmin, kmax + 1), key=lambda k: (abs(k - h / target), k))[:3]


def _resplit(piece: Piece, lab: np.ndarray, gl: int, *, lo: int, hi: int, target: int, seed: int,
             tries: int) -> bool:
    """Re-split grid *gl* with widening rings of neighbours; True when it worked."""
    region = {gl}
    while True:
        nodes = np.flatnonzero(np.isin(lab, list(region)))
        h = int(piece.weight[nodes].sum())
        sub = piece.sub(nodes)
        for k in _k_options(h, lo, hi, target):
            new = tree_labels(sub, k, lo=lo, hi=hi, seed=seed, tries=tries)
            if new is not None:
                ids = sorted(region)
                while len(ids) < k:
                    ids.append(int(lab.max()) + 1 + len(ids))
                lab[nodes] = np.array(ids)[new]
                return True
        nb = set(lab[piece.v[np.isin(piece.u, nodes)]].tolist()) | set(lab[piece.u[np.isin(piece.v, nodes)]].tolist())
        if nb <= region:
            return False
        region |= nb


def repair(piece: Piece, labels: np.ndarray, *, lo: int, hi: int, target: int, seed: int,
           tries: int = 12) -> np.ndarray:
    """Contiguous grids, each within [lo, hi] where the piece allows it."""
    lab = fix_contiguity(piece, labels)
    lab = balance(piece, lab, lo=lo, hi=hi)
    tot = np.bincount(lab, weights=piece.weight)
    bad = [int(g) for g in np.flatnonzero((tot > hi) | (tot < lo)) if (lab == g).any()]
    for gl in bad:
        if not (lab == gl).any():
            continue
        h = piece.weight[lab == gl].sum()
        if lo <= h <= hi:
            continue
        if not _resplit(piece, lab, gl, lo=lo, hi=hi, target=target, seed=seed, tries=tries):
            log.info("repair: grid %d (%d households) stays out of range", gl, h)
    _, lab = np.unique(lab, return_inverse=True)
    return fix_contiguity(piece, lab.ravel())
