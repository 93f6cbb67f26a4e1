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
    face_grid = np.where(tess.face_node >= 0, node_grid[np.maximum(tess.face_node, 0)], -1)
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
    cycle, area = trace_cycles(arr.xy, eu, ev)
    cgrid = np.full(len(area), -1)
    cgrid[cycle] = left
    wanted = np.flatnonzero(cgrid >= 0)
    rings = rings_of_cycles(arr.xy, eu, ev, cycle, wanted)
    shells: dict[int, list] = {}
    holes: dict[int, list] = {}
    for ring, c in zip(rings, wanted, strict=True):
        (shells if area[c] > 0 else holes).setdefault(int(cgrid[c]), []).append(ring)
    for g in range(n_grids):
        sh, ho = shells.get(g, []), holes.get(g, [])
        if len(sh) == 1:
            geom = shapely.Polygon(sh[0], ho)
            if not geom.is_valid:
                geom = shapely.make_valid(geom)
        elif sh:
            geom = shapely.union_all(shapely.polygons(sh))
            if ho:
                geom = shapely.difference(geom, shapely.union_all(shapely.polygons(ho)))
        else:
            geom = shapely.Polygon()
        out[g] = geom
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
