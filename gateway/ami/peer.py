"""A test AMI peer that answers ``Originate`` the way the recorded Asterisk 22 PBX did.

It is built from the real captures ``page_ack.ami`` (answered, 1 pressed) and
``page_noanswer.ami`` (rang out): each Originate gets the recorded "successfully queued"
response and then the recorded events of the behaviour scripted for the dialled number,
with the ActionID, PAGE_ID, channel names, unique ids, dial string and timestamps
rewritten. A busy callee is the no-answer story cut at the ring, with ``DialEnd BUSY``,
``Hangup`` cause 17 and ``OriginateResponse Reason: 0``, as the README says Asterisk 22
does; ``unreachable`` is that story with ``DialEnd CHANUNAVAIL`` and cause 1 (SIP 404),
before anything rang. ``answer_no_key`` answers and lets the three rounds of the page time out.

Greeting, Login, Ping, CoreShowChannels and Logoff are answered as Asterisk does; events
go to every logged-in session, as manager events do. Used in-process by the tests and
by ``dutygw demo``; ``originates`` records every Originate received, in order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Self

from gateway.ami.framing import Framer, format_message, iter_messages
from gateway.ami.message import AmiMessage

log = logging.getLogger("dutygw.ami.peer")

ANSWER_ACK = "answer_ack"
ANSWER_NO_KEY = "answer_no_key"
NO_ANSWER = "no_answer"
BUSY = "busy"
UNREACHABLE = "unreachable"
ANSWER_ONLY = "answer_only"
"""Answered: the story up to ``OriginateResponse`` Reason 4; the dialog is left to a FastAGI test."""
RINGING = "ringing"
"""Rings on: the no-answer story up to (not including) its ``OriginateResponse``."""
BEHAVIOURS = (ANSWER_ACK, ANSWER_NO_KEY, NO_ANSWER, BUSY, UNREACHABLE, ANSWER_ONLY, RINGING)


@dataclass(frozen=True)
class Story:
    """One recorded Originate: the greeting, Login reply, the queued reply and the events after."""

    greeting: AmiMessage
    login: AmiMessage
    queued: AmiMessage
    events: tuple[AmiMessage, ...]


def load_story(path: Path) -> Story:
    """Split a paging capture into its parts (the Goodbye of the recorder's Logoff is dropped)."""
    messages = list(iter_messages(path.read_bytes()))
    greeting = next(m for m in messages if m.get("Greeting") is not None)
    login = next(m for m in messages if m.response == "Success" and "Authentication" in (m.get("Message") or ""))
    queued = next(m for m in messages if "Originate successfully queued" in (m.get("Message") or ""))
    after = messages[messages.index(queued) + 1:]
    return Story(greeting, login, queued, tuple(m for m in after if m.event is not None))


@dataclass(frozen=True)
class Originated:
    """An Originate the peer received (what the gateway asked for)."""

    action_id: str
    channel: str
    number: str
    variables: dict[str, str]
    behaviour: str
    fields: dict[str, str] = field(default_factory=dict)
    """The action's other headers (Context, Exten, Timeout, CallerID…)."""


@dataclass
class _Call:
    """The names of one originated call, substituted into the recorded events."""

    request: Originated
    channel: str
    uniqueid: str
    time_base: float


class AmiPeer:
    """An asyncio AMI server; ``behaviours`` maps a dialled number to what its phone does."""

    def __init__(self, ack_story: Story, noanswer_story: Story, *, behaviours: dict[str, str] | None = None,
                 default: str = NO_ANSWER, host: str = "127.0.0.1", port: int = 0,
                 pace: float = 0.0, now: Callable[[], float] = time.time) -> None:
        self.ack_story = ack_story
        self.noanswer_story = noanswer_story
        self.behaviours = dict(behaviours or {})
        self.default = default
        self.host = host
        self.port = port
        self.pace = pace
        """Seconds of real time per recorded second between events (0: as fast as possible)."""
        self.now = now
        self.originates: list[Originated] = []
        self.hangups: list[str] = []
        """Channels an AMI ``Hangup`` action asked to end (answered ``Success``)."""
        self.refused: list[Originated] = []
        self.holding = False
        self.refusing = ""
        """When set, every Originate is answered ``Response: Error`` with this ``Message`` (as
        Asterisk answers one it cannot queue, e.g. ``Permission denied``) and nothing is dialled."""
        """While set, calls are queued but their events held back (``release`` / ``discard_held``)."""
        self.dropping = False
        """When set, the connection is closed as soon as an Originate is read (recorded, never
        answered): the link died with the call possibly ringing and its reply lost."""
        self._held: list[tuple[_Call, tuple[AmiMessage, ...]]] = []
        self._sessions: set[asyncio.StreamWriter] = set()
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._connections: set[asyncio.Task[Any]] = set()
        self._ids = itertools.count(0x40)

    @classmethod
    def from_fixtures(cls, folder: Path, **kwargs: object) -> Self:
        return cls(load_story(folder / "page_ack.ami"), load_story(folder / "page_noanswer.ami"), **kwargs)  # type: ignore[arg-type]

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            self._server.close()
        for writer in list(self._sessions):
            writer.close()
        if self._connections:  # closing the transport ends each read loop with EOF
            await asyncio.wait(list(self._connections), timeout=2.0)
        if self._server is not None:
            await self._server.wait_closed()

    async def drop_sessions(self) -> None:
        """Close every client connection (the gateway sees the PBX go away)."""
        for writer in list(self._sessions):
            writer.close()
        self._sessions.clear()

    async def settle(self) -> None:
        """Wait until every scripted call has played out."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- one connection -----------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = asyncio.current_task()
        if connection is not None:
            self._connections.add(connection)
        writer.write(format_message(self.ack_story.greeting))
        framer = Framer()
        try:
            while data := await reader.read(65536):
                for action in framer.feed(data):
                    await self._answer(action, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._sessions.discard(writer)
            writer.close()
            self._connections.discard(connection)  # type: ignore[arg-type]

    async def _answer(self, action: AmiMessage, writer: asyncio.StreamWriter) -> None:
        name = (action.get("Action") or "").lower()
        action_id = action.action_id or ""
        if name == "login":
            writer.write(format_message(_with(self.ack_story.login, ActionID=action_id)))
            self._sessions.add(writer)
        elif name == "ping":
            writer.write(format_message(AmiMessage.of(Response="Success", ActionID=action_id, Ping="Pong",
                                                      Timestamp=f"{self.now():.6f}")))
        elif name == "coreshowchannels":
            writer.write(format_message(AmiMessage.of(Response="Success", ActionID=action_id, EventList="start",
                                                      Message="Channels will follow")))
            writer.write(format_message(AmiMessage.of(Event="CoreShowChannelsComplete", ActionID=action_id,
                                                      EventList="Complete", ListItems="0")))
        elif name == "logoff":
            writer.write(format_message(AmiMessage.of(Response="Goodbye", ActionID=action_id,
                                                      Message="Thanks for all the fish.")))
        elif name == "originate":
            self._originate(action, writer)
        elif name == "hangup":
            self.hangups.append(action.get("Channel") or "")
            writer.write(format_message(AmiMessage.of(Response="Success", ActionID=action_id,
                                                      Message="Channel Hungup")))
        else:
            writer.write(format_message(AmiMessage.of(Response="Error", ActionID=action_id,
                                                      Message="Invalid/unknown command")))
        await writer.drain()

    def _originate(self, action: AmiMessage, writer: asyncio.StreamWriter) -> None:
        request = _request(action, self.behaviours, self.default)
        if self.dropping:
            self.originates.append(request)
            self._sessions.discard(writer)
            writer.close()
            return
        if self.refusing:
            self.refused.append(request)
            writer.write(format_message(AmiMessage.of(Response="Error", ActionID=request.action_id,
                                                      Message=self.refusing)))
            return
        self.originates.append(request)
        writer.write(format_message(_with(self.ack_story.queued, ActionID=request.action_id)))
        number = next(self._ids)
        call = _Call(request, f"PJSIP/trunk-{number:08x}", f"{self.now():.0f}.{number}", self.now())
        if self.holding:
            self._held.append((call, self._script(request.behaviour)))
        else:
            self._start(call, self._script(request.behaviour))

    def release(self) -> None:
        """Play the calls held back, in order."""
        held, self._held = self._held, []
        for call, script in held:
            self._start(call, script)

    def discard_held(self) -> None:
        """Forget the held calls' events: their results went to a connection now gone."""
        self._held = []

    def _start(self, call: _Call, script: tuple[AmiMessage, ...]) -> None:
        task = asyncio.create_task(self._play(call, script))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _script(self, behaviour: str) -> tuple[AmiMessage, ...]:
        if behaviour == ANSWER_ACK:
            return self.ack_story.events
        if behaviour == ANSWER_NO_KEY:
            return no_key_events(self.ack_story.events)
        if behaviour == BUSY:
            return busy_events(self.noanswer_story.events, self.ack_story.events)
        if behaviour == UNREACHABLE:
            return unreachable_events(self.noanswer_story.events, self.ack_story.events)
        if behaviour == RINGING:
            events = self.noanswer_story.events
            return events[:next(i for i, m in enumerate(events) if m.event == "OriginateResponse")]
        if behaviour == ANSWER_ONLY:
            events = self.ack_story.events
            answered = next(i for i, m in enumerate(events) if m.event == "OriginateResponse")
            return events[:answered + 1]
        return self.noanswer_story.events

    async def _play(self, call: _Call, script: Sequence[AmiMessage]) -> None:
        first = _first_timestamp(script)
        previous = first
        for message in script:
            stamp = message.get("Timestamp")
            if stamp is not None and self.pace > 0:
                await asyncio.sleep(float(Decimal(stamp) - previous) * self.pace)
                previous = Decimal(stamp)
            self._broadcast(rewrite(message, call, first))
            await asyncio.sleep(0)

    def _broadcast(self, message: AmiMessage) -> None:
        data = format_message(message)
        for writer in list(self._sessions):
            if writer.is_closing():
                self._sessions.discard(writer)
                continue
            writer.write(data)


# -- the recorded stories, reshaped ---------------------------------------------------------


def _request(action: AmiMessage, behaviours: dict[str, str], default: str) -> Originated:
    variables: dict[str, str] = {}
    for header in action.get_all("Variable"):
        for pair in header.split(","):
            key, _, value = pair.partition("=")
            if key:
                variables[key.strip()] = value
    channel = action.get("Channel") or ""
    number = variables.get("PAGE_NUMBER") or channel.split("/", 1)[-1].split("@", 1)[0]
    fields = {k: v for k, v in action.headers if k not in ("Variable", "Action", "ActionID")}
    return Originated(action.action_id or "", channel, number, variables, behaviours.get(number, default), fields)


def no_key_events(ack_events: Iterable[AmiMessage]) -> tuple[AmiMessage, ...]:
    """Answered, nobody presses a key: three rounds time out, then the PBX hangs up."""
    out: list[AmiMessage] = []
    for message in ack_events:
        if message.event in ("DTMFBegin", "DTMFEnd") or message.get("Variable") == "ACK_DIGIT":
            continue
        if message.get("UserEvent") == "PageAck":
            for round_no in range(1, 4):
                out.append(_with(message, Digit="", ReadStatus="TIMEOUT", Round=str(round_no)))
            continue
        out.append(message)
    return tuple(out)


def busy_events(noanswer: Sequence[AmiMessage], ack: Sequence[AmiMessage]) -> tuple[AmiMessage, ...]:
    """Dial, then DialEnd BUSY, Hangup cause 17, OriginateResponse Failure Reason 0."""
    dialing = [m for m in noanswer if m.event not in ("Newstate", "OriginateResponse", "Hangup", "DeviceStateChange")]
    dial_end = next(m for m in ack if m.event == "DialEnd")
    hangup = next(m for m in noanswer if m.event == "Hangup")
    response = next(m for m in noanswer if m.event == "OriginateResponse")
    rejected = _last_timestamp(dialing) + Decimal("0.2")  # the far end answers 486 at once
    return (
        *dialing,
        _with(dial_end, Timestamp=f"{rejected:.6f}", DestChannelState="0", DestChannelStateDesc="Down",
              DialStatus="BUSY"),
        _with(hangup, Timestamp=f"{rejected + Decimal('0.0001'):.6f}", ChannelState="0", ChannelStateDesc="Down",
              Cause="17", **{"Cause-txt": "User busy"}, TechCause="486"),
        _with(response, Timestamp=f"{rejected + Decimal('0.0002'):.6f}", Reason="0"),
    )


def unreachable_events(noanswer: Sequence[AmiMessage], ack: Sequence[AmiMessage]) -> tuple[AmiMessage, ...]:
    """A number the network cannot reach (SIP 404): the busy story, with ``DialEnd CHANUNAVAIL``
    and ``Hangup`` cause 1 (Unallocated number) before anything rang."""
    out = []
    for message in busy_events(noanswer, ack):
        if message.event == "DialState":
            continue
        if message.event == "DialEnd":
            message = _with(message, DialStatus="CHANUNAVAIL")
        elif message.event == "Hangup":
            message = _with(message, Cause="1", **{"Cause-txt": "Unallocated (unassigned) number"}, TechCause="404")
        out.append(message)
    return tuple(out)


def rewrite(message: AmiMessage, call: _Call, first: Decimal) -> AmiMessage:
    """The recorded message with this call's ActionID, PAGE_ID, names and times."""
    page_id = call.request.variables.get("PAGE_ID", call.request.action_id)
    originate = message.event == "OriginateResponse"
    headers = []
    for name, value in message.headers:
        headers.append((name, _rewrite_value(name, value, call, page_id, first, originate)))
    return dataclasses.replace(message, headers=tuple(headers))


def _rewrite_value(name: str, value: str, call: _Call, page_id: str, first: Decimal, originate: bool) -> str:
    key = name.lower()
    if key == "actionid":
        return call.request.action_id
    if key == "timestamp":
        return f"{call.time_base + float(Decimal(value) - first):.6f}"
    if key in ("channel", "destchannel"):
        if value.startswith("PJSIP/trunk-"):
            return call.channel
        return call.request.channel if originate else value
    if key in ("uniqueid", "linkedid", "destuniqueid", "destlinkedid") and value != "<unknown>":
        return call.uniqueid
    if key == "dialstring":
        return call.request.channel.split("/", 1)[-1]
    if key in ("pageid", "value", "appdata") and "FAX-20240917-0001" in value:
        return value.replace("FAX-20240917-0001", page_id)
    return value


def _with(message: AmiMessage, **changes: str) -> AmiMessage:
    """A copy with some headers replaced (or appended, when absent)."""
    wanted = {k.lower(): (k, v) for k, v in changes.items()}
    headers = [(k, wanted.pop(k.lower())[1]) if k.lower() in wanted else (k, v) for k, v in message.headers]
    headers += list(wanted.values())
    return dataclasses.replace(message, headers=tuple(headers))


def _last_timestamp(script: Sequence[AmiMessage]) -> Decimal:
    return next((Decimal(m["Timestamp"]) for m in reversed(script) if m.get("Timestamp")), Decimal(0))


def _first_timestamp(script: Sequence[AmiMessage]) -> Decimal:
    return next((Decimal(m["Timestamp"]) for m in script if m.get("Timestamp")), Decimal(0))


@dataclass
class PeerCalls:
    """What the peer saw, grouped for assertions: number → action ids, in order."""

    by_number: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, originates: Iterable[Originated]) -> PeerCalls:
        grouped: dict[str, list[str]] = {}
        for call in originates:
            grouped.setdefault(call.number, []).append(call.action_id)
        return cls(grouped)
