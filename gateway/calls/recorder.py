"""Tracker records into the database: upsert by Linkedid, name the caller, settle callbacks.

The I/O edge of call tracking. ``apply`` is idempotent: the same final record applied
twice changes nothing, so a replayed stream or a retried batch is harmless. A stale
in-flight record never overwrites a finished call, except one that ended ``unknown``
in a gap, which a later reconciled record may correct.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from gateway.calls import callbacks
from gateway.calls.phonebook import lookup
from gateway.calls.tracker import MISSED_OUTCOMES, CallRecord
from gateway.config import DutyConfig
from gateway.logcontext import log_context
from storage.calls import Call, ListenerGap
from storage.db import Database
from storage.states import CallDirection, CallOutcome

log = logging.getLogger("dutygw.calls.recorder")

_RECORD_COLUMNS = (
    "direction", "caller", "caller_withheld", "dialed", "arrived_at", "ringing_at",
    "answered_at", "ended_at", "ring_seconds", "rings", "rule_met", "answered_by", "talk_seconds",
    "outcome", "hangup_cause", "time_source", "complete", "note",
    "final_party", "transferred_by", "transferred_to", "picked_up_by",
)


class GapLike(Protocol):
    """What a gap must tell (the AMI client's ``ListenerGap`` does; ``Gap`` below too)."""

    @property
    def lost_at(self) -> datetime: ...

    @property
    def reason(self) -> str: ...


@dataclass(frozen=True)
class Gap:
    """A time the AMI listener was not connected; ``reconnected_at`` None while it lasts."""

    lost_at: datetime
    reason: str
    reconnected_at: datetime | None = None


class CallRecorder:
    def __init__(self, db: Database, duty: DutyConfig | None = None) -> None:
        self._db = db
        hours = duty.callback_window_hours if duty is not None else 24.0
        self._window = timedelta(hours=hours)

    def apply(self, records: list[CallRecord]) -> None:
        """Store the records in one transaction, in order."""
        if not records:
            return
        with self._db.session() as session:
            for record in records:
                with log_context(linkedid=record.linkedid):
                    self._apply_one(session, record)

    def record_gap(self, gap: GapLike) -> None:
        """Add a gap, or complete the one that started at the same instant (idempotent)."""
        reconnected_at = getattr(gap, "reconnected_at", None)
        with self._db.session() as session:
            row = session.scalar(select(ListenerGap).where(ListenerGap.lost_at == gap.lost_at))
            if row is None:
                session.add(ListenerGap(lost_at=gap.lost_at, reconnected_at=reconnected_at, reason=gap.reason))
            else:
                row.reconnected_at = reconnected_at or row.reconnected_at
                row.reason = gap.reason or row.reason

    def gap_closed(self, at: datetime) -> None:
        """The listener is back: the open gap (if any) ends at ``at``."""
        with self._db.session() as session:
            for row in session.scalars(select(ListenerGap).where(ListenerGap.reconnected_at.is_(None))):
                row.reconnected_at = at

    def _apply_one(self, session: Session, record: CallRecord) -> None:
        row = session.scalar(select(Call).where(Call.linkedid == record.linkedid))
        if record.merged_into:
            if row is not None:  # a consultation or pickup leg shown before it was known
                log.info("call %s is part of call %s (%s): its own record withdrawn",
                         record.linkedid, record.merged_into, record.note)
                session.delete(row)
            return
        if row is None:
            row = Call(linkedid=record.linkedid)
            session.add(row)
        elif row.complete and not record.complete and row.outcome != CallOutcome.UNKNOWN:
            return  # an older snapshot arriving late
        was_complete = bool(row.complete) and row.outcome == record.outcome
        for column in _RECORD_COLUMNS:
            setattr(row, column, getattr(record, column))
        row.talks = talks_json(record)
        self._name(session, row, record)
        session.flush()
        if record.complete and not was_complete:
            self._settle_callbacks(session, row, record)

    def _name(self, session: Session, row: Call, record: CallRecord) -> None:
        """The phonebook's name and unit (kept by the duty room) beat the carrier's name."""
        entry = None if record.caller_withheld else lookup(session, record.caller)
        row.caller_name = entry.name if entry is not None else record.caller_name
        row.caller_unit = entry.unit if entry is not None else None

    def _settle_callbacks(self, session: Session, row: Call, record: CallRecord) -> None:
        open_rows = {r.id: r for r in session.scalars(_open_missed_query(row))}
        open_missed = [callbacks.OpenMissed(r.id, r.caller, r.arrived_at)
                       for r in open_rows.values() if r.arrived_at is not None]
        for closure in callbacks.closures(record, row.id, open_missed, self._window):
            missed = open_rows[closure.missed_call_id]
            if closure.called_back_at is not None:
                missed.called_back_at = closure.called_back_at
                missed.called_back_by = closure.called_back_by
                missed.callback_connected = closure.callback_connected
            missed.closed_by_call_id = closure.closed_by_call_id
            with log_context(linkedid=missed.linkedid):  # the line is about the missed call
                log.info("call %s: %s", missed.linkedid, closure.reason)


def talks_json(record: CallRecord) -> str | None:
    """Each stretch of talk as JSON (UTC ISO times with their fractions), or None."""
    if not record.talks:
        return None
    return json.dumps([{"party": t.party, "start": t.start.isoformat(),
                        "end": t.end.isoformat() if t.end else None, "seconds": t.seconds}
                       for t in record.talks], ensure_ascii=False)


def _open_missed_query(row: Call) -> Select[Call]:
    number = row.dialed if row.direction == CallDirection.OUT else row.caller
    return select(Call).where(
        Call.direction == CallDirection.IN,
        Call.outcome.in_(MISSED_OUTCOMES),
        Call.caller == number,
        Call.caller_withheld.is_(False),
        Call.closed_by_call_id.is_(None),
        Call.id != row.id,
    )
