"""Party cells over the register: coverage of the active grids and centre-household links.

Reads the party organisation and households of the register and the active grids (through
:mod:`api.grids.service`); writes only ``party_links`` (in the caller's transaction: a
failed run leaves the previous links).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from api.db import lock_for_transaction
from api.grids import service
from api.party.models import PartyLink
from api.register.models import Household, PartyOrg
from api.workspace import load_layer
from geo.crs import local_metric_crs
from geo.network import walk_graph_from_streets
from geo.party.distance import building_distance
from geo.party.linking import LinkResult, link_centres

__all__ = ["coverage", "link_households"]

log = logging.getLogger(__name__)


def _orgs(session: Session) -> pd.DataFrame:
    cols = ["id", "kind", "name", "parent_id", "grid_code", "community_id", "secretary"]
    rows = session.execute(select(*(getattr(PartyOrg, c) for c in cols))).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=cols)


def _spanning_branches(orgs: pd.DataFrame, community_of: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Branches whose own grid and their groups' grids lie in more than one community."""
    branches = orgs[orgs["kind"] == "branch"]
    own = branches[["id", "grid_code"]]
    groups = orgs.loc[orgs["parent_id"].isin(branches["id"]), ["parent_id", "grid_code"]].rename(
        columns={"parent_id": "id"})
    grids = pd.concat([own, groups], ignore_index=True)
    grids["community"] = grids["grid_code"].map(community_of)
    pairs = grids.dropna(subset=["community"]).assign(community=lambda g: g["community"].astype(str))
    pairs = pairs[["id", "community"]].drop_duplicates().sort_values(["id", "community"])
    many = pairs[pairs["id"].duplicated(keep=False)]  # branches in more than one community
    comms = many.groupby("id")["community"].agg(list) if len(many) else pd.Series(dtype=object)
    return [{"name": name, "communities": comms[i]} for i, name in zip(branches["id"], branches["name"], strict=True)
            if i in comms.index]


def coverage(session: Session, *, grids: pd.DataFrame | None = None) -> dict[str, Any]:
    """Every active grid's 网格党支部 / 党小组, and what is wrong.

    Returns ``grids`` (key, name, community, branch/group names), ``without_cell`` (grid
    keys), ``spanning_branches`` (branches whose grids lie in several communities) and
    ``without_secretary`` (branches and groups with no secretary). *grids*: the active grids
    when the caller has read them already.
    """
    grids = service.active_grids(session) if grids is None else grids
    orgs = _orgs(session)
    cells = orgs[orgs["kind"].isin(["branch", "group"])]
    by_grid = cells.groupby("grid_code")["name"].apply(list).to_dict()
    rows = [{"key": k, "name": n, "community": c, "cells": by_grid.get(k, [])}
            for k, n, c in zip(grids["key"], grids["name"], grids["community_id"], strict=True)]
    community_of = dict(zip(grids["key"], grids["community_id"], strict=True))
    return {"grids": rows, "without_cell": [r["key"] for r in rows if not r["cells"]],
            "spanning_branches": _spanning_branches(orgs, community_of),
            "without_secretary": [{"name": r.name, "kind": r.kind} for r in cells.itertuples()
                                  if not isinstance(r.secretary, str) or not r.secretary.strip()]}


def _households(session: Session) -> pd.DataFrame:
    rows = session.execute(select(Household.id, Household.building_id, Household.party_center)).all()
    frame = pd.DataFrame(rows, columns=["household", "building", "is_centre"])
    grid = service.grids_of_buildings(session, None)
    return frame.assign(grid=frame["building"].map(grid)).dropna(subset=["grid"])


def _distance(session: Session, buildings: set[str], settings: Mapping[str, Any]) -> Any:
    layer = load_layer(session, "buildings", columns=[])
    layer = layer[layer["building_id"].isin(buildings)]
    crs = local_metric_crs(layer, configured=settings.get("local_crs", "")) if len(layer) else None
    streets = load_layer(session, "streets", columns=["road_class", "foot"])
    graph = None
    if len(streets) and crs is not None:
        graph = walk_graph_from_streets(streets, snap_tolerance_m=settings["walk_snap_tolerance_m"], crs=crs,
                                        excluded_classes=tuple(settings["walk_excluded_road_classes"]))
    metric = layer.to_crs(crs) if crs is not None else layer
    return building_distance(metric, graph, limit_m=float(settings["party_link_max_walk_m"]),
                             max_snap_m=float(settings["walk_max_snap_m"]))


def link_households(session: Session, *, settings: Mapping[str, Any], min_links: int | None = None,
                    max_links: int | None = None) -> LinkResult:
    """Re-solve every centre-household link not fixed by hand and store them (one transaction).

    Two runs at once take turns (the second solves on the first's result), never a duplicate-key error.
    """
    lock_for_transaction(session, "lock:party.link_households")
    hh = _households(session)
    centres = hh[hh["is_centre"].astype(bool)].rename(columns={"household": "centre"})
    fixed = pd.DataFrame(session.execute(select(PartyLink.household_id, PartyLink.centre_id)
                                         .where(PartyLink.fixed.is_(True))).all(), columns=["household", "centre"])
    result = link_centres(hh[["household", "grid", "building"]], centres[["centre", "grid", "building"]],
                          _distance(session, set(hh["building"]), settings), fixed=fixed,
                          min_links=int(settings["party_link_min"] if min_links is None else min_links),
                          max_links=int(settings["party_link_max"] if max_links is None else max_links),
                          max_walk_m=float(settings["party_link_max_walk_m"]))
    session.execute(delete(PartyLink).where(PartyLink.fixed.is_(False)))
    new = result.links[result.links["method"] != "fixed"]
    rows = [{"household_id": int(h), "centre_id": int(c), "distance_m": float(d), "method": m, "fixed": False}
            for h, c, d, m in zip(new["household"], new["centre"], new["distance_m"], new["method"], strict=True)]
    if rows:
        session.execute(PartyLink.__table__.insert(), rows)
    log.info("party links: %d linked (%d fixed), %d unlinked, %d centres", len(result.links),
             len(result.links) - len(new), len(result.unlinked), len(centres))
    return result
