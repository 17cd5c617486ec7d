"""Calls rebuilt from AMI events: one record per logical call.

A pure state machine. ``feed`` takes one AMI message at a time (its time is the PBX's
``Timestamp``, or when it was received) and returns the records it changed; sockets and
the database live elsewhere. A call starts at its originating channel (``Uniqueid ==
Linkedid``), which says what it is: a trunk channel whose ``Exten`` is a duty (or fax)
number is inbound, a duty phone's channel is outbound, anything else (the gateway's own
paging Originates, other PBX traffic) is not ours.

The call then follows channels, not only the ``Linkedid`` header (``channels.py``): the
legs it dials, Local ``;1``/``;2`` pairs, bridges (with Local optimisation's swaps),
``Pickup``, ``BlindTransfer``/``AttendedTransfer``, masquerades, and a channel whose
``Linkedid`` changes when it joins the caller's bridge. Calls found to share channels are
one call, as mature call-log generators merge Linkedid groups: a duty phone's consultation
call during a call, or the call a phone made to pick up a ringing leg, folds into the
caller's call (a record already shown for it is withdrawn with ``merged_into``). An
outbound call is shown only once it dials, so a feature code never becomes a call.

The record says who answered first (the 3-ring rule) and when, who the caller talked to
and for how long (``talks``), and the transfer or pickup. Ringing is counted in China's
cadence from the moment the trunk channel appears, which is what the caller hears: ring
N starts at ``cadence * (N - 1)`` seconds.

Attaching mid-call, losing the connection and a PBX restart are all expected: a call
first met mid-way is recorded with its arrival estimated from the Linkedid (the PBX's
creation epoch) and says so in ``note``; a call in flight when the connection drops or
the PBX shuts down comes out as ``unknown``, never silently absent.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from gateway.ami.message import AmiMessage
from gateway.calls.channels import Channel, Phones, Topology
from gateway.calls.numbers import clean_name, normalise, normalise_number
from gateway.calls.records import MISSED_OUTCOMES, OUTCOMES, PBX, CallRecord, Talk
from gateway.calls.rings import rings_heard
from gateway.clock import local_iso, utc_from_epoch
from gateway.config import DutyConfig
from storage.states import CallDirection, CallOutcome

_DIAL_OUTCOMES = {
    "CANCEL": CallOutcome.MISSED_ABANDONED,
    "NOANSWER": CallOutcome.MISSED_NO_ANSWER,
    "BUSY": CallOutcome.MISSED_BUSY,
}
_STATUS_PRIORITY = ("CANCEL", "NOANSWER", "BUSY", "CONGESTION", "CHANUNAVAIL")
"""When several legs ended differently, the caller's experience is the first of these."""
_SHUTDOWN_SOFTHANGUP = "4"
"""``SoftHangupRequest`` cause 4 is AST_SOFTHANGUP_SHUTDOWN: the PBX is stopping."""
_STALE_AFTER = timedelta(hours=6)
__all__ = ["MISSED_OUTCOMES", "OUTCOMES", "PBX", "SUBSCRIBED_EVENTS", "CallRecord", "CallTracker", "Talk"]
_DURATION = re.compile(r"(\d+):(\d{1,2}):(\d{1,2})")


@dataclass
class _Call:
    """Mutable state of one call in flight; private to the tracker."""

    linkedid: str
    direction: CallDirection
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
    application: str | None = None
    """The dialplan application the caller's channel runs (Dial, Queue)."""
    dial_status: str | None = None
    queue_status: str | None = None
    leg_statuses: list[str] = field(default_factory=list)
    busy_signal: bool = False
    fax_received: bool = False
    forced_unknown: bool = False
    complete: bool = False
    held: bool = False
    """An outbound call not shown yet: it has not dialed (a feature code, a pickup)."""
    connected_to: str | None = None
    answer_dest: str | None = None
    """The channel named by the caller's first answered Dial (kept for a last guess)."""
    """Uniqueid that answered the caller's own last Dial (until the caller joins a bridge)."""
    talks: list[list[object]] = field(default_factory=list)
    """``[party, start, end]`` stretches; the last one open while the caller talks."""
    transferred_by: str | None = None
    transferred_to: str | None = None
    transfer_at: datetime | None = None
    picked_up_by: str | None = None
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


_UNIQUEID_HEADERS = (
    "Uniqueid", "DestUniqueid", "TargetUniqueid", "TransfereeUniqueid", "TransfererUniqueid",
    "OrigTransfererUniqueid", "SecondTransfererUniqueid", "TransferTargetUniqueid",
    "LocalOneUniqueid", "LocalTwoUniqueid",
)
_LINKEDID_HEADERS = ("Linkedid", "DestLinkedid", "TargetLinkedid", "TransfereeLinkedid")
_MIN_DID_DIGITS = 7
"""A trunk ``Exten`` this long that ends a duty number (or that it ends) is that number."""
_SAME_PARTY_GAP = timedelta(seconds=1)
"""A party back within this long (a Local optimisation's swap) continues its stretch."""


class CallTracker:
    def __init__(self, duty: DutyConfig, *, remember: int = 2048, keep_lost: int = 256) -> None:
        self._duty_numbers = {normalise_number(n) for n in duty.numbers}
        self._fax_numbers = {normalise_number(n) for n in duty.fax_numbers}
        self.phones = Phones(duty)
        self.topology = Topology()
        self._cadence = duty.ring_cadence_seconds
        self._within = duty.answer_within_rings
        self._calls: dict[str, _Call] = {}
        self._aliases: OrderedDict[str, str] = OrderedDict()
        self._lost: OrderedDict[str, _Call] = OrderedDict()
        self._keep_lost = keep_lost
        self._remember = remember
        self._done = _RecentSet(remember)
        self._last_time: datetime | None = None
        self._withdrawn: list[CallRecord] = []
        self._orphans: OrderedDict[str, None] = OrderedDict()
        self._unclassified: OrderedDict[str, datetime] = OrderedDict()
        self._touched: list[_Call] = []

    # ----------------------------------------------------------------- public API

    def feed(self, message: AmiMessage) -> list[CallRecord]:
        """One AMI message in; the records of the calls it changed out."""
        at = self._time_of(message)
        if message.event == "Shutdown":
            return self._end_all(at, "PBX shut down or restarted during the call")
        if message.event == "CoreShowChannel" or at is None:
            return []  # a snapshot: ``rebuild`` reads those
        records = self._sweep(at) if message.event == "Newchannel" else []
        call = self._route(message, at)
        if call is None:
            self._follow_orphan(message)
            return records
        call.last_seen = at
        if message.time_source != "pbx":
            call.time_source = "received"
        self._touched = [call]
        handler = _HANDLERS.get(message.event or "")
        if handler is not None:
            handler(self, call, message, at)
        for touched in {id(c): c for c in self._touched}.values():
            if touched.linkedid in self._calls or touched.complete:
                self._follow_talk(touched, at)
                records += self._emit(touched)
        withdrawn, self._withdrawn = self._withdrawn, []
        return withdrawn + records

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
                groups.setdefault(self._aliases.get(linkedid, linkedid), []).append(channel)
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

    def _route(self, message: AmiMessage, at: datetime) -> _Call | None:
        """The call an event belongs to: by a channel already followed, else by Linkedid."""
        call = self._by_channel(message) or self._by_linkedid(message)
        if call is None:
            linkedid = message.get("Linkedid") or message.get("DestLinkedid")
            if not linkedid:
                return None
            call = self._call_for(linkedid, message, at)
            if call is None:
                return None
        self._adopt(call, message)
        channel = self.topology.channels.get(message.get("Uniqueid") or "")
        if channel is not None and channel.call in self._calls:
            return self._calls[channel.call]  # the call it turned out to be part of
        return self._calls.get(call.linkedid, call)

    def _by_channel(self, message: AmiMessage) -> _Call | None:
        for header in _UNIQUEID_HEADERS:
            channel = self.topology.channels.get(message.get(header) or "")
            if channel is not None and channel.call in self._calls:
                return self._calls[channel.call]
        return None

    def _by_linkedid(self, message: AmiMessage) -> _Call | None:
        for header in _LINKEDID_HEADERS:
            linkedid = message.get(header)
            if linkedid:
                call = self._calls.get(self._aliases.get(linkedid, linkedid))
                if call is not None:
                    return call
        return None

    def _adopt(self, call: _Call, message: AmiMessage) -> None:
        """Follow the event's channel as part of ``call``; a channel whose Linkedid moved
        to another call in flight (it joined that call's bridge) goes with it."""
        uniqueid = message.get("Uniqueid")
        if not uniqueid or message.event in ("Pickup", "AttendedTransfer", "BlindTransfer"):
            return
        channel = self.topology.ensure(uniqueid, message.get("Channel"), call.linkedid)
        if message.event == "Newchannel":
            channel.caller_num = _number_or_none(message.get("CallerIDNum"))
        if message.get("CallerIDNum") and message.get("Channel") == channel.name:
            channel.cid_num = _number_or_none(message.get("CallerIDNum"))
        linkedid = message.get("Linkedid") or ""
        other = self._calls.get(self._aliases.get(linkedid, linkedid))
        if other is not None and other is not self._calls.get(channel.call):
            self._join(self._calls.get(channel.call), other, channel, "its Linkedid changed")

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
            if message.event == "Newchannel":  # its Exten may name the duty number later
                self._unclassified[linkedid] = at
                while len(self._unclassified) > self._remember:
                    self._unclassified.popitem(last=False)
            return None
        first_seen = self._unclassified.pop(linkedid, None)
        if message.event == "Newchannel" or first_seen is not None:
            call.arrived_at = first_seen or at
        else:
            call.held = False  # its start was not seen: show it, whatever it was
            call.arrived_at = _epoch_of(linkedid, at)
            call.notes.append("joined mid-call: arrival estimated from the PBX call id")
        self._calls[linkedid] = call
        return call

    def _classify(self, linkedid: str, origin: AmiMessage) -> _Call | None:
        """Inbound on a duty or fax number, outbound from a duty phone, else not ours."""
        exten = self._line_number(normalise_number(origin.get("Exten")))
        extension = self.phones.duty_extension(origin.get("Channel"), origin.get("CallerIDNum"))
        number = normalise(origin.get("CallerIDNum"))
        if extension is None and exten in self._duty_numbers | self._fax_numbers:
            return _Call(linkedid, CallDirection.IN, number.number, number.withheld,
                         clean_name(origin.get("CallerIDName")), exten, None, None)
        if extension is not None:
            dialed = exten if (origin.get("Exten") or "s") != "s" else None
            return _Call(linkedid, CallDirection.OUT, extension, False,
                         clean_name(origin.get("CallerIDName")), dialed, None, None, held=True)
        return None

    def _line_number(self, exten: str) -> str:
        """The configured duty or fax number a trunk's ``Exten`` is: carriers send the DID
        with or without the area code (``87654321`` for ``02787654321``)."""
        for number in self._duty_numbers | self._fax_numbers:
            shorter, longer = sorted((exten, number), key=len)
            if len(shorter) >= _MIN_DID_DIGITS and longer.endswith(shorter):
                return number
        return exten

    def _extension_of(self, channel: str | None, number: str | None) -> str | None:
        """The duty extension a channel belongs to (``PJSIP/8001-0000001`` → ``8001``)."""
        return self.phones.duty_extension(channel, number)

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
        call.held = False
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

    def _follow_orphan(self, message: AmiMessage) -> None:
        """Channels of a call not (yet) followed: keep their links (Local pairs, bridges,
        who answered whom), so a call first met mid-way still knows its far end."""
        event, uniqueid = message.event or "", message.get("Uniqueid") or ""
        linkedid = message.get("Linkedid") or message.get("LocalOneLinkedid") or ""
        if not linkedid or linkedid in self._done or event not in _ORPHAN_EVENTS:
            return
        key = self._aliases.get(linkedid, linkedid)
        if event == "Hangup":
            self._orphans.pop(uniqueid, None)
            self.topology.forget(uniqueid)
            return
        if uniqueid:
            self.topology.ensure(uniqueid, message.get("Channel"), key)
            self._orphans[uniqueid] = None
        orphan = _Call(key, CallDirection.IN, "", False, None, None, None, None)
        _ORPHAN_EVENTS[event](self, orphan, message, message.time or datetime.min)
        for header in ("DestUniqueid", "LocalOneUniqueid", "LocalTwoUniqueid"):
            channel = self.topology.channels.get(message.get(header) or "")
            if channel is not None and channel.call not in self._calls:
                self._orphans[channel.uniqueid] = None
        while len(self._orphans) > self._remember:
            oldest = self.topology.channels.get(self._orphans.popitem(last=False)[0])
            if oldest is not None and oldest.call not in self._calls:
                self.topology.forget(oldest.uniqueid)

    # ------------------------------------------------- calls that are one call

    def _join(self, mine: _Call | None, other: _Call, channel: Channel, why: str) -> None:
        """``channel`` (of call ``mine``) turned out to be part of ``other``."""
        if mine is None or mine is other:
            channel.call = other.linkedid
            return
        if mine.direction == CallDirection.OUT and other.direction == CallDirection.IN:
            self._absorb(mine, other, why)
        elif other.direction == CallDirection.OUT and mine.direction == CallDirection.IN:
            self._absorb(other, mine, why)
        else:
            channel.call = other.linkedid

    def _absorb(self, part: _Call, whole: _Call, why: str) -> None:
        """``part`` (a consultation, a pickup's own leg) is no call of its own: fold it in."""
        if part is whole or part.linkedid not in self._calls:
            return
        self.topology.move_call(part.linkedid, whole.linkedid)
        self._aliases[part.linkedid] = whole.linkedid
        while len(self._aliases) > self._remember:
            self._aliases.popitem(last=False)
        del self._calls[part.linkedid]
        self._done.add(part.linkedid)
        if part.emitted is not None:
            self._withdrawn.append(_replace_merged(self._snapshot(part), whole.linkedid, why))
        self._touched.append(whole)

    def _call_of(self, uniqueid: str | None) -> _Call | None:
        channel = self.topology.channels.get(uniqueid or "")
        return None if channel is None else self._calls.get(channel.call)

    def _consulted_call(self, extension: str) -> _Call | None:
        """The answered inbound call in which ``extension`` is a party right now."""
        for call in self._calls.values():
            if call.direction != CallDirection.IN or not call.answered or call.complete:
                continue
            for channel in self.topology.of_call(call.linkedid):
                if not channel.hung_up and not channel.is_local and self.phones.party(channel) == extension:
                    return call
        return None

    # ----------------------------------------------------------- ending calls

    def _finish(self, call: _Call, at: datetime, cause: int | None) -> None:
        call.ended_at = at
        call.hangup_cause = cause
        call.complete = True

    def _give_up(self, call: _Call, *, keep: bool) -> list[CallRecord]:
        """End a call whose real end we cannot see: ``unknown`` (kept for reconciling)."""
        call.forced_unknown = True
        call.complete = True
        self._close_talk(call, call.ended_at or call.last_seen)
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

    # ------------------------------------------------------ who the caller talks to

    def _follow_talk(self, call: _Call, at: datetime) -> None:
        """Open or close the caller's stretches of talk as the far end changes."""
        origin = self.topology.channels.get(call.linkedid)
        if call.direction != CallDirection.IN or not call.answered or call.answered_by == PBX or origin is None:
            return
        party = None if call.complete else self.topology.connected_party(origin, self.phones, call.connected_to)
        if party is not None and call.answered_by is None:
            call.answered_by = party
        current = call.talks[-1] if call.talks and call.talks[-1][2] is None else None
        if current is not None and current[0] == party:
            return
        if current is not None:
            current[2] = at
        if party is None:
            return
        last = call.talks[-1] if call.talks else None
        if last is not None and last[0] == party and isinstance(last[2], datetime) and at - last[2] < _SAME_PARTY_GAP:
            last[2] = None
        else:
            call.talks.append([party, at if call.talks else (call.answered_at or at), None])

    def _close_talk(self, call: _Call, at: datetime | None) -> None:
        if call.talks and call.talks[-1][2] is None:
            call.talks[-1][2] = at or call.talks[-1][1]

    def _party_of(self, uniqueid: str | None, number: str | None = None) -> str | None:
        channel = self.topology.channels.get(uniqueid or "")
        if channel is not None:
            party = self.topology.far_end(channel, self.phones)
            if party is not None:
                return party
        clean = normalise(number)
        return None if clean.withheld else clean.number

    # -------------------------------------------------------------- snapshots

    def _emit(self, call: _Call) -> list[CallRecord]:
        """A record when the call's story moved on (seen, ringing, answered, ended)."""
        if call.complete:
            self._close_talk(call, call.ended_at)
            self._settle_guesses(call)
            self._calls.pop(call.linkedid, None)
            self._done.add(call.linkedid)
            self.topology.drop_call(call.linkedid)
        if call.held:
            return []
        record = self._snapshot(call)
        milestone = (record.ringing_at is not None, call.answered, record.outcome,
                     record.complete, record.note, record.dialed, record.caller, record.answered_by,
                     record.final_party, record.transferred_to, record.picked_up_by)
        if milestone == call.emitted:
            return []
        call.emitted = milestone
        return [record]

    def _settle_guesses(self, call: _Call) -> None:
        """At the end, name an answerer the channels never revealed (say why in ``note``)."""
        if call.direction != CallDirection.IN or not call.answered or call.answered_by is not None:
            return
        channel = self.topology.channels.get(call.answer_dest or "")
        if channel is None:
            return
        guess = Phones.local_guess(channel) if channel.is_local else self.phones.party(channel)
        if guess is not None:
            call.answered_by = guess
            call.notes.append(f"answerer guessed from the channel {channel.name} (its far end was not seen)")

    def _snapshot(self, call: _Call) -> CallRecord:
        ring_end = call.answered_at if call.answered else (call.ended_at or call.last_seen)
        ring_seconds = _seconds(call.arrived_at, ring_end)
        if call.answered and call.answered_at is None:
            ring_seconds = None
        rings = None if ring_seconds is None else rings_heard(ring_seconds, self._cadence)
        outcome = _outcome(call, self._fax_numbers)
        talks = tuple(Talk(str(p), s, e) for p, s, e in call.talks  # type: ignore[arg-type]
                      if isinstance(s, datetime) and (e is None or isinstance(e, datetime)))
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
            note="; ".join(dict.fromkeys(call.notes)) or None,
            final_party=talks[-1].party if talks else (call.answered_by if call.answered else None),
            transferred_by=call.transferred_by,
            transferred_to=_transferred_to(call, talks),
            picked_up_by=call.picked_up_by,
            talks=talks,
        )

    def _rule_met(self, call: _Call, outcome: CallOutcome | None, rings: int | None) -> bool | None:
        """Answered within the allowed rings; only meaningful for inbound voice calls: the
        fax machine's line answered by the PBX is no duty-line call (not "within 1 ring")."""
        if call.direction != CallDirection.IN or rings is None or outcome == CallOutcome.FAX or call.dialed in self._fax_numbers:
            return None
        if outcome == CallOutcome.ANSWERED:
            return rings <= self._within
        if outcome in MISSED_OUTCOMES or rings > self._within:
            return False
        return None  # unknown or still ringing within the rule


def _replace_merged(record: CallRecord, into: str, why: str) -> CallRecord:
    return replace(record, complete=True, merged_into=into, note=why)


def _transferred_to(call: _Call, talks: tuple[Talk, ...]) -> str | None:
    """Who the caller reached through the transfer: the first party after it, else the
    transfer's own target (still ringing, or the caller hung up first)."""
    if call.transfer_at is None:
        return None
    after = [t.party for t in talks if t.start >= call.transfer_at - _SAME_PARTY_GAP
             and t.party != call.transferred_by]
    return after[0] if after else call.transferred_to


# ------------------------------------------------------------------ event handlers
#
# One table maps event names to what they change, as in cacofonisk. Each handler gets
# the call the event belongs to; ``_is_origin`` tells the caller's own channel from a leg.

Handler = Callable[[CallTracker, _Call, AmiMessage, datetime], None]


def _is_origin(call: _Call, message: AmiMessage) -> bool:
    return message.get("Uniqueid") == call.linkedid


def _on_newexten(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    if not _is_origin(call, message):
        return
    application = message.get("Application")
    if application in ("Dial", "Queue"):
        call.application = application
        _start_dialing(call)
    elif application == "ReceiveFAX":
        call.fax_received = True


def _start_dialing(call: _Call) -> None:
    """The phones are being rung; a PBX answer before that (a queue's music, an
    announcement) was no answer by anyone."""
    call.dialing = True
    if call.answered and call.answered_by == PBX and not call.fax_received:
        call.answered, call.answered_at, call.answered_by = False, None, None
        call.notes.append("the PBX answered before ringing the phones; rings count from arrival")


def _on_newcallerid(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    number = normalise(message.get("CallerIDNum"))
    if _is_origin(call, message) and call.direction == CallDirection.IN:
        call.caller, call.caller_withheld = number.number, number.withheld
        call.caller_name = clean_name(message.get("CallerIDName")) or call.caller_name
    elif call.direction == CallDirection.OUT and not number.withheld and not _is_extension(tracker, message) \
            and not (message.get("Channel") or "").startswith("Local/"):
        call.dialed = number.number  # the trunk leg shows the number actually dialed


def _is_extension(tracker: CallTracker, message: AmiMessage) -> bool:
    return tracker._extension_of(message.get("Channel"), message.get("CallerIDNum")) is not None


def _dest(tracker: CallTracker, call: _Call, message: AmiMessage) -> Channel | None:
    uniqueid = message.get("DestUniqueid")
    if not uniqueid:
        return None
    return tracker.topology.ensure(uniqueid, message.get("DestChannel"), call.linkedid)


def _on_dial_begin(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    dest = _dest(tracker, call, message)
    if dest is not None:
        dest.dial_string = message.get("DialString")
        dest.caller_num = dest.caller_num or _number_or_none(message.get("DestCallerIDNum"))
    if not _is_origin(call, message):
        return
    _start_dialing(call)
    if call.direction != CallDirection.OUT:
        return
    if call.held and _fold_consultation(tracker, call):
        return
    call.held = False
    number = normalise(message.get("DestCallerIDNum"))
    if not number.withheld and tracker._extension_of(message.get("DestChannel"), None) is None \
            and not (message.get("DestChannel") or "").startswith("Local/"):
        call.dialed = number.number


def _fold_consultation(tracker: CallTracker, call: _Call) -> bool:
    """A duty phone dialing while it is a party of an answered duty-line call is consulting
    (the first half of an attended transfer): no call of its own, never a callback."""
    inbound = tracker._consulted_call(call.caller)
    if inbound is None:
        return False
    tracker._absorb(call, inbound, f"consultation by {call.caller} during the call")
    return True


def _on_dial_state(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    if message.get("DialStatus") in ("RINGING", "PROGRESS"):
        call.ringing_at = call.ringing_at or at


def _on_dial_end(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    status = message.get("DialStatus") or ""
    dest = _dest(tracker, call, message)
    dialer = tracker.topology.channels.get(message.get("Uniqueid") or "")
    if status == "ANSWER" and dialer is not None and dest is not None:
        dialer.answered_dest = dest.uniqueid
    if not _is_origin(call, message):
        return
    if status == "ANSWER":
        call.connected_to = dest.uniqueid if dest is not None else None
        if not call.answered:
            call.answer_dest = call.connected_to
            by = _answerer(tracker, call, dest, message)
            _answer(call, at, by)
    elif status:
        call.leg_statuses.append(status)


def _answerer(tracker: CallTracker, call: _Call, dest: Channel | None, message: AmiMessage) -> str | None:
    if call.direction == CallDirection.OUT:
        return call.dialed
    if dest is None:
        return tracker._extension_of(message.get("DestChannel"), message.get("DestCallerIDNum"))
    return tracker.topology.far_end(dest, tracker.phones)


def _on_newstate(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    state = message.get("ChannelStateDesc")
    origin = _is_origin(call, message)
    if state == "Ringing" and not origin:
        call.ringing_at = call.ringing_at or at
    elif state == "Busy" and origin:
        call.busy_signal = True
    elif state == "Up" and origin and not call.answered:
        if call.application == "Queue":
            return  # Queue() answers the caller for its music; a member's answer comes later
        if call.dialing:  # a Dial answered, but its DialEnd was not seen
            by = tracker._extension_of(None, message.get("ConnectedLineNum"))
            _answer(call, at, by if call.direction == CallDirection.IN else call.dialed)
            call.notes.append("answer taken from the channel state (DialEnd not seen)")
        elif call.direction == CallDirection.IN:
            _answer(call, at, PBX)


def _on_bridge_enter(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    uniqueid, bridge = message.get("Uniqueid") or "", message.get("BridgeUniqueid") or ""
    tracker.topology.enter(uniqueid, bridge, message.get("SwapUniqueid"))
    if uniqueid in tracker.topology.channels:
        tracker.topology.channels[uniqueid].on_hold = False  # back in a bridge: talking again
    for member in tracker.topology.members(bridge) if uniqueid in tracker.topology.channels else ():
        other = tracker._calls.get(member.call)
        if other is not None and other is not call:
            tracker._join(call, other, tracker.topology.channels[uniqueid], "it joined the call's bridge")
    call = tracker._calls.get(call.linkedid) or call
    origin = tracker.topology.channels.get(call.linkedid)
    if call.answered or origin is None or origin.bridge != bridge or call.direction != CallDirection.IN:
        return
    party = tracker.topology.connected_party(origin, tracker.phones, None)
    if party is not None:
        _answer(call, at, party)
        call.notes.append("answer taken from the bridge (DialEnd not seen)")


def _on_bridge_leave(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    tracker.topology.leave(message.get("Uniqueid") or "", message.get("BridgeUniqueid"))
    if _is_origin(call, message):
        call.connected_to = None


def _on_local_bridge(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    one, two = message.get("LocalOneUniqueid") or "", message.get("LocalTwoUniqueid") or ""
    tracker.topology.ensure(one, message.get("LocalOneChannel"), call.linkedid)
    tracker.topology.ensure(two, message.get("LocalTwoChannel"), call.linkedid)
    tracker.topology.pair(one, two)


def _on_hold(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    channel = tracker.topology.channels.get(message.get("Uniqueid") or "")
    if channel is not None:
        channel.on_hold = message.event == "Hold"


def _on_rename(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    channel = tracker.topology.channels.get(message.get("Uniqueid") or "")
    if channel is not None and message.get("Newname"):
        channel.name = message.get("Newname") or channel.name
        channel.caller_num = None  # a masquerade: the name, not the old caller ID, says who it is


def _on_pickup(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    """A third phone took a ringing leg: the call is answered, by the phone that picked up."""
    target = tracker._call_of(message.get("TargetUniqueid")) or tracker._by_linkedid(
        AmiMessage.of(Linkedid=message.get("TargetLinkedid") or ""))
    if target is None:
        return
    picker = tracker.topology.ensure(message.get("Uniqueid") or "", message.get("Channel"), target.linkedid)
    picker.cid_num = _number_or_none(message.get("CallerIDNum")) or picker.cid_num
    mine = tracker._calls.get(picker.call)
    if mine is not None and mine is not target:
        tracker._absorb(mine, target, "it picked up the ringing call")
    picker.call = target.linkedid
    party = tracker.phones.party(picker)
    target.picked_up_by = party
    tracker._touched.append(target)
    if not target.answered:
        _answer(target, at, party)


def _on_blind_transfer(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    target = tracker._call_of(message.get("TransfereeUniqueid")) or call
    if message.get("Result", "Success") != "Success" or target.direction != CallDirection.IN:
        return
    target.transferred_by = tracker._party_of(message.get("TransfererUniqueid"),
                                              message.get("TransfererCallerIDNum"))
    target.transferred_to = normalise(message.get("Extension")).number if message.get("Extension") else None
    target.transfer_at = at
    tracker._touched.append(target)


def _on_attended_transfer(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    """Both halves (the call and the consultation) are one call; the caller goes on to
    the transfer target. Any ``DestType``: the far end is followed through the bridges."""
    sides = [tracker._call_of(message.get(h)) for h in _UNIQUEID_HEADERS[3:8]]
    calls = list({id(c): c for c in sides if c is not None}.values())
    inbound = next((c for c in calls if c.direction == CallDirection.IN), None)
    if inbound is None:
        return
    for other in calls:
        if other is not inbound:
            tracker._absorb(other, inbound, "attended transfer")
    if message.get("Result", "Success") != "Success":
        return
    inbound.transferred_by = tracker._party_of(message.get("OrigTransfererUniqueid"),
                                               message.get("OrigTransfererCallerIDNum"))
    inbound.transferred_to = tracker._party_of(message.get("TransferTargetUniqueid"),
                                               message.get("TransferTargetCallerIDNum"))
    inbound.transfer_at = at
    tracker._touched.append(inbound)


def _on_varset(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    if not _is_origin(call, message) or not message.get("Value"):
        return
    if message.get("Variable") == "DIALSTATUS":
        call.dial_status = message.get("Value")
    elif message.get("Variable") == "QUEUESTATUS":
        call.queue_status = _QUEUE_STATUSES.get(message.get("Value") or "", call.queue_status)


_QUEUE_STATUSES = {"TIMEOUT": "NOANSWER", "FULL": "CHANUNAVAIL", "JOINEMPTY": "CHANUNAVAIL",
                   "LEAVEEMPTY": "CHANUNAVAIL", "JOINUNAVAIL": "CHANUNAVAIL",
                   "LEAVEUNAVAIL": "CHANUNAVAIL", "CONTINUE": "NOANSWER"}
"""``QUEUESTATUS`` in Dial's words: a queue that timed out rang unanswered."""


def _on_queue_join(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    if _is_origin(call, message):
        call.application = "Queue"
        _start_dialing(call)


def _on_agent_connect(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    """A queue member took the call; the answer if its DialEnd was not seen."""
    if not _is_origin(call, message) or call.answered:
        return
    dest = _dest(tracker, call, message)
    call.connected_to = call.answer_dest = dest.uniqueid if dest is not None else None
    party = tracker.topology.far_end(dest, tracker.phones) if dest is not None else None
    _answer(call, at, party or tracker._extension_of(message.get("Interface"), message.get("DestCallerIDNum")))
    call.notes.append("answer taken from the queue's AgentConnect (DialEnd not seen)")


def _on_queue_abandon(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    if _is_origin(call, message):
        call.queue_status = "CANCEL"


def _on_soft_hangup(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    if message.get("Cause") == _SHUTDOWN_SOFTHANGUP and not call.forced_unknown:
        call.forced_unknown = True
        call.notes.append("PBX shut down or restarted during the call")


def _on_receive_fax(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    call.fax_received = True


def _on_hangup(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    tracker.topology.hang_up(message.get("Uniqueid") or "")
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
    "BridgeLeave": _on_bridge_leave,
    "LocalBridge": _on_local_bridge,
    "Hold": _on_hold,
    "Unhold": _on_hold,
    "Rename": _on_rename,
    "Pickup": _on_pickup,
    "BlindTransfer": _on_blind_transfer,
    "AttendedTransfer": _on_attended_transfer,
    "QueueCallerJoin": _on_queue_join,
    "AgentConnect": _on_agent_connect,
    "QueueCallerAbandon": _on_queue_abandon,
    "VarSet": _on_varset,
    "SoftHangupRequest": _on_soft_hangup,
    "ReceiveFAX": _on_receive_fax,
    "Hangup": _on_hangup,
}
def _on_orphan_bridge_enter(tracker: CallTracker, call: _Call, message: AmiMessage, at: datetime) -> None:
    """A channel of no followed call joins a bridge: if a followed call is there, the
    channel is now part of it (a pickup or transfer leg of a phone that is not ours)."""
    uniqueid, bridge = message.get("Uniqueid") or "", message.get("BridgeUniqueid") or ""
    tracker.topology.enter(uniqueid, bridge, message.get("SwapUniqueid"))
    channel = tracker.topology.channels.get(uniqueid)
    joined = next((tracker._calls[m.call] for m in tracker.topology.members(bridge) if m.call in tracker._calls), None)
    if channel is not None and joined is not None:
        channel.call = joined.linkedid


_ORPHAN_EVENTS: dict[str, Handler] = {
    **{name: _HANDLERS[name]
       for name in ("DialBegin", "DialEnd", "BridgeLeave", "LocalBridge", "Hold", "Unhold", "Rename")},
    "BridgeEnter": _on_orphan_bridge_enter,
}
"""What is followed of a call not tracked (yet): only who is linked to whom."""
# ``BridgeMerge`` needs no handler: Asterisk sends a BridgeLeave/BridgeEnter for every
# channel it moves (the attended-transfer capture shows it), and moving the whole source
# bridge would put the departing transferer back with the caller.
SUBSCRIBED_EVENTS = frozenset(_HANDLERS) | {
    "Newchannel", "Shutdown", "CoreShowChannel", "LocalOptimizationBegin", "LocalOptimizationEnd",
    "BridgeMerge",
    "AgentCalled", "QueueCallerLeave",
}
"""Events the tracker reads (for an AMI event filter, if one is used)."""


def _answer(call: _Call, at: datetime | None, by: str | None) -> None:
    call.answered = True
    call.answered_at = call.answered_at or at
    call.answered_by = call.dialed if call.direction == CallDirection.OUT else by


def _apply_snapshot(tracker: CallTracker, call: _Call, group: Iterable[AmiMessage], at: datetime) -> None:
    """What a ``CoreShowChannel`` list says about a call: dialing, ringing, answered."""
    call.last_seen = at
    for channel in group:
        uniqueid = channel.get("Uniqueid")
        if uniqueid:
            known = tracker.topology.ensure(uniqueid, channel.get("Channel"), call.linkedid)
            if channel.get("BridgeId"):
                tracker.topology.enter(uniqueid, channel.get("BridgeId") or "")
            known.caller_num = known.caller_num or _number_or_none(channel.get("CallerIDNum"))
        state = channel.get("ChannelStateDesc")
        if _is_origin(call, channel):
            if channel.get("Application") in ("Dial", "Queue"):
                _start_dialing(call)
            if state == "Up" and not call.answered and not call.dialing and call.direction == CallDirection.IN:
                _answer(call, None, PBX)
        elif state == "Ringing":
            call.ringing_at = call.ringing_at or at
        elif state == "Up" and not call.answered and not (channel.get("Channel") or "").startswith("Local/"):
            _answer(call, None, tracker._extension_of(channel.get("Channel"), channel.get("CallerIDNum")))
            call.notes.append("answered during the gap; answer time unknown")


def _outcome(call: _Call, fax_numbers: set[str]) -> CallOutcome | None:
    if call.forced_unknown:
        return CallOutcome.UNKNOWN
    if call.answered:
        on_fax_line = call.answered_by == PBX and call.dialed in fax_numbers
        return CallOutcome.FAX if call.fax_received or on_fax_line else CallOutcome.ANSWERED
    if not call.complete:
        return None
    if call.busy_signal:
        return CallOutcome.MISSED_BUSY
    status = call.dial_status or call.queue_status or _worst(call.leg_statuses)
    if status is None:
        return CallOutcome.MISSED_ABANDONED  # hung up before the phones were dialed
    return _DIAL_OUTCOMES.get(status, CallOutcome.FAILED)


def _number_or_none(raw: str | None) -> str | None:
    number = normalise(raw)
    return None if number.withheld else number.number


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
