"""Bulk writers of checked register rows (SQLAlchemy Core ``executemany`` in chunks, upsert by stable keys)."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from api.bulk import insert_columns
from api.models import User
from api.register.crypto import RegisterCipher
from api.register.models import Household, KeyPerson, KeyPersonCategory, PartyOrg, Resident, Staff
from geo.register.categories import DEFAULT_CATEGORIES, visit_days
from geo.register.idnumber import mask_id, mask_phone, normalise_id, normalise_phone
from geo.register.rows import YES

__all__ = ["CHUNK", "ensure_categories", "id_hashes", "existing_residents", "write_residents", "write_staff",
           "write_keypersons", "write_party", "sensitive_columns"]

log = logging.getLogger(__name__)

CHUNK = 20_000
_BULK_REFRESH = 20_000
_IMPORT_CACHE_KIB = 512 * 1024


def _chunks(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [rows[i:i + CHUNK] for i in range(0, len(rows), CHUNK)]


def _text(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame:
        return pd.Series("", index=frame.index, dtype=object)
    return frame[name].fillna("").astype(str).str.strip()


def _flag(frame: pd.DataFrame, name: str, default: bool = False) -> np.ndarray:
    t = _text(frame, name).str.lower()
    return np.where(t == "", default, t.isin(YES) | t.isin({"实住"})).astype(bool)


def _insert(session: Session, model: Any, columns: dict[str, list[Any]]) -> None:
    """Rows given column-wise, inserted in bulk (:func:`api.bulk.insert_columns`: COPY or ``executemany``).

    Values must already be driver-ready (str, int, bytes, None); a 1 M-row insert spends its
    time in the database, not in Python.
    """
    if not columns or not len(next(iter(columns.values()))):
        return
    conn = session.connection()
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:  # random keys (hashes) into B-tree indexes: a big page cache saves most of the I/O
        conn.exec_driver_sql(f"PRAGMA cache_size=-{_IMPORT_CACHE_KIB}")
    try:
        insert_columns(conn, model.__table__, columns, chunk=CHUNK)
    finally:
        if sqlite:
            conn.exec_driver_sql("PRAGMA cache_size=-2000")  # SQLite's default (2 MB)


def ensure_categories(session: Session) -> None:
    """Load the default key-person categories when the table is empty."""
    if session.scalar(select(KeyPersonCategory.code).limit(1)) is None:
        session.execute(insert(KeyPersonCategory), [c.__dict__ for c in DEFAULT_CATEGORIES])


def id_hashes(ids: pd.Series, cipher: RegisterCipher) -> list[str]:
    """Keyed hashes of normalised ID numbers (the residents' stable key)."""
    return [cipher.search_hash(v, "id_number") for v in normalise_id(ids)]


def existing_residents(session: Session, hashes: list[str]) -> dict[str, int]:
    """ID hash -> resident id for the *hashes* already stored."""
    out: dict[str, int] = {}
    if session.scalar(select(Resident.id).limit(1)) is None:
        return out  # first import: nothing to look up
    for i in range(0, len(hashes), 5000):
        part = hashes[i:i + 5000]
        out.update({h: i for h, i in session.execute(select(Resident.id_hash, Resident.id).where(Resident.id_hash.in_(part)))})
    return out


def sensitive_columns(ids: pd.Series, phones: pd.Series, cipher: RegisterCipher) -> dict[str, list[Any]]:
    """Encrypted, hashed and masked columns of ID numbers and phones (phones may be empty)."""
    ids, phones = normalise_id(ids), normalise_phone(phones)
    id_list, phone_list = ids.tolist(), phones.tolist()  # plain str: iterating Arrow strings is 10x slower
    masked_phones = mask_phone(phones).tolist()
    return {
        "id_enc": cipher.encrypt_many(id_list, "id_number"),
        "id_hash": [cipher.search_hash(v, "id_number") for v in id_list],
        "id_masked": mask_id(ids).tolist(),
        "id_tail": ids.str.slice(-4).tolist(),
        "phone_enc": [cipher.encrypt(v, "phone") if v else None for v in phone_list],
        "phone_hash": [cipher.search_hash(v, "phone") if v else None for v in phone_list],
        "phone_masked": [m if v else None for m, v in zip(masked_phones, phone_list, strict=True)],
    }


def _household_ids(session: Session, rows: pd.DataFrame, synthetic: bool) -> tuple[np.ndarray, int]:
    """Household id of every row (households created as needed), and how many were created."""
    keys = pd.DataFrame({"building_id": rows["building_id"].astype(str), "unit": _text(rows, "unit"),
                         "room": _text(rows, "room")})
    stored = pd.DataFrame(session.execute(select(Household.building_id, Household.unit, Household.room,
                                                 Household.id)).all(),
                          columns=["building_id", "unit", "room", "id"])
    merged = keys.merge(stored, how="left", on=["building_id", "unit", "room"])
    new = merged.assign(address=_text(rows, "address").to_numpy())[merged["id"].isna().to_numpy()]
    new = new.drop_duplicates(["building_id", "unit", "room"])
    n = len(new)
    _insert(session, Household, {"building_id": new["building_id"].tolist(), "unit": new["unit"].tolist(),
                                 "room": new["room"].tolist(),
                                 "address": [a or None for a in new["address"].tolist()],
                                 "size": [0] * n, "party_center": [0] * n, "synthetic": [int(synthetic)] * n})
    if n:
        stored = pd.DataFrame(session.execute(select(Household.building_id, Household.unit, Household.room,
                                                     Household.id)).all(),
                              columns=["building_id", "unit", "room", "id"])
        merged = keys.merge(stored, how="left", on=["building_id", "unit", "room"])
    return merged["id"].astype(np.int64).to_numpy(), n


def _org_ids(session: Session, names: pd.Series) -> list[int | None]:
    known = {n: i for n, i in session.execute(select(PartyOrg.name, PartyOrg.id))}
    return [known.get(n) if n else None for n in names]


def write_residents(session: Session, rows: pd.DataFrame, *, cipher: RegisterCipher,
                    synthetic: bool = False) -> tuple[int, int]:
    """Households (building → 单元 → 户) and residents; returns (inserted, updated) residents."""
    hh, _ = _household_ids(session, rows, synthetic)
    cols = sensitive_columns(rows["id_number"], _text(rows, "phone"), cipher)
    known = existing_residents(session, cols["id_hash"])
    columns: dict[str, list[Any]] = {
        "household_id": hh.tolist(), "name": _text(rows, "name").tolist(), **cols,
        "relation": [v or None for v in _text(rows, "relation").tolist()],
        "registered_address": [v or None for v in _text(rows, "registered_address").tolist()],
        "lives_here": _flag(rows, "lives_here", True).astype(int).tolist(),
        "party_member": _flag(rows, "party_member").astype(int).tolist(),
        "party_org_id": _org_ids(session, _text(rows, "party_org")), "synthetic": [int(synthetic)] * len(rows)}
    ids = [known.get(h) for h in cols["id_hash"]]
    fresh = [i for i, k in enumerate(ids) if k is None]
    _insert(session, Resident, {k: v if len(fresh) == len(ids) else [v[i] for i in fresh]
                                for k, v in columns.items()})
    old = [{**{k: v[i] for k, v in columns.items()}, "rid": ids[i]} for i, k in enumerate(ids) if k is not None]
    stmt = update(Resident.__table__).where(Resident.__table__.c.id == bindparam("rid"))
    for part in _chunks(old):
        session.execute(stmt, part)
    centre = pd.Series(_flag(rows, "party_center"), index=hh)
    _refresh_households(session, sorted(set(hh.tolist())), centre[centre].index.unique().tolist())
    return len(fresh), len(old)


def _refresh_households(session: Session, household_ids: list[int], centres: list[int]) -> None:
    """Household size = its residents; 党员中心户 flags from the sheet."""
    size = ("UPDATE register_households SET size = (SELECT count(*) FROM register_residents r "
            "WHERE r.household_id = register_households.id)")
    if len(household_ids) > _BULK_REFRESH:
        session.execute(text(size))  # one pass over every household beats many single updates
    else:
        for part in _chunks([{"hid": int(h)} for h in household_ids]):
            session.execute(text(size + " WHERE id = :hid"), part)
    flag = update(Household.__table__).where(Household.__table__.c.id == bindparam("hid")).values(party_center=True)
    for part in _chunks([{"hid": int(h)} for h in centres]):
        session.execute(flag, part)


def _s(value: Any) -> str | None:
    """A stripped non-empty string, else ``None`` (empty cells, NaN)."""
    return value.strip() or None if isinstance(value, str) else None


def _date(value: Any) -> date | None:
    return pd.Timestamp(_s(value)).date() if _s(value) else None


def _upsert(session: Session, model: Any, key: dict[str, Any], values: dict[str, Any]) -> bool:
    """The *model* row with *key* given *values*, added if there is none; True if it was added."""
    found = session.scalar(select(model).filter_by(**key))
    if found is None:
        session.add(model(**key, **values))
        return True
    for k, v in values.items():
        setattr(found, k, v)
    return False


def write_staff(session: Session, rows: pd.DataFrame, *, cipher: RegisterCipher, synthetic: bool = False) -> tuple[int, int]:
    """Staff upserted by (name, phone, role, grid, building, entrance); accounts linked by username."""
    users = {n: i for n, i in session.execute(select(User.username, User.id))}
    added = []
    for r in rows.to_dict("records"):
        key = {"name": r["name"].strip(), "phone": normalise_phone(pd.Series([r["phone"]]))[0], "role": r["role"],
               "grid_code": _s(r.get("grid_code")), "building_id": _s(r.get("building_id")),
               "unit": _s(r.get("unit"))}
        values = {"duties": _s(r.get("duties")), "photo": _s(r.get("photo")),
                  "start_date": _date(r.get("start_date")), "end_date": _date(r.get("end_date")),
                  "user_id": users.get(_s(r.get("username")) or "")}
        added.append(_upsert(session, Staff, key, values))
    session.flush()
    return sum(added), len(added) - sum(added)


def write_keypersons(session: Session, rows: pd.DataFrame, *, cipher: RegisterCipher,
                     synthetic: bool = False) -> tuple[int, int]:
    """Key persons upserted by (resident, category); visit interval from the category and risk level."""
    cats = {c.code: c for c in session.scalars(select(KeyPersonCategory))}
    hashes = id_hashes(rows["id_number"], cipher)
    residents = existing_residents(session, hashes)
    added = []
    for r, h in zip(rows.to_dict("records"), hashes, strict=True):
        level = int(r["risk_level"])
        values = {"risk_level": level, "visit_days": visit_days(cats[r["category"]], level),
                  "note": _s(r.get("note"))}
        added.append(_upsert(session, KeyPerson, {"resident_id": residents[h], "category": r["category"]}, values))
    session.flush()
    return sum(added), len(added) - sum(added)


def write_party(session: Session, rows: pd.DataFrame, *, cipher: RegisterCipher, synthetic: bool = False) -> tuple[int, int]:
    """Party organisations upserted by name; parents resolved after every row is stored."""
    inserted = updated = 0
    by_name = {o.name: o for o in session.scalars(select(PartyOrg))}
    for r in rows.to_dict("records"):
        name = r["name"].strip()
        values = {"kind": r["kind"], "grid_code": _s(r.get("grid_code")), "community_id": _s(r.get("community_id")),
                  "secretary": _s(r.get("secretary")), "secretary_phone": _s(r.get("secretary_phone"))}
        org = by_name.get(name)
        if org is None:
            org = by_name[name] = PartyOrg(name=name, **values)
            session.add(org)
            inserted += 1
        else:
            for k, v in values.items():
                setattr(org, k, v)
            updated += 1
    session.flush()
    for r in rows.to_dict("records"):
        parent = _s(r.get("parent"))
        by_name[r["name"].strip()].parent_id = by_name[parent].id if parent else None
    session.flush()
    return inserted, updated
