"""Register tables, on the declarative ``Base`` of :mod:`api.models`.

Records about people hang on **buildings** (``building_id``, not a foreign key: layers are
re-imported wholesale), never on grids, so a re-plan moves them with their building.
Staff assignments are per grid **code** with start/end dates. Resident ID numbers and
phones are stored only encrypted (``*_enc``, AES-GCM) plus a keyed hash (``*_hash``,
HMAC-SHA256) for exact search and a mask (``*_masked``) for lists.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from api.models import Base, UTCDateTime, utcnow

__all__ = ["STAFF_ROLES", "Staff", "Household", "Resident", "KeyPersonCategory", "KeyPerson", "PartyOrg",
           "RegisterGrant", "REGISTER_MODELS"]

STAFF_ROLES: tuple[str, ...] = ("grid_leader", "grid_worker", "instructor", "building_head", "unit_head")


class Staff(Base):
    """网格长 / 网格员 / 网格指导员 (per grid code) or 楼栋长 / 单元长 (per building, entrance)."""

    __tablename__ = "register_staff"
    __table_args__ = (UniqueConstraint("name", "phone", "role", "grid_code", "building_id", "unit",
                                       name="uq_register_staff_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(16), index=True)
    grid_code: Mapped[str | None] = mapped_column(String(64), index=True)
    building_id: Mapped[str | None] = mapped_column(String(64), index=True)
    unit: Mapped[str | None] = mapped_column(String(32))
    duties: Mapped[str | None] = mapped_column(Text)
    photo: Mapped[str | None] = mapped_column(String(300))
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)


class Household(Base):
    """户 / 房屋: one dwelling of a building entrance, with its standard address."""

    __tablename__ = "register_households"
    __table_args__ = (UniqueConstraint("building_id", "unit", "room", name="uq_register_household_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    building_id: Mapped[str] = mapped_column(String(64), index=True)
    unit: Mapped[str] = mapped_column(String(32), default="")
    room: Mapped[str] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(String(300), index=True)
    size: Mapped[int] = mapped_column(Integer, default=0)
    party_center: Mapped[bool] = mapped_column(Boolean, default=False)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)


class Resident(Base):
    """居民: name, encrypted ID number and phone, relation, residence, party membership."""

    __tablename__ = "register_residents"
    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("register_households.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    id_enc: Mapped[bytes] = mapped_column(LargeBinary)
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    id_masked: Mapped[str] = mapped_column(String(32))
    id_tail: Mapped[str] = mapped_column(String(4), index=True)
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_masked: Mapped[str | None] = mapped_column(String(32))
    relation: Mapped[str | None] = mapped_column(String(32))
    registered_address: Mapped[str | None] = mapped_column(String(300))
    lives_here: Mapped[bool] = mapped_column(Boolean, default=True)
    party_member: Mapped[bool] = mapped_column(Boolean, default=False)
    party_org_id: Mapped[int | None] = mapped_column(ForeignKey("register_party_orgs.id", ondelete="SET NULL"))
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)


class KeyPersonCategory(Base):
    """One key-person category (loadable table) with visit intervals by risk band."""

    __tablename__ = "register_keyperson_categories"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    visit_days_low: Mapped[int] = mapped_column(Integer)
    visit_days_high: Mapped[int] = mapped_column(Integer)


class KeyPerson(Base):
    """重点人员: a resident in a category, with risk level and visit interval."""

    __tablename__ = "register_keypersons"
    __table_args__ = (UniqueConstraint("resident_id", "category", name="uq_register_keyperson_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("register_residents.id", ondelete="CASCADE"), index=True)
    category: Mapped[str] = mapped_column(ForeignKey("register_keyperson_categories.code"))
    risk_level: Mapped[int] = mapped_column(Integer, default=0)
    visit_days: Mapped[int] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)


class PartyOrg(Base):
    """社区党委 → 网格党支部 → 党小组, with secretary."""

    __tablename__ = "register_party_orgs"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("register_party_orgs.id", ondelete="SET NULL"))
    community_id: Mapped[str | None] = mapped_column(String(64))
    grid_code: Mapped[str | None] = mapped_column(String(64), index=True)
    secretary: Mapped[str | None] = mapped_column(String(100))
    secretary_phone: Mapped[str | None] = mapped_column(String(32))


class RegisterGrant(Base):
    """A permission beyond the role, e.g. ``unmask`` (see resident ID numbers and phones in clear)."""

    __tablename__ = "register_grants"
    __table_args__ = (UniqueConstraint("user_id", "permission", name="uq_register_grant"),
                      Index("ix_register_grants_user", "user_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    permission: Mapped[str] = mapped_column(String(32))
    granted_by: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


REGISTER_MODELS = (Staff, Household, Resident, KeyPersonCategory, KeyPerson, PartyOrg, RegisterGrant)
