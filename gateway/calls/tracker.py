"""Calls rebuilt from AMI events: one record per logical call (one ``Linkedid``).

A pure state machine. ``feed`` takes one AMI message at a time and returns the
records it changed; sockets and the database live elsewhere. Each ring-group leg is
its own channel, but all of a call's channels share the originating channel's
``Linkedid``, and that originating channel (``Uniqueid == Linkedid``) says what the
call is: a trunk channel whose ``Exten`` is a duty (or fax) number is inbound, a duty
phone's channel is outbound, anything else (the gateway's own paging Originates, other
PBX traffic) is not ours and is ignored without keeping state.

Ringing is counted in China's cadence from the moment the trunk channel appears, which
is what the caller hears: ring N starts at ``cadence * (N - 1)`` seconds.

Attaching mid-call, losing the connection and a PBX restart are all expected: a call
first met mid-way is recorded with its arrival estimated from the Linkedid (the PBX's
creation epoch) and says so in ``note``; a call in flight when the connection drops or
the PBX shuts down comes out as ``unknown``, never silently absent.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway.ami.message import AmiMessage
from gateway.calls.numbers import clean_name, normalise, normalise_number
from gateway.calls.rings import rings_heard
from gateway.clock import local_iso, utc_from_epoch
from gateway.config import DutyConfig

OUTCOMES = ("answered", "missed_abandoned", "missed_no_answer", "missed_busy", "failed", "fax", "unknown")
MISSED_OUTCOMES = ("missed_abandoned", "missed_no_answer", "missed_busy", "failed")
PBX = "pbx"
"""``answered_by`` when the PBX itself answered (the fax line's ``Answer()``)."""

_DIAL_OUTCOMES = {
    "CANCEL": "missed_abandoned",
    "NOANSWER": "missed_no_answer",
    "BUSY": "missed_busy",
}
_STATUS_PRIORITY = ("CANCEL", "NOANSWER", "BUSY", "CONGESTION", "CHANUNAVAIL")
"""When several legs ended differently, the caller's experience is the first of these."""
_SHUTDOWN_SOFTHANGUP = "4"
"""``SoftHangupRequest`` cause 4 is AST_SOFTHANGUP_SHUTDOWN: the PBX is stopping."""
_STALE_AFTER = timedelta(hours=6)
_DURATION = re.compile(r"(\d+):(\d{1,2}):(\d{1,2})")


@dataclass(frozen=True)
class CallRecord:
    """What is known of one call; the last one for a call has ``complete=True``.

    For an outbound call ``caller`` is the duty extension that dialed, ``dialed`` the
    number called and ``answered_by`` that number when the callee picked up.
    """

    linkedid: str
    direction: str
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
    outcome: str | None
    time_source: str
    complete: bool
    note: str | None = None

    @property
    def connected(self) -> bool:
        return self.outcome in ("answered", "fax")

    @property
    def missed(self) -> bool:
        return self.direction == "in" and self.outcome in MISSED_OUTCOMES


@dataclass
class _Call:
    """Mutable state of one call in flight; private to the tracker."""

    linkedid: str
    direction: str
    caller: str
    caller_withheld: bool
    caller_name: str | None
    dialed: str | None
    arrived_at: datetime | None
    last_seen: datetime | None
    ringing_at: datetime | None = None
    answered: bool = False
    answered_at: datetime | None = None
    answered_by: str | None = None
    ended_at: datetime | None = None
    hangup_cause: int | None = None
    dialing: bool = False
    dial_status: str | None = None
    leg_statuses: list[str] = field(default_factory=list)
    busy_signal: bool = False
    fax_received: bool = False
    forced_unknown: bool = False
    complete: bool = False
    time_source: str = "pbx"
    notes: list[str] = field(default_factory=list)
    emitted: tuple[object, ...] | None = None


class _RecentSet:
    """Linkedids recently finished: their stragglers (a leg's late Hangup) are ignored.
    Bounded, so memory stays flat however long the gateway runs."""

    def __init__(self, size: int) -> None:
        self._items: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def add(self, key: str) -> None:
        self._items[key] = None
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)


class CallTracker:
    def __init__(self, duty: DutyConfig, *, remember: int = 2048, keep_lost: int = 256) -> None:
        self._duty_numbers = {normalise_number(n) for n in duty.numbers}
        self._fax_numbers = {normalise_number(n) for n in duty.fax_numbers}
        self._extensions = set(duty.extensions)
        self._cadence = duty.ring_cadence_seconds
        self._within = duty.answer_within_rings
        self._calls: dict[str, _Call] = {}
        self._lost: OrderedDict[str, _Call] = OrderedDict()
        self._keep_lost = keep_lost
        self._done = _RecentSet(remember)
        self._last_time: datetime | None = None

    # ----------------------------------------------------------------- public API

    def feed(self, message: AmiMessage) -> list[CallRecord]:
        """One AMI message in; the records of the calls it changed out."""
        at = self._time_of(message)
        if message.event == "Shutdown":
            return self._end_all(at, "PBX shut down or restarted during the call")
        if message.event == "CoreShowChannel":
            return []  # a snapshot: ``rebuild`` reads those
        linkedid = message.get("Linkedid") or message.get("DestLinkedid")
        if not linkedid or at is None:
            return []
        records = self._sweep(at) if message.event == "Newchannel" else []
        call = self._call_for(linkedid, message, at)
        if call is None:
            return records
        call.last_seen = at
        if message.time_source != "pbx":
            call.time_source = "received"
        handler = _HANDLERS.get(message.event or "")
        if handler is not None:
            handler(self, call, message, at)
        return records + self._emit(call)

    def connection_lost(self, at: datetime) -> list[CallRecord]:
        """The AMI connection dropped: every call in flight is recorded as ``unknown``.

        They are kept (bounded) so that a later ``rebuild`` or their own events can
        reconcile them if the PBX carried them through the gap.
        """
        records = []
        for call in list(self._calls.values()):
            call.last_seen = max(call.last_seen or at, at)
            call.notes.append(f"AMI connection lost at {local_iso(at)}; the end of the call was not seen")
            records.extend(self._give_up(call, keep=True))
        return records

    def rebuild(self, channels: list[AmiMessage], at: datetime | None) -> list[CallRecord]:
        """After a (re)connect, take the PBX's ``CoreShowChannel`` list as the truth.

        Calls it shows that the tracker lost or never saw are (re)created with what the
        snapshot tells (state, age); calls it no longer shows ended during the gap.
        """
        at = at or next((c.time for c in channels if c.time), None) or self._last_time
        if at is None:
            return []
        groups: dict[str, list[AmiMessage]] = {}
        for channel in channels:
            linkedid = channel.get("Linkedid") or channel.get("Uniqueid")
            if linkedid and channel.event in (None, "CoreShowChannel"):
                groups.setdefault(linkedid, []).append(channel)
        records: list[CallRecord] = []
        for linkedid, group in groups.items():
            call = self._revive(linkedid, group, at)
            if call is not None:
                _apply_snapshot(self, call, group, at)
                records.extend(self._emit(call))
        records.extend(self._forget_unseen(set(groups), at))
        return records

    @property
    def in_flight(self) -> int:
        return len(self._calls)

    @property
    def remembered(self) -> int:
        """Finished or lost calls still remembered (bounded: memory stays flat)."""
        return len(self._done) + len(self._lost)

    # ---------------------------------------------------------- finding the call

    def _time_of(self, message: AmiMessage) -> datetime | None:
        at = message.time or self._last_time
        if at is not None and (self._last_time is None or at > self._last_time):
            self._last_time = at
        return at

    def _call_for(self, linkedid: str, message: AmiMessage, at: datetime) -> _Call | None:
        call = self._calls.get(linkedid)
        if call is not None:
            return call
        call = self._lost.pop(linkedid, None)
        if call is not None:
            return self._reconciled(call, "events resumed after the AMI gap")
        if linkedid in self._done or message.get("Uniqueid") != linkedid:
            return None
        if message.event == "Hangup":
            self._done.add(linkedid)  # met only at its end: nothing to tell
            return None
        call = self._classify(linkedid, message)
        if call is None:
            return None
        if message.event == "Newchannel":
            call.arrived_at = at
        else:
            call.arrived_at = _epoch_of(linkedid, at)
            call.notes.append("joined mid-call: arrival estimated from the PBX call id")
        self._calls[linkedid] = call
        return call

    def _classify(self, linkedid: str, origin: AmiMessage) -> _Call | None:
        """Inbound on a duty or fax number, outbound from a duty phone, else not ours."""
        exten = normalise_number(origin.get("Exten"))
        extension = self._extension_of(origin.get("Channel"), origin.get("CallerIDNum"))
        number = normalise(origin.get("CallerIDNum"))
        if extension is None and exten in self._duty_numbers | self._fax_numbers:
            return _Call(linkedid, "in", number.number, number.withheld,
                         clean_name(origin.get("CallerIDName")), exten, None, None)
        if extension is not None:
            dialed = exten if (origin.get("Exten") or "s") != "s" else None
            return _Call(linkedid, "out", extension, False,
                         clean_name(origin.get("CallerIDName")), dialed, None, None)
        return None

    def _extension_of(self, channel: str | None, number: str | None) -> str | None:
        """The duty extension a channel belongs to (``PJSIP/8001-0000001`` → ``8001``)."""
        resource = (channel or "").partition("/")[2].rpartition("-")[0]
        if resource in self._extensions:
            return resource
        return number if number in self._extensions else None

    def _revive(self, linkedid: str, group: list[AmiMessage], at: datetime) -> _Call | None:
        call = self._calls.get(linkedid)
        if call is not None:
            return call
        call = self._lost.pop(linkedid, None)
        if call is not None:
            return self._reconciled(call, "still up after the AMI gap (CoreShowChannels)")
        origin = next((c for c in group if c.get("Uniqueid") == linkedid), None)
        if origin is None or linkedid in self._done:
            return None
        call = self._classify(linkedid, origin)
        if call is None:
            return None
        call.arrived_at = at - _duration(origin.get("Duration"))
        call.time_source = "received"
        call.notes.append("rebuilt from CoreShowChannels after (re)connect; times are estimates")
        self._calls[linkedid] = call
        return call

    def _reconciled(self, call: _Call, why: str) -> _Call:
        call.forced_unknown = False
        call.complete = False
        call.notes.append(f"reconciled: {why}")
        self._calls[call.linkedid] = call
        return call

    # ----------------------------------------------------------- ending calls

    def _finish(self, call: _Call, at: datetime, cause: int | None) -> None:
        call.ended_at = at
        call.hangup_cause = cause
        call.complete = True

    def _give_up(self, call: _Call, *, keep: bool) -> list[CallRecord]:
        """End a call whose real end we cannot see: ``unknown`` (kept for reconciling)."""
        call.forced_unknown = True
        call.complete = True
        records = self._emit(call)
        if keep:
            self._lost[call.linkedid] = call
            while len(self._lost) > self._keep_lost:
                self._done.add(self._lost.popitem(last=False)[0])
        return records

    def _end_all(self, at: datetime | None, why: str) -> list[CallRecord]:
        records = []
        for call in list(self._calls.values()):
            if at is not None:
                call.ended_at = at
            call.notes.append(why)
            records.extend(self._give_up(call, keep=False))
        return records

    def _forget_unseen(self, shown: set[str], at: datetime) -> list[CallRecord]:
        for linkedid in [k for k in self._lost if k not in shown]:
            del self._lost[linkedid]
            self._done.add(linkedid)
        records = []
        for call in [c for c in self._calls.values() if c.linkedid not in shown]:
            if call.last_seen is None or call.last_seen < at:
                call.notes.append("gone from the PBX's channel list after a reconnect; end not seen")
                records.extend(self._give_up(call, keep=False))
        return records

    def _sweep(self, now: datetime) -> list[CallRecord]:
        """Calls silent far longer than any real call lost their end events: give them up."""
        records = []
        for call in [c for c in self._calls.values() if c.last_seen and now - c.last_seen > _STALE_AFTER]:
            call.notes.append("no events for hours; end not seen")
            records.extend(self._give_up(call, keep=False))
        return records

    # -------------------------------------------------------------- snapshots

    def _emit(self, call: _Call) -> list[CallRecord]:
        """A record when the call's story moved on (seen, ringing, answered, ended)."""
        record = self._snapshot(call)
        milestone = (record.ringing_at is not None, call.answered, record.outcome,
                     record.complete, record.note, record.dialed, record.caller)
        if call.complete:
            self._calls.pop(call.linkedid, None)
            self._done.add(call.linkedid)
        if milestone == call.emitted:
            return []
        call.emitted = milestone
        return [record]

    def _snapshot(self, call: _Call) -> CallRecord:
        ring_end = call.answered_at if call.answered else (call.ended_at or call.last_seen)
        ring_seconds = _seconds(call.arrived_at, ring_end)
        if call.answered and call.answered_at is None:
            ring_seconds = None
        rings = None if ring_seconds is None else rings_heard(ring_seconds, self._cadence)
        outcome = _outcome(call, self._fax_numbers)
        return CallRecord(
            linkedid=call.linkedid,
            direction=call.direction,
            caller=call.caller,
            caller_name=call.caller_name,
            caller_withheld=call.caller_withheld,
            dialed=call.dialed,
            arrived_at=call.arrived_at,
            ringing_at=call.ringing_at,
            answered_at=call.answered_at,
            answered_by=call.answered_by,
            ended_at=call.ended_at,
            ring_seconds=None if ring_seconds is None else round(ring_seconds, 3),
            rings=rings,
            rule_met=self._rule_met(call, outcome, rings),
            talk_seconds=_seconds(call.answered_at, call.ended_at),
            hangup_cause=call.hangup_cause,
            outcome=outcome,
            time_source=call.time_source,
            complete=call.complete,
            note="; ".join(call.notes) or None,
        )

    def _rule_met(self, call: _Call, outcome: str | None, rings: int | None) -> bool | None:
        """Answered within the allowed rings; only meaningful for inbound calls."""
        if call.direction != "in" or rings is None:
            return None
        if outcome in ("answered", "fax"):
            return rings <= self._within
        if outcome in MISSED_OUTCOMES or rings > self._within:
            return False
        return None  # unknown or still ringing within the rule


# ------------------------------------------------------------------ event handlers
#
# One table maps event names to what they change, as in cacofonisk. Each handler gets
# the call the event belongs to; ``_is_origin`` tells the call's own channel from a leg.

Handler = Callable[[CallTracker, _Call, AmiMessage, datetime], None]


def _is_origin(call: _Call, message: AmiMessage) -> bool:
    return message.get("Uniqueid") == call.linkedid


def _on_newexten(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    if not _is_origin(call, message):
        return
    application = message.get("Application")
    if application == "Dial":
        call.dialing = True
    elif application == "ReceiveFAX":
        call.fax_received = True


def _on_newcallerid(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    number = normalise(message.get("CallerIDNum"))
    if _is_origin(call, message) and call.direction == "in":
        call.caller, call.caller_withheld = number.number, number.withheld
        call.caller_name = clean_name(message.get("CallerIDName")) or call.caller_name
    elif call.direction == "out" and not number.withheld and not _is_extension(tracker, message):
        call.dialed = number.number  # the trunk leg shows the number actually dialed


def _is_extension(tracker: CallTracker, message: AmiMessage) -> bool:
    return tracker._extension_of(message.get("Channel"), message.get("CallerIDNum")) is not None


def _on_dial_begin(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    call.dialing = True
    if call.direction != "out":
        return
    dest = normalise(message.get("DestCallerIDNum"))
    if not dest.withheld and tracker._extension_of(message.get("DestChannel"), None) is None:
        call.dialed = dest.number


def _on_dial_state(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    if message.get("DialStatus") in ("RINGING", "PROGRESS"):
        call.ringing_at = call.ringing_at or at


def _on_dial_end(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    status = message.get("DialStatus") or ""
    if status == "ANSWER":
        by = tracker._extension_of(message.get("DestChannel"), message.get("DestCallerIDNum"))
        _answer(call, at, by)
    elif status:
        call.leg_statuses.append(status)


def _on_newstate(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    state = message.get("ChannelStateDesc")
    origin = _is_origin(call, message)
    if state == "Ringing" and not origin:
        call.ringing_at = call.ringing_at or at
    elif state == "Busy" and origin:
        call.busy_signal = True
    elif state == "Up" and origin and not call.answered:
        if call.dialing:  # a Dial answered, but its DialEnd was not seen
            by = tracker._extension_of(None, message.get("ConnectedLineNum"))
            _answer(call, at, by)
            call.notes.append("answer taken from the channel state (DialEnd not seen)")
        elif call.direction == "in":
            _answer(call, at, PBX)


def _on_bridge_enter(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    if call.answered or _is_origin(call, message):
        return
    _answer(call, at, tracker._extension_of(message.get("Channel"), message.get("CallerIDNum")))
    call.notes.append("answer taken from the bridge (DialEnd not seen)")


def _on_varset(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    if _is_origin(call, message) and message.get("Variable") == "DIALSTATUS" and message.get("Value"):
        call.dial_status = message.get("Value")


def _on_soft_hangup(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    if message.get("Cause") == _SHUTDOWN_SOFTHANGUP and not call.forced_unknown:
        call.forced_unknown = True
        call.notes.append("PBX shut down or restarted during the call")


def _on_receive_fax(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    call.fax_received = True


def _on_hangup(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    if _is_origin(call, message):
        tracker._finish(call, at, _int(message.get("Cause")))


_HANDLERS: dict[str, Handler] = {
    "Newexten": _on_newexten,
    "NewCallerid": _on_newcallerid,
    "DialBegin": _on_dial_begin,
    "DialState": _on_dial_state,
    "DialEnd": _on_dial_end,
    "Newstate": _on_newstate,
    "BridgeEnter": _on_bridge_enter,
    "VarSet": _on_varset,
    "SoftHangupRequest": _on_soft_hangup,
    "ReceiveFAX": _on_receive_fax,
    "Hangup": _on_hangup,
}
SUBSCRIBED_EVENTS = frozenset(_HANDLERS) | {"Newchannel", "Shutdown", "CoreShowChannel"}
"""Events the tracker reads (for an AMI event filter, if one is used)."""


def _answer(call: _Call, at: datetime | None, by: str | None) -> None:
    call.answered = True
    call.answered_at = call.answered_at or at
    call.answered_by = call.dialed if call.direction == "out" else by


def _apply_snapshot(tracker: CallTracker, call: _Call, group: Iterable[AmiMessage], at: datetime) -> None:
    """What a ``CoreShowChannel`` list says about a call: dialing, ringing, answered."""
    call.last_seen = at
    for channel in group:
        state = channel.get("ChannelStateDesc")
        if _is_origin(call, channel):
            call.dialing = call.dialing or channel.get("Application") == "Dial"
            if state == "Up" and not call.answered and not call.dialing and call.direction == "in":
                _answer(call, None, PBX)
        elif state == "Ringing":
            call.ringing_at = call.ringing_at or at
        elif state == "Up" and not call.answered:
            _answer(call, None, tracker._extension_of(channel.get("Channel"), channel.get("CallerIDNum")))
            call.notes.append("answered during the gap; answer time unknown")


def _outcome(call: _Call, fax_numbers: set[str]) -> str | None:
    if call.forced_unknown:
        return "unknown"
    if call.answered:
        on_fax_line = call.answered_by == PBX and call.dialed in fax_numbers
        return "fax" if call.fax_received or on_fax_line else "answered"
    if not call.complete:
        return None
    if call.busy_signal:
        return "missed_busy"
    status = call.dial_status or _worst(call.leg_statuses)
    if status is None:
        return "missed_abandoned"  # hung up before the phones were dialed
    return _DIAL_OUTCOMES.get(status, "failed")


def _worst(statuses: list[str]) -> str | None:
    for status in _STATUS_PRIORITY:
        if status in statuses:
            return status
    return statuses[0] if statuses else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max(0.0, (end - start).total_seconds()), 3)


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _epoch_of(linkedid: str, at: datetime) -> datetime:
    """Asterisk's ids are ``[system-]epoch.counter``: the call's creation second.
    Used only when it is plausible (not after ``at``, not a day before)."""
    try:
        created = utc_from_epoch(float(linkedid.rpartition("-")[2].partition(".")[0]))
    except (ValueError, OverflowError, OSError):
        return at
    return created if timedelta(0) <= at - created <= timedelta(days=1) else at


def _duration(text: str | None) -> timedelta:
    match = _DURATION.fullmatch((text or "").strip())
    if match is None:
        return timedelta(0)
    hours, minutes, seconds = (int(g) for g in match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)
