"""Import work orders (12345 hotline, our case CSV, Open311 JSON): all rows or none.

Rows are checked (:func:`geo.incidents.workorders.check_workorders`), de-duplicated by
工单编号 against earlier imports of the same source (skipped, counted), then located: by the
register's standard addresses (building → its grid in the active plan), else by coordinates
(point in the active grids), else left 待定位 with the closest known addresses as candidates.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db import lock_for_transaction
from api.grids.service import grids_of_buildings
from api.incidents.bulk import insert_cases, insert_events, new_tokens
from api.incidents.intake import locate_points
from api.incidents.locator import cached_active
from api.incidents.models import IncidentCase
from api.incidents.tables import load_categories
from api.models import utcnow
from api.register.importer import building_matcher
from api.workspace import load_layer
from geo.errors import ValidationFailed
from geo.incidents.workorders import check_workorders
from geo.register.rows import AMBIGUOUS, normalise_address

__all__ = ["WorkorderImport", "import_workorders"]

_SOURCES = {"12345": "12345", "csv": "csv", "open311": "open311"}


@dataclass
class WorkorderImport:
    """Counts of one import, and the ids of the cases left 待定位."""

    rows: int
    inserted: int
    skipped: int
    pending: list[int] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        """As a JSON-ready dict."""
        return {"rows": self.rows, "inserted": self.inserted, "skipped": self.skipped, "pending": self.pending}


def _existing(session: Session, source: str, ids: list[str]) -> set[str]:
    out: set[str] = set()
    for i in range(0, len(ids), 900):
        out.update(session.scalars(select(IncidentCase.external_id).where(
            IncidentCase.source == source, IncidentCase.external_id.in_(ids[i:i + 900]))))
    return out


def _by_address(session: Session, rows: pd.DataFrame, settings: Mapping[str, Any]) -> tuple[pd.DataFrame, dict[str, str]]:
    matcher = building_matcher(session, with_footprints=False, settings=settings)
    building = normalise_address(rows["address"]).map(matcher.addresses)
    building = building.where(building.notna() & (building != AMBIGUOUS))
    out = pd.DataFrame(index=rows.index, columns=["grid_code", "lon", "lat"], dtype=object)
    ids = sorted(set(building.dropna()))
    if ids:
        grid = grids_of_buildings(session, ids)
        layer = load_layer(session, "buildings", columns=["building_id"])
        layer = layer[layer["building_id"].isin(ids)].set_index("building_id")
        pts = layer.geometry.representative_point()
        hit = building.notna()
        out.loc[hit, "grid_code"] = building[hit].map(grid).to_numpy()
        out.loc[hit, "lon"] = building[hit].map(pts.x).to_numpy()
        out.loc[hit, "lat"] = building[hit].map(pts.y).to_numpy()
    return out, dict(matcher.addresses)


def _locate(session: Session, rows: pd.DataFrame, settings: Mapping[str, Any]) -> pd.DataFrame:
    active = cached_active(session)
    by_addr, addresses = _by_address(session, rows, settings)
    lon = by_addr["lon"].where(by_addr["lon"].notna(), rows["lon"]).astype(float)
    lat = by_addr["lat"].where(by_addr["lat"].notna(), rows["lat"]).astype(float)
    out = locate_points(active, lon.fillna(0).to_numpy(), lat.fillna(0).to_numpy(), settings=settings)
    out.index = rows.index
    has_point = lon.notna()
    out.loc[~has_point, ["grid_code", "plan_version_id", "community_id"]] = None
    out.loc[~has_point, "locate_how"] = "none"
    addressed = by_addr["grid_code"].notna()
    meta = active.grids.drop_duplicates("key").set_index("key")
    out.loc[addressed, "grid_code"] = by_addr.loc[addressed, "grid_code"]
    out.loc[addressed, "plan_version_id"] = by_addr.loc[addressed, "grid_code"].map(meta["plan_version_id"]).to_numpy()
    out.loc[addressed, "community_id"] = by_addr.loc[addressed, "grid_code"].map(meta["community_id"]).to_numpy()
    out.loc[addressed, "locate_how"] = "address"
    out["lon"], out["lat"] = lon.where(has_point, None), lat.where(has_point, None)
    keys = list(addresses)
    pending = out["grid_code"].isna() & rows["address"].ne("")
    out["candidates"] = [[]] * len(out)
    out.loc[pending, "candidates"] = pd.Series(
        [difflib.get_close_matches(a, keys, n=3, cutoff=0.5) for a in normalise_address(rows.loc[pending, "address"])],
        index=out.index[pending], dtype=object)
    return out


def import_workorders(session: Session, frame: pd.DataFrame, fmt: str, *, settings: Mapping[str, Any],
                      user: str, now: pd.Timestamp | None = None) -> WorkorderImport:
    """Check, de-duplicate, locate and insert work orders; :class:`ValidationFailed` lists every bad row."""
    now = now if now is not None else pd.Timestamp(utcnow())
    checked, problems = check_workorders(frame, load_categories(session), timezone=settings["incident_timezone"],
                                         now=now)
    if problems:
        raise ValidationFailed(problems)
    source = _SOURCES[fmt]
    # the de-duplication below reads then inserts: two imports of one file take turns (PostgreSQL)
    lock_for_transaction(session, f"incidents.import:{source}")
    fresh = checked[~checked["external_id"].isin(_existing(session, source, checked["external_id"].tolist()))]
    if fresh.empty:
        return WorkorderImport(len(checked), 0, len(checked))
    where = _locate(session, fresh, settings)
    cases = pd.DataFrame({
        "token": new_tokens(len(fresh)), "source": source, "external_id": fresh["external_id"].to_numpy(),
        "category": fresh["category"].to_numpy(), "description": fresh["description"].to_numpy(),
        "address": fresh["address"].replace("", None).to_numpy(), "reporter": f"{source}:{user}",
        "limit_value": fresh["limit_value"].astype(float).to_numpy(), "limit_unit": fresh["limit_unit"].to_numpy(),
        "reported_at": fresh["reported_at"].to_numpy(),
    }, index=fresh.index)
    for col in ("lon", "lat", "grid_code", "plan_version_id", "community_id", "locate_how"):
        cases[col] = where[col].to_numpy()
    ids = insert_cases(session, cases)
    details = [{"source": source, "source_status": s, "grid_code": g, "candidates": c}
               for s, g, c in zip(fresh["source_status"], where["grid_code"], where["candidates"], strict=True)]
    insert_events(session, pd.DataFrame({"case_id": ids.to_numpy(), "action": "report", "actor": user,
                                         "role": "reporter", "at": cases["reported_at"].to_numpy(),
                                         "from_state": "", "to_state": "reported", "detail": details}))
    pending = ids[where["grid_code"].isna().to_numpy()].tolist()
    return WorkorderImport(len(checked), len(fresh), len(checked) - len(fresh), [int(i) for i in pending])
