"""The active grids' point index for incidents (:func:`api.grids.cache.cached_active`) and its lookup.

Open311 POSTs and imports locate many points; the index and the key → (plan, community)
lookup are built once per set of active plans, not per request.
"""

from __future__ import annotations

import threading

from flask import current_app
from sqlalchemy.orm import Session

from api.grids.cache import cached_active
from api.grids.service import ActiveGrids
from api.incidents.intake import grid_lookup

__all__ = ["cached_active", "cached_lookup"]

_LOCK = threading.Lock()
_EXTENSION = "wangge_incident_lookup"


def cached_lookup(session: Session) -> dict[str, tuple[int, str]]:
    """:func:`~api.incidents.intake.grid_lookup` of :func:`cached_active` (rebuilt with it)."""
    grids: ActiveGrids = cached_active(session)
    store = current_app.extensions.setdefault(_EXTENSION, {})
    with _LOCK:
        hit = store.get("entry")
        if hit is not None and hit[0] is grids:
            return hit[1]  # type: ignore[no-any-return]
    lookup = grid_lookup(grids)
    with _LOCK:
        store["entry"] = (grids, lookup)
    return lookup
