"""The active grids' point index, cached per app and set of active plans.

Building the index costs a read of every grid and an STRtree; Open311 POSTs and imports
locate many points. A published plan's grids do not change, so the index is rebuilt only
when the set of active plans does (a publish, a retirement).
"""

from __future__ import annotations

import threading

from flask import current_app
from sqlalchemy.orm import Session

from api.grids.service import ActiveGrids, active_plans, load_active

__all__ = ["cached_active"]

_LOCK = threading.Lock()
_EXTENSION = "wangge_incident_grids"


def cached_active(session: Session) -> ActiveGrids:
    """The active grids of the current app (rebuilt when the active plans change)."""
    key = tuple(p.id for p in active_plans(session))
    store = current_app.extensions.setdefault(_EXTENSION, {})
    with _LOCK:
        hit = store.get("entry")
        if hit is not None and hit[0] == key:
            return hit[1]  # type: ignore[no-any-return]
    grids = load_active(session, settings=current_app.config["WANGGE"])
    with _LOCK:
        store["entry"] = (key, grids)
    return grids
