"""The active grids' point index, cached per app and set of active plans.

Building the index costs a read of every grid and an STRtree; Open311 POSTs and imports
locate many points. A published plan's grids do not change, so the index is rebuilt only
when the set of active plans does (a publish, a retirement): see
:func:`api.grids.service.cached_active`, which the patrol intake shares.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy.orm import Session

from api.grids.service import APP_CACHE, ActiveGrids
from api.grids.service import cached_active as _cached

__all__ = ["cached_active", "cached_lookup"]


def cached_active(session: Session) -> ActiveGrids:
    """The active grids of the current app (rebuilt when the active plans change)."""
    return _cached(session, settings=current_app.config["WANGGE"], store=current_app.extensions.setdefault(APP_CACHE, {}))


def cached_lookup(session: Session) -> dict[str, tuple[int, str]]:
    """Grid key -> (plan version, community) of :func:`cached_active`."""
    return cached_active(session).lookup
