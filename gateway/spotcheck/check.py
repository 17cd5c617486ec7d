"""One spot-check call's result, from the PBX's own events: a pure state machine.

``CheckTracker.sent`` registers a call the runner originated (its ActionID, which is also
the ``SPOT_ID`` channel variable); ``feed`` takes one AMI message at a time and returns
the results of the calls it finished; ``expire`` ends calls whose events stopped coming
(a lost connection). Time is the event's own ``Timestamp`` (or when it was received);
``now`` is passed in, never read here.

How a call is followed, as a real Asterisk 22 reports an Originate:

* the originated channel sets our ``SPOT_ID`` at once (``VarSet``, its value is the
  ActionID): that ties its ``Uniqueid`` to the check (``DialBegin``'s ``DialString`` as
  the fallback, when one pending check dials that number);
* ``DialState RINGING`` / ``Newstate Ringing``: the far end rings; ``Newstate Up`` /
  ``DialEnd ANSWER``: answered; rings are counted between the two, in China's cadence;
* a ``UserEvent`` on that channel with a ``Digit`` reports the answered leg's ``Read``
  (the dialplan's ``[dutygw-spotcheck]`` raises one per round); the check's key pressed
  means a person answered, no key means a voicemail greeting or an announcement;
* ``DialEnd BUSY`` / ``Hangup`` cause 17: busy; ``NOANSWER`` / cause 19 /
  ``OriginateResponse Reason: 3``: no answer; ``CONGESTION``, ``CHANUNAVAIL`` and the
  causes of a wrong or unreachable number (SIP 404, 480, 503…): unreachable;
* the channel's ``Hangup`` ends the call (or, if no channel ever appeared, the failed
  ``OriginateResponse``, matched by ActionID).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from gateway.ami.message import AmiMessage
from gateway.calls.rings import rings_heard, within_rule


class Outcome(StrEnum):
    ANSWERED = "answered"
    """A person answered and pressed the key."""
    NO_KEY = "no_key"
    """Answered, but no key: a voicemail greeting, an operator's announcement, or silence."""
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    UNREACHABLE = "unreachable"
    """Congestion, an invalid or switched-off number (SIP 404/480…), the trunk refused."""
    UNKNOWN = "unknown"
    """No result came from the PBX (a lost connection, a restart); the check is tried again."""


BUSY_CAUSES = frozenset({17})
NO_ANSWER_CAUSES = frozenset({18, 19})
UNREACHABLE_CAUSES = frozenset({1, 2, 3, 20, 21, 22, 27, 28, 29, 31, 34, 38, 41, 42, 44, 47, 58, 88, 102, 111, 127})
"""Q.850 causes of a number that cannot be reached: unallocated (SIP 404), no route,
subscriber absent (480), rejected, out of order, invalid format, congestion (503)…"""
_DIAL_STATUS = {"BUSY": Outcome.BUSY, "NOANSWER": Outcome.NO_ANSWER, "CONGESTION": Outcome.UNREACHABLE,
                "CHANUNAVAIL": Outcome.UNREACHABLE}
_ORIGINATE_REASON = {1: Outcome.UNREACHABLE, 3: Outcome.NO_ANSWER, 5: Outcome.BUSY, 8: Outcome.UNREACHABLE}
"""OriginateResponse ``Reason`` (Asterisk's AST_CONTROL_*): 1 hangup, 3 ringing timed out,
5 busy, 8 congestion; 0 says only "failed" (a busy callee on Asterisk 22 gives 0)."""


@dataclass(frozen=True)
class CallResult:
    """What one call found; immutable, for the runner to store."""

    action_id: str
    number: str
    outcome: Outcome
    sent_at: datetime
    ringing_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime
    ring_seconds: float | None
    rings: int | None
    rule_met: bool | None
    hangup_cause: int | None
    digit: str | None
    recording: str | None
    time_source: str
    detail: str


@dataclass
class _Call:
    action_id: str
    number: str
    dial_string: str
    sent_at: datetime
    uniqueid: str | None = None
    dial_begin_at: datetime | None = None
    ringing_at: datetime | None = None
    answered_at: datetime | None = None
    dial_status: str | None = None
    reason: int | None = None
    cause: int | None = None
    digits: list[str] = field(default_factory=list)
    recording: str | None = None
    last_seen: datetime | None = None
    time_source: str = "pbx"


@dataclass(frozen=True)
class Rules:
    key: str = "1"
    cadence: float = 5.0
    answer_within_rings: int = 3
    ring_limit_seconds: float = 30.0
    result_margin_seconds: float = 30.0
    max_call_seconds: float = 180.0


class CheckTracker:
    """The spot-check calls in flight, keyed by ActionID."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self._calls: dict[str, _Call] = {}
        self._by_uniqueid: dict[str, str] = {}

    def sent(self, action_id: str, number: str, dial_string: str, at: datetime) -> None:
        self._calls[action_id] = _Call(action_id, number, dial_string, at, last_seen=at)

    def in_flight(self) -> int:
        return len(self._calls)

    def feed(self, message: AmiMessage, now: datetime) -> list[CallResult]:
        """One AMI message in; the results of the calls it finished out."""
        call = self._call_of(message)
        if call is None:
            return []
        at = message.time or now
        call.last_seen = at
        if message.event_time is None:
            call.time_source = "received"
        handler = _HANDLERS.get(message.event or "")
        finished = handler(call, message, at) if handler else False
        return [self._finish(call, at)] if finished else []

    def refused(self, action_id: str, at: datetime, why: str) -> CallResult | None:
        """The Originate itself was refused (``Response: Error``): nothing rang."""
        call = self._calls.get(action_id)
        if call is None:
            return None
        result = self._finish(call, at)
        return replace(result, outcome=Outcome.UNREACHABLE, detail=f"呼叫请求被拒绝：{why}")

    def expire(self, now: datetime) -> list[CallResult]:
        """Calls whose end never came: unanswered past the ring limit, or answered too long."""
        results = []
        for call in list(self._calls.values()):
            limit = self.rules.ring_limit_seconds + self.rules.result_margin_seconds
            if call.answered_at is not None:
                limit = self.rules.max_call_seconds
            if now - (call.answered_at or call.sent_at) > timedelta(seconds=limit):
                result = self._finish(call, now)
                if call.answered_at is None and call.dial_status is None and call.reason is None:
                    result = replace(result, outcome=Outcome.UNKNOWN, detail="未收到交换机的呼叫结果")
                results.append(result)
        return results

    # -- correlation --------------------------------------------------------------------

    def _call_of(self, message: AmiMessage) -> _Call | None:
        action_id = message.action_id
        if action_id and action_id in self._calls and message.event == "OriginateResponse":
            return self._calls[action_id]
        for header in ("Uniqueid", "DestUniqueid"):
            uid = message.get(header)
            if uid and uid in self._by_uniqueid:
                return self._calls.get(self._by_uniqueid[uid])
        return self._bind(message)

    def _bind(self, message: AmiMessage) -> _Call | None:
        """Tie a channel to its call: our SPOT_ID VarSet, else a DialBegin to the number."""
        if message.event == "VarSet" and message.get("Value") in self._calls:
            return self._bound(self._calls[message["Value"]], message.get("Uniqueid"))
        if message.event == "UserEvent" and message.get("CheckID") in self._calls:
            return self._bound(self._calls[message["CheckID"]], message.get("Uniqueid"))
        if message.event == "DialBegin":
            dialled = message.get("DialString")
            waiting = [c for c in self._calls.values() if c.uniqueid is None and c.dial_string == dialled]
            if len(waiting) == 1:
                return self._bound(waiting[0], message.get("DestUniqueid"))
        return None

    def _bound(self, call: _Call, uniqueid: str | None) -> _Call:
        if uniqueid and uniqueid != "<unknown>" and call.uniqueid is None:
            call.uniqueid = uniqueid
            self._by_uniqueid[uniqueid] = call.action_id
        return call

    # -- the result ---------------------------------------------------------------------

    def _finish(self, call: _Call, at: datetime) -> CallResult:
        self._calls.pop(call.action_id, None)
        if call.uniqueid:
            self._by_uniqueid.pop(call.uniqueid, None)
        outcome = _outcome(call, self.rules.key)
        rings_from = call.ringing_at or call.dial_begin_at
        ring_end = call.answered_at or at
        ring_seconds = None if rings_from is None else round((ring_end - rings_from).total_seconds(), 3)
        rings = None if ring_seconds is None else rings_heard(ring_seconds, self.rules.cadence)
        rule_met: bool | None = False  # the rule is a person answering: a greeting within 3 rings is not
        if outcome == Outcome.ANSWERED and rings is not None:
            rule_met = within_rule(rings, self.rules.answer_within_rings)
        elif outcome == Outcome.UNKNOWN:
            rule_met = None
        if outcome in (Outcome.BUSY, Outcome.UNREACHABLE):
            ring_seconds = rings = None  # nothing rang that a person could have answered
        digit = next((d for d in call.digits if d == self.rules.key), call.digits[-1] if call.digits else None)
        return CallResult(call.action_id, call.number, outcome, call.sent_at, call.ringing_at, call.answered_at,
                          at, ring_seconds, rings, rule_met, call.cause, digit, call.recording,
                          call.time_source, _detail(call, outcome))


def _outcome(call: _Call, key: str) -> Outcome:
    if call.answered_at is not None:
        return Outcome.ANSWERED if key in call.digits else Outcome.NO_KEY
    if call.dial_status in _DIAL_STATUS:
        return _DIAL_STATUS[call.dial_status]
    if call.cause in BUSY_CAUSES:
        return Outcome.BUSY
    if call.cause in UNREACHABLE_CAUSES:
        return Outcome.UNREACHABLE
    if call.cause in NO_ANSWER_CAUSES or call.reason == 3:
        return Outcome.NO_ANSWER
    if call.reason in _ORIGINATE_REASON:
        return _ORIGINATE_REASON[call.reason]
    if call.ringing_at is not None:
        return Outcome.NO_ANSWER
    return Outcome.UNREACHABLE


def _detail(call: _Call, outcome: Outcome) -> str:
    parts = []
    if call.dial_status:
        parts.append(f"DialStatus {call.dial_status}")
    if call.cause is not None:
        parts.append(f"Hangup cause {call.cause}")
    if call.reason is not None:
        parts.append(f"OriginateResponse Reason {call.reason}")
    if outcome == Outcome.NO_KEY:
        parts.append("接听后未按键（语音信箱、提示音或无人应答）")
    return "; ".join(parts)


# -- event handlers: each returns True when the call has ended --------------------------


def _on_dial_begin(call: _Call, message: AmiMessage, at: datetime) -> bool:
    call.dial_begin_at = call.dial_begin_at or at
    return False


def _on_dial_state(call: _Call, message: AmiMessage, at: datetime) -> bool:
    if message.get("DialStatus") in ("RINGING", "PROGRESS"):
        call.ringing_at = call.ringing_at or at
    return False


def _on_newstate(call: _Call, message: AmiMessage, at: datetime) -> bool:
    state = message.get("ChannelState")
    if state == "5":
        call.ringing_at = call.ringing_at or at
    elif state == "6":
        call.answered_at = call.answered_at or at
    return False


def _on_dial_end(call: _Call, message: AmiMessage, at: datetime) -> bool:
    status = message.get("DialStatus") or ""
    if status == "ANSWER":
        call.answered_at = call.answered_at or at
    else:
        call.dial_status = status
    return False


def _on_originate_response(call: _Call, message: AmiMessage, at: datetime) -> bool:
    try:
        call.reason = int(message.get("Reason") or "")
    except ValueError:
        call.reason = None
    if (message.get("Response") or "").lower() == "success":
        call.answered_at = call.answered_at or at
        return False
    return call.uniqueid is None  # no channel of its own will hang up: this is the end


def _on_user_event(call: _Call, message: AmiMessage, at: datetime) -> bool:
    if message.get("Digit") is not None:
        digit = (message.get("Digit") or "").strip()
        if digit:
            call.digits.append(digit)
    if message.get("Recording"):
        call.recording = message.get("Recording")
    return False


def _on_hangup(call: _Call, message: AmiMessage, at: datetime) -> bool:
    if message.get("Uniqueid") != call.uniqueid:
        return False
    try:
        call.cause = int(message.get("Cause") or "")
    except ValueError:
        call.cause = None
    return True


_HANDLERS = {
    "DialBegin": _on_dial_begin,
    "DialState": _on_dial_state,
    "Newstate": _on_newstate,
    "DialEnd": _on_dial_end,
    "OriginateResponse": _on_originate_response,
    "UserEvent": _on_user_event,
    "Hangup": _on_hangup,
}
