"""Import register sheets: map columns, check every row, match buildings, write all or nothing.

One transaction per import: when any row has a problem, :class:`geo.errors.ValidationFailed`
carries every :class:`geo.register.rows.RowProblem` and nothing is written. Re-importing
updates by stable keys (resident: ID number via its keyed hash; household: building +
entrance + room; staff: name + phone + role + grid + building + entrance; party
organisation: name; key person: resident + category), never duplicates.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from api import audit
from api.db import lock_for_transaction
from api.models import Building, User
from api.register import writers
from api.register.crypto import RegisterCipher
from api.register.models import Household, KeyPersonCategory, PartyOrg
from api.workspace import load_layer
from geo.errors import ReadError, ValidationFailed
from geo.register.columns import map_headers
from geo.register.rows import BuildingMatcher, Checked, RowProblem, address_index, check_rows

__all__ = ["ImportResult", "import_sheet", "building_matcher"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote."""

    kind: str
    rows: int
    inserted: int
    updated: int

    def json(self) -> dict[str, Any]:
        return {"kind": self.kind, "rows": self.rows, "inserted": self.inserted, "updated": self.updated}


def building_matcher(session: Session, *, with_footprints: bool, settings: Mapping[str, Any],
                     coords: str = "wgs84") -> BuildingMatcher:
    """Building ids, standard addresses (building names and register addresses) and footprints."""
    rows = session.execute(select(Building.building_id, Building.name)).all()
    reg = session.execute(select(Household.address, Household.building_id).where(Household.address.is_not(None))
                          .distinct()).all()
    addresses = address_index(pd.Series([a for _, a in rows] + [a for a, _ in reg], dtype=object),
                              pd.Series([b for b, _ in rows] + [b for _, b in reg], dtype=object))
    ids = frozenset(str(b) for b, _ in rows)
    footprints = load_layer(session, "buildings", columns=["building_id"]) if with_footprints else \
        gpd.GeoDataFrame({"building_id": []}, geometry=[], crs=4326)
    return BuildingMatcher(ids, addresses, footprints, tolerance_m=float(settings["register_match_tolerance_m"]),
                           coords=coords)


def _context(session: Session, kind: str) -> dict[str, Any]:
    from api.grids.service import active_grids
    if kind == "keypersons":
        writers.ensure_categories(session)
        cats = session.execute(select(KeyPersonCategory.name, KeyPersonCategory.code)).all()
        return {"categories": {n: c for n, c in cats}}
    if kind in ("staff", "party"):
        codes = frozenset(str(c) for c in active_grids(session)["key"])
        return {"grid_codes": codes, "usernames": frozenset(session.scalars(select(User.username))),
                "known_orgs": frozenset(session.scalars(select(PartyOrg.name)))}
    return {}


def _server_checks(session: Session, kind: str, checked: Checked, cipher: RegisterCipher) -> list[RowProblem]:
    """Checks that need the database: party organisations and residents named by rows."""
    rows, out = checked.rows, []
    if kind == "residents" and "party_org" in rows:
        known = set(session.scalars(select(PartyOrg.name)))
        org = rows["party_org"].fillna("").astype(str).str.strip()
        for i in rows.index[(org != "") & ~org.isin(known)]:
            out.append(RowProblem(int(rows.at[i, "_row"]), "party_org", "党组织不存在",
                                  "先用 --kind party 导入党组织，或留空"))
    if kind == "keypersons":
        hashes = writers.id_hashes(rows["id_number"], cipher)
        known = writers.existing_residents(session, hashes)
        for i, h in zip(rows.index, hashes, strict=True):
            if h not in known and rows.at[i, "id_number"]:
                out.append(RowProblem(int(rows.at[i, "_row"]), "id_number", "登记册中没有此身份证号的居民",
                                      "先用 --kind residents 导入该居民"))
    return out


def import_sheet(session: Session, kind: str, sheet: pd.DataFrame, *, cipher: RegisterCipher,
                 settings: Mapping[str, Any], user: User | str, field_map: Mapping[str, str] | None = None,
                 coords: str = "wgs84", source: str = "", synthetic: bool = False) -> ImportResult:
    """Check and write one sheet of *kind* in *session*'s transaction (nothing written on any problem).

    Raises
    ------
    geo.errors.LayerError
        The sheet lacks required columns (message names them and ``--field``).
    geo.errors.ValidationFailed
        Some rows are bad; ``issues`` lists every :class:`RowProblem`.
    """
    # two uploads of one sheet at once both saw the rows missing and both inserted: a duplicate-key 500 on
    # PostgreSQL (found by the concurrency test); imports take turns as they do on SQLite
    lock_for_transaction(session, "lock:register.import")
    mapping = map_headers(kind, [c for c in sheet.columns if c != "_row"], field_map)
    frame = sheet[list(mapping) + (["_row"] if "_row" in sheet else [])].rename(columns=mapping)
    if frame.empty:  # a header and no row (or blank rows only): say so rather than "imported 0"
        raise ReadError(f"{source or kind}: the sheet has a header but no data rows; fill in at least one row "
                        "below the header and import again", code="no_data_rows")
    matcher = building_matcher(session, with_footprints=kind == "residents" and "lon" in frame,
                               settings=settings, coords=coords)
    checked = check_rows(kind, frame, matcher=matcher, **_context(session, kind))
    problems = checked.problems or _server_checks(session, kind, checked, cipher)
    if problems:
        log.info("register import %s from %s refused: %d problem(s)", kind, source, len(problems))
        raise ValidationFailed(problems)
    write = {"residents": writers.write_residents, "staff": writers.write_staff,
             "keypersons": writers.write_keypersons, "party": writers.write_party}[kind]
    inserted, updated = write(session, checked.rows, cipher=cipher, synthetic=synthetic)
    result = ImportResult(kind, len(frame), inserted, updated)
    audit.record(session, user=user, action="register.import", target=f"register:{kind}",
                 detail={**result.json(), "source": source})
    log.info("register import %s: %d rows, %d inserted, %d updated", kind, len(frame), inserted, updated)
    return result

