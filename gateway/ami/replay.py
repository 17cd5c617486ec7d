"""A replay AMI server: recorded PBX streams served to a real client over TCP.

Each connection gets the next recording: its greeting, then (after the client's
``Login``) the recorded Login response with the client's ActionID, then the recorded
events, paced by their ``Timestamp`` divided by ``speed`` (as fast as possible without
one). ``Ping`` and ``CoreShowChannels`` are answered by the server itself at any time;
the recorder's own responses (its Logoff's Goodbye, an Originate's "queued") are
dropped, since this client never asked for them. At the end of a recording the socket
closes, as Asterisk does on a restart; after the last one the server exits.

``start_at`` moves every timestamp by one offset (from the first recording's first
``Timestamp``), so afternoon captures play as any night.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from gateway.ami.framing import Framer, format_message, iter_messages
from gateway.ami.message import AmiMessage
from gateway.clock import SHANGHAI, UTC

log = logging.getLogger("dutygw.ami.replay")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TV_FORMAT = "%Y-%m-%dT%H:%M:%S.%f%z"
LINGER_SECONDS = 0.5
"""After the last recorded message, keep answering the client's actions this long."""
SETTLE_SECONDS = 0.5
"""After Login, wait this long at most for the client's first action before playing."""


@dataclass(frozen=True)
class Recording:
    """One recorded connection: what the client is sent, in order."""

    name: str
    greeting: AmiMessage | None
    login_response: AmiMessage | None
    messages: tuple[AmiMessage, ...]

    @property
    def first_timestamp(self) -> Decimal | None:
        return next((Decimal(m["Timestamp"]) for m in self.messages if m.get("Timestamp")), None)


def load_recording(path: Path) -> Recording:
    """Split a ``.ami`` capture into greeting, Login response and the messages to serve."""
    greeting: AmiMessage | None = None
    login: AmiMessage | None = None
    served: list[AmiMessage] = []
    for message in iter_messages(path.read_bytes()):
        if message.get("Greeting") is not None:
            greeting = message
        elif message.event is not None:
            served.append(message)
        elif login is None:
            login = message  # the first response of a capture answers its Login
    return Recording(path.name, greeting, login, tuple(served))


def parse_start_at(text: str) -> datetime:
    """ISO 8601; a time without an offset is the duty room's (Asia/Shanghai)."""
    when = datetime.fromisoformat(text)
    return when.replace(tzinfo=SHANGHAI) if when.tzinfo is None else when


def offset_to(recording: Recording, start_at: datetime) -> Decimal:
    """Seconds to add to every timestamp so the recording's first one becomes ``start_at``."""
    first = recording.first_timestamp
    if first is None:
        return Decimal(0)
    micros = (start_at - _EPOCH) // timedelta(microseconds=1)
    return Decimal(micros).scaleb(-6) - first


def shift_message(message: AmiMessage, offset: Decimal) -> AmiMessage:
    """The message with ``Timestamp``, ``EventTV`` and ``SessionTV`` moved by ``offset`` seconds."""
    if not offset:
        return message
    headers = tuple((name, _shift_value(name, value, offset)) for name, value in message.headers)
    return AmiMessage(headers, message.received_at)


def _shift_value(name: str, value: str, offset: Decimal) -> str:
    key = name.lower()
    try:
        if key == "timestamp":
            return str((Decimal(value) + offset).quantize(Decimal(value)))
        if key in ("eventtv", "sessiontv"):
            moved = datetime.strptime(value, _TV_FORMAT) + timedelta(microseconds=int(offset.scaleb(6)))
            return moved.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moved.microsecond // 1000:03d}" + moved.strftime("%z")
    except (ArithmeticError, ValueError):
        return value
    return value


def with_action_id(message: AmiMessage, action_id: str | None) -> AmiMessage:
    """The message as the answer to the client's action ``action_id``."""
    if action_id is None:
        return message
    headers = tuple((k, action_id) if k.lower() == "actionid" else (k, v) for k, v in message.headers)
    if message.action_id is None:
        headers = headers[:1] + (("ActionID", action_id),) + headers[1:]
    return AmiMessage(headers, message.received_at)


class ReplayServer:
    """Serve ``recordings`` one per connection on ``host:port`` (port 0: a free one)."""

    def __init__(self, recordings: Sequence[Recording], *, host: str = "127.0.0.1", port: int = 0,
                 speed: float | None = None, offset: Decimal = Decimal(0)) -> None:
        self.recordings = list(recordings)
        self.host = host
        self.port = port
        self.speed = speed
        self.offset = offset
        self.actions: list[list[AmiMessage]] = []
        """The actions each connection sent, in order (tests look at them)."""
        self._next = 0
        self._sessions: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._finished = asyncio.Event()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("replaying %d recording(s) on %s:%d", len(self.recordings), self.host, self.port)
        return self.port

    async def wait_closed(self) -> None:
        """Until the last recording has been served and its connection closed."""
        await self._finished.wait()
        await self.close()

    async def close(self) -> None:
        """Stop listening and end the sessions still playing."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._sessions):
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._next >= len(self.recordings):
            writer.close()
            return
        recording = self.recordings[self._next]
        self._next += 1
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        session = _Session(recording, reader, writer, self)
        self.actions.append(session.actions)
        try:
            await session.run()
        except (ConnectionError, OSError) as exc:
            log.info("%s: client went away: %s", recording.name, exc)
        except asyncio.CancelledError:
            log.info("%s: replay closed while playing", recording.name)  # ends the handler quietly
        finally:
            writer.close()
            self._sessions.discard(task)
            if self._next >= len(self.recordings) and not self._sessions:
                self._finished.set()


class _Session:
    """One connection: answers the client's actions while the recording plays."""

    def __init__(self, recording: Recording, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, server: ReplayServer) -> None:
        self.recording = recording
        self.reader = reader
        self.writer = writer
        self.server = server
        self.actions: list[AmiMessage] = []
        self.logged_in = asyncio.Event()
        self.logged_off = asyncio.Event()
        self.asked = asyncio.Event()

    async def run(self) -> None:
        log.info("serving %s", self.recording.name)
        if self.recording.greeting is not None:
            await self._send(self.recording.greeting)
        answering = asyncio.create_task(self._answer_actions())
        try:
            await self._wait_first(self.logged_in.wait(), answering)
            if self.logged_in.is_set():
                await self._wait_first(self._settle(), answering)
                await self._wait_first(self._play(), answering)
                await self._wait_first(asyncio.sleep(LINGER_SECONDS), answering)
        finally:
            answering.cancel()
            (outcome,) = await asyncio.gather(answering, return_exceptions=True)
            if isinstance(outcome, Exception) and not isinstance(outcome, ConnectionError):
                log.error("%s: answering the client failed", self.recording.name, exc_info=outcome)

    async def _wait_first(self, step: Awaitable[object], answering: asyncio.Task[None]) -> None:
        """Run ``step`` unless the client leaves (or logs off) first."""
        task = asyncio.ensure_future(step)
        either: set[asyncio.Future[Any]] = {task, answering}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _settle(self) -> None:
        """Let the client ask its first question (``CoreShowChannels``) before the recording
        plays on: a real client gets its snapshot long before a recorded call's events."""
        try:
            await asyncio.wait_for(self.asked.wait(), SETTLE_SECONDS)
        except TimeoutError:
            pass

    async def _play(self) -> None:
        started, first = time.monotonic(), None
        for message in self.recording.messages:
            stamp = message.get("Timestamp")
            if self.server.speed and stamp:
                first = first if first is not None else float(stamp)
                due = started + (float(stamp) - first) / self.server.speed
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            await self._send(shift_message(message, self.server.offset))

    async def _answer_actions(self) -> None:
        framer = Framer()
        while not self.logged_off.is_set():
            data = await self.reader.read(65536)
            if not data:
                return
            for action in framer.feed(data):
                self.actions.append(action)
                await self._answer(action)
                if self.logged_in.is_set() and (action.get("Action") or "").lower() != "login":
                    self.asked.set()

    async def _answer(self, action: AmiMessage) -> None:
        name = (action.get("Action") or "").lower()
        action_id = action.action_id
        if name == "login":
            await self._send(with_action_id(self._login_response(), action_id))
            self.logged_in.set()
        elif name == "ping":
            await self._send(_reply(action_id, Response="Success", Ping="Pong", Timestamp=f"{time.time():.6f}"))
        elif name == "coreshowchannels":
            await self._send(_reply(action_id, Response="Success", EventList="start",
                                    Message="Channels will follow"))
            await self._send(AmiMessage.of(Event="CoreShowChannelsComplete", ActionID=action_id or "",
                                           EventList="Complete", ListItems="0"))
        elif name == "logoff":
            await self._send(_reply(action_id, Response="Goodbye", Message="Thanks for all the fish."))
            self.logged_off.set()
        else:
            await self._send(_reply(action_id, Response="Error",
                                    Message=f"Action {action.get('Action')} is not played by the replay server"))

    def _login_response(self) -> AmiMessage:
        return self.recording.login_response or AmiMessage.of(
            Response="Success", Message="Authentication accepted")

    async def _send(self, message: AmiMessage) -> None:
        self.writer.write(format_message(message))
        await self.writer.drain()


def _reply(action_id: str | None, **headers: str) -> AmiMessage:
    return with_action_id(AmiMessage(tuple(headers.items())), action_id)


async def serve_replay(files: Sequence[Path], host: str = "127.0.0.1", port: int = 0,
                       speed: float | None = None, start_at: datetime | None = None,
                       ready: asyncio.Event | None = None,
                       listening: Callable[[int], None] | None = None) -> ReplayServer:
    """Serve ``files`` until the last has been played; once listening, ``ready`` is set and
    ``listening`` is told the port (the one picked, for ``port=0``)."""
    server = build_replay_server(files, host=host, port=port, speed=speed, start_at=start_at)
    await server.start()
    if listening is not None:
        listening(server.port)
    if ready is not None:
        ready.set()
    await server.wait_closed()
    return server


def build_replay_server(files: Sequence[Path], *, host: str = "127.0.0.1", port: int = 0,
                        speed: float | None = None, start_at: datetime | None = None) -> ReplayServer:
    recordings = [load_recording(Path(f)) for f in files]
    offset = offset_to(recordings[0], start_at) if start_at is not None and recordings else Decimal(0)
    return ReplayServer(recordings, host=host, port=port, speed=speed, offset=offset)
