"""Grid boundaries redrawn through open land: the cheapest line between two grids' buildings.

Cells are Voronoi cells of the buildings, so where two grids share a street block or a
stretch of open land (a river bank, a park, the rim of the district) the boundary between
them is a Voronoi ridge: midway between buildings, often far from any street. Households
are fixed by the buildings, so the faces of the planar arrangement that hold no footprint
and no anchor can change grid freely. For every pair of neighbouring grids, the faces
either holds are re-labelled by a minimum s–t cut (the footprint and anchor faces of one
grid tied to the source, the other's to the sink, edges weighted by the cut costs, with
streets cheaper still: setting ``partition_redraw_cost_street``). The new line stands when
it costs less and both grids stay in one piece; faces that moved then join a cell of
their new grid, so cells still tile the grids and every building keeps its cell and grid.

Shanghai Bund (seed 42): street share 0.787 -> 0.788, mean Polsby–Popper 0.521 -> 0.538;
synthetic 5 k / 20 k: street share 0.926 / 0.935 -> 0.939 / 0.950 (bench/partition.py).

Faces are pieces of the buildings' Voronoi cells, so in open land a redrawn line could
only zigzag along ridges between far-apart buildings: the redraw runs on the plan's cells
with the open land around its off-street boundaries cut into a hexagonal mesh
(:mod:`geo.partition.mesh`), so the cut can run near-straight from a street end to the
next street or to the district's edge.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components, maximum_flow

from geo.partition.cells import BIT_MAJOR, BIT_STREET, Tessellation, redrawn

__all__ = ["redraw_boundaries"]

log = logging.getLogger(__name__)

#: Cut costs are scaled to integers for the max-flow solver: 1/_SCALE of a cost unit.
_SCALE = 100.0
#: Capacity tying a grid's fixed faces to the source or sink (max-flow capacities are int32).
_TIE = 2**30


def _pairs(face_grid: np.ndarray, a: np.ndarray, b: np.ndarray, off: np.ndarray) -> list[tuple[int, int]]:
    """Neighbouring grid pairs sharing some boundary off the streets, the longest such first."""
    ga, gb = face_grid[a], face_grid[b]
    cut = (ga != gb) & (ga >= 0) & (gb >= 0)
    lo, hi = np.minimum(ga, gb)[cut], np.maximum(ga, gb)[cut]
    if not len(lo):
        return []
    width = np.int64(face_grid.max() + 1)
    keys, inv = np.unique(lo * width + hi, return_inverse=True)
    length = np.bincount(inv.ravel(), weights=off[cut])
    order = np.lexsort((keys, -length))
    return [(int(keys[i] // width), int(keys[i] % width)) for i in order if length[i] > 0]


def _one_piece(faces: np.ndarray, a: np.ndarray, b: np.ndarray) -> bool:
    """Whether *faces* (a mask) form one connected piece over the edges a–b."""
    n = int(faces.sum())
    if n <= 1:
        return True
    local = np.cumsum(faces) - 1
    m = faces[a] & faces[b]
    graph = coo_matrix((np.ones(int(m.sum()), dtype=np.int8), (local[a[m]], local[b[m]])), shape=(n, n))
    return connected_components(graph, directed=False)[0] == 1


def _min_cut(n: int, ea: np.ndarray, eb: np.ndarray, ec: np.ndarray, tie_g: np.ndarray,
             tie_h: np.ndarray) -> np.ndarray:
    """Faces (local) on the source side of a minimum cut between *tie_g* and *tie_h* faces."""
    src, snk = n, n + 1
    rows = np.r_[ea, eb, np.full(len(tie_g), src), tie_h]
    cols = np.r_[eb, ea, tie_g, np.full(len(tie_h), snk)]
    caps = np.r_[ec, ec, np.full(len(tie_g) + len(tie_h), _TIE)].astype(np.int32)
    graph = csr_matrix(coo_matrix((caps, (rows, cols)), shape=(n + 2, n + 2)))
    graph.sum_duplicates()
    residual = graph - maximum_flow(graph, src, snk).flow.tocsr()
    residual.data = (residual.data > 0).astype(np.int8)
    residual.eliminate_zeros()
    side = np.zeros(n + 2, dtype=bool)
    side[breadth_first_order(residual, src, directed=True, return_predecessors=False)] = True
    return side[:n]


@dataclass
class _Faces:
    """The faces of every grid and the edges at every face, so one pair's region is read in
    time proportional to its size (not to the district's)."""

    members: dict[int, np.ndarray]  # grid -> its faces, ascending
    indptr: np.ndarray  # the edges from face f (its first face) are eids[indptr[f]:indptr[f + 1]]
    eids: np.ndarray

    @classmethod
    def of(cls, face_grid: np.ndarray, a: np.ndarray, b: np.ndarray) -> _Faces:
        order = np.argsort(face_grid, kind="stable")
        grids, starts = np.unique(face_grid[order], return_index=True)
        members = dict(zip(grids.tolist(), np.split(order, starts[1:]), strict=True))
        by_face = np.argsort(a, kind="stable")
        return cls(members, np.searchsorted(a[by_face], np.arange(len(face_grid) + 1)), by_face)

    def region(self, g: int, h: int) -> tuple[np.ndarray, np.ndarray]:
        """Faces of grids *g* and *h* (ascending) and the edges from them (ascending): every
        edge between two faces of the region is one of these."""
        empty = np.empty(0, dtype=np.int64)
        idx = np.sort(np.r_[self.members.get(g, empty), self.members.get(h, empty)])
        lo, hi = self.indptr[idx], self.indptr[idx + 1]
        count = hi - lo
        flat = np.repeat(lo - np.r_[0, np.cumsum(count)[:-1]], count) + np.arange(int(count.sum()))
        return idx, np.sort(self.eids[flat])


def _swap(face_grid: np.ndarray, fixed: np.ndarray, edges: tuple[np.ndarray, np.ndarray, np.ndarray],
          g: int, h: int) -> np.ndarray | None:
    """New grid of the faces of grids *g* and *h*, by a minimum cut; None when it does not pay
    (see :func:`_cut`)."""
    cut = _cut(face_grid, fixed, edges, g, h, _Faces.of(face_grid, edges[0], edges[1]))
    if cut is None:
        return None
    new = face_grid.copy()
    new[cut[0]] = cut[1]
    return new


def _cut(face_grid: np.ndarray, fixed: np.ndarray, edges: tuple[np.ndarray, np.ndarray, np.ndarray],
         g: int, h: int, faces: _Faces) -> tuple[np.ndarray, np.ndarray] | None:
    """Faces of grids *g* and *h* and their new grids, by a minimum cut; None when it does not pay.

    The fixed faces of each grid are tied to its side; when that cut would split a grid,
    the faces joining its fixed faces (:func:`_spine`) are tied too.
    """
    a, b, cost = edges
    idx, inc = faces.region(g, h)
    if not (~fixed[idx]).any():
        return None
    in_b = face_grid[b[inc]]
    e = inc[(in_b == g) | (in_b == h)]
    ea, eb = np.searchsorted(idx, a[e]), np.searchsorted(idx, b[e])
    ec = np.maximum(1, np.round(cost[e] * _SCALE)).astype(np.int32)
    old, tied = face_grid[idx], fixed[idx]
    if not (tied & (old == g)).any() or not (tied & (old == h)).any():
        return None
    now = ec[old[ea] != old[eb]].sum(dtype=np.int64)
    for spine in (False, True):
        ties = [_spine(old == x, tied, ea, eb) if spine else tied & (old == x) for x in (g, h)]
        lab = np.where(_min_cut(len(idx), ea, eb, ec, np.flatnonzero(ties[0]), np.flatnonzero(ties[1])), g, h)
        if ec[lab[ea] != lab[eb]].sum(dtype=np.int64) >= now:
            return None
        if _one_piece(lab == g, ea, eb) and _one_piece(lab == h, ea, eb):
            return idx, lab
    return None


def _spine(mine: np.ndarray, fixed: np.ndarray, ea: np.ndarray, eb: np.ndarray) -> np.ndarray:
    """A grid's fixed faces and the faces on paths joining them through the grid (a BFS tree),
    so the side of a cut holding them all stays in one piece."""
    n = len(mine)
    m = mine[ea] & mine[eb]
    graph = csr_matrix(coo_matrix((np.ones(int(m.sum()), dtype=np.int8), (ea[m], eb[m])), shape=(n, n)))
    graph = graph + graph.T
    ties = np.flatnonzero(mine & fixed)
    _, parent = breadth_first_order(graph, int(ties[0]), directed=False, return_predecessors=True)
    out = np.zeros(n, dtype=bool)
    for x in ties.tolist():
        while x >= 0 and not out[x]:
            out[x] = True
            x = parent[x]
    return out


def _settle_nodes(tess: Tessellation, face_grid: np.ndarray, node_grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Node of every face after faces changed grid, and the face each copies its cell keys from.

    A face keeps its node while that node is in the face's grid and the face still reaches
    the node's fixed faces through faces of the node; otherwise it joins the node of the
    neighbour (same grid) it shares the longest edge with.
    """
    fixed, inner, faces = tess.face_fixed, tess.inner, tess.faces
    assert fixed is not None and inner is not None and faces is not None, "tessellate keeps its faces"
    face_node = faces.face_node.copy()
    source = np.arange(len(face_node))
    a, b, ln = inner.a, inner.b, inner.length
    aa, bb, ll = np.r_[a, b], np.r_[b, a], np.r_[ln, ln]
    for _ in range(len(face_node)):
        ok = face_node >= 0
        ok[ok] = node_grid[face_node[ok]] == face_grid[ok]
        same = ok[a] & ok[b] & (face_node[a] == face_node[b])
        comp = connected_components(coo_matrix((np.ones(int(same.sum()), dtype=np.int8), (a[same], b[same])),
                                               shape=(len(face_node),) * 2), directed=False)[1]
        home = np.zeros(len(face_node), dtype=bool)
        home[comp[fixed & ok]] = True
        stray = (face_grid >= 0) & ~(ok & home[comp])
        if not stray.any():
            return face_node, source
        face_node[stray] = -1
        while True:
            m = (face_node[aa] < 0) & (face_node[bb] >= 0) & (face_grid[aa] == face_grid[bb])
            if not m.any():
                break
            fa, fb, fl = aa[m], bb[m], ll[m]
            order = np.lexsort((-fl, fa))
            first = order[np.r_[True, fa[order][1:] != fa[order][:-1]]]
            face_node[fa[first]] = face_node[fb[first]]
            source[fa[first]] = source[fb[first]]
        if (face_node[face_grid >= 0] < 0).any():
            raise RuntimeError("redraw_boundaries: a face lost every cell of its grid")
    return face_node, source


def redraw_boundaries(tess: Tessellation, node_grid: np.ndarray, *, street_cost: float) -> Tessellation:
    """*tess* with the faces between neighbouring grids redrawn along the cheapest lines.

    Parameters
    ----------
    tess : Tessellation
        Cells of the plan (from :func:`~geo.partition.cells.tessellate`).
    node_grid : ndarray
        Grid of every node; unchanged (every building keeps its node and grid).
    street_cost : float
        Cut cost per metre along a street (setting ``partition_redraw_cost_street``) where
        it is below the tessellation's own; the other costs are the tessellation's.

    Returns
    -------
    Tessellation
        The same nodes, some with other faces; *tess* itself when nothing moved.
    """
    if tess.faces is None or tess.inner is None or tess.face_fixed is None or tess.inner.cost is None \
            or not len(node_grid):
        return tess
    faces, inner, edge_cost = tess.faces, tess.inner, tess.inner.cost
    face_grid = np.full(len(faces.face_node), -1)
    inside = faces.face_node >= 0
    face_grid[inside] = node_grid[faces.face_node[inside]]
    off = np.where(inner.near | ((inner.bits & (BIT_MAJOR | BIT_STREET)) > 0), 0.0, inner.length)
    cost = np.where(off > 0, edge_cost, np.minimum(edge_cost, inner.length * street_cost))
    moved = 0
    index = _Faces.of(face_grid, inner.a, inner.b)
    for g, h in _pairs(face_grid, inner.a, inner.b, off):
        cut = _cut(face_grid, tess.face_fixed, (inner.a, inner.b, cost), g, h, index)
        if cut is not None:
            idx, lab = cut
            moved += int((lab != face_grid[idx]).sum())
            face_grid[idx] = lab
            index.members[g], index.members[h] = idx[lab == g], idx[lab == h]
    if not moved:
        return tess
    face_node, source = _settle_nodes(tess, face_grid, node_grid)
    log.info("boundaries: %d faces redrawn into a neighbouring grid", moved)
    return redrawn(tess, face_node, source)
