"""Inbound fax mail and the receipts (来文登记) made from them.

``InboundMail`` is written (with its fsync'd spool file) before the SMTP 250 reply;
``Receipt`` is what a duty officer reads and signs. A mail becomes at most one receipt.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from storage.base import Base, State, UTCDateTime, one_of
from storage.states import InboundMailState, ReceiptStatus

UNCLASSIFIED = frozenset({"", "非密", "公开", "无"})
"""Marks that say a fax is not secret; any other mark (秘密, 机密, 绝密, 机密★1年…) is a 密级."""


def is_classified(classification: str | None) -> bool:
    """The one rule: any mark but an explicit "not secret" counts; when in doubt, redact."""
    return classification is not None and classification.strip() not in UNCLASSIFIED


class InboundMail(Base):
    """One accepted SMTP message (or a file ingested by hand), durable before it is answered."""

    __tablename__ = "inbound_mail"
    __table_args__ = (one_of("state", InboundMailState),)

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    spool_path: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    message_id: Mapped[str | None] = mapped_column(String(500), index=True)
    mail_from: Mapped[str] = mapped_column(String(500), default="")
    rcpt_to: Mapped[str] = mapped_column(String(1000), default="")
    peer: Mapped[str] = mapped_column(String(100), default="")
    size: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[InboundMailState] = mapped_column(
        State(InboundMailState), default=InboundMailState.SPOOLED, index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    """Why a mail was quarantined or taken as a duplicate (of which receipt)."""
    attachment_sha256: Mapped[str | None] = mapped_column(String(64), index=True)


class Receipt(Base):
    """A fax receipt (来文登记) with the fields a duty officer would type into the register."""

    __tablename__ = "receipts"
    __table_args__ = (UniqueConstraint("year", "seq"), one_of("status", ReceiptStatus))

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    mail_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_mail.id"), unique=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    received_time_source: Mapped[str] = mapped_column(String(20), default="mail")
    station: Mapped[str | None] = mapped_column(String(200))
    """Sending station id (TSI) or number, from the fax server."""
    sender_number: Mapped[str | None] = mapped_column(String(50))
    dpi_x: Mapped[int | None] = mapped_column(Integer)
    dpi_y: Mapped[int | None] = mapped_column(Integer)
    """The fax's resolution in dots per inch as the fax server reported it (204×98 standard)."""
    pages: Mapped[int] = mapped_column(Integer, default=0)
    original_path: Mapped[str | None] = mapped_column(String(500))
    original_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    content_type: Mapped[str | None] = mapped_column(String(100))

    copy_no: Mapped[str | None] = mapped_column(String(50))
    doc_number: Mapped[str | None] = mapped_column(String(200))
    issuer: Mapped[str | None] = mapped_column(String(300))
    title: Mapped[str | None] = mapped_column(Text)
    recipients: Mapped[str | None] = mapped_column(Text)
    doc_date: Mapped[str | None] = mapped_column(String(50))
    sender: Mapped[str | None] = mapped_column(String(300))

    urgency: Mapped[str | None] = mapped_column(String(20))
    """The formal mark: 特提, 特急, 加急, 平急, 急件, 紧急, or None."""
    is_urgent: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    possibly_urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    urgency_reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    urgency_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    classification: Mapped[str | None] = mapped_column(String(20))
    secrecy_period: Mapped[str | None] = mapped_column(String(50))

    ocr_engine: Mapped[str | None] = mapped_column(String(50))
    ocr_confidence: Mapped[float | None] = mapped_column(Float)
    status: Mapped[ReceiptStatus] = mapped_column(
        State(ReceiptStatus), default=ReceiptStatus.READING, index=True)
    review_reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    filed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    signed_by: Mapped[str | None] = mapped_column(String(100))
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    page_texts: Mapped[list[ReceiptPage]] = relationship(
        back_populates="receipt", order_by="ReceiptPage.page_no", cascade="all, delete-orphan"
    )

    @property
    def receipt_no(self) -> str:
        """The readable receipt number, e.g. 传真〔2026〕0137号."""
        return f"传真〔{self.year}〕{self.seq:04d}号"

    @property
    def is_classified(self) -> bool:
        return is_classified(self.classification)


class ReceiptPage(Base):
    __tablename__ = "receipt_pages"
    __table_args__ = (UniqueConstraint("receipt_id", "page_no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    receipt_id: Mapped[int] = mapped_column(ForeignKey("receipts.id", ondelete="CASCADE"), index=True)
    page_no: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text, default="")
    lines: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """[{"text", "box": [x0, y0, x1, y1], "confidence"}] in normalised-image pixels."""
    confidence: Mapped[float | None] = mapped_column(Float)
    engine: Mapped[str | None] = mapped_column(String(50))
    error: Mapped[str | None] = mapped_column(Text)

    receipt: Mapped[Receipt] = relationship(back_populates="page_texts")


SET_ASIDE_STATES = (InboundMailState.QUARANTINED, InboundMailState.DUPLICATE)


def set_aside_mail(session: Session, since: datetime | None = None,
                   until: datetime | None = None) -> list[InboundMail]:
    """Mail accepted but made no receipt (quarantined, or a duplicate), newest first.

    Each keeps its spool file and says why (``reason``): the fax register, the shift
    report and the handover list them, so nothing accepted vanishes from view."""
    query = select(InboundMail).where(InboundMail.state.in_(SET_ASIDE_STATES))
    if since is not None:
        query = query.where(InboundMail.received_at >= since)
    if until is not None:
        query = query.where(InboundMail.received_at < until)
    return list(session.scalars(query.order_by(InboundMail.received_at.desc(), InboundMail.id.desc())))
