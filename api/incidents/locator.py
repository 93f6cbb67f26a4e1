"""The active grids' point index, cached per app and set of active plans.

Building the index costs a read of every grid and an STRtree; Open311 POSTs and imports
locate many points, and the incident map draws the grids' simplified outlines. A published plan's grids do not change, so the index is rebuilt only
when the set of active plans does (a publish, a retirement).
"""

from __future__ import annotations

import threading

import numpy as np
import shapely
from flask import current_app
from sqlalchemy.orm import Session

from api.grids.service import ActiveGrids, active_plans, load_active
from api.incidents.intake import grid_lookup

__all__ = ["OUTLINE_TOLERANCE_DEG", "cached_active", "cached_lookup", "cached_outlines"]

#: Simplification of the grid outlines the incident map draws (degrees; ~2 m).
OUTLINE_TOLERANCE_DEG = 0.00002
_LOCK = threading.Lock()
_EXTENSION = "wangge_incident_grids"


def _entry(session: Session) -> tuple[ActiveGrids, dict[str, tuple[int, str]], np.ndarray]:
    key = tuple(p.id for p in active_plans(session))
    store = current_app.extensions.setdefault(_EXTENSION, {})
    with _LOCK:
        hit = store.get("entry")
        if hit is not None and hit[0] == key:
            return hit[1], hit[2], hit[3]
    grids = load_active(session, settings=current_app.config["WANGGE"])
    lookup = grid_lookup(grids)
    outlines = shapely.to_geojson(shapely.simplify(np.asarray(grids.grids.geometry.values), OUTLINE_TOLERANCE_DEG))
    with _LOCK:
        store["entry"] = (key, grids, lookup, outlines)
    return grids, lookup, outlines


def cached_active(session: Session) -> ActiveGrids:
    """The active grids of the current app (rebuilt when the active plans change)."""
    return _entry(session)[0]


def cached_lookup(session: Session) -> dict[str, tuple[int, str]]:
    """:func:`~api.incidents.intake.grid_lookup` of :func:`cached_active`."""
    return _entry(session)[1]


def cached_outlines(session: Session) -> np.ndarray:
    """GeoJSON geometry text of each grid of :func:`cached_active` (same order), simplified for the map
    by :data:`OUTLINE_TOLERANCE_DEG`: written once per set of active plans, not per map request."""
    return _entry(session)[2]
