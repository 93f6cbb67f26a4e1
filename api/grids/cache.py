"""The active grids' point index, cached per process and rebuilt when the set of active plans changes.

Building the index reads every active grid and builds an STRtree: 0.1 s at 2,000 grids,
seconds at a city's 100,000. A published plan's grids never change (a published plan is
not edited in place; a change is a new version, published in its place), so the index of
a set of active plans is valid for as long as that set is active. Each request reads only
the ids of the active plans (one indexed query) and rebuilds when they differ: a publish or
rollback in any process is seen by the next request in every other process.

One thread builds while the others of its process wait for the result, so a cold process
under load builds the index once, not once per thread.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from api.grids import service
from api.grids.service import ActiveGrids, active_plan_ids

__all__ = ["active_plan_ids", "cached_active"]

_EXTENSION = service.APP_CACHE  # one store per app, every feature


def cached_active(session: Session, settings: dict[str, Any] | None = None) -> ActiveGrids:
    """The active grids of the current app with their point index (rebuilt when the active plans change).

    Parameters
    ----------
    session
        The request's session (reads the active plan ids; the grids when rebuilding).
    settings
        The app's settings (default: ``current_app.config["WANGGE"]``).
    """
    return service.cached_active(session, settings=settings or current_app.config["WANGGE"],
                                 store=current_app.extensions.setdefault(_EXTENSION, {}))
