"""Everything boards are made from, read once per batch: layers, grids, staff, party organisation.

Boards show staff information only: nothing here reads residents (DOMAIN §10); households
are counted, and party-member centre households appear only as building locations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import geopandas as gpd
import pandas as pd
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from api.grids import service
from api.localtime import local_today
from api.models import Community
from api.register.models import Household, PartyOrg, Staff
from api.register.queries import household_counts
from api.workspace import load_layer
from webmap.boards.content import BOARD_ROLES

__all__ = ["BoardSources", "load_sources", "load_checklist_sources"]


@dataclass(frozen=True)
class BoardSources:
    """Inputs of the boards of the active grids (EPSG:4326 layers)."""

    grids: gpd.GeoDataFrame
    grid_of_building: pd.Series
    buildings: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    service_points: gpd.GeoDataFrame
    communities: dict[str, str]
    staff: pd.DataFrame
    party: pd.DataFrame
    party_centre_buildings: frozenset[str]
    households_register: pd.Series


def _staff(session: Session, today: date) -> pd.DataFrame:
    rows = session.scalars(select(Staff).where(Staff.role.in_(list(BOARD_ROLES)), Staff.grid_code.is_not(None),
                                               or_(Staff.end_date.is_(None), Staff.end_date >= today)))
    cols = ["grid_code", "role", "name", "phone", "duties", "photo"]
    order = {r: i for i, r in enumerate(BOARD_ROLES)}
    frame = pd.DataFrame([[getattr(s, c) for c in cols] for s in rows], columns=cols)
    return frame.assign(rank=frame["role"].map(order)).sort_values(["grid_code", "rank", "name"], kind="stable")


def _party(session: Session) -> pd.DataFrame:
    cols = ["grid_code", "kind", "name", "secretary", "secretary_phone"]
    rows = session.scalars(select(PartyOrg).where(PartyOrg.kind.in_(["branch", "group"]),
                                                  PartyOrg.grid_code.is_not(None)))
    frame = pd.DataFrame([[getattr(o, c) for c in cols] for o in rows], columns=cols)
    # A grid's 网格党支部 comes before its 党小组.
    return frame.sort_values(["grid_code", "kind", "name"], kind="stable")


def load_checklist_sources(session: Session, *, today: date | None = None) -> BoardSources:
    """What the mandatory-field check of every active grid needs: grids, staff, party, community names.

    The map layers, building-to-grid table and register counts stay empty (the board list
    checks 368 grids in well under a second this way; drawing boards needs :func:`load_sources`).
    """
    empty = gpd.GeoDataFrame(geometry=[], crs=4326)
    names = dict(session.execute(select(Community.community_id, Community.name)).all())
    return BoardSources(grids=service.active_grids(session), grid_of_building=pd.Series(dtype=object),
                        buildings=empty, streets=empty, service_points=empty,
                        communities={k: v or k for k, v in names.items()}, staff=_staff(session, today or local_today()),
                        party=_party(session), party_centre_buildings=frozenset(),
                        households_register=pd.Series(dtype="int64"))


def load_sources(session: Session, *, keys: list[str] | None = None, today: date | None = None) -> BoardSources:
    """Read what the boards of *keys* (default: every active grid) need, once."""
    grids = service.active_grids(session)
    if keys is not None:
        grids = grids[grids["key"].isin(keys)]
    bbox = None
    if len(grids):
        minx, miny, maxx, maxy = grids.total_bounds
        pad = 0.005  # about 500 m: the surroundings drawn around a grid
        bbox = (minx - pad, miny - pad, maxx + pad, maxy + pad)
    layer = {k: load_layer(session, k, bbox=bbox, columns=cols) if bbox else load_layer(session, k, columns=cols)
             for k, cols in (("buildings", []), ("streets", ["name"]), ("service_points", ["name", "category"]))}
    centres = session.scalars(select(Household.building_id).where(Household.party_center.is_(True)).distinct())
    names = dict(session.execute(select(Community.community_id, Community.name)).all())
    return BoardSources(grids=grids, grid_of_building=service.grids_of_buildings(session), buildings=layer["buildings"],
                        streets=layer["streets"], service_points=layer["service_points"],
                        communities={k: v or k for k, v in names.items()}, staff=_staff(session, today or local_today()),
                        party=_party(session), party_centre_buildings=frozenset(centres),
                        households_register=household_counts(session))
