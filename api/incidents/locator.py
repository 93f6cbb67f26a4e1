"""The active grids' point index for incidents (:func:`api.grids.cache.cached_active`) and its lookup.

Open311 POSTs and imports locate many points; the index and the key → (plan, community)
lookup are built once per set of active plans, not per request.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.grids.cache import cached_active

__all__ = ["cached_active", "cached_lookup"]


def cached_lookup(session: Session) -> dict[str, tuple[int, str]]:
    """Grid key -> (plan version, community) of :func:`cached_active` (rebuilt with it)."""
    return cached_active(session).lookup
