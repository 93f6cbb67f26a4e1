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
from scipy.spatial import cKDTree

from geo.partition.footprints import (
    BIT_FOOTPRINT,
    FootprintUnits,
    crossed_units,
    footprint_units,
    pinned_faces,
)
from geo.partition.ownership import (
    KIND,
    BuildingArrays,
    anchor_faces,
    components,
    face_keys,
    own_empty_blocks,
    own_faces,
    pin_footprints,
)
from geo.partition.planar import (
    Arrangement,
    arrangement_from_segments,
    segments_of,
)

__all__ = ["Costs", "CellOptions", "Barriers", "BuildingArrays", "FaceLabels", "InnerEdges", "Tessellation",
           "tessellate", "redrawn", "subdivided",
           "BIT_COMMUNITY", "BIT_MAJOR", "BIT_STREET", "BIT_WALL", "BIT_RIDGE"]

log = logging.getLogger(__name__)

BIT_COMMUNITY, BIT_MAJOR, BIT_STREET, BIT_WALL, BIT_RIDGE = 1, 2, 4, 8, 16


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
    face_pin: np.ndarray | None = None  # (F,) unit whose footprint holds the face, -1 when none


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


def _face_communities(arr: Arrangement, fl: np.ndarray, fr: np.ndarray, fpts: np.ndarray,
                      comm_geoms: np.ndarray) -> np.ndarray:
    """Community of every face (-1 outside): faces joined without crossing a community
    boundary share it, so only the largest face of each such region is located."""
    m = (fl >= 0) & (fr >= 0) & ((arr.ebits & BIT_COMMUNITY) == 0)
    comp = components(arr.n_faces, fl[m], fr[m])
    order = np.lexsort((-arr.face_area, comp))
    rep = order[np.r_[True, comp[order][1:] != comp[order][:-1]]]
    qi, qj = shapely.STRtree(comm_geoms).query(shapely.points(fpts[rep]), predicate="within")
    rep_comm = np.full(len(rep), -1)
    rep_comm[qi[::-1]] = qj[::-1]
    out = np.full(int(comp.max()) + 1 if len(comp) else 0, -1)
    out[comp[rep]] = rep_comm
    return out[comp]


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
    comp = components(n_faces, a[same], b[same])
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
    bounds = tuple(shapely.total_bounds(comm_geoms))
    seg_r = _ridges(anchors, bounds)
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
    fblock = components(arr.n_faces, a[ridge_only], b[ridge_only])
    near = cKDTree(anchors).query(fpts)[1] if len(anchors) else np.full(arr.n_faces, -1)
    near = np.where(pin >= 0, pin, np.where(face_comm >= 0, near, -1))
    bface = anchor_faces(arr, fpts, np.where(near >= 0, near, len(anchors)), anchors, face_comm, bcomm)
    bblock = np.where(bface >= 0, fblock[np.maximum(bface, 0)], -1)
    # units own the faces of their own block first; then each empty block joins, whole, the
    # neighbouring cell it shares most boundary with; last, footprints across a street
    owner = own_faces(near, fblock, bblock, np.maximum(bface, 0), a[ridge_only], b[ridge_only],
                       ln[ridge_only], pin)
    owner = own_empty_blocks(owner, fblock, a, b, ln)
    owner = pin_footprints(owner, pin, np.maximum(bface, 0), a, b, ln)
    owner[face_comm < 0] = -1
    fine, coarse = face_keys(fblock, owner, bblock, units, whole_block=options.whole_block,
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
                               face_fixed=_fixed_faces(faces, pin), face_pin=pin)


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
                               inner=tess.inner, units=tess.units, costs=tess.costs, face_fixed=tess.face_fixed,
                               face_pin=tess.face_pin)


def subdivided(tess: Tessellation, arr: Arrangement, parent: np.ndarray, carved: np.ndarray,
               streets: np.ndarray, near_m: float) -> Tessellation:
    """*tess* on *arr*, an arrangement whose every face lies inside one face of *tess*.

    Parameters
    ----------
    tess : Tessellation
        Cells from :func:`tessellate` (or :func:`redrawn`).
    arr : Arrangement
        The edges of ``tess.arr`` and more (e.g. a mesh), noded; ``arr.etag`` names the
        edge of ``tess.arr`` every edge lies on (-1 for the new ones).
    parent : (F,) int array
        Face of ``tess.arr`` every face of *arr* lies in (-1 outside).
    carved : int array
        Units whose footprint outline *arr* holds and ``tess.arr`` does not: the faces inside
        are pinned to them.
    streets : array of lines
        Street lines (metres), for the new edges' street share.
    near_m : float
        A new edge within this distance of a street line counts as on the street.

    Returns
    -------
    Tessellation
        The same nodes, buildings and households: every face takes the node, owner and
        keys of its parent face, the face holding every unit's anchor and the faces inside
        a footprint stay fixed.
    """
    f, units, old, costs = tess.faces, tess.units, tess.inner, tess.costs
    if f is None or units is None or old is None or costs is None or tess.face_pin is None \
            or arr.etag is None:
        raise ValueError("subdivided: the tessellation carries no face-level state (made by tessellate())")
    up = np.maximum(parent, 0)
    out = parent >= 0
    face_comm = np.where(out, f.face_comm[up], -1)
    fpts = _face_points(arr)
    pin = np.where(out, tess.face_pin[up], -1)
    new_pin = pinned_faces(fpts, face_comm, units.footprints, carved, units.community)
    pin = np.where(new_pin >= 0, new_pin, pin)
    owner = np.where(out, f.owner[up], -1)
    # the anchor of every unit lies in one of the faces its old anchor face was cut into
    split_owner = np.full(arr.n_faces, len(units.anchors))
    has = f.building_face >= 0
    mine = np.full(len(f.face_node), len(units.anchors))
    mine[f.building_face[has]] = np.flatnonzero(has)
    split_owner[out] = mine[up[out]]
    bface = anchor_faces(arr, fpts, split_owner, units.anchors, face_comm, units.community)
    faces = FaceLabels(face_node=np.where(out, f.face_node[up], -1), face_group=np.where(out, f.face_group[up], -1),
                       face_comm=face_comm, points=fpts, fine_key=np.where(out, f.fine_key[up], -1), owner=owner,
                       building_face=np.where(has, bface, -1))
    edges = _subdivided_edges(tess, arr, face_comm, streets, near_m)
    edges = dataclasses.replace(edges, cost=_edge_costs(edges.bits, edges.near, edges.length,
                                                        _same_compound(owner, edges, units), costs))
    new = _node_tables(arr, faces, edges, units, costs)
    return dataclasses.replace(new, building_node=tess.building_node, overlaps=tess.overlaps,
                               overlap_area=tess.overlap_area, overlap_merged=tess.overlap_merged, faces=faces,
                               inner=edges, units=units, costs=costs, face_fixed=_fixed_faces(faces, pin),
                               face_pin=pin)


def _inner_edges(arr: Arrangement, face_comm: np.ndarray) -> np.ndarray:
    """Edges between two faces of one community."""
    fl, fr = arr.face[0::2], arr.face[1::2]
    inner = (fl >= 0) & (fr >= 0) & (fl != fr)
    return np.flatnonzero(inner & (face_comm[np.maximum(fl, 0)] == face_comm[np.maximum(fr, 0)])
                          & (face_comm[np.maximum(fl, 0)] >= 0))


def _subdivided_edges(tess: Tessellation, arr: Arrangement, face_comm: np.ndarray, streets: np.ndarray,
                      near_m: float) -> InnerEdges:
    """Inner edges of *arr* (see :func:`subdivided`): an edge on an edge of ``tess.arr`` is on
    a street when that edge is; a new edge when its midpoint is within *near_m* of a street."""
    assert tess.inner is not None and tess.faces is not None and arr.etag is not None, "subdivided checks"
    old_near = np.zeros(len(tess.arr.eu), dtype=bool)
    old_near[_inner_edges(tess.arr, tess.faces.face_comm)] = tess.inner.near
    e = _inner_edges(arr, face_comm)
    tag = arr.etag[e]
    near = np.zeros(len(e), dtype=bool)
    near[tag >= 0] = old_near[tag[tag >= 0]]
    near[tag < 0] = _near_street(arr, e[tag < 0], streets, near_m)
    return InnerEdges(arr.face[2 * e], arr.face[2 * e + 1], arr.edge_length[e], arr.ebits[e], near)


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
    kind = fkey // KIND
    node_use = np.full(m, -1)
    xf = inc & (kind == 3)
    node_use[face_node[xf]] = (fkey[xf] - 3 * KIND)
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
