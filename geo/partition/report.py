"""Grid outlines traced from the tessellation, and per-grid numbers.

Outlines are traced on the half-edges whose two faces lie in different grids, so grids
share exact coordinates: they tile each community with no sliver and no overlap.
"""

from __future__ import annotations

import math

import numpy as np
import shapely

from geo.partition.cells import Tessellation
from geo.partition.planar import rings_of_cycles, trace_cycles

__all__ = ["grid_outlines", "grid_numbers", "polsby_popper"]


def polsby_popper(area: np.ndarray, perimeter: np.ndarray) -> np.ndarray:
    """Polsby–Popper compactness 4πA/P² (1 for a disc)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(perimeter > 0, 4 * math.pi * area / perimeter**2, 0.0)


def grid_outlines(tess: Tessellation, node_grid: np.ndarray, n_grids: int) -> np.ndarray:
    """One (Multi)Polygon per grid, traced from the faces of its nodes."""
    arr = tess.arr
    face_grid = np.full(len(tess.face_node), -1)
    inside = tess.face_node >= 0  # none when locked grids cover every community
    face_grid[inside] = node_grid[tess.face_node[inside]]
    fl = arr.face[0::2]
    fr = arr.face[1::2]
    gl = np.where(fl >= 0, face_grid[np.maximum(fl, 0)], -1)
    gr = np.where(fr >= 0, face_grid[np.maximum(fr, 0)], -1)
    b = gl != gr
    eu, ev = arr.eu[b], arr.ev[b]
    left = np.column_stack([gl[b], gr[b]]).ravel()
    out = np.empty(n_grids, dtype=object)
    if not len(eu):
        return out
    cycle, area, nxt = trace_cycles(arr.xy, eu, ev, return_next=True)
    cgrid = np.full(len(area), -1)
    cgrid[cycle] = left
    wanted = np.flatnonzero(cgrid >= 0)
    # shells before holes within each grid, so one vectorised call builds single-shell grids
    wanted = wanted[np.lexsort((area[wanted] <= 0, cgrid[wanted]))]
    rings = rings_of_cycles(arr.xy, eu, ev, cycle, wanted, nxt=nxt)
    wg = cgrid[wanted]
    n_shells = np.bincount(wg[area[wanted] > 0], minlength=n_grids)
    simple = n_shells[wg] == 1
    if simple.any():
        _, idx = np.unique(wg[simple], return_inverse=True)
        polys = shapely.polygons(rings[simple], indices=idx.ravel())
        bad = ~shapely.is_valid(polys)
        if bad.any():
            polys[bad] = shapely.make_valid(polys[bad])
        out[np.unique(wg[simple])] = polys
    for g in np.flatnonzero(n_shells > 1).tolist():
        mine = wg == g
        sh, ho = rings[mine & (area[wanted] > 0)], rings[mine & (area[wanted] <= 0)]
        geom = shapely.union_all(shapely.polygons(sh))
        if len(ho):
            geom = shapely.difference(geom, shapely.union_all(shapely.polygons(ho)))
        out[g] = geom
    empty = np.flatnonzero(n_shells == 0)
    out[empty] = shapely.Polygon()
    return out


def grid_numbers(tess: Tessellation, node_grid: np.ndarray, n_grids: int) -> dict[str, np.ndarray]:
    """Households, area, perimeter, Polsby–Popper and street share of every grid."""
    ok = node_grid >= 0
    g = node_grid
    households = np.bincount(g[ok], weights=tess.node_households[ok], minlength=n_grids)
    area = np.bincount(g[ok], weights=tess.node_area[ok], minlength=n_grids)
    outer = np.bincount(g[ok], weights=tess.node_outer[ok], minlength=n_grids)
    gu, gv = g[tess.edge_u], g[tess.edge_v]
    cut = (gu != gv) & (gu >= 0) & (gv >= 0)
    idx = np.r_[gu[cut], gv[cut]]
    cut_len = np.bincount(idx, weights=np.r_[tess.edge_len[cut], tess.edge_len[cut]], minlength=n_grids)
    cut_street = np.bincount(idx, weights=np.r_[tess.edge_street[cut], tess.edge_street[cut]],
                             minlength=n_grids)
    perimeter = outer + cut_len
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(cut_len > 0, cut_street / cut_len, np.nan)
    return {
        "households": households.round().astype(np.int64),
        "area_m2": area,
        "perimeter_m": perimeter,
        "polsby_popper": polsby_popper(area, perimeter),
        "street_share": share,
        "cut_len": cut_len,
        "cut_street": cut_street,
    }
