"""Calls on the duty line, the phonebook that names callers, and the listener's gaps.

One ``Call`` row per logical call (the PBX's Linkedid), upserted as the tracker learns
more; columns are named like the fields of ``dutygw calls --format json``. A gap row
says when the gateway was not listening, so a report can say "calls between 02:10
and 02:14 may be missing" instead of silently showing none.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, State, UTCDateTime, one_of
from storage.states import CallDirection, CallOutcome


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (one_of("direction", CallDirection), one_of("outcome", CallOutcome))

    id: Mapped[int] = mapped_column(primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(100), unique=True)
    direction: Mapped[CallDirection] = mapped_column(State(CallDirection, 3))
    """``in`` on a duty number, ``out`` from a duty extension."""
    caller: Mapped[str] = mapped_column(String(64), index=True)
    """Normalised; ``anonymous`` when withheld; the extension for an outbound call."""
    caller_name: Mapped[str | None] = mapped_column(String(200))
    caller_unit: Mapped[str | None] = mapped_column(String(200))
    caller_withheld: Mapped[bool] = mapped_column(Boolean, default=False)
    dialed: Mapped[str | None] = mapped_column(String(64))
    arrived_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    ringing_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ring_seconds: Mapped[float | None] = mapped_column(Float)
    rings: Mapped[int | None] = mapped_column(Integer)
    rule_met: Mapped[bool | None] = mapped_column(Boolean)
    answered_by: Mapped[str | None] = mapped_column(String(64))
    talk_seconds: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[CallOutcome | None] = mapped_column(State(CallOutcome), index=True)
    """None while the call is still ringing."""
    hangup_cause: Mapped[int | None] = mapped_column(Integer)
    called_back_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    called_back_by: Mapped[str | None] = mapped_column(String(64))
    callback_connected: Mapped[bool | None] = mapped_column(Boolean)
    closed_by_call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    """The call that handled this missed call: a connected callback, or the caller's
    later answered call. None while the missed call is still open."""
    time_source: Mapped[str] = mapped_column(String(10), default="pbx")
    complete: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)
    """Why the tracker had to guess (joined mid-call, a gap, a leg folded in)."""
    final_party: Mapped[str | None] = mapped_column(String(64))
    """Who the caller talked to last (after a transfer, the transfer target)."""
    transferred_by: Mapped[str | None] = mapped_column(String(64))
    transferred_to: Mapped[str | None] = mapped_column(String(64))
    picked_up_by: Mapped[str | None] = mapped_column(String(64))
    talks: Mapped[str | None] = mapped_column(Text)
    """JSON list of ``{"party", "start", "end", "seconds"}``: each stretch of talk, in order."""


class PhonebookEntry(Base):
    __tablename__ = "phonebook"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    """Normalised like every caller number."""
    name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str | None] = mapped_column(String(200))


class ListenerGap(Base):
    """A time the gateway was not receiving the PBX's events."""

    __tablename__ = "listener_gaps"

    id: Mapped[int] = mapped_column(primary_key=True)
    lost_at: Mapped[datetime] = mapped_column(UTCDateTime, unique=True)
    reconnected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text, default="")
