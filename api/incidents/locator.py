"""The active grids' point index for incidents (:func:`api.grids.cache.cached_active`), its lookup and outlines.

Open311 POSTs and imports locate many points, and the incident map draws the grids'
simplified outlines; the index, the key → (plan, community) lookup and the outlines are
built once per set of active plans, not per request.
"""

from __future__ import annotations

import threading

import numpy as np
import shapely
from flask import current_app
from sqlalchemy.orm import Session

from api.grids.cache import cached_active
from api.grids.service import ActiveGrids

__all__ = ["OUTLINE_TOLERANCE_DEG", "cached_active", "cached_lookup", "cached_outlines"]

#: Simplification of the grid outlines the incident map draws (degrees; ~2 m).
OUTLINE_TOLERANCE_DEG = 0.00002
_LOCK = threading.Lock()
_EXTENSION = "wangge_incident_outlines"


def cached_lookup(session: Session) -> dict[str, tuple[int, str]]:
    """Grid key -> (plan version, community) of :func:`cached_active` (rebuilt with it)."""
    return cached_active(session).lookup


def cached_outlines(session: Session) -> tuple[ActiveGrids, np.ndarray]:
    """:func:`cached_active` and the GeoJSON geometry text of each of its grids (same order), simplified
    for the map by :data:`OUTLINE_TOLERANCE_DEG`: written once per set of active plans, not per map
    request. Returned together so a publish between two calls cannot pair grids with other outlines."""
    grids = cached_active(session)
    store = current_app.extensions.setdefault(_EXTENSION, {})
    hit = store.get("entry")
    if hit is not None and hit[0] is grids:
        return grids, hit[1]
    with _LOCK:
        outlines = shapely.to_geojson(shapely.simplify(np.asarray(grids.grids.geometry.values), OUTLINE_TOLERANCE_DEG))
        store["entry"] = (grids, outlines)
    return grids, outlines
