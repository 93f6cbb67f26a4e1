"""Incident tables, on the declarative ``Base`` of :mod:`api.models`.

A case records the grid **code and plan version in force when it was located** (DOMAIN.md
§11), never a foreign key to today's grids; a case outside every grid has no grid code and
waits in the 待定位 queue. Every transition is an :class:`IncidentEvent` (who, role, when,
why, from/to state, details); photos hang on the case and the event that brought them.
Categories and the holiday calendar are tables so a street office can load its own.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from api.models import Base, UTCDateTime, utcnow

__all__ = ["IncidentCategory", "IncidentCalendarDay", "IncidentCase", "IncidentEvent", "IncidentPhoto",
           "Open311Key", "PublicCode", "Notification", "OutboxMessage", "INCIDENT_MODELS"]


class IncidentCategory(Base):
    """One category of the loaded table (see :mod:`geo.incidents.categories`)."""

    __tablename__ = "incident_categories"
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    kind: Mapped[str] = mapped_column(String(4))
    major_name: Mapped[str] = mapped_column(String(64))
    minor_name: Mapped[str] = mapped_column(String(64))
    grade: Mapped[int] = mapped_column(Integer)
    limit_value: Mapped[float] = mapped_column(Float)
    limit_unit: Mapped[str] = mapped_column(String(8))
    department: Mapped[str] = mapped_column(String(64))
    required: Mapped[str] = mapped_column(String(200), default="description")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class IncidentCalendarDay(Base):
    """A holiday (``rest``) or a 调休 make-up working day (``work``)."""

    __tablename__ = "incident_calendar"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))


class IncidentCase(Base):
    """One incident from any channel, located to the grid in force when it was reported."""

    __tablename__ = "incident_cases"
    # (category, lat): duplicate suggestions search one category in a latitude band (a million open
    # cases: one band of one category, not every case of it); its prefix serves category filters.
    # grid_metrics: the metrics by grid read this index alone, in grid order (a year of 1 M cases:
    # 0.5 s CPU against 2.5 s for the table scan and sort), and so do the map's open cases per grid of
    # the view (no row fetched); its prefix serves the grid filters.
    __table_args__ = (UniqueConstraint("source", "external_id", name="uq_incident_source_external"),
                      Index("ix_incident_cases_state_due", "state", "due_at"),
                      Index("ix_incident_cases_category_lat", "category", "lat"),
                      Index("ix_incident_cases_grid_metrics", "grid_code", "state", "due_at", "closed_at",
                            "dispatched_at", "rework_count", "extension_count"))
    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(36), unique=True)
    source: Mapped[str] = mapped_column(String(16))  # indexed by uq_incident_source_external
    external_id: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(16))  # indexed by ix_incident_cases_category_lat
    description: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str | None] = mapped_column(String(300))
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    grid_code: Mapped[str | None] = mapped_column(String(64))  # indexed by ix_incident_cases_grid_metrics
    plan_version_id: Mapped[int | None] = mapped_column(Integer)
    community_id: Mapped[str | None] = mapped_column(String(64))
    locate_how: Mapped[str] = mapped_column(String(24), default="none")
    state: Mapped[str] = mapped_column(String(16), default="reported")  # indexed by ix_incident_cases_state_due
    assignee: Mapped[str | None] = mapped_column(String(64), index=True)
    reporter: Mapped[str | None] = mapped_column(String(64))
    reporter_contact: Mapped[str | None] = mapped_column(String(200))
    limit_value: Mapped[float] = mapped_column(Float)
    limit_unit: Mapped[str] = mapped_column(String(8))
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    rework_count: Mapped[int] = mapped_column(Integer, default=0)
    extension_count: Mapped[int] = mapped_column(Integer, default=0)
    pending_extension_days: Mapped[int] = mapped_column(Integer, default=0)
    supervise_level: Mapped[str | None] = mapped_column(String(8))
    rating: Mapped[int | None] = mapped_column(Integer)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)


class IncidentEvent(Base):
    """One transition of a case: who (and in which workflow role), when, why, from/to, details."""

    __tablename__ = "incident_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("incident_cases.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class IncidentPhoto(Base):
    """A photo of a case (file under the instance folder) with its thumbnail and EXIF location."""

    __tablename__ = "incident_photos"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("incident_cases.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("incident_events.id", ondelete="SET NULL"))
    path: Mapped[str] = mapped_column(String(300))
    thumb_path: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Open311Key(Base):
    """An Open311 API key: only its SHA-256 hash is stored; admins create and revoke keys."""

    __tablename__ = "incident_api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PublicCode(Base):
    """The tracking code a resident gets for a report from the public page (kept apart from the case
    table so bulk intake pays for no extra index)."""

    __tablename__ = "incident_public_codes"
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("incident_cases.id", ondelete="CASCADE"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Notification(Base):
    """One message of a user's in-app inbox (派遣, 回退, 督办, 临期/超期 …), unique by ``key`` (idempotent)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_unread", "username", "read_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    username: Mapped[str] = mapped_column(String(64))  # indexed by ix_notifications_user_unread
    kind: Mapped[str] = mapped_column(String(24))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("incident_cases.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OutboxMessage(Base):
    """A message for an external channel (SMS, WeChat template) waiting for the sender process.

    Durable: written in the transaction of the action that caused it; the sender marks it sent,
    or counts the failed attempt, keeps the error and retries later; after the last attempt it
    stays ``failed``, visible, never dropped.
    """

    __tablename__ = "notification_outbox"
    __table_args__ = (Index("ix_notification_outbox_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(140), unique=True)
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notifications.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(16))
    username: Mapped[str] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(200))
    template: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    text: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


INCIDENT_MODELS = (IncidentCategory, IncidentCalendarDay, IncidentCase, IncidentEvent, IncidentPhoto, Open311Key,
                   PublicCode, Notification, OutboxMessage)
