"""Which zone (community, compound) each feature lies in: vectorised, shapely 2 STRtree.

Shared by :mod:`geo.validate` (buildings outside or in several communities) and
:mod:`geo.prepare` (assigning ``community_id`` / ``compound_id``), so both agree.
Inputs are geometry arrays in one metric CRS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely import STRtree

__all__ = ["ZoneAssignment", "assign_zones", "zone_overlaps"]


@dataclass(frozen=True)
class ZoneAssignment:
    """``zone[i]``: index of the zone feature *i* belongs to, -1 for none;
    ``n_overlapping[i]``: number of zones it overlaps by more than the overlap tolerance."""

    zone: np.ndarray
    n_overlapping: np.ndarray


def zone_overlaps(geoms: np.ndarray, zones: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs ``(geom index, zone index, overlap area)`` of every intersecting pair."""
    tree = STRtree(geoms)
    z, g = tree.query(zones, predicate="intersects")
    # Neighbours that only share a boundary are the common case: skip their intersection.
    inner = shapely.relate_pattern(geoms[g], zones[z], "2********") if len(g) else np.zeros(0, bool)
    area = np.zeros(len(g))
    area[inner] = shapely.area(shapely.intersection(geoms[g[inner]], zones[z[inner]]))
    return g, z, area


def assign_zones(geoms: np.ndarray, zones: np.ndarray, *, tolerance_m: float,
                 overlap_m2: float, min_share: float = 0.0) -> ZoneAssignment:
    """Assign every geometry to one zone.

    Rules, in order: a feature overlapping several zones goes to the one it overlaps
    most (if by more than *min_share* of its area); otherwise to the zone covering its representative point
    (``point_on_surface``); otherwise to the zone it overlaps with more than
    *min_share* of its area; otherwise to the nearest zone within *tolerance_m*
    (0 disables this step).

    Parameters
    ----------
    geoms, zones : ndarray of shapely geometries, metric CRS
    tolerance_m : float
        Largest distance of a feature outside every zone that still gets the nearest.
    overlap_m2 : float
        Overlap area above which a zone counts in ``n_overlapping``.
    min_share : float
        Share of a feature's area a zone must overlap to claim a feature whose
        representative point lies outside it (0: any overlap).

    Returns
    -------
    ZoneAssignment
    """
    n = len(geoms)
    zone = _zone_of_points(shapely.point_on_surface(geoms), zones)
    tree = STRtree(geoms)
    z, g = tree.query(zones, predicate="intersects")
    count = np.bincount(g, minlength=n)
    n_overlapping = count.copy()
    # areas only where the answer is not obvious: several candidates, or the point is outside
    hard = (count[g] > 1) | (zone[g] < 0)
    g, z = g[hard], z[hard]
    if len(g):
        area = shapely.area(shapely.intersection(geoms[g], zones[z]))
        redone = np.unique(g)
        n_overlapping[redone] = np.bincount(g[area > overlap_m2], minlength=n)[redone]
        order = np.lexsort((-z, area, g))  # per feature: largest area last, ties to lowest zone
        last = np.r_[g[order][1:] != g[order][:-1], True]
        best_g, best_z, best_a = g[order][last], z[order][last], area[order][last]
        enough = best_a > np.maximum(min_share * shapely.area(geoms[best_g]), 0.0)
        take = enough & ((count[best_g] > 1) | (zone[best_g] < 0))
        zone[best_g[take]] = best_z[take]
    left = np.flatnonzero(zone < 0)
    if len(left) and tolerance_m > 0:
        near_in, near_zone = STRtree(zones).query_nearest(geoms[left], max_distance=tolerance_m,
                                                          all_matches=False)
        zone[left[near_in]] = near_zone
    return ZoneAssignment(zone=zone, n_overlapping=n_overlapping)


def _zone_of_points(points: np.ndarray, zones: np.ndarray) -> np.ndarray:
    """Index of the lowest-numbered zone covering each point, -1 for none."""
    out = np.full(len(points), -1, dtype=np.int64)
    z, p = STRtree(points).query(zones, predicate="covers")
    order = np.lexsort((-z, p))
    out[p[order]] = z[order]  # the last write per point wins: the lowest zone index
    return out
