"""What the tracker tells about a call: immutable values, the same in the database and JSON."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.states import CallDirection, CallOutcome

OUTCOMES = tuple(CallOutcome)
MISSED_OUTCOMES = (CallOutcome.MISSED_ABANDONED, CallOutcome.MISSED_NO_ANSWER, CallOutcome.MISSED_BUSY,
                   CallOutcome.FAILED)
PBX = "pbx"
"""``answered_by`` when the PBX itself answered (the fax line's ``Answer()``)."""


@dataclass(frozen=True)
class Talk:
    """One stretch of the caller talking with one party (a transfer starts another)."""

    party: str
    start: datetime
    end: datetime | None

    @property
    def seconds(self) -> float | None:
        if self.end is None:
            return None
        return round(max(0.0, (self.end - self.start).total_seconds()), 3)


@dataclass(frozen=True)
class CallRecord:
    """What is known of one call; the last one for a call has ``complete=True``.

    For an outbound call ``caller`` is the duty extension that dialed, ``dialed`` the
    number called and ``answered_by`` that number when the callee picked up. For an
    inbound call ``answered_by`` is the first phone that answered (the 3-ring rule is
    about that answer; for a pickup, the phone that picked up) and ``final_party`` the
    one the caller talked to last. ``merged_into`` names the call this one turned out to
    be part of (a consultation or a pickup leg): such a record is withdrawn, not kept.
    """

    linkedid: str
    direction: CallDirection
    caller: str
    caller_name: str | None
    caller_withheld: bool
    dialed: str | None
    arrived_at: datetime | None
    ringing_at: datetime | None
    answered_at: datetime | None
    answered_by: str | None
    ended_at: datetime | None
    ring_seconds: float | None
    rings: int | None
    rule_met: bool | None
    talk_seconds: float | None
    hangup_cause: int | None
    outcome: CallOutcome | None
    time_source: str
    complete: bool
    note: str | None = None
    final_party: str | None = None
    transferred_by: str | None = None
    transferred_to: str | None = None
    picked_up_by: str | None = None
    talks: tuple[Talk, ...] = ()
    merged_into: str | None = None

    @property
    def connected(self) -> bool:
        return self.outcome in (CallOutcome.ANSWERED, CallOutcome.FAX)

    @property
    def missed(self) -> bool:
        return self.direction == CallDirection.IN and self.outcome in MISSED_OUTCOMES

    def talk_by_party(self) -> list[tuple[str, float]]:
        """Each party's total talk time, in the order they first talked."""
        totals: dict[str, float] = {}
        for talk in self.talks:
            totals[talk.party] = round(totals.get(talk.party, 0.0) + (talk.seconds or 0.0), 3)
        return list(totals.items())
