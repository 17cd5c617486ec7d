"""Escalations (waking the leadership for urgent faxes), their call attempts and outbound mail.

The escalation's whole state lives here so that a restarted gateway resumes it without
calling anyone twice for the same attempt: an attempt row is written (``planned``) before
its Originate leaves, and its ActionID is the row's key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storage.base import Base, State, UTCDateTime, one_of
from storage.states import AttemptResult, EscalationState, MailState


class Escalation(Base):
    __tablename__ = "escalations"
    __table_args__ = (one_of("state", EscalationState),)

    id: Mapped[int] = mapped_column(primary_key=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[EscalationState] = mapped_column(State(EscalationState), default=EscalationState.OPEN, index=True)
    """open → acknowledged | exhausted | stopped (人工停止 by the leader on duty)."""
    shift_key: Mapped[str | None] = mapped_column(String(30))
    """The shift it was opened in, e.g. 2026-11-21/night."""
    receipt_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """Every urgent receipt this page announces (several faxes close together make one page)."""
    chain: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """The resolved chain: [{"role", "name", "number"}], fixed when opened."""
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    acknowledged_number: Mapped[str | None] = mapped_column(String(50))
    deadline_met: Mapped[bool | None] = mapped_column(Boolean)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """No call before this (a burst right after an acknowledged page waits for its window)."""
    fallback_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When the secretariat was mailed because the chain could not be placed (AMI down, refused)."""
    stopped_by: Mapped[str | None] = mapped_column(String(100))
    """Who stopped the paging from the console (its closed_at is when)."""
    stop_reason: Mapped[str | None] = mapped_column(Text)

    attempts: Mapped[list[PageAttempt]] = relationship(
        back_populates="escalation", order_by="PageAttempt.id", cascade="all, delete-orphan"
    )


class PageAttempt(Base):
    __tablename__ = "page_attempts"
    __table_args__ = (one_of("result", AttemptResult),)

    id: Mapped[int] = mapped_column(primary_key=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    """Index into the chain."""
    round: Mapped[int] = mapped_column(Integer, default=0)
    try_no: Mapped[int] = mapped_column(Integer, default=0)
    role: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(100), default="")
    number: Mapped[str] = mapped_column(String(50))
    action_id: Mapped[str] = mapped_column(String(80), unique=True)
    page_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    """The call's PAGE_ID: unguessable, made per attempt; the only id the press-1 dialog accepts."""
    planned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When the call may be placed (a retry waits the attempt interval)."""
    receipt_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """The receipts this call announced."""
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[AttemptResult] = mapped_column(State(AttemptResult), default=AttemptResult.PLANNED)
    channel: Mapped[str | None] = mapped_column(String(100))
    detail: Mapped[str | None] = mapped_column(Text)

    escalation: Mapped[Escalation] = relationship(back_populates="attempts")


class OutboundMail(Base):
    """A notice, digest or report to send through the relay; retried until sent."""

    __tablename__ = "outbound_mail"
    __table_args__ = (one_of("state", MailState),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30), index=True)
    """urgent_notice | night_digest | report."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    recipients: Mapped[list[Any]] = mapped_column(JSON, default=list)
    subject: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    attachments: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """[{"path", "filename", "content_type"}]; never the image of a classified fax."""
    receipt_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    shift_key: Mapped[str | None] = mapped_column(String(30))
    state: Mapped[MailState] = mapped_column(State(MailState), default=MailState.PENDING, index=True)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    """One row per notice (e.g. ``receipt:12``): queueing it again after a crash or a sweep is a no-op."""


class PagingRequest(Base):
    """The leader on duty's 立即呼叫 / 停止呼叫 from the console, for the pager to carry out.

    The console may run in another process (``dutygw web``), so the request goes through
    the database; the pager polls for pending ones every second and records the outcome.
    """

    __tablename__ = "paging_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    """page_now | stop."""
    escalation_id: Mapped[int | None] = mapped_column(ForeignKey("escalations.id", ondelete="SET NULL"), index=True)
    receipt_id: Mapped[int | None] = mapped_column(ForeignKey("receipts.id", ondelete="SET NULL"))
    """For a page now of a receipt that has no escalation (the leader judges it urgent)."""
    reason: Mapped[str] = mapped_column(Text, default="")
    requested_by: Mapped[str] = mapped_column(String(100))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    """pending → done | refused."""
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result_escalation_id: Mapped[int | None] = mapped_column(Integer)
    """The escalation the request acted on (a new one for a receipt, or for a closed page paged again)."""
    detail: Mapped[str | None] = mapped_column(Text)
    """What happened, in words for the duty staff."""


def paging_needs_trunk(session: Any) -> bool:
    """Whether an urgent page is open: other outbound calls (spot checks) must wait for it."""
    from sqlalchemy import func, select

    return bool(session.scalar(select(func.count()).select_from(Escalation).where(Escalation.state == EscalationState.OPEN)))
