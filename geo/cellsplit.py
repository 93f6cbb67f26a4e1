"""Split a plan cell so that exactly the selected buildings can change grid.

A plan cell (a street block face, a compound, a group of overlapping footprints) is the
unit a grid is made of. When a planner moves some, not all, buildings of a cell, the cell
is divided into a *piece* holding the moving buildings and a *rest* holding the others.
The division runs along a triangulation of the open ground between the footprints (each
triangle to the nearer group), every footprint stays whole on its own side.

Overlapping footprints (a tower mapped over its podium, two outlines of one block) are
resolved first: the shared area goes with the smaller building, so the two may move apart
when the larger one keeps at least 99 % of its footprint (the partition's bar: a grid
boundary never cuts a building). Where it would not, they are one unit and move together
(:func:`overlap_partners` says which and by how much, for the planner's confirmation).

Cells tile their community with shared vertices; the triangles' corners are vertices of the
cell and of the footprints, so the division meets the cell's outline only at the cell's own
vertices. Where a footprint touches the outline the overlay may still add one;
:func:`insert_vertices` puts such vertices into the neighbouring cells too, keeping the
tiling a valid coverage (``shapely.coverage_is_valid``).

Everything is in the cells' own coordinates (EPSG:4326 in the planner): pieces share the
cell's vertices exactly, so they stay a coverage with their neighbours.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from shapely.geometry.base import BaseGeometry

from geo.errors import LayerError

__all__ = ["CellSplit", "split_cell", "insert_vertices", "overlap_partners"]

# Overlap, as a share of the smaller footprint, below which two footprints do not overlap at
# all (touching walls share no area; digitising noise of shared walls stays far below this).
_OVERLAP_SHARE = 1e-3
# A footprint belongs to a cell when this share of it lies inside (the partition's own bar:
# a grid boundary never cuts a building, checked as >= 99 % of each footprint in its grid).
# The same share bounds what a larger footprint may give up to the smaller ones it overlaps.
_INSIDE_SHARE = 0.99
# Snapping tolerance for new outline vertices, in coordinate units: ~0.1 mm in degrees,
# far below any real vertex spacing, far above floating-point noise of an intersection.
_SNAP = 1e-9


@dataclass(frozen=True)
class CellSplit:
    """A cell divided for a move: ``piece`` holds the ``moving`` buildings, ``rest`` the others.

    ``moving`` lists the selected buildings plus every building whose footprint overlaps one
    of them (``dragged`` names those), in the order of the footprints given.
    """

    moving: tuple[str, ...]
    dragged: tuple[str, ...]
    piece: BaseGeometry
    rest: BaseGeometry


@dataclass(frozen=True)
class _Overlaps:
    """Overlapping pairs of footprints (``i`` the larger), their shared area and which are one unit."""

    i: np.ndarray
    j: np.ndarray
    shared: np.ndarray
    together: np.ndarray


def _overlaps(footprints: np.ndarray) -> _Overlaps:
    """Pairs sharing area; a pair is one unit unless the larger keeps ≥ 99 % without the overlap.

    The shared area of a separable pair goes to the smaller footprint. A larger footprint
    overlapped by several smaller ones gives up the smallest overlaps first, at most 1 % of
    its area in all; its other pairs stay one unit.
    """
    a, b = shapely.STRtree(footprints).query(footprints, predicate="intersects")
    pair = a < b
    a, b = a[pair], b[pair]
    area = shapely.area(footprints)
    shared = shapely.area(shapely.intersection(footprints[a], footprints[b])) if len(a) else np.empty(0)
    keep = shared > _OVERLAP_SHARE * np.minimum(area[a], area[b])
    a, b, shared = a[keep], b[keep], shared[keep]
    big = (area[a] > area[b]) | ((area[a] == area[b]) & (a < b))
    i, j = np.where(big, a, b), np.where(big, b, a)
    order = np.lexsort((shared, i))  # per larger footprint, the smallest overlaps first
    given = np.zeros(len(i))
    if len(i):
        run = np.cumsum(shared[order])
        start = np.searchsorted(i[order], i[order])
        given[order] = run - np.r_[0.0, run][start]
    together = given > (1 - _INSIDE_SHARE) * area[i]
    return _Overlaps(i, j, shared, together)


def _units(footprints: np.ndarray, ov: _Overlaps) -> np.ndarray:
    """Unit label of each footprint: pairs that cannot move apart are one unit."""
    n = len(footprints)
    graph = coo_matrix((np.ones(int(ov.together.sum())), (ov.i[ov.together], ov.j[ov.together])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _resolved(footprints: np.ndarray, ov: _Overlaps) -> np.ndarray:
    """Footprints with the area shared with a smaller one (of a separable pair) given to it."""
    out = footprints.copy()
    apart = ~ov.together
    for i in np.unique(ov.i[apart]).tolist():
        out[i] = shapely.difference(footprints[i], shapely.union_all(footprints[ov.j[apart & (ov.i == i)]]))
    return out


def _divide(cell: BaseGeometry, footprints: np.ndarray, moving: np.ndarray) -> BaseGeometry:
    """The part of *cell* nearer the moving footprints than the others, holding them whole.

    The open ground (cell minus footprints) is cut into a constrained Delaunay triangulation
    whose corners are vertices of the cell and of the footprints only, so the divide meets
    the cell's outline at the cell's own vertices and the neighbours need no change. Each
    triangle goes to the side whose footprints are nearer its centre.
    """
    # Outline points a quarter of a typical side apart: finer triangles, a smoother divide.
    step = float(np.median(np.sqrt(shapely.area(footprints)))) / 4 or 1.0
    fine = shapely.segmentize(footprints, step)
    go, stay = shapely.union_all(fine[moving]), shapely.union_all(fine[~moving])
    ground = shapely.difference(cell, shapely.union(go, stay))
    polys = shapely.get_parts(ground)
    polys = polys[shapely.get_type_id(polys) == 3]
    tris = shapely.get_parts(shapely.constrained_delaunay_triangles(polys)) if len(polys) else np.empty(0, object)
    centres = shapely.centroid(tris)
    near = shapely.distance(centres, go) < shapely.distance(centres, stay)
    piece = shapely.union_all(np.r_[np.asarray([go], dtype=object), tris[near]])
    # Triangles cut off from every moving footprint go back to the rest.
    parts = shapely.get_parts(piece)
    return shapely.union_all(parts[(shapely.area(parts) > 0) & shapely.intersects(parts, go)])


def split_cell(cell: BaseGeometry, footprints: pd.Series, selected: Iterable[str]) -> CellSplit | None:
    """Divide *cell* so the *selected* buildings (and those overlapping them) can move alone.

    Parameters
    ----------
    cell
        The cell's polygon.
    footprints
        Footprint polygons of **every** building of the cell, indexed by building id, in the
        cell's coordinates.
    selected
        Ids of the buildings to move (ids not in *footprints* are ignored).

    Returns
    -------
    CellSplit or None
        ``None`` when the whole cell moves (every building is selected or overlaps one).

    Raises
    ------
    LayerError
        A footprint lies outside the cell, nothing selected is in it, or the division leaves
        a footprint cut; the caller then moves the whole unit (after asking).

    Examples
    --------
    >>> from shapely.geometry import box
    >>> fp = pd.Series({"a": box(1, 1, 4, 9), "b": box(6, 1, 9, 9)})
    >>> s = split_cell(box(0, 0, 10, 10), fp, ["b"])
    >>> s.moving, s.piece.covers(fp["b"]), s.rest.covers(fp["a"]), round(s.piece.area + s.rest.area, 9)
    (('b',), True, True, 100.0)
    """
    ids = footprints.index.astype(str).to_numpy()
    geoms = shapely.make_valid(np.asarray(footprints.to_numpy(), dtype=object))
    chosen = np.isin(ids, list(selected))
    if not chosen.any():
        raise LayerError(f"split_cell: none of the selected buildings is in this cell ({len(ids)} buildings)")
    inside = shapely.area(shapely.intersection(geoms, cell)) >= _INSIDE_SHARE * shapely.area(geoms)
    if not inside.all():
        raise LayerError(f"split_cell: footprints {', '.join(ids[~inside][:5])} are not inside the cell; "
                         "re-base or re-partition the plan")
    geoms = shapely.intersection(geoms, cell)  # a sliver past the outline stays with the cell
    ov = _overlaps(geoms)
    units = _units(geoms, ov)
    moving = np.isin(units, units[chosen])
    if moving.all():
        return None
    whole, geoms = geoms, _resolved(geoms, ov)
    try:
        piece = _divide(cell, geoms, moving)
        if not piece.is_valid or piece.geom_type not in ("Polygon", "MultiPolygon"):
            raise LayerError("split_cell: the divided piece is not a valid polygon; move the whole unit")
        rest = shapely.difference(cell, piece)
    except shapely.errors.GEOSException as exc:  # a degenerate division: the caller moves the whole unit
        raise LayerError(f"split_cell: the cell could not be divided ({exc}); move the whole unit") from None
    if not (shapely.covers(shapely.buffer(piece, 1e-9), geoms[moving]).all()
            and shapely.covers(shapely.buffer(rest, 1e-9), geoms[~moving]).all()):
        raise LayerError("split_cell: the division would cut a footprint; move the whole unit")
    side = np.where(moving, piece, rest)
    if (shapely.area(shapely.intersection(whole, side)) < _INSIDE_SHARE * shapely.area(whole)).any():
        raise LayerError("split_cell: a footprint would lie less than 99 % on its side; move the whole unit")
    return CellSplit(moving=tuple(ids[moving]), dragged=tuple(ids[moving & ~chosen]), piece=piece, rest=rest)


def overlap_partners(footprints: pd.Series, selected: Iterable[str]) -> pd.DataFrame:
    """Buildings that must move with the *selected* ones because their footprints overlap.

    Parameters
    ----------
    footprints
        Footprint polygons indexed by building id (any one CRS).
    selected
        Ids of the buildings the planner chose.

    Returns
    -------
    DataFrame
        One row per pair that is one unit (see the module doc) with at least one selected
        building: ``building_id`` (the other building; a selected one when both are),
        ``with_id`` (the selected one), ``share`` (shared area / the smaller footprint,
        0–1) and ``larger_share`` (shared area / the larger footprint: what the larger
        would lose, more than 1 % here). Largest share first.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> fp = pd.Series({"podium": box(0, 0, 10, 10), "tower": box(2, 2, 6, 6)})
    >>> overlap_partners(fp, ["tower"]).round(2).to_dict("records")
    [{'building_id': 'podium', 'with_id': 'tower', 'share': 1.0, 'larger_share': 0.16}]
    """
    ids = footprints.index.astype(str).to_numpy()
    geoms = shapely.make_valid(np.asarray(footprints.to_numpy(), dtype=object))
    ov = _overlaps(geoms)
    chosen = np.isin(ids, list(selected))
    rows = []
    area = shapely.area(geoms)
    for i, j, shared in zip(ov.i[ov.together], ov.j[ov.together], ov.shared[ov.together], strict=True):
        if not (chosen[i] or chosen[j]):
            continue
        other, mine = (i, j) if chosen[j] else (j, i)
        rows.append({"building_id": str(ids[other]), "with_id": str(ids[mine]),
                     "share": float(shared / area[j]), "larger_share": float(shared / area[i])})
    cols = ["building_id", "with_id", "share", "larger_share"]
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["share", "building_id"], ascending=[False, True], ignore_index=True)


def insert_vertices(neighbours: Sequence[BaseGeometry] | np.ndarray, pieces: Iterable[BaseGeometry],
                    cell: BaseGeometry) -> np.ndarray:
    """*neighbours* with the pieces' new vertices that lie on their edges inserted (shape unchanged).

    After a split the pieces meet the old *cell*'s outline at new points; a neighbouring cell
    needs the same vertices for the tiling to stay a coverage (shared edges match exactly).
    Only vertices the cell did not have are inserted: an old vertex near a neighbour's own
    vertex must not be pulled onto it.
    """
    xy = shapely.get_coordinates(np.asarray(list(pieces), dtype=object))
    old = {tuple(p) for p in shapely.get_coordinates(cell).tolist()}
    new = np.asarray([p for p in xy.tolist() if tuple(p) not in old], dtype=float).reshape(-1, 2)
    geoms = np.asarray(neighbours, dtype=object)
    if not len(new):
        return geoms
    return np.asarray(shapely.snap(geoms, shapely.multipoints(new), _SNAP), dtype=object)
