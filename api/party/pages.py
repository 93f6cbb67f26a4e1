"""Party map pages: ``/party`` (staff: centre households and their links, within the grids the
user may read) and ``/party/public`` (no login: grids, coverage by party cells, branch and
group names with secretaries; no households at all)."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from flask import Blueprint, current_app, render_template, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.auth import role_required
from api.db import session_scope
from api.grids import service
from api.pagecache import cached, digest
from api.party.models import PartyLink
from api.party.service import coverage
from api.register import access
from api.register.models import Household
from api.security import limiter, public_limit
from api.workspace import load_layer
from webmap.party_map import party_map

__all__ = ["bp", "party_layers"]

bp = Blueprint("party_pages", __name__)


def _households(session: Session, keys: set[str]) -> pd.DataFrame:
    rows = session.execute(select(Household.id, Household.building_id, Household.unit, Household.room,
                                  Household.party_center)).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=["household", "building", "unit", "room", "is_centre"])
    frame["grid"] = frame["building"].map(service.grids_of_buildings(session))
    return frame[frame["grid"].isin(keys)]


def _cells(grids: gpd.GeoDataFrame, report: dict[str, Any]) -> tuple[pd.Series, gpd.GeoDataFrame]:
    names = pd.Series({r["key"]: "、".join(r["cells"]) for r in report["grids"]}, dtype=object)
    has = grids[grids["key"].map(names).fillna("") != ""]
    points = gpd.GeoDataFrame({"label": [names[k] for k in has["key"]]},
                              geometry=has.geometry.representative_point().to_numpy(), crs=4326)
    return names, points


def _secretaries(session: Session) -> dict[str, str]:
    from api.register.models import PartyOrg

    return {o.name: o.secretary or "" for o in session.scalars(select(PartyOrg))}


def party_layers(session: Session, *, public: bool, allowed: set[str] | None) -> dict[str, Any]:
    """Grids with coverage, cell markers and (unless *public*) centre households and spokes."""
    every = service.active_grids(session)
    report = coverage(session, grids=every)
    grids = every if allowed is None else every[every["key"].isin(allowed)]
    names, cells = _cells(grids, report)
    secretaries = _secretaries(session)
    cells["label"] = ["；".join(f"{n}（书记：{secretaries.get(n) or '待补充'}）" for n in label.split("、"))
                      for label in cells["label"]]
    hh = _households(session, set(grids["key"]))
    links = pd.DataFrame(session.execute(select(PartyLink.household_id, PartyLink.centre_id)).all(),
                         columns=["household", "centre"])
    links = links[links["household"].isin(hh["household"])]
    linked = links.merge(hh[["household", "grid"]], on="household").groupby("grid").size()
    base = hh[~hh["is_centre"].astype(bool)].groupby("grid").size()
    share = (linked.reindex(grids["key"]).fillna(0) / base.reindex(grids["key"]).replace(0, pd.NA)).fillna(0.0)
    out = grids.assign(cells=grids["key"].map(names).fillna(""), coverage=share.to_numpy(dtype=float))
    out["coverage_label"] = [f"{s:.0%}" for s in out["coverage"]]
    layers: dict[str, Any] = {"grids": out, "cells": cells, "report": report, "centres": None, "spokes": None,
                              "links": len(links)}
    if not public:
        layers.update(_centre_layers(session, hh, links))
    return layers


def _centre_layers(session: Session, hh: pd.DataFrame, links: pd.DataFrame) -> dict[str, gpd.GeoDataFrame]:
    buildings = load_layer(session, "buildings", columns=[])
    point = dict(zip(buildings["building_id"], buildings.geometry.representative_point(), strict=True))
    where = dict(zip(hh["household"], hh["building"], strict=True))
    centres = hh[hh["is_centre"].astype(bool) & hh["building"].isin(point)]
    counts = links.groupby("centre").size()
    label = [f"党员中心户：楼栋 {b} {u or ''}-{r} · 结对 {int(counts.get(h, 0))} 户"
             for h, b, u, r in zip(centres["household"], centres["building"], centres["unit"], centres["room"],
                                   strict=True)]
    pairs = {(where[c], where[h]) for h, c in zip(links["household"], links["centre"], strict=True)
             if where.get(c) in point and where.get(h) in point and where[c] != where[h]}
    spokes = shapely.linestrings([[(point[a].x, point[a].y), (point[b].x, point[b].y)] for a, b in sorted(pairs)]) \
        if pairs else []
    return {"centres": gpd.GeoDataFrame({"label": label}, geometry=[point[b] for b in centres["building"]], crs=4326),
            "spokes": gpd.GeoDataFrame(geometry=list(spokes), crs=4326)}


def _frame_rows(frame: gpd.GeoDataFrame | None) -> list[tuple[Any, ...]]:
    """Every attribute and the geometry (WKB) of *frame*, row by row: what the map draws of it."""
    if frame is None:
        return []
    attrs = frame.drop(columns=frame.geometry.name).astype(str)
    wkb = shapely.to_wkb(frame.geometry.to_numpy())
    return [(*row, geom) for row, geom in zip(attrs.itertuples(index=False), wkb, strict=True)]


def _layers_key(layers: dict[str, Any]) -> tuple[str, str, float]:
    """The map's key: a digest of every layer it draws, the asset URL and the outlines' simplification."""
    rows = [(name, *row) for name in ("grids", "cells", "centres", "spokes") for row in _frame_rows(layers[name])]
    return digest(rows), url_for("static", filename="vendor"), current_app.config["WANGGE"]["map_simplify_m"]


def _map_parts(layers: dict[str, Any]) -> dict[str, str]:
    m = party_map(layers["grids"], layers["cells"], layers["centres"], layers["spokes"],
                  vendor_url=url_for("static", filename="vendor"),  # under url_prefix too
                  simplify_m=current_app.config["WANGGE"]["map_simplify_m"])
    root = m.get_root()
    root.render()
    return {"map_header": root.header.render(), "map_html": root.html.render(),
            "map_script": root.script.render(), "map_name": m.get_name()}


def _render(layers: dict[str, Any], *, public: bool) -> str:
    """The party page; its map built once per set of layers (a register or plan change is a new key)."""
    parts = cached("party", _layers_key(layers), lambda: _map_parts(layers), keep=8)
    return render_template("party/map.html", public=public, report=layers["report"], links=layers["links"], **parts)


@bp.get("/party")
@role_required("admin", "planner", "worker", "viewer")
def party_page() -> str:
    """党建网格地图: cells, coverage, centre households with their links (viewers: public variant)."""
    public = current_user.role == "viewer"
    with session_scope() as s:
        user = current_user._get_current_object()  # type: ignore[attr-defined]
        allowed = None if public else access.readable_grids(s, user)
        layers = party_layers(s, public=public, allowed=allowed)
    return _render(layers, public=public)


@bp.get("/party/public")
@limiter.limit(public_limit)
def party_public() -> str:
    """The public party map: no login, no households."""
    with session_scope() as s:
        layers = party_layers(s, public=True, allowed=None)
    return _render(layers, public=True)
