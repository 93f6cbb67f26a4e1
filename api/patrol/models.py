"""Patrol tables, on the declarative ``Base`` of :mod:`api.models`.

Fixes are stored **raw**, as the phone sent them: cleaning runs when a period is read
(:func:`geo.patrol.clean.clean_fixes`), so every dropped fix can be counted by reason and
the rules can change without losing data. Each fix records the grid (code) and plan
version in force where and when it was received (DOMAIN.md §11). ``(user_id, t)`` is
unique: a retried upload of the same fix is stored once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from api.models import Base, UTCDateTime, utcnow

__all__ = ["PatrolDevice", "PatrolFix", "UnknownDevice", "PatrolVisit", "FIX_SOURCES", "PATROL_MODELS"]

#: How a fix arrived: OsmAnd query, Traccar Client JSON, or a file import.
FIX_SOURCES: tuple[str, ...] = ("osmand", "traccar", "file")


class PatrolDevice(Base):
    """A tracker app's device id bound by an admin to a worker's account."""

    __tablename__ = "patrol_devices"
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(100), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str | None] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    bound_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    bound_by: Mapped[str | None] = mapped_column(String(64))


class PatrolFix(Base):
    """One GPS fix of a worker, raw, with the grid in force when it was received."""

    __tablename__ = "patrol_fixes"
    __table_args__ = (UniqueConstraint("user_id", "t", name="uq_patrol_fix_user_t"),
                      Index("ix_patrol_fixes_t", "t"))
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    device_id: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(16))
    t: Mapped[datetime] = mapped_column(UTCDateTime)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    accuracy: Mapped[float | None] = mapped_column(Float)
    speed: Mapped[float | None] = mapped_column(Float)
    bearing: Mapped[float | None] = mapped_column(Float)
    altitude: Mapped[float | None] = mapped_column(Float)
    battery: Mapped[float | None] = mapped_column(Float)
    grid_code: Mapped[str | None] = mapped_column(String(64), index=True)
    plan_version_id: Mapped[int | None] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UnknownDevice(Base):
    """A device id that sent fixes but is bound to nobody: refused, and listed for admins."""

    __tablename__ = "patrol_unknown_devices"
    device_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_lon: Mapped[float | None] = mapped_column(Float)
    last_lat: Mapped[float | None] = mapped_column(Float)


class PatrolVisit(Base):
    """A worker's visit to a key person (重点人员走访), with note, optional photo and check-in location."""

    __tablename__ = "patrol_visits"
    id: Mapped[int] = mapped_column(primary_key=True)
    keyperson_id: Mapped[int] = mapped_column(ForeignKey("register_keypersons.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    grid_code: Mapped[str | None] = mapped_column(String(64), index=True)
    #: the photo's path under ``<instance>/patrol_photos`` (migration ``0011_patrol_visit_photo``)
    photo_path: Mapped[str | None] = mapped_column(String(300))
    photo_type: Mapped[str | None] = mapped_column(String(50))


PATROL_MODELS = (PatrolDevice, PatrolFix, UnknownDevice, PatrolVisit)
