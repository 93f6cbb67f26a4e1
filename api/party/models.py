"""Centre-household links (党员中心户 → households it looks after), on the shared ``Base``.

Links hang on register households (which hang on buildings), never on grids, so a re-plan
keeps them; ``wangge party link`` re-solves the ones not fixed by hand.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from api.models import Base, UTCDateTime, utcnow

__all__ = ["PartyLink", "PARTY_MODELS"]


class PartyLink(Base):
    """One household looked after by one centre household; ``fixed`` links were set by hand."""

    __tablename__ = "party_links"
    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("register_households.id", ondelete="CASCADE"), unique=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("register_households.id", ondelete="CASCADE"), index=True)
    distance_m: Mapped[float | None] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(16))
    fixed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


PARTY_MODELS = (PartyLink,)
