"""Which missed calls a finished call handles: the duty room's 回拨 rule, as data in, decisions out.

A missed inbound call stays open until the duty room has spoken to the caller:

* an outbound call from a duty extension to the caller's number within
  ``callback_window_hours`` after the missed call is a callback. Every attempt is
  recorded on the missed call (the latest one: when, by whom, connected or not), but
  only a *connected* callback closes it. An unconnected attempt never overwrites a
  connected one, because a connected one has already closed the call;
* a later *answered* inbound call from the same number within the window closes it
  too (the caller got through), without counting as a callback.

One callback or answered call closes every open missed call from that number in the
window: the caller rang three times, one conversation settles all three. A withheld
caller cannot be matched and stays open for the duty room to judge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.calls.tracker import CallRecord
from storage.states import CallDirection, CallOutcome


@dataclass(frozen=True)
class OpenMissed:
    """A missed call not yet closed, as the matcher needs to see it."""

    call_id: int
    caller: str
    arrived_at: datetime


@dataclass(frozen=True)
class Closure:
    """What a finished call changes on one missed call, and why."""

    missed_call_id: int
    closed_by_call_id: int | None
    called_back_at: datetime | None
    called_back_by: str | None
    callback_connected: bool | None
    reason: str


def closures(call: CallRecord, call_id: int, open_missed: Iterable[OpenMissed],
             window: timedelta) -> list[Closure]:
    """The effect of the finished ``call`` (stored as ``call_id``) on the open missed calls."""
    if not call.complete or call.arrived_at is None:
        return []
    if call.direction == CallDirection.OUT and call.dialed:
        return [_callback(call, call_id, m) for m in _candidates(call.dialed, call.arrived_at, open_missed, window)]
    if call.direction == CallDirection.IN and call.outcome == CallOutcome.ANSWERED and not call.caller_withheld:
        return [_got_through(call, call_id, m)
                for m in _candidates(call.caller, call.arrived_at, open_missed, window)]
    return []


def _candidates(number: str, at: datetime, open_missed: Iterable[OpenMissed],
                window: timedelta) -> list[OpenMissed]:
    return [m for m in open_missed if m.caller == number and m.arrived_at < at <= m.arrived_at + window]


def _callback(call: CallRecord, call_id: int, missed: OpenMissed) -> Closure:
    connected = call.outcome == CallOutcome.ANSWERED
    return Closure(
        missed_call_id=missed.call_id,
        closed_by_call_id=call_id if connected else None,
        called_back_at=call.arrived_at,
        called_back_by=call.caller,
        callback_connected=connected,
        reason=f"callback from {call.caller} to {call.dialed}: {'connected' if connected else 'not connected'}",
    )


def _got_through(call: CallRecord, call_id: int, missed: OpenMissed) -> Closure:
    return Closure(
        missed_call_id=missed.call_id,
        closed_by_call_id=call_id,
        called_back_at=None,
        called_back_by=None,
        callback_connected=None,
        reason=f"the caller got through later (answered by {call.answered_by})",
    )
