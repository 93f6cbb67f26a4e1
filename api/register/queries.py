"""Reads of the register, masked by default: lists per grid, one record, summaries, checks.

Callers check access first (:mod:`api.register.access`); nothing here returns a clear ID
number or phone except :func:`unmasked`, which the unmask route calls after the grant,
the reason and the audit row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from api.grids import service
from api.register.crypto import RegisterCipher
from api.register.models import Household, KeyPerson, KeyPersonCategory, PartyOrg, Resident, Staff
from geo.register.idnumber import mask_phone

__all__ = ["RecordNotFound", "ROLE_LABELS", "residents_of_grid", "resident_detail", "grid_of_resident", "unmasked",
           "keypersons_of_grid", "keyperson_detail", "staff_of_grid", "grid_summary", "export_rows",
           "RESIDENT_COLUMNS", "household_counts"]

class RecordNotFound(LookupError):
    """No register record with this id."""


ROLE_LABELS = {"grid_leader": "网格长", "grid_worker": "网格员", "instructor": "网格指导员",
               "building_head": "楼栋长", "unit_head": "单元长"}

#: Columns of a masked resident row (lists and exports), with Chinese headers.
RESIDENT_COLUMNS = {"id": "编号", "name": "姓名", "id_masked": "身份证号", "phone_masked": "联系电话",
                    "relation": "与户主关系", "building_id": "楼栋编号", "unit": "单元", "room": "门牌",
                    "address": "地址", "lives_here": "是否实住", "party_member": "是否党员", "synthetic": "合成数据"}


def _resident_select() -> Select[Any]:
    return (select(Resident.id, Resident.name, Resident.id_masked, Resident.phone_masked, Resident.relation,
                   Household.building_id, Household.unit, Household.room, Household.address, Resident.lives_here,
                   Resident.party_member, Resident.synthetic)
            .join(Household, Household.id == Resident.household_id))


def _search(stmt: Select[Any], q: str | None) -> Select[Any]:
    q = (q or "").strip()
    if not q:
        return stmt
    like = f"%{q}%"
    tail = q.replace("*", "")[-4:]
    return stmt.where(or_(Resident.name.like(like), Household.address.like(like), Household.room == q,
                          Resident.id_tail == tail.upper()))


def residents_of_grid(session: Session, key: str, *, q: str | None = None, limit: int = 50,
                      offset: int = 0) -> dict[str, Any]:
    """Masked residents of grid *key*, searchable by name, address, room or the ID's last 4 characters."""
    buildings = service.buildings_of_grid(session, key)
    stmt = _search(_resident_select().where(Household.building_id.in_(buildings)), q)
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = session.execute(stmt.order_by(Household.building_id, Household.unit, Household.room, Resident.id)
                           .limit(limit).offset(offset)).mappings().all()
    return {"grid": key, "total": int(total or 0), "residents": [dict(r) for r in rows]}


def grid_of_resident(session: Session, resident_id: int) -> str | None:
    """Active grid key of the resident's building (``None`` when the building is in no active grid)."""
    building = session.scalar(select(Household.building_id).join(Resident, Resident.household_id == Household.id)
                              .where(Resident.id == resident_id))
    if building is None:
        raise RecordNotFound(f"居民 {resident_id} 不存在")
    found = service.grids_of_buildings(session, [building])
    return None if found.empty else str(found.iloc[0])


def resident_detail(session: Session, resident_id: int) -> dict[str, Any]:
    """One masked resident with household, party organisation and key-person categories."""
    row = session.execute(_resident_select().add_columns(Resident.registered_address, Household.size,
                                                         Household.party_center, Resident.party_org_id)
                          .where(Resident.id == resident_id)).mappings().first()
    if row is None:
        raise RecordNotFound(f"居民 {resident_id} 不存在")
    out = dict(row)
    org = session.get(PartyOrg, out.pop("party_org_id")) if row["party_org_id"] else None
    out["party_org"] = org.name if org else None
    out["keypersons"] = [{"category": n, "risk_level": k.risk_level, "visit_days": k.visit_days}
                         for k, n in session.execute(select(KeyPerson, KeyPersonCategory.name).join(KeyPersonCategory)
                                                     .where(KeyPerson.resident_id == resident_id))]
    return out


def unmasked(session: Session, cipher: RegisterCipher, resident_id: int) -> dict[str, Any]:
    """Clear ID number and phone of one resident (only after grant, reason and audit)."""
    r = session.get(Resident, resident_id)
    if r is None:
        raise RecordNotFound(f"居民 {resident_id} 不存在")
    return {"id": r.id, "id_number": cipher.decrypt(r.id_enc, "id_number"),
            "phone": cipher.decrypt(r.phone_enc, "phone") if r.phone_enc else None}


def keypersons_of_grid(session: Session, key: str) -> list[dict[str, Any]]:
    """Key persons of grid *key*: masked resident, category, risk level, visit interval."""
    buildings = service.buildings_of_grid(session, key)
    stmt = (select(KeyPerson.id, Resident.id.label("resident_id"), Resident.name, Resident.id_masked,
                   Resident.phone_masked, KeyPersonCategory.name.label("category"), KeyPerson.risk_level,
                   KeyPerson.visit_days, Household.building_id, Household.unit, Household.room)
            .join(Resident, Resident.id == KeyPerson.resident_id).join(Household, Household.id == Resident.household_id)
            .join(KeyPersonCategory, KeyPersonCategory.code == KeyPerson.category)
            .where(Household.building_id.in_(buildings)).order_by(KeyPerson.risk_level.desc(), KeyPerson.id))
    return [dict(r) for r in session.execute(stmt).mappings()]


def keyperson_detail(session: Session, keyperson_id: int) -> dict[str, Any]:
    """One key person (masked) with the resident's record."""
    kp = session.get(KeyPerson, keyperson_id)
    if kp is None:
        raise RecordNotFound(f"重点人员 {keyperson_id} 不存在")
    cat = session.get(KeyPersonCategory, kp.category)
    return {"id": kp.id, "category": cat.name if cat else kp.category, "risk_level": kp.risk_level,
            "visit_days": kp.visit_days, "note": kp.note, "resident": resident_detail(session, kp.resident_id)}


def staff_of_grid(session: Session, key: str) -> list[dict[str, Any]]:
    """Staff of grid *key* (grid roles by code, building and entrance heads of its buildings)."""
    buildings = service.buildings_of_grid(session, key)
    rows = session.scalars(select(Staff).where(or_(Staff.grid_code == key, Staff.building_id.in_(buildings)))
                           .order_by(Staff.role, Staff.name))
    # Staff phones are public on notice boards (boards read them there); register views mask them too.
    return [{"id": s.id, "name": s.name, "phone_masked": mask_phone(pd.Series([s.phone]))[0], "role": s.role, "role_label": ROLE_LABELS[s.role],
             "building_id": s.building_id, "unit": s.unit, "duties": s.duties,
             "start_date": s.start_date.isoformat() if s.start_date else None} for s in rows]


def grid_summary(session: Session, key: str) -> dict[str, Any]:
    """Counts of one grid: buildings, register households (flagged as such), residents, key persons."""
    meta = service.grid_meta(session, key)
    buildings = service.buildings_of_grid(session, key)
    hh = session.scalar(select(func.count()).select_from(Household).where(Household.building_id.in_(buildings)))
    res = session.scalar(select(func.count()).select_from(Resident).join(Household)
                         .where(Household.building_id.in_(buildings)))
    kp = session.scalar(select(func.count()).select_from(KeyPerson).join(Resident).join(Household)
                        .where(Household.building_id.in_(buildings)))
    return {"key": key, "code": meta["code"], "name": meta["name"], "community_id": meta["community_id"],
            "buildings": len(buildings), "households_plan": meta["households"],
            "households_register": int(hh or 0), "residents": int(res or 0), "keypersons": int(kp or 0),
            "staff": staff_of_grid(session, key), "due_visits": None}


def export_rows(session: Session, key: str) -> list[Mapping[str, Any]]:
    """Every masked resident of grid *key* (exports mask by default)."""
    return residents_of_grid(session, key, limit=1_000_000)["residents"]


def household_counts(session: Session) -> pd.Series:
    """Register households per building (buildings with register records only), named ``households_register``.

    Grid sizes use these real numbers where present instead of the estimated
    ``buildings.households`` (callers flag them as coming from the register).
    """
    rows = session.execute(select(Household.building_id, func.count()).group_by(Household.building_id)).all()
    return pd.Series([int(n) for _, n in rows], index=[b for b, _ in rows], name="households_register", dtype="int64")
