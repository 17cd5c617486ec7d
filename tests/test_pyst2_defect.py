"""Why the gateway has its own AMI client: pyst2's ``Manager`` on real streams, over a real socket.

These tests assert pyst2's defects. If one of them starts failing, pyst2 has changed:
reconsider whether ``gateway/ami/client.py`` is still needed.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from asterisk.manager import Event, Manager

from gateway.ami.framing import iter_messages
from gateway.ami.replay import load_recording, serve_replay
from tests.conftest import AMI_FIXTURES

CHANVARS = AMI_FIXTURES / "answered_cn_name_chanvars.ami"
RECONSIDER = "pyst2 seems fixed: reconsider gateway/ami/client.py (see tests/test_pyst2_defect.py)"


@contextmanager
def _replay(path: Path) -> Iterator[int]:
    """The gateway's replay server for ``path``, on its own event loop in a thread."""
    ready, ports = threading.Event(), []

    def listening(port: int) -> None:
        ports.append(port)
        ready.set()

    thread = threading.Thread(target=asyncio.run, args=(serve_replay([path], listening=listening),))
    thread.start()
    assert ready.wait(10)
    yield ports[0]
    thread.join(timeout=10)


@contextmanager
def _raw_peer(stream: bytes) -> Iterator[int]:
    """A peer that sends ``stream`` byte for byte once the client has said anything, then closes."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.sendall(stream.split(b"\r\n", 1)[0] + b"\r\n")  # the greeting
            connection.recv(65536)  # the Login
            connection.sendall(stream.split(b"\r\n", 1)[1])

    thread = threading.Thread(target=serve)
    thread.start()
    yield listener.getsockname()[1]
    thread.join(timeout=10)
    listener.close()


def _pyst2_events(port: int) -> list[Event]:
    """Log in with pyst2, register a catch-all callback, keep what it is given until EOF."""
    received: list[Event] = []
    manager = Manager()
    manager.register_event("*", lambda event, _: received.append(event))
    manager.connect("127.0.0.1", port)
    manager.login("gateway", "x")
    manager.message_thread.join(timeout=15)  # ends when the peer closes (or when it crashed)
    manager._running.clear()  # so pyst2's __del__ does not log off on a dead socket and hang
    manager._event_queue.put(None)
    manager.event_dispatch_thread.join(timeout=5)
    return received


@pytest.fixture
def thread_errors(monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    """Exceptions that killed a thread (pyst2's threads die silently otherwise)."""
    errors: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    return errors


def test_pyst2_loses_every_event_from_the_first_chanvariable_header_on(thread_errors: list[BaseException]) -> None:
    recording = load_recording(CHANVARS)
    first_chanvar = next(i for i, m in enumerate(recording.messages) if m.get("ChanVariable"))
    with _replay(CHANVARS) as port:
        received = _pyst2_events(port)

    names = [e.name for e in received]
    assert len(names) < len(recording.messages), RECONSIDER
    assert names == [m.event for m in recording.messages[:first_chanvar]]
    assert any(isinstance(e, AttributeError) and "has_key" in str(e) for e in thread_errors), RECONSIDER
    assert len(recording.messages) - len(names) >= 90  # the whole call is lost


def test_our_framing_gets_every_event_and_the_name_of_the_same_stream() -> None:
    data = CHANVARS.read_bytes()
    events = [m for m in iter_messages(data) if m.event]
    assert len(events) == len(re.findall(rb"(?:^|\r\n)Event: ", data))
    assert {m.get("CallerIDName") for m in events if m.event == "Newchannel"} >= {"张三"}
    assert sum(len(m.get_all("ChanVariable")) for m in events) == data.count(b"\r\nChanVariable: ")
    assert any("CALLERID(name)=张三" in m.get_all("ChanVariable") for m in events)


def _gbk_stream() -> bytes:
    """The real stream as an older carrier would send it: the name in GBK, no channel variables."""
    data = CHANVARS.read_bytes()
    data = re.sub(rb"ChanVariable: [^\r]*\r\n", b"", data)
    return data.replace("张三".encode(), "张三".encode("gbk"))


def test_pyst2_drops_a_gbk_caller_name_that_our_framing_keeps(thread_errors: list[BaseException]) -> None:
    stream = _gbk_stream()
    with _raw_peer(stream) as port:
        received = _pyst2_events(port)

    assert thread_errors == []  # without ChanVariable pyst2 survives the stream…
    pyst2_names = {e.get_header("CallerIDName") for e in received if e.name == "Newchannel"}
    assert "张三" not in pyst2_names and "" in pyst2_names, RECONSIDER  # …but the name is gone
    ours = {m.get("CallerIDName") for m in iter_messages(stream) if m.event == "Newchannel"}
    assert "张三" in ours
