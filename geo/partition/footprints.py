"""Whole footprints in the cells: a grid boundary never cuts a building (DOMAIN §2).

Cells are drawn from the Voronoi ridges of one anchor per building, and streets or
compound walls may run through a footprint (passages, covered ways, malls): on their own
either would cut buildings. Before cells are drawn, footprints that overlap by more than
a share of the smaller one become one *unit* (they must share a grid); touching
footprints stay separate units, divided along their common wall. The outline of every
footprint crossed by a barrier or a ridge joins the planar arrangement, and every face
inside a footprint is *pinned* to its unit, whatever block or Voronoi cell it lies in.
Footprints crossed by nothing lie inside their own unit's face already and cost nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["BIT_FOOTPRINT", "FootprintUnits", "footprint_units", "crossed_units", "pinned_faces",
           "overlap_report", "merge_overlap_reports"]

log = logging.getLogger(__name__)

BIT_FOOTPRINT = 32
# Shared area below this (m²) is floating-point noise of a common wall, not an overlap.
_NOISE_M2 = 1e-6
# Overlapping pairs listed by name in a plan report (the count is always complete).
_REPORT_EXAMPLES = 50


@dataclass(frozen=True)
class FootprintUnits:
    """Buildings grouped into the units cells are built around.

    Attributes
    ----------
    unit : (N,) int array, unit of every building.
    rep : (U,) int array, the largest building of every unit (its anchor stands for the unit).
    geoms : (U,) object array, the unit's footprint (union of its buildings).
    pairs : (K, 2) int array, buildings whose footprints overlap (shared area > 0).
    shared : (K,) float array, overlapping area of every pair (m²).
    merged : (K,) bool array, pairs whose overlap made them one unit.
    """

    unit: np.ndarray
    rep: np.ndarray
    geoms: np.ndarray
    pairs: np.ndarray
    shared: np.ndarray
    merged: np.ndarray


def _valid(footprints: np.ndarray) -> np.ndarray:
    g = np.asarray(footprints, dtype=object).copy()
    bad = ~shapely.is_valid(g)
    if bad.any():
        g[bad] = shapely.make_valid(g[bad])
    return g


def _overlapping_pairs(g: np.ndarray, bcomm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of footprints of one community sharing area, and that area."""
    qi, qj = shapely.STRtree(g).query(g, predicate="intersects")
    keep = (qi < qj) & (bcomm[qi] == bcomm[qj])
    qi, qj = qi[keep], qj[keep]
    shared = shapely.area(shapely.intersection(g[qi], g[qj])) if len(qi) else np.empty(0)
    over = shared > _NOISE_M2
    return np.column_stack([qi[over], qj[over]]).astype(np.int64), shared[over]


def footprint_units(footprints: np.ndarray, bcomm: np.ndarray, *, overlap_share: float) -> FootprintUnits:
    """Units of buildings: footprints overlapping by more than *overlap_share* of the smaller are one.

    Parameters
    ----------
    footprints : (N,) array of polygons in metres.
    bcomm : (N,) int array, community index of every building (units never cross communities).
    overlap_share : float
        Footprints sharing more than this share of the smaller one's area form one unit;
        a smaller overlap is given to the larger footprint (the other keeps ≥ 1 − share).

    Returns
    -------
    FootprintUnits
    """
    g = _valid(footprints)
    n = len(g)
    area = shapely.area(g)
    pairs, shared = _overlapping_pairs(g, np.asarray(bcomm))
    smaller = np.minimum(area[pairs[:, 0]], area[pairs[:, 1]]) if len(pairs) else np.empty(0)
    merged = shared > overlap_share * smaller
    m = pairs[merged]
    graph = coo_matrix((np.ones(len(m), dtype=np.int8), (m[:, 0], m[:, 1])), shape=(n, n))
    _, unit = connected_components(graph, directed=False)
    order = np.lexsort((np.arange(n), -area, unit))
    first = order[np.r_[True, unit[order][1:] != unit[order][:-1]]] if n else order
    rep = first[np.argsort(unit[first])]
    geoms = g[rep].copy()
    size = np.bincount(unit, minlength=len(rep))
    for u in np.flatnonzero(size > 1).tolist():
        geoms[u] = shapely.union_all(g[unit == u])
    if len(pairs):
        log.info("footprints: %d overlapping pairs, %d of them one unit (%d units of %d buildings)",
                 len(pairs), int(merged.sum()), len(rep), n)
    return FootprintUnits(unit.astype(np.int64), rep.astype(np.int64), geoms, pairs, shared, merged)


def crossed_units(geoms: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Indices of the footprints that a segment (``(n, 4)``: barrier or ridge) touches or crosses."""
    if not len(seg) or not len(geoms):
        return np.empty(0, dtype=np.int64)
    lines = shapely.linestrings(seg.reshape(-1, 2, 2))
    _, qj = shapely.STRtree(geoms).query(lines, predicate="intersects")
    return np.unique(qj)


def pinned_faces(fpts: np.ndarray, face_comm: np.ndarray, geoms: np.ndarray, units: np.ndarray,
                 ucomm: np.ndarray) -> np.ndarray:
    """Unit every face lies inside (-1 outside every footprint of *units*).

    Faces inside two footprints (an overlap too small to merge them) go to the larger one.
    A face is never pinned to a unit of another community.
    """
    pin = np.full(len(fpts), -1, dtype=np.int64)
    if not len(units) or not len(fpts):
        return pin
    qi, qj = shapely.STRtree(geoms[units]).query(shapely.points(fpts), predicate="within")
    u = units[qj]
    ok = face_comm[qi] == ucomm[u]
    qi, u = qi[ok], u[ok]
    order = np.lexsort((u, -shapely.area(geoms[u]), qi))
    first = order[np.r_[True, qi[order][1:] != qi[order][:-1]]] if len(order) else order
    pin[qi[first]] = u[first]
    return pin


def overlap_report(pairs: np.ndarray, shared: np.ndarray, merged: np.ndarray,
                   building_ids: np.ndarray) -> dict:
    """The plan report's ``overlapping_footprints``: counts and the largest overlaps by building id.

    ``pairs`` overlapping pairs, ``kept_together`` of them one unit (same grid),
    ``examples``: ``[id_a, id_b, shared_m2, kept_together]``, largest overlap first.
    """
    order = np.argsort(-shared, kind="stable")[:_REPORT_EXAMPLES]
    ids = np.asarray(building_ids, dtype=object)
    examples = [[str(ids[pairs[k, 0]]), str(ids[pairs[k, 1]]), round(float(shared[k]), 2), bool(merged[k])]
                for k in order.tolist()]
    return {"pairs": int(len(pairs)), "kept_together": int(np.sum(merged)), "examples": examples}


def merge_overlap_reports(reports: list[dict]) -> dict:
    """One ``overlapping_footprints`` entry from those of several shards."""
    examples = sorted((e for r in reports for e in r["examples"]), key=lambda e: -e[2])[:_REPORT_EXAMPLES]
    return {"pairs": sum(r["pairs"] for r in reports),
            "kept_together": sum(r["kept_together"] for r in reports), "examples": examples}
