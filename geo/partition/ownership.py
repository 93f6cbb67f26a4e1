"""Who owns each face of the cell arrangement: the building it lies in, else a building of its block.

Steps of :func:`geo.partition.cells.tessellate`: faces anchored to the buildings' anchor points,
ownership spread through each block by shared edge length, footprints pinned to their
building, empty blocks given whole to a neighbour, and the face keys that merge faces into
nodes (a whole plain block, else one node per unit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from geo.partition.planar import Arrangement, rings_of_cycles

__all__ = ["KIND", "BuildingArrays", "components", "anchor_faces", "own_faces", "pin_footprints",
           "own_empty_blocks", "face_keys"]

#: Face keys: kind * KIND + id (a block, a unit, ...).
KIND = np.int64(1 << 40)


@dataclass(frozen=True)
class BuildingArrays:
    """One entry per building (or per footprint unit), in metres."""

    footprints: np.ndarray  # polygons
    anchors: np.ndarray  # (N, 2) a point inside each footprint
    community: np.ndarray  # community index
    households: np.ndarray  # float
    compound: np.ndarray  # compound code, -1 when none
    exclusive: np.ndarray  # exclusive use code, -1 when none



def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    g = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    return connected_components(g, directed=False)[1]



def anchor_faces(arr: Arrangement, fpts: np.ndarray, owner: np.ndarray, anchors: np.ndarray,
                  face_comm: np.ndarray, bcomm: np.ndarray) -> np.ndarray:
    """Face containing every building anchor (own Voronoi faces first, nearest face otherwise)."""
    n = len(anchors)
    cnt = np.bincount(owner, minlength=n + 1)[:n]
    bface = np.full(n, -1)
    single = np.flatnonzero(cnt == 1)
    faces_sorted = np.argsort(owner, kind="stable")
    start = np.searchsorted(owner[faces_sorted], np.arange(n))
    bface[single] = faces_sorted[start[single]]
    multi = np.flatnonzero(cnt > 1)
    if len(multi):
        cand_b = np.repeat(multi, cnt[multi])
        offs = np.repeat(start[multi] - np.cumsum(np.r_[0, cnt[multi][:-1]]), cnt[multi])
        cand_f = faces_sorted[offs + np.arange(len(offs))]
        rings = rings_of_cycles(arr.xy, arr.eu, arr.ev, arr.cycle, arr.face_cycle[cand_f], nxt=arr.nxt)
        inside = shapely.contains_xy(shapely.polygons(rings), anchors[cand_b, 0], anchors[cand_b, 1])
        bface[cand_b[inside]] = cand_f[inside]
        bad = multi[bface[multi] < 0]
        if len(bad):  # anchor on an edge: largest own face
            area = arr.face_area[cand_f]
            order = np.lexsort((-area, cand_b))
            firsts = order[np.r_[True, cand_b[order][1:] != cand_b[order][:-1]]]
            best = dict(zip(cand_b[firsts].tolist(), cand_f[firsts].tolist(), strict=True))
            bface[bad] = [best[b] for b in bad.tolist()]
    wrong = np.flatnonzero((bface < 0) | (face_comm[np.maximum(bface, 0)] != bcomm))
    if len(wrong) and n > 1:  # duplicate anchors: share the twin's face
        dist, nb = cKDTree(anchors).query(anchors[wrong], k=min(8, n))
        good = (bface[nb] >= 0) & (dist <= 1e-6) & (bcomm[nb] == bcomm[wrong, None])
        has = good.any(axis=1)
        bface[wrong[has]] = bface[nb[has, good[has].argmax(axis=1)]]
        wrong = wrong[~has]
    if len(wrong):
        tree = cKDTree(fpts)
        k = min(32, len(fpts))
        _, idx = tree.query(anchors[wrong], k=k)
        idx = idx.reshape(len(wrong), -1)
        ok = face_comm[idx] == bcomm[wrong, None]
        pick = np.where(ok.any(axis=1), idx[np.arange(len(wrong)), ok.argmax(axis=1)], -1)
        missing = pick < 0
        for i in np.flatnonzero(missing):
            cand = np.flatnonzero(face_comm == bcomm[wrong[i]])
            pick[i] = cand[np.argmin(np.hypot(*(fpts[cand] - anchors[wrong[i]]).T))] if len(cand) else -1
        bface[wrong] = pick
    return bface


def _propagate_owner(owner: np.ndarray, a: np.ndarray, b: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Give unowned faces the owner of the neighbour sharing the longest edge (callers pass the
    edges inside blocks, so ownership never crosses a street here)."""
    owner = owner.copy()
    aa, bb, ll = np.r_[a, b], np.r_[b, a], np.r_[length, length]
    while True:
        m = (owner[aa] < 0) & (owner[bb] >= 0)
        if not m.any():
            return owner
        fa, fb, fl = aa[m], bb[m], ll[m]
        order = np.lexsort((-fl, fa))
        first = order[np.r_[True, fa[order][1:] != fa[order][:-1]]]
        owner[fa[first]] = owner[fb[first]]


def _settle(owner: np.ndarray, fixed: np.ndarray, bface: np.ndarray, a: np.ndarray, b: np.ndarray,
            length: np.ndarray) -> np.ndarray:
    """Fill unowned faces from neighbours, then drop faces cut off from their owner's anchor
    face and from its *fixed* faces (its footprint); repeat while any were dropped."""
    n_faces = len(owner)
    for _ in range(4):
        owner = _propagate_owner(owner, a, b, length)
        same = (owner[a] == owner[b]) & (owner[a] >= 0)
        comp = components(n_faces, a[same], b[same])
        good = np.zeros(n_faces, dtype=bool)
        home = owner[bface] == np.arange(len(bface))
        good[comp[bface[home]]] = True
        good[comp[fixed]] = True
        stray = (owner >= 0) & ~good[comp]
        if not stray.any():
            break
        owner[stray] = -1
    return owner


def own_faces(near: np.ndarray, fblock: np.ndarray, bblock: np.ndarray, bface: np.ndarray,
               a: np.ndarray, b: np.ndarray, length: np.ndarray, pin: np.ndarray) -> np.ndarray:
    """Owner unit of every face: its Voronoi generator when in the same block and connected
    to the generator's own face, else a neighbour's owner; faces of a footprint in its own
    block (*pin*) are its unit's; -1 in empty blocks (callers pass the edges inside blocks)."""
    owner = np.where((near >= 0) & (bblock[np.maximum(near, 0)] == fblock), near, -1)
    home = (pin >= 0) & (bblock[np.maximum(pin, 0)] == fblock)
    owner[home] = pin[home]
    return _settle(owner, home, bface, a, b, length)


def pin_footprints(owner: np.ndarray, pin: np.ndarray, bface: np.ndarray, a: np.ndarray, b: np.ndarray,
                    length: np.ndarray) -> np.ndarray:
    """Every face of a footprint to its unit, also across a street (passages, covered ways)."""
    if not (pin >= 0).any():
        return owner
    owner = owner.copy()
    fixed = pin >= 0
    owner[fixed] = pin[fixed]
    return _settle(owner, fixed, bface, a, b, length)


def own_empty_blocks(owner: np.ndarray, fblock: np.ndarray, a: np.ndarray, b: np.ndarray,
                      length: np.ndarray) -> np.ndarray:
    """Every block without buildings joins, whole, the neighbouring cell it shares most boundary with.

    Whole, not face by face: shared out along the Voronoi ridges of the buildings around
    it, a park, a square or a stretch of water would carry long grid boundaries through
    its middle; whole, the grid boundaries run around it, along its streets (on the
    Shanghai Bund extract the share of grid boundary on streets went from 0.59 to 0.76).
    Blocks that only touch other empty blocks are reached in later rounds.
    """
    owner = owner.copy()
    nb = int(fblock.max()) + 1 if len(fblock) else 0
    aa, bb, ll = np.r_[a, b], np.r_[b, a], np.r_[length, length]
    cross = fblock[aa] != fblock[bb]
    aa, bb, ll = aa[cross], bb[cross], ll[cross]
    span = np.int64(len(owner) + 1)
    while True:
        owned = np.bincount(fblock, weights=owner >= 0, minlength=nb) > 0
        m = ~owned[fblock[aa]] & (owner[bb] >= 0)
        if not m.any():
            return owner
        uk, inv = np.unique(fblock[aa[m]] * span + owner[bb[m]], return_inverse=True)
        shared = np.bincount(inv.ravel(), weights=ll[m])
        ub, uo = uk // span, uk % span
        order = np.lexsort((uo, -shared, ub))  # longest shared boundary, then smallest owner
        first = order[np.r_[True, ub[order][1:] != ub[order][:-1]]]
        pick = np.full(nb, -1)
        pick[ub[first]] = uo[first]
        fill = (owner < 0) & (pick[fblock] >= 0)
        owner[fill] = pick[fblock[fill]]


def face_keys(fblock: np.ndarray, owner: np.ndarray, bblock: np.ndarray, units: BuildingArrays, *,
               whole_block: float, compound_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Fine and coarse unit keys of every face; touching faces with equal keys form one node.

    Fine units are single buildings (a run of exclusive buildings of one use, an empty
    block); coarse units are what the planner keeps whole when it can: a compound of at
    most *compound_max* households, a small plain block.
    """
    households = units.households
    bexcl = units.exclusive.astype(np.int64)
    fblock = fblock.astype(np.int64)
    bcompound = units.compound.astype(np.int64)
    nb = int(fblock.max()) + 1 if len(fblock) else 0
    ok = bblock >= 0
    bh = np.bincount(bblock[ok], weights=households[ok], minlength=nb)
    comp_h = np.bincount(np.maximum(bcompound, 0), weights=households * (bcompound >= 0))
    whole_comp = (bcompound >= 0) & (comp_h[np.maximum(bcompound, 0)] <= compound_max) & (bexcl < 0)
    single = np.where(bexcl >= 0, 3 * KIND + bexcl, 1 * KIND + np.arange(len(bblock)))
    unit = np.where(whole_comp, 2 * KIND + bcompound, single)
    # a block stays whole when small and every building in it has the same compound key
    ukey = np.where(whole_comp, bcompound, -1)
    kmin = np.full(nb, np.iinfo(np.int64).max)
    kmax = np.full(nb, np.iinfo(np.int64).min)
    np.minimum.at(kmin, bblock[ok], ukey[ok])
    np.maximum.at(kmax, bblock[ok], ukey[ok])
    xcount = np.bincount(bblock[ok], weights=(bexcl[ok] >= 0), minlength=nb)
    whole = (bh <= whole_block) & (kmin == kmax) & (xcount == 0)
    has = owner >= 0
    empty = 4 * KIND + fblock
    fine = np.where(has, single[np.maximum(owner, 0)], empty)
    coarse = np.where(has, unit[np.maximum(owner, 0)], empty)
    blockkey = np.where(kmin >= 0, 2 * KIND + kmin, 5 * KIND + np.arange(nb))
    # by the owner's block (faces may be owned across a street), so coarse is a function of fine
    oblock = bblock[np.maximum(owner, 0)]
    wf = has & (oblock >= 0) & whole[np.maximum(oblock, 0)]
    coarse[wf] = blockkey[oblock[wf]]
    return fine, coarse
