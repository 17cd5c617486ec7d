"""Which AMI events are about the gateway's own page calls, and what each means to the engine. Pure.

``PageCalls.feed`` takes one AMI message and the time (passed in, never read here) and
returns the escalation engine's event it means, or None: most of the PBX's traffic is
not about our calls. The pager tells it which attempts are ours (``remember`` an
escalation as it now stands, ``close`` it when it is over, ``placed`` when a call left);
what AMI shows about them it keeps itself:

* ``VarSet PAGE_ID`` with a live attempt's page token ties the channel it is set on to
  that attempt; ``UserEvent PageAck`` carries the token (and must come from that call);
* ``OriginateResponse`` is matched by ActionID (the attempt's key) and names the real
  channel and Uniqueid when the call was answered;
* on that channel a ``DialEnd`` other than ANSWER (BUSY: Asterisk 22 ends a busy
  callee's Originate with Reason 0, not 5), or its ``Hangup`` (cause 17 is busy), ends it;
* the channel names and Uniqueids AMI showed for each placed call are what a FastAGI
  session must present to be served (``is_our_channel``); ``sightings`` counts each time
  AMI named one, so a session waiting for its channel knows when to look again.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Collection
from datetime import datetime

from gateway.ami.message import AmiMessage
from gateway.paging.escalation import (
    Acknowledged,
    Attempt,
    CallEnded,
    DialEnded,
    Escalation,
    OriginateResult,
)

log = logging.getLogger("dutygw.paging")

FINISHED_MEMORY = 256
"""How many tokens of attempts just over are remembered (their late PageAck echoes are expected)."""

AmiEvent = Acknowledged | OriginateResult | DialEnded | CallEnded
"""The engine events AMI can bring."""


class PageCalls:
    """The page calls of the open escalations, as AMI reports them."""

    def __init__(self) -> None:
        self._keys: dict[str, int] = {}
        """Attempt key (the Originate's ActionID) → its escalation, for open escalations."""
        self._tokens: dict[str, str] = {}
        """Page token → attempt key, for live attempts only."""
        self._channels: dict[str, str] = {}
        """Channel name → attempt key, until the channel hangs up."""
        self._seen: dict[str, set[str]] = {}
        """Attempt key → the channel names and unique ids AMI showed for its call."""
        self._finished: deque[str] = deque(maxlen=FINISHED_MEMORY)
        """Tokens of attempts just over: their late PageAck echoes are expected, not suspicious."""
        self.sightings = 0
        """How many times AMI named a channel of one of our calls."""

    # -- what the pager tells -------------------------------------------------------------

    def remember(self, escalation: Escalation) -> list[Attempt]:
        """Follow an escalation's attempts as they now stand; returns the attempts now forgotten (over)."""
        if not escalation.is_open:
            return [self._forget(attempt) for attempt in escalation.attempts]
        over = []
        for attempt in escalation.attempts:
            self._keys[attempt.key] = escalation.id
            if attempt.page_token and attempt.active:
                self._tokens[attempt.page_token] = attempt.key
            elif attempt.page_token:
                over.append(self._forget(attempt))
        return over

    def _forget(self, attempt: Attempt) -> Attempt:
        if attempt.page_token and self._tokens.pop(attempt.page_token, None) is not None:
            self._finished.append(attempt.page_token)
        self._seen.pop(attempt.key, None)
        return attempt

    def close(self, escalation_id: int) -> None:
        """The escalation is over: events about its calls no longer concern the engine."""
        for key in [k for k, e in self._keys.items() if e == escalation_id]:
            del self._keys[key]

    def placed(self, key: str) -> None:
        """The call left: a FastAGI session for it may wait for AMI to name its channel."""
        self._seen.setdefault(key, set())

    # -- what the pager asks --------------------------------------------------------------

    def escalation_of(self, key: str) -> int | None:
        return self._keys.get(key)

    def live_attempt(self, token: str) -> str | None:
        """The live attempt a page token belongs to."""
        return self._tokens.get(token) if token else None

    def page_key(self, token: str, source: str) -> str | None:
        """The live attempt a page token belongs to; a finished one is quietly ignored."""
        key = self._tokens.get(token)
        if key is None:
            level = logging.DEBUG if token in self._finished else logging.WARNING
            log.log(level, "%s with an unknown or finished page id ignored", source)
        return key

    def is_placed(self, key: str) -> bool:
        """The call left and is not over: AMI may yet name its channel."""
        return key in self._seen

    def is_our_channel(self, key: str, channel: str, uniqueid: str) -> bool:
        seen = self._seen.get(key, set())
        return bool((channel and channel in seen) or (uniqueid and uniqueid in seen))

    def channels_of(self, keys: Collection[str]) -> list[str]:
        """The channels still up that carry these attempts' calls."""
        return [channel for channel, key in self._channels.items() if key in keys]

    # -- AMI ------------------------------------------------------------------------------

    def feed(self, message: AmiMessage, now: datetime) -> AmiEvent | None:
        """The engine event an AMI message means, if it is about one of our calls."""
        handler = _HANDLERS.get(message.event or "")
        return handler(self, message, now) if handler is not None else None

    def _var_set(self, message: AmiMessage, now: datetime) -> None:
        key = self._tokens.get(message.get("Value") or "") if message.get("Variable") == "PAGE_ID" else None
        if key is not None:
            self._channels[message.get("Channel") or ""] = key
            self._saw(key, message.get("Channel"), message.get("Uniqueid"))

    def _user_event(self, message: AmiMessage, now: datetime) -> Acknowledged | None:
        if message.get("UserEvent") != "PageAck":
            return None
        key = self.page_key(message.get("PageID") or "", "UserEvent PageAck")
        if key is None:
            return None
        channel, seen = message.get("Channel") or "", self._seen.get(key)
        if seen and channel and channel not in seen and message.get("Uniqueid") not in seen:
            log.warning("UserEvent PageAck from channel %s, not the page's own call: ignored", channel)
            return None
        return Acknowledged(key, message.get("Digit") or "", message.get("Number") or None, now)

    def _originate_response(self, message: AmiMessage, now: datetime) -> OriginateResult | None:
        key = message.action_id or ""
        if key not in self._keys:
            return None
        channel = message.get("Channel")
        if channel and "@" not in channel:
            self._channels[channel] = key
        self._saw(key, channel, message.get("Uniqueid"))
        try:
            reason: int | None = int(message.get("Reason") or "")
        except ValueError:
            reason = None
        return OriginateResult(key, reason, channel, now)

    def _dial_end(self, message: AmiMessage, now: datetime) -> DialEnded | None:
        key = self._channels.get(message.get("DestChannel") or message.get("Channel") or "")
        status = message.get("DialStatus") or ""
        return DialEnded(key, status, now) if key and status != "ANSWER" else None

    def _hangup(self, message: AmiMessage, now: datetime) -> DialEnded | CallEnded | None:
        key = self._channels.pop(message.get("Channel") or "", None)
        if key is None:
            return None
        return DialEnded(key, "BUSY", now) if message.get("Cause") == "17" else CallEnded(key, now)

    def _saw(self, key: str, *names: str | None) -> None:
        """Names of our own call's channel, as AMI reported them (what a FastAGI session must match)."""
        known = [n for n in names if n and n != "<unknown>" and "@" not in n]
        if known:
            self._seen.setdefault(key, set()).update(known)
            self.sightings += 1


_HANDLERS: dict[str, Callable[[PageCalls, AmiMessage, datetime], AmiEvent | None]] = {
    "VarSet": PageCalls._var_set,
    "UserEvent": PageCalls._user_event,
    "OriginateResponse": PageCalls._originate_response,
    "DialEnd": PageCalls._dial_end,
    "Hangup": PageCalls._hangup,
}
"""One handler per AMI event that can concern a page call."""
