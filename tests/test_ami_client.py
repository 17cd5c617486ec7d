"""The real AMI client against the real replay server (and small scripted peers) over TCP."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from gateway.ami.client import AmiClient, AmiConnectionLost, AmiNotSent, ListenerGap
from gateway.ami.framing import Framer, format_message
from gateway.ami.message import AmiMessage
from gateway.ami.replay import ReplayServer, load_recording
from gateway.clock import FixedClock
from gateway.config import AmiConfig
from tests.conftest import AMI_FIXTURES

SECRET = "s3cret-never-logged"
START = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def _config(port: int, **overrides: float) -> AmiConfig:
    values = {"ping_interval_seconds": 30.0, "reconnect_min_seconds": 0.05, "reconnect_max_seconds": 0.2,
              "connect_timeout_seconds": 2.0}
    values.update(overrides)
    return AmiConfig(host="127.0.0.1", port=port, user="gateway", secret=SECRET, **values)  # type: ignore[arg-type]


@dataclass
class Story:
    """Everything the client told us, in the order it told it."""

    until: Callable[[Story], bool]
    calls: list[tuple[str, object]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def message(self, message: AmiMessage) -> None:
        self._add("message", message)

    def connected(self, channels: list[AmiMessage]) -> None:
        self._add("connected", channels)

    def disconnected(self, gap: ListenerGap) -> None:
        self._add("disconnected", gap)

    def _add(self, kind: str, value: object) -> None:
        self.calls.append((kind, value))
        if self.until(self):
            self.done.set()

    def of(self, kind: str) -> list:
        return [value for k, value in self.calls if k == kind]


def _client(port: int, story: Story, on_message: Callable[[AmiMessage], None] | None = None,
            **overrides: float) -> AmiClient:
    return AmiClient(_config(port, **overrides), clock=FixedClock(START), on_message=on_message or story.message,
                     on_connected=story.connected, on_disconnected=story.disconnected,
                     pong_timeout=overrides.get("ping_interval_seconds", 30.0) * 2)


async def _run_until(client: AmiClient, story: Story, body: Callable[[], Awaitable[None]] | None = None,
                     timeout: float = 15.0) -> None:
    stop = asyncio.Event()
    running = asyncio.create_task(client.run(stop))
    try:
        if body is not None:
            await asyncio.wait_for(client.connected.wait(), timeout)
            await body()
        await asyncio.wait_for(story.done.wait(), timeout)
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout)


def _replay(*names: str, speed: float | None = None) -> ReplayServer:
    return ReplayServer([load_recording(AMI_FIXTURES / n) for n in names], speed=speed)


def _events(*names: str) -> list[tuple[tuple[str, str], ...]]:
    return [m.headers for n in names for m in load_recording(AMI_FIXTURES / n).messages]


@pytest.mark.parametrize("name", ["overlap.ami", "page_ack.ami", "answered_cn_name_chanvars.ami"])
def test_every_event_of_a_stream_arrives_in_order_after_the_channel_snapshot(name: str) -> None:
    expected = _events(name)

    async def scenario() -> tuple[Story, ReplayServer]:
        server = _replay(name)
        story = Story(until=lambda s: len(s.of("message")) >= len(expected))
        await server.start()
        await _run_until(_client(server.port, story), story)
        await server.close()
        return story, server

    story, server = asyncio.run(scenario())
    assert story.calls[0] == ("connected", [])
    assert [m.headers for m in story.of("message")] == expected
    login, show = server.actions[0][:2]
    assert (login["Action"], login["Username"], login["Events"]) == ("Login", "gateway", "on")
    assert show["Action"] == "CoreShowChannels"


def test_an_async_originate_response_event_is_dispatched_like_any_event() -> None:
    story_messages = asyncio.run(_collect_all("page_ack.ami"))
    responses = [m for m in story_messages if m.event == "OriginateResponse"]
    assert [(m["Response"], m["Reason"], m.action_id) for m in responses] == [
        ("Success", "4", "page-20240917-0001")]


async def _collect_all(name: str) -> list[AmiMessage]:
    expected = len(_events(name))
    server = _replay(name)
    story = Story(until=lambda s: len(s.of("message")) >= expected)
    await server.start()
    await _run_until(_client(server.port, story), story)
    await server.close()
    return story.of("message")


def test_concurrent_actions_get_their_own_responses_even_out_of_order() -> None:
    async def reverse_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answers Login and CoreShowChannels, then holds three actions and answers them last-first."""
        held: list[AmiMessage] = []
        async for action in _actions(reader, writer):
            if action["Action"] != "UserEvent":
                await _answer_setup(writer, action)
                continue
            held.append(action)
            if len(held) == 3:
                for waiting in reversed(held):
                    _send(writer, Response="Success", ActionID=waiting.action_id or "", Echo=waiting["Echo"])
                await writer.drain()

    async def scenario() -> list[AmiMessage]:
        async with _peer(reverse_peer) as port:
            story = Story(until=lambda s: False)
            client = _client(port, story)
            replies: list[AmiMessage] = []

            async def body() -> None:
                replies.extend(await asyncio.gather(
                    *(client.send_action("UserEvent", Echo=str(i)) for i in range(3))))
                story.done.set()

            await _run_until(client, story, body)
            return replies

    replies = asyncio.run(scenario())
    assert [r["Echo"] for r in replies] == ["0", "1", "2"]
    assert len({r.action_id for r in replies}) == 3


def test_pings_and_list_actions_run_concurrently_against_the_replay_server() -> None:
    async def scenario() -> tuple[list[AmiMessage], list[list[AmiMessage]]]:
        server = _replay("overlap.ami", speed=1.0)  # a slow stream keeps the connection open
        await server.start()
        story = Story(until=lambda s: False)
        client = _client(server.port, story)
        results: dict[str, object] = {}

        async def body() -> None:
            pings = [client.send_action("Ping", action_id=f"ping-{i}") for i in range(10)]
            lists = [client.collect("CoreShowChannels", "CoreShowChannelsComplete") for _ in range(3)]
            answers = await asyncio.gather(*pings, *lists)
            results["pings"], results["lists"] = answers[:10], answers[10:]
            story.done.set()

        await _run_until(client, story, body)
        await server.close()
        return results["pings"], results["lists"]  # type: ignore[return-value]

    pings, lists = asyncio.run(scenario())
    assert [(p.action_id, p["Ping"]) for p in pings] == [(f"ping-{i}", "Pong") for i in range(10)]
    assert lists == [[], [], []]


def test_after_a_pbx_restart_the_client_reports_one_gap_logs_in_again_and_rebuilds(
        caplog: pytest.LogCaptureFixture) -> None:
    names = ("restart_midcall.ami", "restart_midcall.reconnect.ami")
    first, second = (_events(n) for n in names)
    seen_at_reconnect: list[int] = []

    def until(story: Story) -> bool:
        messages = story.of("message")
        if len(messages) == len(first) + 1:
            seen_at_reconnect.append(len(story.of("disconnected")))
        return len(messages) >= len(first) + len(second)

    async def scenario() -> tuple[Story, ReplayServer]:
        server = _replay(*names)
        story = Story(until=until)
        await server.start()
        await _run_until(_client(server.port, story), story)
        await server.close()
        return story, server

    with caplog.at_level(logging.INFO, logger="dutygw.ami"):
        story, server = asyncio.run(scenario())
    assert [m.headers for m in story.of("message")] == first + second
    assert seen_at_reconnect == [1]
    gap = story.of("disconnected")[0]
    shutdown = story.of("message")[len(first) - 1]
    assert shutdown.event == "Shutdown"
    assert "Shutdown" in gap.reason and gap.last_event_at == shutdown.time and gap.lost_at == START
    kinds = [k for k, _ in story.calls]
    assert kinds.index("disconnected") == len(first) + 1  # after the snapshot and the first stream
    assert kinds[len(first) + 2] == "connected"
    assert [[a["Action"] for a in actions[:2]] for actions in server.actions] == [
        ["Login", "CoreShowChannels"]] * 2
    warning = next(r.getMessage() for r in caplog.records if "reconnected at" in r.getMessage())
    assert "calls that started and ended in between are not recorded" in warning
    assert "in-flight calls rebuilt from CoreShowChannels" in warning
    assert SECRET not in caplog.text


def test_a_raising_event_handler_does_not_stop_dispatch(caplog: pytest.LogCaptureFixture) -> None:
    name = "answered_r2.ami"
    expected = _events(name)
    delivered: list[AmiMessage] = []

    def fragile(message: AmiMessage) -> None:
        delivered.append(message)
        if message.event == "Newchannel":
            raise RuntimeError("handler bug")
        story.message(message)

    story = Story(until=lambda s: len(delivered) >= len(expected))

    async def scenario() -> None:
        server = _replay(name)
        await server.start()
        await _run_until(_client(server.port, story, on_message=fragile), story)
        await server.close()

    with caplog.at_level(logging.ERROR, logger="dutygw.ami"):
        asyncio.run(scenario())
    assert [m.headers for m in delivered] == expected
    failures = [r for r in caplog.records if "dispatch goes on" in r.getMessage()]
    assert len(failures) == sum(1 for m in delivered if m.event == "Newchannel") >= 3
    assert "Event: Newchannel" in failures[0].getMessage()


def test_a_peer_that_stops_answering_pings_counts_as_a_dead_connection() -> None:
    async def silent_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for action in _actions(reader, writer):
            if action["Action"] in ("Login", "CoreShowChannels"):
                await _answer_setup(writer, action)  # Pings get no answer at all

    async def scenario() -> Story:
        async with _peer(silent_peer) as port:
            story = Story(until=lambda s: bool(s.of("disconnected")))
            client = AmiClient(_config(port, ping_interval_seconds=0.1), clock=FixedClock(START),
                               on_message=story.message, on_connected=story.connected,
                               on_disconnected=story.disconnected, pong_timeout=0.2)
            await _run_until(client, story)
            return story

    story = asyncio.run(scenario())
    (gap,) = story.of("disconnected")
    assert gap.reason == "no Pong within 0.2 s"


def test_a_refused_login_names_the_setting_retries_and_never_logs_the_secret(
        caplog: pytest.LogCaptureFixture) -> None:
    attempts: list[AmiMessage] = []

    async def refusing_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for action in _actions(reader, writer):
            attempts.append(action)
            _send(writer, Response="Error", ActionID=action.action_id or "", Message="Authentication failed")
            await writer.drain()

    async def scenario() -> Story:
        async with _peer(refusing_peer) as port:
            story = Story(until=lambda s: False)
            stop = asyncio.Event()
            running = asyncio.create_task(_client(port, story).run(stop))
            while len(attempts) < 3:
                await asyncio.sleep(0.02)
            stop.set()
            await asyncio.wait_for(running, 5)
            return story

    with caplog.at_level(logging.INFO, logger="dutygw.ami"):
        story = asyncio.run(scenario())
    assert story.calls == []  # never connected, so no gap either
    assert [a["Secret"] for a in attempts[:3]] == [SECRET] * 3
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "[ami] user/secret" in errors[0] and "Authentication failed" in errors[0]
    assert SECRET not in caplog.text


# -- scripted peers -----------------------------------------------------------------------------


class _peer:
    """An AMI peer on a free loopback port whose behaviour is one coroutine per connection."""

    def __init__(self, handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]) -> None:
        self.handler = handler

    async def __aenter__(self) -> int:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"Asterisk Call Manager/11.0.0\r\n")
            try:
                await self.handler(reader, writer)
            except ConnectionError:
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()


async def _actions(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):  # type: ignore[no-untyped-def]
    framer = Framer()
    while data := await reader.read(65536):
        for action in framer.feed(data):
            yield action


async def _answer_setup(writer: asyncio.StreamWriter, action: AmiMessage) -> None:
    action_id = action.action_id or ""
    if action["Action"] == "Login":
        _send(writer, Response="Success", ActionID=action_id, Message="Authentication accepted")
    elif action["Action"] == "Logoff":
        _send(writer, Response="Goodbye", ActionID=action_id)
    else:
        _send(writer, Response="Success", ActionID=action_id, EventList="start")
        _send(writer, Event="CoreShowChannelsComplete", ActionID=action_id, ListItems="0")
    await writer.drain()


def _send(writer: asyncio.StreamWriter, **headers: str) -> None:
    writer.write(format_message(AmiMessage(tuple(headers.items()))))


# -- a connection that drops as an Originate is sent: never sent, or sent and unanswered -------


def _originate(client: AmiClient, key: str) -> Awaitable[AmiMessage]:
    return client.send_action("Originate", action_id=key, Channel="PJSIP/13700003333@trunk", Context="paging",
                              Exten="ack", Priority="1", Async="true", Timeout="30000")


def _end(writer: asyncio.StreamWriter, ending: str) -> None:
    """Close as Asterisk does (FIN), or reset the connection (RST: a crashed PBX, a firewall)."""
    if ending == "reset":
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


async def _wait(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_an_originate_with_no_connection_is_not_sent() -> None:
    async def scenario() -> None:
        client = _client(1, Story(until=lambda s: False))  # never connected
        with pytest.raises(AmiNotSent):
            await _originate(client, "page-1")

    asyncio.run(scenario())
    assert not issubclass(AmiNotSent, AmiConnectionLost), "callers must be able to tell the two apart"


def test_an_originate_after_the_pbx_closed_the_connection_is_not_sent() -> None:
    received: list[str] = []
    drop = asyncio.Event()

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def serve() -> None:
            async for action in _actions(reader, writer):
                if action["Action"] == "Originate":
                    received.append(action.action_id or "")
                await _answer_setup(writer, action)

        serving = asyncio.create_task(serve())
        await drop.wait()
        serving.cancel()
        _end(writer, "close")

    async def scenario() -> None:
        async with _peer(peer) as port:
            story = Story(until=lambda s: bool(s.of("disconnected")))
            client = _client(port, story)

            async def body() -> None:
                drop.set()
                await _wait(lambda: bool(story.of("disconnected")))
                with pytest.raises(AmiNotSent):
                    await _originate(client, "page-1")

            await _run_until(client, story, body)

    asyncio.run(scenario())
    assert received == []


@pytest.mark.parametrize("ending", ["close", "reset"])
def test_a_connection_dropped_once_the_originate_was_read_leaves_it_unconfirmed(ending: str) -> None:
    """The PBX read the Originate and the link died before its reply: it may be ringing
    (``AmiConnectionLost``). The next Originate, sent at once, never leaves (``AmiNotSent``)."""
    received: list[str] = []

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for action in _actions(reader, writer):
            if action["Action"] == "Originate":
                received.append(action.action_id or "")
                _end(writer, ending)
                return
            await _answer_setup(writer, action)

    async def scenario() -> tuple[type, type]:
        async with _peer(peer) as port:
            story = Story(until=lambda s: len(s.of("connected")) >= 2)
            client = _client(port, story)
            outcomes: list[type] = []

            async def body() -> None:
                for key in ("page-1", "page-2"):
                    try:
                        await _originate(client, key)
                    except (AmiConnectionLost, AmiNotSent) as exc:
                        outcomes.append(type(exc))

            await _run_until(client, story, body)  # … and until the client has reconnected
            return outcomes[0], outcomes[1]

    first, second = asyncio.run(scenario())
    assert (first, second) == (AmiConnectionLost, AmiNotSent)
    assert received == ["page-1"], "the second Originate reached no connection, not even the new one"


def test_a_connection_dropped_right_after_the_reply_confirms_the_originate() -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for action in _actions(reader, writer):
            if action["Action"] == "Originate":
                _send(writer, Response="Success", ActionID=action.action_id or "", Message="Originate successfully queued")
                await writer.drain()
                _end(writer, "close")
                return
            await _answer_setup(writer, action)

    async def scenario() -> tuple[AmiMessage, type]:
        async with _peer(peer) as port:
            story = Story(until=lambda s: bool(s.of("disconnected")))
            client = _client(port, story)
            results: list[object] = []

            async def body() -> None:
                results.append(await _originate(client, "page-1"))
                try:
                    await _originate(client, "page-2")
                except (AmiConnectionLost, AmiNotSent) as exc:
                    results.append(type(exc))

            await _run_until(client, story, body)
            return results[0], results[1]  # type: ignore[return-value]

    reply, second = asyncio.run(scenario())
    assert reply.response == "Success" and reply.action_id == "page-1"
    assert second is AmiNotSent
