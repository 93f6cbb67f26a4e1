"""Active (published) grids: the plan in force, grid of a point / building, grid metadata.

Every feature that needs "which grid is this in" calls this module (register, incidents,
patrol, boards); none reads plan tables itself. A grid is identified by its **code**
(see :mod:`geo.activegrids` for how codes survive re-plans); grids of plans without codes
fall back to ``"<plan id>:<grid id>"``.
"""

from __future__ import annotations

import threading
from collections.abc import MutableMapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import select, type_coerce
from sqlalchemy.orm import Session

from api.models import WKB, PlanAssignment, PlanGrid, PlanVersion
from geo.activegrids import GridIndex, PointGrids

__all__ = ["GridNotFound", "ActiveGrids", "APP_CACHE", "active_plans", "active_plan_ids", "active_grids",
           "load_active", "cached_active", "grid_key", "grid_meta", "grids_of_buildings", "buildings_of_grid"]

#: Built once: every located request reads it.
_ACTIVE_IDS = select(PlanVersion.id).where(PlanVersion.is_active.is_(True)).order_by(PlanVersion.id)
_META = ("grid_id", "code", "name", "community_id", "households", "buildings", "plan_version_id")


class GridNotFound(LookupError):
    """No active grid has this code."""


@dataclass(frozen=True)
class ActiveGrids:
    """The active grids (EPSG:4326, column ``key`` = stable identity) and their point index."""

    grids: gpd.GeoDataFrame
    index: GridIndex

    @cached_property
    def plan_of(self) -> dict[str, int]:
        """Grid key → plan version id (built once per index, not per request: a city has 100,000 grids)."""
        return {str(k): int(p) for k, p in zip(self.grids["key"], self.grids["plan_version_id"], strict=True)}

    def grid_of_points(self, lon: Any, lat: Any, **options: Any) -> pd.DataFrame:
        """Grid key, ``how`` and ``distance_m`` of each WGS84 point (see :meth:`GridIndex.grid_of_points`)."""
        return self.index.grid_of_points(np.atleast_1d(lon), np.atleast_1d(lat), crs=4326, **options)

    def locate(self, lon: Any, lat: Any, **options: Any) -> PointGrids:
        """:meth:`grid_of_points` as arrays (no DataFrame): what a request locating one point calls."""
        return self.index.locate(np.atleast_1d(lon), np.atleast_1d(lat), crs=4326, **options)

    @cached_property
    def lookup(self) -> dict[str, tuple[int, str]]:
        """Grid key -> (plan version, community) of every active grid (built once per grid set)."""
        g = self.grids.drop_duplicates("key")
        return {str(k): (int(p), c) for k, p, c in
                zip(g["key"], g["plan_version_id"], g["community_id"], strict=True)}


def grid_key(code: str | None, plan_id: int, grid_id: str) -> str:
    """The stable identity of a grid: its code, else ``"<plan>:<grid>"`` for uncoded plans."""
    return str(code) if code else f"{plan_id}:{grid_id}"


def active_plans(session: Session, *, community_id: str | None = None) -> list[PlanVersion]:
    """Published, active plan versions (of the grids of *community_id* when given)."""
    stmt = select(PlanVersion).where(PlanVersion.is_active.is_(True)).order_by(PlanVersion.id)
    if community_id is not None:
        ids = select(PlanGrid.plan_version_id).where(PlanGrid.community_id == community_id)
        stmt = stmt.where(PlanVersion.id.in_(ids))
    return list(session.scalars(stmt))


def active_plan_ids(session: Session) -> tuple[int, ...]:
    """Ids of the published, active plan versions, ascending (one indexed read, no ORM objects)."""
    return tuple(int(i) for i in session.connection().execute(_ACTIVE_IDS).scalars())


def active_grids(session: Session, *, community_id: str | None = None) -> gpd.GeoDataFrame:
    """Grids of the active plans, EPSG:4326, with ``key`` and staff-independent metadata."""
    plans = [p.id for p in active_plans(session, community_id=community_id)]
    cols = [getattr(PlanGrid, c) for c in _META]
    stmt = select(*cols, type_coerce(PlanGrid.geometry, WKB)).where(PlanGrid.plan_version_id.in_(plans))
    if community_id is not None:
        stmt = stmt.where(PlanGrid.community_id == community_id)
    rows = session.execute(stmt.order_by(PlanGrid.community_id, PlanGrid.code, PlanGrid.grid_id)).all()
    df = pd.DataFrame([r[:-1] for r in rows], columns=list(_META))
    geom = shapely.from_wkb(np.asarray([None if r[-1] is None else bytes(r[-1]) for r in rows], dtype=object))
    df["key"] = [grid_key(c, p, g) for c, p, g in zip(df["code"], df["plan_version_id"], df["grid_id"], strict=True)]
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geom, crs=4326), crs=4326)


def load_active(session: Session, *, settings: dict[str, Any], community_id: str | None = None) -> ActiveGrids:
    """The active grids with their point index (build once per request or batch)."""
    grids = active_grids(session, community_id=community_id)
    return ActiveGrids(grids, GridIndex.from_grids(grids, id_column="key", configured_crs=settings.get("local_crs", "")))


_BUILD_LOCK = threading.Lock()
#: Key of the per-app store of :func:`cached_active` in ``app.extensions`` (one for every feature).
APP_CACHE = "wangge.active_grids"


def cached_active(session: Session, *, settings: dict[str, Any], store: MutableMapping[str, Any]) -> ActiveGrids:
    """:func:`load_active` kept in *store* (one per app) until the set of active plans changes.

    A published plan's grids never change, so a publish or a retirement (a new set of active
    plan ids, read on every call) is the only reason to rebuild. Requests that locate a point
    (an Open311 POST, a tracker fix) pay one indexed read instead of reading every grid.
    One thread builds while the others of its process wait for its result, so a cold process
    under load builds the index once, not once per thread.
    """
    key = active_plan_ids(session)
    hit = store.get("active_grids")
    if hit is not None and hit[0] == key:
        return hit[1]  # type: ignore[no-any-return]
    with _BUILD_LOCK:
        hit = store.get("active_grids")
        if hit is not None and hit[0] == key:
            return hit[1]  # type: ignore[no-any-return]
        grids = load_active(session, settings=settings)
        grids.lookup  # noqa: B018 - built here, once, not by the first request that needs it
        grids.plan_of  # noqa: B018
        store["active_grids"] = (key, grids)
    return grids


def grid_meta(session: Session, key: str) -> dict[str, Any]:
    """Metadata of the active grid *key*: code, name, community, households, buildings, plan.

    One indexed read of that grid (not of every active grid: a city has 100,000).
    """
    ref = _grid_ref(session, key)
    row = None if ref is None else session.execute(
        select(*[getattr(PlanGrid, c) for c in _META], type_coerce(PlanGrid.geometry, WKB))
        .where(PlanGrid.plan_version_id == ref[0], PlanGrid.grid_id == ref[1])).first()
    if row is None:
        raise GridNotFound(f"没有编码为 {key} 的生效网格")
    meta = dict(zip(_META, row[:-1], strict=True))
    return {"key": key, "code": meta["code"], "name": meta["name"], "community_id": meta["community_id"],
            "households": int(meta["households"]), "buildings": int(meta["buildings"]),
            "plan_id": int(meta["plan_version_id"]), "geometry": None if row[-1] is None else shapely.from_wkb(bytes(row[-1]))}


def grids_of_buildings(session: Session, building_ids: list[str] | None = None) -> pd.Series:
    """Building id → active grid key (from the published assignments, not geometry)."""
    plans = [p.id for p in active_plans(session)]
    stmt = (select(PlanAssignment.building_id, PlanAssignment.grid_id, PlanGrid.code, PlanAssignment.plan_version_id)
            .join(PlanGrid, (PlanGrid.plan_version_id == PlanAssignment.plan_version_id)
                  & (PlanGrid.grid_id == PlanAssignment.grid_id))
            .where(PlanAssignment.plan_version_id.in_(plans)))
    if building_ids is not None:
        stmt = stmt.where(PlanAssignment.building_id.in_(building_ids))
    rows = session.execute(stmt).all()
    return pd.Series([grid_key(c, p, g) for _, g, c, p in rows], index=[r[0] for r in rows], dtype=object,
                     name="grid")


def _grid_ref(session: Session, key: str) -> tuple[int, str] | None:
    """(plan id, grid id) of the active grid *key*."""
    plans = [p.id for p in active_plans(session)]
    if ":" in key:
        plan, _, grid = key.partition(":")
        return (int(plan), grid) if plan.isdigit() and int(plan) in plans else None
    # the few grids of that code (one per active plan as a rule) by the code index, the first taken here:
    # an ORDER BY in SQL made SQLite walk the community index instead
    rows = session.execute(select(PlanGrid.plan_version_id, PlanGrid.grid_id, PlanGrid.community_id)
                           .where(PlanGrid.plan_version_id.in_(plans), PlanGrid.code == key)).all()
    if not rows:
        return None
    plan_id, grid_id, _ = min(rows, key=lambda r: (r.community_id or "", r.grid_id))
    return int(plan_id), str(grid_id)


def buildings_of_grid(session: Session, key: str) -> list[str]:
    """Building ids of the active grid *key* (raises :class:`GridNotFound`)."""
    ref = _grid_ref(session, key)
    if ref is None:
        raise GridNotFound(f"没有编码为 {key} 的生效网格")
    return list(session.scalars(select(PlanAssignment.building_id).where(
        PlanAssignment.plan_version_id == ref[0], PlanAssignment.grid_id == ref[1])))
