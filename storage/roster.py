"""The duty roster (值班表): who leads (带班领导) each shift, imported from the office's CSV."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, UTCDateTime


class RosterEntry(Base):
    """One shift of the roster; a later import of the same date and shift replaces it."""

    __tablename__ = "roster_entries"
    __table_args__ = (UniqueConstraint("duty_date", "shift"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    duty_date: Mapped[date] = mapped_column(Date, index=True)
    """The date the shift starts on (a night shift belongs to the evening it begins)."""
    shift: Mapped[str] = mapped_column(String(30))
    """The configured shift name, e.g. ``day`` or ``night``."""
    leader_name: Mapped[str] = mapped_column(String(100), default="")
    leader_number: Mapped[str] = mapped_column(String(50), default="")
    officers: Mapped[list[Any]] = mapped_column(JSON, default=list)
    source: Mapped[str] = mapped_column(String(500), default="")
    """File and line it came from, so a wrong entry can be traced."""
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)
