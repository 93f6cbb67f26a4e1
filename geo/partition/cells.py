"""Cells that tile every community with edges on streets, and their adjacency graph.

One planar arrangement holds the community boundaries, the streets, the compound walls
and the Voronoi ridges of the building anchors. Its faces are grouped into *blocks*
(faces connected without crossing a barrier), every face is owned by the building whose
footprint it lies in, else by the nearest building of its own block (buildings are the
units of :mod:`geo.partition.footprints`, so no cell edge cuts a building), and faces are
merged into *nodes*: a whole block when it is small and plain, otherwise one node per unit
(building, whole compound, or run of exclusive buildings of one use). Nodes tile the community exactly; the node graph
carries shared lengths and cut costs (cheap across streets, dear inside blocks).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from geo.partition.footprints import (
    BIT_FOOTPRINT,
    FootprintUnits,
    crossed_units,
    footprint_units,
    pinned_faces,
)
from geo.partition.planar import (
    Arrangement,
    arrangement_from_segments,
    rings_of_cycles,
    segments_of,
)

__all__ = ["Costs", "CellOptions", "Barriers", "BuildingArrays", "FaceLabels", "InnerEdges", "Tessellation",
           "tessellate", "redrawn",
           "BIT_COMMUNITY", "BIT_MAJOR", "BIT_STREET", "BIT_WALL", "BIT_RIDGE"]

log = logging.getLogger(__name__)

BIT_COMMUNITY, BIT_MAJOR, BIT_STREET, BIT_WALL, BIT_RIDGE = 1, 2, 4, 8, 16
_KIND = np.int64(1 << 40)


@dataclass(frozen=True)
class Costs:
    """Cut cost per metre of shared boundary, by what the boundary runs along."""

    major: float
    street: float
    wall: float
    block: float
    compound: float


@dataclass(frozen=True)
class CellOptions:
    """How cells are drawn and priced.

    Attributes
    ----------
    whole_block : float
        A plain block of at most this many households is one coarse unit.
    compound_max : float
        A compound of at most this many households is one coarse unit.
    costs : Costs
        Cut cost per metre of shared boundary.
    snap_m : float
        Dangling street ends within this distance of another street are joined to it.
    near_m : float
        A cell edge within this distance of a street line counts as on the street.
    overlap_share : float
        Footprints overlapping by more than this share of the smaller one are one unit.
    """

    whole_block: float
    compound_max: float
    costs: Costs
    snap_m: float
    near_m: float
    overlap_share: float


@dataclass(frozen=True)
class Barriers:
    """What cell edges run along, in metres: community outlines, streets, compound walls."""

    communities: np.ndarray  # (C,) polygons
    streets: np.ndarray  # (S,) lines
    major: np.ndarray  # (S,) bool, major roads
    compounds: np.ndarray  # (K,) polygons


@dataclass(frozen=True)
class BuildingArrays:
    """One entry per building (or per footprint unit), in metres."""

    footprints: np.ndarray  # polygons
    anchors: np.ndarray  # (N, 2) a point inside each footprint
    community: np.ndarray  # community index
    households: np.ndarray  # float
    compound: np.ndarray  # compound code, -1 when none
    exclusive: np.ndarray  # exclusive use code, -1 when none


@dataclass(frozen=True)
class FaceLabels:
    """What each face of the arrangement became: node, coarse group, community, owner unit."""

    face_node: np.ndarray
    face_group: np.ndarray
    face_comm: np.ndarray
    points: np.ndarray  # a point inside every face
    fine_key: np.ndarray
    owner: np.ndarray
    building_face: np.ndarray  # face holding every unit's anchor


@dataclass(frozen=True)
class InnerEdges:
    """Edges between two faces of one community: faces, length, barrier bits, near a street, cut cost."""

    a: np.ndarray
    b: np.ndarray
    length: np.ndarray
    bits: np.ndarray
    near: np.ndarray
    cost: np.ndarray | None = None  # cut cost of every edge (Costs × length)


@dataclass(frozen=True)
class Tessellation:
    """Faces, nodes and the node graph of all communities (metric CRS)."""

    arr: Arrangement
    face_comm: np.ndarray  # (F,) community index or -1
    face_node: np.ndarray  # (F,) node index or -1
    node_comm: np.ndarray  # (M,)
    node_households: np.ndarray
    node_area: np.ndarray
    node_outer: np.ndarray  # length on the community boundary
    node_exclusive: np.ndarray  # bool
    node_use: np.ndarray  # exclusive use code or -1
    node_xy: np.ndarray  # (M, 2) area-weighted face anchor
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_len: np.ndarray
    edge_cost: np.ndarray
    edge_street: np.ndarray
    building_node: np.ndarray  # (N,)
    node_group: np.ndarray  # (M,) coarse unit (whole compound, small block) the node belongs to
    node_compound: np.ndarray  # (M,) compound code of the node's building, -1 when none
    overlaps: np.ndarray | None = None  # (K, 2) buildings whose footprints overlap
    overlap_area: np.ndarray | None = None  # (K,) their shared area (m²)
    overlap_merged: np.ndarray | None = None  # (K,) pairs kept in one unit
    # the face-level state the node tables were built from (:func:`redrawn`)
    faces: FaceLabels | None = None
    inner: InnerEdges | None = None
    units: BuildingArrays | None = None
    costs: Costs | None = None
    face_fixed: np.ndarray | None = None  # (F,) faces that must stay in their node


def _snap_segments(streets: np.ndarray, snap_m: float) -> np.ndarray:
    """Short segments joining dangling street ends to a street within *snap_m* (tile-clipped data)."""
    if len(streets) == 0 or snap_m <= 0:
        return np.empty((0, 4))
    parts, pidx = shapely.get_parts(streets, return_index=True)
    ends = np.vstack([shapely.get_coordinates(shapely.get_point(parts, 0)),
                      shapely.get_coordinates(shapely.get_point(parts, -1))])
    own = np.r_[np.arange(len(parts)), np.arange(len(parts))]
    tree = shapely.STRtree(parts)
    pts = shapely.points(ends)
    qi, qj = tree.query(pts, predicate="dwithin", distance=snap_m)
    other = qj != own[qi]
    qi, qj = qi[other], qj[other]
    if not len(qi):
        return np.empty((0, 4))
    dist = shapely.distance(pts[qi], parts[qj])
    keep = dist > 0
    qi, qj, dist = qi[keep], qj[keep], dist[keep]
    if not len(qi):  # every near end already touches the other street
        return np.empty((0, 4))
    order = np.lexsort((dist, qi))
    qi, qj = qi[order], qj[order]
    first = np.r_[True, qi[1:] != qi[:-1]]
    qi, qj = qi[first], qj[first]
    proj = shapely.line_interpolate_point(parts[qj], shapely.line_locate_point(parts[qj], pts[qi]))
    return np.hstack([ends[qi], shapely.get_coordinates(proj)])


def _ridges(anchors: np.ndarray, bounds: tuple[float, float, float, float]) -> np.ndarray:
    if len(anchors) < 2:
        return np.empty((0, 4))
    minx, miny, maxx, maxy = bounds
    env = shapely.box(minx - 50, miny - 50, maxx + 50, maxy + 50)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(anchors), extend_to=env))
    seg, _ = segments_of(cells)
    swap = (seg[:, 0] > seg[:, 2]) | ((seg[:, 0] == seg[:, 2]) & (seg[:, 1] > seg[:, 3]))
    seg[swap] = seg[swap][:, [2, 3, 0, 1]]
    return seg


def _face_points(arr: Arrangement) -> np.ndarray:
    """A point inside every face: just left of the middle of its longest shell half-edge."""
    horig = np.column_stack([arr.eu, arr.ev]).ravel()
    hdest = np.column_stack([arr.ev, arr.eu]).ravel()
    d = arr.xy[hdest] - arr.xy[horig]
    length = np.hypot(d[:, 0], d[:, 1])
    face_of_cycle = np.full(len(arr.cycle_area), -1)
    face_of_cycle[arr.face_cycle] = np.arange(arr.n_faces)
    f = face_of_cycle[arr.cycle]
    sel = np.flatnonzero(f >= 0)
    # first (lowest index) of the longest shell half-edges of every face, without a sort
    longest = np.full(arr.n_faces, -np.inf)
    np.maximum.at(longest, f[sel], length[sel])
    sel = sel[length[sel] == longest[f[sel]]]
    pick = np.full(arr.n_faces, len(f))
    np.minimum.at(pick, f[sel], sel)
    first = pick[pick < len(f)]
    mid = (arr.xy[horig[first]] + arr.xy[hdest[first]]) / 2
    normal = np.column_stack([-d[first, 1], d[first, 0]]) / length[first, None]
    eps = np.minimum(1e-2, 0.1 * np.sqrt(np.abs(arr.face_area[f[first]])) + 1e-6)
    pts = np.empty((arr.n_faces, 2))
    pts[f[first]] = mid + normal * eps[:, None]
    return pts


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    g = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    return connected_components(g, directed=False)[1]


def _face_communities(arr: Arrangement, fl: np.ndarray, fr: np.ndarray, fpts: np.ndarray,
                      comm_geoms: np.ndarray) -> np.ndarray:
    """Community of every face (-1 outside): faces joined without crossing a community
    boundary share it, so only the largest face of each such region is located."""
    m = (fl >= 0) & (fr >= 0) & ((arr.ebits & BIT_COMMUNITY) == 0)
    comp = _components(arr.n_faces, fl[m], fr[m])
    order = np.lexsort((-arr.face_area, comp))
    rep = order[np.r_[True, comp[order][1:] != comp[order][:-1]]]
    qi, qj = shapely.STRtree(comm_geoms).query(shapely.points(fpts[rep]), predicate="within")
    rep_comm = np.full(len(rep), -1)
    rep_comm[qi[::-1]] = qj[::-1]
    out = np.full(int(comp.max()) + 1 if len(comp) else 0, -1)
    out[comp[rep]] = rep_comm
    return out[comp]


def _anchor_faces(arr: Arrangement, fpts: np.ndarray, owner: np.ndarray, anchors: np.ndarray,
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
        comp = _components(n_faces, a[same], b[same])
        good = np.zeros(n_faces, dtype=bool)
        home = owner[bface] == np.arange(len(bface))
        good[comp[bface[home]]] = True
        good[comp[fixed]] = True
        stray = (owner >= 0) & ~good[comp]
        if not stray.any():
            break
        owner[stray] = -1
    return owner


def _own_faces(near: np.ndarray, fblock: np.ndarray, bblock: np.ndarray, bface: np.ndarray,
               a: np.ndarray, b: np.ndarray, length: np.ndarray, pin: np.ndarray) -> np.ndarray:
    """Owner unit of every face: its Voronoi generator when in the same block and connected
    to the generator's own face, else a neighbour's owner; faces of a footprint in its own
    block (*pin*) are its unit's; -1 in empty blocks (callers pass the edges inside blocks)."""
    owner = np.where((near >= 0) & (bblock[np.maximum(near, 0)] == fblock), near, -1)
    home = (pin >= 0) & (bblock[np.maximum(pin, 0)] == fblock)
    owner[home] = pin[home]
    return _settle(owner, home, bface, a, b, length)


def _pin_footprints(owner: np.ndarray, pin: np.ndarray, bface: np.ndarray, a: np.ndarray, b: np.ndarray,
                    length: np.ndarray) -> np.ndarray:
    """Every face of a footprint to its unit, also across a street (passages, covered ways)."""
    if not (pin >= 0).any():
        return owner
    owner = owner.copy()
    fixed = pin >= 0
    owner[fixed] = pin[fixed]
    return _settle(owner, fixed, bface, a, b, length)


def _own_empty_blocks(owner: np.ndarray, fblock: np.ndarray, a: np.ndarray, b: np.ndarray,
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


def _face_keys(fblock: np.ndarray, owner: np.ndarray, bblock: np.ndarray, units: BuildingArrays, *,
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
    single = np.where(bexcl >= 0, 3 * _KIND + bexcl, 1 * _KIND + np.arange(len(bblock)))
    unit = np.where(whole_comp, 2 * _KIND + bcompound, single)
    # a block stays whole when small and every building in it has the same compound key
    ukey = np.where(whole_comp, bcompound, -1)
    kmin = np.full(nb, np.iinfo(np.int64).max)
    kmax = np.full(nb, np.iinfo(np.int64).min)
    np.minimum.at(kmin, bblock[ok], ukey[ok])
    np.maximum.at(kmax, bblock[ok], ukey[ok])
    xcount = np.bincount(bblock[ok], weights=(bexcl[ok] >= 0), minlength=nb)
    whole = (bh <= whole_block) & (kmin == kmax) & (xcount == 0)
    has = owner >= 0
    empty = 4 * _KIND + fblock
    fine = np.where(has, single[np.maximum(owner, 0)], empty)
    coarse = np.where(has, unit[np.maximum(owner, 0)], empty)
    blockkey = np.where(kmin >= 0, 2 * _KIND + kmin, 5 * _KIND + np.arange(nb))
    # by the owner's block (faces may be owned across a street), so coarse is a function of fine
    oblock = bblock[np.maximum(owner, 0)]
    wf = has & (oblock >= 0) & whole[np.maximum(oblock, 0)]
    coarse[wf] = blockkey[oblock[wf]]
    return fine, coarse


def _barrier_segments(barriers: Barriers, snap_m: float) -> tuple[np.ndarray, np.ndarray]:
    seg_c, _ = segments_of(barriers.communities)
    seg_s, own_s = segments_of(barriers.streets)
    seg_k, _ = segments_of(barriers.compounds)
    seg_snap = _snap_segments(barriers.streets, snap_m)
    bits_s = np.where(barriers.major[own_s], BIT_MAJOR, BIT_STREET) if len(own_s) else np.empty(0, dtype=np.int64)
    seg = np.vstack([seg_c, seg_s, seg_k, seg_snap])
    bits = np.concatenate([np.full(len(seg_c), BIT_COMMUNITY), bits_s,
                           np.full(len(seg_k), BIT_WALL), np.full(len(seg_snap), BIT_STREET)]).astype(np.int64)
    return seg, bits


def _near_street(arr: Arrangement, edges: np.ndarray, streets: np.ndarray, near_m: float) -> np.ndarray:
    """Which *edges* have their midpoint within *near_m* of a street line (the street-share metric)."""
    out = (arr.ebits[edges] & (BIT_MAJOR | BIT_STREET)) > 0
    todo = np.flatnonzero(~out)
    if len(streets) == 0 or near_m <= 0 or not len(todo):
        return out
    mid = (arr.xy[arr.eu[edges[todo]]] + arr.xy[arr.ev[edges[todo]]]) / 2
    step = max(near_m / 2, 0.5)
    pts = shapely.get_coordinates(shapely.segmentize(shapely.get_parts(streets), step))
    # densified vertices stand in for the lines: at most step/2 off, so widen by that
    tree = cKDTree(pts, balanced_tree=False, compact_nodes=False)
    reach = float(np.hypot(near_m, step / 2))
    dist, _ = tree.query(mid, distance_upper_bound=reach)
    out[todo] = dist <= reach
    return out


def _edge_costs(ebits: np.ndarray, near: np.ndarray, length: np.ndarray, same_compound: np.ndarray,
                costs: Costs) -> np.ndarray:
    factor = np.where(ebits & BIT_MAJOR, costs.major,
             np.where(near | (ebits & BIT_STREET > 0), costs.street,
             np.where(ebits & BIT_WALL, costs.wall,
             np.where(same_compound, costs.compound, costs.block))))
    return factor * length


def _merge_faces(n_faces: int, key: np.ndarray, a: np.ndarray, b: np.ndarray, face_comm: np.ndarray) -> np.ndarray:
    """Consecutive ids of the connected runs of touching faces with equal *key* (-1 outside)."""
    same = key[a] == key[b]
    comp = _components(n_faces, a[same], b[same])
    comp = np.where(face_comm >= 0, comp, -1)
    out = np.full(n_faces, -1)
    _, out[comp >= 0] = np.unique(comp[comp >= 0], return_inverse=True)
    return out


def _unit_arrays(fu: FootprintUnits, buildings: BuildingArrays) -> BuildingArrays:
    """Per-unit footprint, anchor, community, households, compound and exclusive use (of its
    largest building; exclusive only when every building of the unit has that use)."""
    n_units = len(fu.rep)
    bexcl = buildings.exclusive
    hh = np.bincount(fu.unit, weights=buildings.households, minlength=n_units)
    xmin = np.full(n_units, np.iinfo(np.int64).max)
    xmax = np.full(n_units, np.iinfo(np.int64).min)
    np.minimum.at(xmin, fu.unit, bexcl)
    np.maximum.at(xmax, fu.unit, bexcl)
    excl = np.where(xmin == xmax, bexcl[fu.rep], -1)
    return BuildingArrays(fu.geoms, buildings.anchors[fu.rep], np.asarray(buildings.community)[fu.rep], hh,
                          buildings.compound[fu.rep], excl)


def _arrangement(comm_geoms: np.ndarray, seg_b: np.ndarray, bits_b: np.ndarray, anchors: np.ndarray,
                 fu: FootprintUnits) -> tuple[Arrangement, np.ndarray]:
    """Barriers, Voronoi ridges of the unit anchors and the outlines of the footprints they cross.

    Returns the arrangement and the units whose footprint a barrier or ridge crosses.
    """
    seg_r = _ridges(anchors, tuple(shapely.total_bounds(comm_geoms)))
    crossed = crossed_units(fu.geoms, np.vstack([seg_b, seg_r]))
    seg_f, _ = segments_of(fu.geoms[crossed])
    seg = np.vstack([seg_b, seg_r, seg_f])
    bits = np.concatenate([bits_b, np.full(len(seg_r), BIT_RIDGE), np.full(len(seg_f), BIT_FOOTPRINT)])
    log.debug("footprints: %d of %d units crossed by a barrier or ridge", len(crossed), len(fu.rep))
    return arrangement_from_segments(seg, bits, split_mask=bits != BIT_RIDGE), crossed


def tessellate(barriers: Barriers, buildings: BuildingArrays, options: CellOptions) -> Tessellation:
    """Tile every community with cells on streets and build the node graph (see module doc).

    Cells are built around whole footprints (:mod:`geo.partition.footprints`): every
    building lies in one node with its whole footprint.

    Parameters
    ----------
    barriers : Barriers
        Community outlines, streets and compound walls (metres).
    buildings : BuildingArrays
        Every building: footprint, anchor, community index, households, compound, exclusive use.
    options : CellOptions

    Returns
    -------
    Tessellation
    """
    fu = footprint_units(buildings.footprints, buildings.community, overlap_share=options.overlap_share)
    units = _unit_arrays(fu, buildings)
    comm_geoms, anchors, bcomm = barriers.communities, units.anchors, units.community
    seg_b, bits_b = _barrier_segments(barriers, options.snap_m)
    arr, crossed = _arrangement(comm_geoms, seg_b, bits_b, anchors, fu)
    fpts = _face_points(arr)
    fl, fr = arr.face[0::2], arr.face[1::2]
    face_comm = _face_communities(arr, fl, fr, fpts, comm_geoms)
    pin = pinned_faces(fpts, face_comm, fu.geoms, crossed, bcomm)
    length = arr.edge_length
    inner = (fl >= 0) & (fr >= 0) & (fl != fr)
    inner &= (face_comm[np.maximum(fl, 0)] == face_comm[np.maximum(fr, 0)]) & (face_comm[np.maximum(fl, 0)] >= 0)
    a, b, ln, eb = fl[inner], fr[inner], length[inner], arr.ebits[inner]
    ridge_only = (eb & ~(BIT_RIDGE | BIT_FOOTPRINT)) == 0
    fblock = _components(arr.n_faces, a[ridge_only], b[ridge_only])
    near = cKDTree(anchors).query(fpts)[1] if len(anchors) else np.full(arr.n_faces, -1)
    near = np.where(pin >= 0, pin, np.where(face_comm >= 0, near, -1))
    bface = _anchor_faces(arr, fpts, np.where(near >= 0, near, len(anchors)), anchors, face_comm, bcomm)
    bblock = np.where(bface >= 0, fblock[np.maximum(bface, 0)], -1)
    # units own the faces of their own block first; then each empty block joins, whole, the
    # neighbouring cell it shares most boundary with; last, footprints across a street
    owner = _own_faces(near, fblock, bblock, np.maximum(bface, 0), a[ridge_only], b[ridge_only],
                       ln[ridge_only], pin)
    owner = _own_empty_blocks(owner, fblock, a, b, ln)
    owner = _pin_footprints(owner, pin, np.maximum(bface, 0), a, b, ln)
    owner[face_comm < 0] = -1
    fine, coarse = _face_keys(fblock, owner, bblock, units, whole_block=options.whole_block,
                              compound_max=options.compound_max)
    faces = FaceLabels(face_node=_merge_faces(arr.n_faces, fine, a, b, face_comm),
                        face_group=_merge_faces(arr.n_faces, coarse, a, b, face_comm), face_comm=face_comm,
                        points=fpts, fine_key=fine, owner=owner, building_face=bface)
    near_edge = _near_street(arr, np.flatnonzero(inner), barriers.streets, options.near_m)
    edges = InnerEdges(a, b, ln, eb, near_edge)
    edges = dataclasses.replace(edges, cost=_edge_costs(eb, near_edge, ln, _same_compound(owner, edges, units),
                                                        options.costs))
    tess = _node_tables(arr, faces, edges, units, options.costs)
    return dataclasses.replace(tess, building_node=tess.building_node[fu.unit],
                               overlaps=fu.pairs, overlap_area=fu.shared, overlap_merged=fu.merged,
                               faces=faces, inner=edges, units=units, costs=options.costs,
                               face_fixed=_fixed_faces(faces, pin))


def _same_compound(owner: np.ndarray, inner: InnerEdges, units: BuildingArrays) -> np.ndarray:
    """Edges whose two faces are owned by buildings of one compound."""
    oa, ob = owner[inner.a], owner[inner.b]
    ca, cb = units.compound[np.maximum(oa, 0)], units.compound[np.maximum(ob, 0)]
    return (oa >= 0) & (ob >= 0) & (ca == cb) & (ca >= 0)


def _fixed_faces(faces: FaceLabels, pin: np.ndarray) -> np.ndarray:
    """Faces a redraw may not move: inside a footprint, holding an anchor, or of a node without buildings."""
    fixed = pin >= 0
    anchor = faces.building_face[faces.building_face >= 0]
    fixed[anchor] = True
    nodes = faces.face_node
    has_building = np.zeros(int(nodes.max()) + 1 if len(nodes) else 0, dtype=bool)
    has_building[nodes[anchor][nodes[anchor] >= 0]] = True
    fixed |= (nodes >= 0) & ~has_building[np.maximum(nodes, 0)]
    return fixed


def redrawn(tess: Tessellation, face_node: np.ndarray, face_source: np.ndarray) -> Tessellation:
    """*tess* with faces moved between nodes: every face takes *face_node*, and the owner,
    unit key and group of face *face_source* (a face of its new node); nodes keep their ids."""
    if tess.faces is None or tess.inner is None or tess.units is None or tess.costs is None:
        raise ValueError("redrawn: the tessellation carries no face-level state (made by tessellate())")
    f = tess.faces
    faces = dataclasses.replace(f, face_node=face_node, face_group=f.face_group[face_source],
                                fine_key=f.fine_key[face_source], owner=f.owner[face_source])
    new = _node_tables(tess.arr, faces, tess.inner, tess.units, tess.costs)
    return dataclasses.replace(new, building_node=tess.building_node, overlaps=tess.overlaps,
                               overlap_area=tess.overlap_area, overlap_merged=tess.overlap_merged, faces=faces,
                               inner=tess.inner, units=tess.units, costs=tess.costs, face_fixed=tess.face_fixed)


def _node_tables(arr: Arrangement, faces: FaceLabels, inner: InnerEdges, units: BuildingArrays,
                 costs: Costs) -> Tessellation:
    face_node, face_comm, fpts, owner, bface = (faces.face_node, faces.face_comm, faces.points, faces.owner,
                                                faces.building_face)
    fkey, households, bcompound = faces.fine_key, units.households, units.compound
    a, b, ln, eb, near = inner.a, inner.b, inner.length, inner.bits, inner.near
    fl, fr, length = arr.face[0::2], arr.face[1::2], arr.edge_length
    m = int(face_node.max()) + 1 if (face_node >= 0).any() else 0
    inc = face_node >= 0
    node_comm = np.full(m, -1)
    node_comm[face_node[inc]] = face_comm[inc]
    area = np.bincount(face_node[inc], weights=arr.face_area[inc], minlength=m)
    wx = np.bincount(face_node[inc], weights=arr.face_area[inc] * fpts[inc, 0], minlength=m)
    wy = np.bincount(face_node[inc], weights=arr.face_area[inc] * fpts[inc, 1], minlength=m)
    node_xy = np.column_stack([wx, wy]) / np.maximum(area, 1e-9)[:, None]
    bnode = np.where(bface >= 0, face_node[np.maximum(bface, 0)], -1)
    ok = bnode >= 0
    node_h = np.bincount(bnode[ok], weights=households[ok], minlength=m).round().astype(np.int64)
    kind = fkey // _KIND
    node_use = np.full(m, -1)
    xf = inc & (kind == 3)
    node_use[face_node[xf]] = (fkey[xf] - 3 * _KIND)
    na, nb_ = face_node[a], face_node[b]
    diff = na != nb_
    oa, ob = owner[a], owner[b]
    same_comp = (oa >= 0) & (ob >= 0) & (bcompound[np.maximum(oa, 0)] == bcompound[np.maximum(ob, 0)]) \
        & (bcompound[np.maximum(oa, 0)] >= 0)
    cost = _edge_costs(eb, near, ln, same_comp, costs)
    street = np.where(near | (eb & (BIT_MAJOR | BIT_STREET) > 0), ln, 0.0)
    u, v = np.minimum(na, nb_)[diff], np.maximum(na, nb_)[diff]
    key = u * max(m, 1) + v
    uk, inv = np.unique(key, return_inverse=True)
    e_len = np.bincount(inv, weights=ln[diff])
    e_cost = np.bincount(inv, weights=cost[diff])
    e_street = np.bincount(inv, weights=street[diff])
    # outline on the community boundary: half-edges whose other side is another community/outside
    other = np.r_[fr, fl]
    mine = np.r_[fl, fr]
    L2 = np.r_[length, length]
    valid = mine >= 0
    valid[valid] = face_node[mine[valid]] >= 0
    outer = valid & ((other < 0) | (face_comm[np.maximum(other, 0)] != face_comm[np.maximum(mine, 0)]))
    node_outer = np.bincount(face_node[mine[outer]], weights=L2[outer], minlength=m)
    log.info("tessellation: %d faces, %d nodes, %d node edges, %d buildings placed",
             arr.n_faces, m, len(uk), int(ok.sum()))
    node_group = np.zeros(m, dtype=np.int64)
    node_group[face_node[inc]] = faces.face_group[inc]
    node_compound = np.full(m, -1, dtype=np.int64)
    own = inc & (owner >= 0)
    node_compound[face_node[own]] = bcompound[owner[own]]
    return Tessellation(arr, face_comm, face_node, node_comm, node_h, area, node_outer,
                        node_use >= 0, node_use, node_xy, uk // max(m, 1), uk % max(m, 1),
                        e_len, e_cost, e_street, bnode, node_group, node_compound)
