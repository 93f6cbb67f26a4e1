"""Printed notice boards: which grid, from which plan and content, when (for reprint lists)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from api.models import Base, UTCDateTime, utcnow

__all__ = ["BoardPrint", "BOARD_MODELS"]


class BoardPrint(Base):
    """One printed board: the grid code, the plan it was made from and a hash of what it shows."""

    __tablename__ = "board_prints"
    id: Mapped[int] = mapped_column(primary_key=True)
    grid_key: Mapped[str] = mapped_column(String(64), index=True)
    plan_id: Mapped[int | None] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    size: Mapped[str] = mapped_column(String(8))
    orientation: Mapped[str] = mapped_column(String(16))
    printed_by: Mapped[str] = mapped_column(String(64))
    printed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


BOARD_MODELS = (BoardPrint,)
