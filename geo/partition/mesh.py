"""The open land around a plan's off-street grid boundaries cut into a hexagonal mesh.

Cells are pieces of the buildings' Voronoi cells, so a grid boundary redrawn through open
land (:mod:`geo.partition.boundaries`) could only zigzag along ridges between far-apart
buildings. :func:`meshed` cuts the faces of the plan's cells within :data:`_MESH_REACH`
mesh widths of the grid boundaries that run off the streets (:func:`off_street_cuts`)
into hexagons (setting ``partition_redraw_mesh_m``), so a redrawn cut can run
near-straight from a street end to the next street or to the district's edge.

The mesh is spliced into the plan's arrangement, not drawn with it: the arrangement's
edges are already noded, so only the mesh (and the outlines of the footprints it
crosses) is tested against them, and every new face takes the node, owner and keys of
the face it was cut from (:func:`geo.partition.cells.subdivided`). The plan (which
buildings are in which node and grid) is the same on both.

CPU of ``partition_grids`` on the quick bench inputs (loaded machine, same run; no mesh →
district tessellated again with the mesh → spliced): Suzhou Gusu 0.7 → 3.6 → 2.6 s, Shanghai
Bund 0.8 → 2.6 → 1.8 s, synthetic 5 k 0.8 → 3.9 → 2.1 s, 20 k 3.5 → 21.3 → 9.3 s. The mesh
itself (~90 k segments on the Bund, ~390 k at 20 k) and the larger minimum cuts are the rest.
"""

from __future__ import annotations

import logging

import numpy as np
import shapely
from scipy.spatial import cKDTree

from geo.partition.cells import BIT_MAJOR, BIT_RIDGE, BIT_STREET, Tessellation, subdivided
from geo.partition.footprints import BIT_FOOTPRINT, crossed_units
from geo.partition.ownership import components
from geo.partition.planar import Arrangement, arrangement_from_segments, segments_of

__all__ = ["meshed", "off_street_cuts"]

log = logging.getLogger(__name__)

#: Mesh points keep this share of the mesh width clear of anchors and footprints (measured on
#: the Bund, width 10 m: 1 → street share 0.806, 0.5 → 0.810, 0.25 → 0.816; closer adds CPU).
_MESH_CLEARANCE = 0.25
#: The mesh reaches this many widths from the grid boundaries it is drawn for.
_MESH_REACH = 10.0


def off_street_cuts(tess: Tessellation, node_grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges (``(k, 4)``) between faces of two grids that run off the streets, where a
    redraw may find a better line, and the grids on their two sides (``(k, 2)``)."""
    inner, faces, arr = tess.inner, tess.faces, tess.arr
    if inner is None or faces is None or not len(node_grid):
        return np.empty((0, 4)), np.empty((0, 2), dtype=np.int64)
    fl, fr = arr.face[0::2], arr.face[1::2]
    comm = faces.face_comm
    idx = np.flatnonzero((fl >= 0) & (fr >= 0) & (fl != fr) & (comm[np.maximum(fl, 0)] == comm[np.maximum(fr, 0)])
                         & (comm[np.maximum(fl, 0)] >= 0))
    assert len(idx) == len(inner.a), "the inner edges of tessellate"
    face_grid = np.where(faces.face_node >= 0, node_grid[np.maximum(faces.face_node, 0)], -1)
    ga, gb = face_grid[inner.a], face_grid[inner.b]
    cut = (ga != gb) & (ga >= 0) & (gb >= 0) & ~inner.near & ((inner.bits & (BIT_MAJOR | BIT_STREET)) == 0)
    e = idx[cut]
    return np.hstack([arr.xy[arr.eu[e]], arr.xy[arr.ev[e]]]), np.column_stack([ga[cut], gb[cut]])


def _open_land_mesh(anchors: np.ndarray, footprints: np.ndarray, near: np.ndarray, step: float,
                    sides: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Edges (``(n, 4)``) of the hexagons of width *step* around the points of a triangular
    lattice that lie within :data:`_MESH_REACH` widths of a segment of *near* (``(k, 4)``) and
    farther than :data:`_MESH_CLEARANCE` of a width from every anchor and footprint: a mesh
    over the open land around *near*, each edge once.

    With *sides* (the two grids of every segment of *near*, ``(k, 2)``, and the grid of every
    anchor), a point is kept only near a segment one of whose grids holds its nearest anchor:
    the land of the two grids a boundary runs between, not their neighbours'.
    """
    if step <= 0 or not len(anchors) or not len(near):
        return np.empty((0, 4))
    reach = _MESH_REACH * step
    minx, miny = near.reshape(-1, 2).min(axis=0) - reach
    maxx, maxy = near.reshape(-1, 2).max(axis=0) + reach
    rows = np.arange(miny - step, maxy + step, step * np.sqrt(3) / 2)
    cols = np.arange(minx - step, maxx + step, step)
    r, c = np.divmod(np.arange(len(rows) * len(cols)), len(cols))
    lat = np.column_stack([cols[c] + (r % 2) * step / 2, rows[r]])
    away = _MESH_CLEARANCE * step
    # the segments stand in for by points every half width along them (at most a quarter off)
    pts, seg = _along(near, step / 2)
    _, at = cKDTree(pts).query(lat, distance_upper_bound=reach)
    cand = np.flatnonzero(at < len(pts))
    dist, nearest = cKDTree(anchors).query(lat[cand])
    ok = dist > away
    if sides is not None:
        grid, s = sides[1][nearest], seg[at[cand]]
        ok &= (grid == sides[0][s, 0]) | (grid == sides[0][s, 1])
    keep = np.zeros(len(lat), dtype=bool)
    keep[cand[ok]] = True
    near, _ = shapely.STRtree(footprints).query(shapely.points(lat[keep]), predicate="dwithin", distance=away)
    keep[np.flatnonzero(keep)[np.unique(near)]] = False
    kept = np.zeros((len(rows) + 2, len(cols) + 2), dtype=bool)  # one row/column of padding around
    kept[r[keep] + 1, c[keep] + 1] = True
    r, c, odd = r[keep], c[keep], r[keep] % 2
    # edge k joins corners at 30 + 60k and 90 + 60k degrees and faces the neighbour at 60 + 60k
    # (NE, NW, W, SW, SE, E); a shared edge is drawn by the hexagon it lies NE, NW or E of
    dr = np.array([1, 1, 0, -1, -1, 0])
    dc = np.array([[0, -1, -1, -1, 0, 1], [1, 0, -1, 0, 1, 1]])  # by row parity
    angle = np.radians(30 + 60 * np.arange(7))
    unit = step / np.sqrt(3) * np.column_stack([np.cos(angle), np.sin(angle)])
    out = []
    for k in range(6):
        other = kept[r + dr[k] + 1, c + dc[odd, k] + 1]
        draw = np.ones(len(r), dtype=bool) if k in (0, 1, 5) else ~other
        p = lat[keep][draw]
        out.append(np.hstack([p + unit[k], p + unit[k + 1]]))
    return np.vstack(out)


def _along(seg: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Points at most *spacing* apart along every segment (ends included) and their segment."""
    d = seg[:, 2:] - seg[:, :2]
    count = np.ceil(np.hypot(d[:, 0], d[:, 1]) / spacing).astype(np.int64) + 1
    which = np.repeat(np.arange(len(seg)), count)
    first = np.r_[0, np.cumsum(count)[:-1]]
    t = (np.arange(int(count.sum())) - first[which]) / np.maximum(count[which] - 1, 1)
    return seg[which, :2] + t[:, None] * d[which], which


def meshed(tess: Tessellation, node_grid: np.ndarray, streets: np.ndarray, *, step: float,
           near_m: float) -> Tessellation | None:
    """*tess* with the open land around the plan's off-street grid boundaries cut into hexagons.

    Parameters
    ----------
    tess : Tessellation
        Cells of the plan (from :func:`~geo.partition.cells.tessellate`).
    node_grid : ndarray
        Grid of every node of *tess*.
    streets : array of lines
        Street lines (metres).
    step : float
        Width of the hexagons (setting ``partition_redraw_mesh_m``); 0 draws none.
    near_m : float
        A mesh edge within this distance of a street line counts as on the street.

    Returns
    -------
    Tessellation or None
        The same nodes, buildings and grids on finer faces; *tess* when there is nothing to
        mesh; None when the mesh could not be spliced in (then redraw on *tess*).
    """
    units = tess.units
    if step <= 0 or units is None or tess.face_pin is None or not len(node_grid):
        return tess
    near, sides = off_street_cuts(tess, node_grid)
    seg_m = _open_land_mesh(units.anchors, units.footprints, near, step, (sides, _unit_grids(tess, node_grid)))
    if not len(seg_m):
        return tess
    carved = np.setdiff1d(crossed_units(units.footprints, seg_m), tess.face_pin[tess.face_pin >= 0])
    arr = _spliced(tess.arr, seg_m, units.footprints[carved])
    parent = _parent_faces(tess.arr, arr)
    if _lost_cells(tess, parent):
        return None
    log.debug("mesh: %d segments, %d footprints carved, %d -> %d faces", len(seg_m), len(carved),
              tess.arr.n_faces, arr.n_faces)
    return subdivided(tess, arr, parent, carved, streets, near_m)


def _unit_grids(tess: Tessellation, node_grid: np.ndarray) -> np.ndarray:
    """Grid of every unit (-1 when placed in no node)."""
    assert tess.faces is not None, "tessellate keeps its faces"
    bface = tess.faces.building_face
    node = np.where(bface >= 0, tess.faces.face_node[np.maximum(bface, 0)], -1)
    return np.where(node >= 0, node_grid[np.maximum(node, 0)], -1)


def _spliced(old: Arrangement, seg_m: np.ndarray, outlines: np.ndarray) -> Arrangement:
    """The edges of *old* (already noded: not tested against each other), the mesh *seg_m*
    (not tested against itself) and the footprint *outlines*, noded; ``etag`` is the edge of
    *old* every edge lies on, -1 for new edges."""
    seg_f, _ = segments_of(outlines)
    n_old = len(old.eu)
    seg = np.vstack([np.hstack([old.xy[old.eu], old.xy[old.ev]]), seg_f, seg_m])
    bits = np.concatenate([old.ebits, np.full(len(seg_f), BIT_FOOTPRINT), np.full(len(seg_m), BIT_RIDGE)])
    family = np.r_[np.ones(n_old, dtype=np.int64), np.zeros(len(seg_f), dtype=np.int64),
                   np.full(len(seg_m), 2, dtype=np.int64)]
    tags = np.r_[np.arange(n_old), np.full(len(seg_f) + len(seg_m), -1)].astype(np.int64)
    return arrangement_from_segments(seg, bits.astype(np.int64), split_mask=family != 2, family=family, tags=tags)


def _parent_faces(old: Arrangement, arr: Arrangement) -> np.ndarray:
    """Face of *old* every face of *arr* (:func:`_spliced`) lies in, -1 outside.

    A face takes the old face on the same side of its half-edges that lie on old edges (the
    one along the longest of them where they disagree: a vertex of the mesh snapped onto two
    old vertices a hair apart); a face with none takes that of its neighbours across new edges.
    """
    assert arr.etag is not None, "spliced arrangements carry tags"
    tag = arr.etag
    on_old = np.flatnonzero(tag >= 0)
    t = tag[on_old]
    d_new = arr.xy[arr.ev[on_old]] - arr.xy[arr.eu[on_old]]
    d_old = old.xy[old.ev[t]] - old.xy[old.eu[t]]
    flip = ((d_new * d_old).sum(axis=1) < 0).astype(np.int64)
    was = np.r_[old.face[2 * t + flip], old.face[2 * t + 1 - flip]]
    face = arr.face[np.r_[2 * on_old, 2 * on_old + 1]]
    length = np.r_[arr.edge_length[on_old], arr.edge_length[on_old]]
    ok = face >= 0
    face, was, length = face[ok], was[ok], length[ok]
    order = np.lexsort((-length, face))
    first = order[np.r_[True, face[order][1:] != face[order][:-1]]] if len(order) else order
    known = np.zeros(arr.n_faces, dtype=bool)
    known[face[first]] = True
    parent = np.full(arr.n_faces, -1)
    parent[face[first]] = was[first]
    # faces with no old edge lie in the face their neighbours across new edges lie in
    fl, fr = arr.face[0::2], arr.face[1::2]
    new = (tag < 0) & (fl >= 0) & (fr >= 0)
    comp = components(arr.n_faces, fl[new], fr[new])
    by_comp = np.full(int(comp.max()) + 1 if len(comp) else 0, -1)
    by_comp[comp[known]] = parent[known]
    parent = np.where(known, parent, by_comp[comp])
    return parent


def _lost_cells(tess: Tessellation, parent: np.ndarray) -> int:
    """Faces of *tess* holding an anchor, or nodes, that no face of the splice lies in."""
    assert tess.faces is not None, "tessellate keeps its faces"
    kept = np.zeros(tess.arr.n_faces, dtype=bool)
    kept[parent[parent >= 0]] = True
    anchors = tess.faces.building_face[tess.faces.building_face >= 0]
    node = tess.faces.face_node
    nodes = np.unique(node[node >= 0])
    return int((~kept[anchors]).sum()) + len(np.setdiff1d(nodes, node[kept & (node >= 0)]))
