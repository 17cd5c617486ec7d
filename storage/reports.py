"""Shift reports already made: the scheduler's memory, so no shift is reported twice.

Whether the report reached its readers is the state of its ``OutboundMail`` row (retried
by the mailer until sent); this table only remembers that, when and where it was made.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, UTCDateTime


class ReportRun(Base):
    __tablename__ = "report_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    shift_key: Mapped[str] = mapped_column(String(30), unique=True)
    """e.g. 2026-11-21/night; a remade report (``dutygw report``) updates its row."""
    made_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    directory: Mapped[str] = mapped_column(String(500))
    files: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """File names inside ``directory``: report.html, report.pdf, calls.xlsx, charts."""
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """The headline figures as printed by ``dutygw report --format json``."""
    mail_id: Mapped[int | None] = mapped_column(ForeignKey("outbound_mail.id"))
    """The queued mail; None when the report had no recipients."""
