"""``dutygw replay`` end to end: a real process (or ``main`` in a thread) and a real socket."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Self

import pytest

from gateway import cli
from gateway.ami.framing import format_action, iter_messages
from gateway.ami.message import AmiMessage
from gateway.ami.replay import load_recording
from gateway.clock import SHANGHAI
from tests.conftest import AMI_FIXTURES, ROOT

RESTART = AMI_FIXTURES / "restart_midcall.ami"
RECONNECT = AMI_FIXTURES / "restart_midcall.reconnect.ami"


class Replay:
    """``python -m gateway.cli replay …`` in its own process, on a port it picks."""

    def __init__(self, *args: str | Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "replay", *map(str, args), "--port", "0"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith("replay listening on 127.0.0.1:"), line + self.process.communicate()[1]
        self.port = int(line.rsplit(":", 1)[1])

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate(timeout=10)


def _session(port: int, *extra: bytes) -> list[AmiMessage]:
    """Log in like a client, ask for the channels (and ``extra``), read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(format_action("Login", "t-1", Username="gateway", Secret="x", Events="on")
                     + format_action("CoreShowChannels", "t-2") + b"".join(extra))
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return list(iter_messages(chunks))


def _events(messages: list[AmiMessage]) -> list[AmiMessage]:
    return [m for m in messages if m.event and m.action_id is None]


def _stamps(messages: list[AmiMessage]) -> list[Decimal]:
    return [Decimal(m["Timestamp"]) for m in messages if m.get("Timestamp")]


def test_each_file_is_served_on_its_own_connection_and_the_server_exits_after_the_last() -> None:
    with Replay(RESTART, RECONNECT) as replay:
        first, second = _session(replay.port), _session(replay.port)
        assert replay.process.wait(timeout=10) == 0
    for served, path in ((first, RESTART), (second, RECONNECT)):
        recording = load_recording(path)
        assert served[0]["Greeting"] == "Asterisk Call Manager/11.0.0"
        assert (served[1].response, served[1].action_id, served[1]["Message"]) == (
            "Success", "t-1", "Authentication accepted")
        assert [m.headers for m in _events(served)] == [m.headers for m in recording.messages]
    assert _events(first)[-1].event == "Shutdown"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", replay.port), timeout=2).close()


def test_start_at_moves_every_timestamp_by_one_offset_across_files() -> None:
    with Replay(RESTART, RECONNECT, "--start-at", "2026-11-24T02:30:00") as replay:
        first, second = _session(replay.port), _session(replay.port)
    wanted = Decimal(int(datetime(2026, 11, 24, 2, 30, tzinfo=SHANGHAI).timestamp()))
    shifted = _stamps(_events(first)) + _stamps(_events(second))
    original = _stamps(list(load_recording(RESTART).messages) + list(load_recording(RECONNECT).messages))
    assert shifted[0] == wanted
    assert {s - o for s, o in zip(shifted, original, strict=True)} == {wanted - original[0]}
    stamped = [m for m in _events(first) + _events(second) if m.get("Timestamp")]
    assert stamped[0].time == datetime(2026, 11, 24, 2, 30, tzinfo=SHANGHAI)
    with_tv = [m for m in stamped if m.get("EventTV")]
    assert with_tv and all(abs((_tv(m) - m.time).total_seconds()) < 0.002 for m in with_tv)  # type: ignore[operator]


def _tv(message: AmiMessage) -> datetime:
    return datetime.strptime(message["EventTV"], "%Y-%m-%dT%H:%M:%S.%f%z")


def test_the_server_answers_ping_and_channels_itself_and_drops_the_recorders_responses() -> None:
    with Replay(AMI_FIXTURES / "page_ack.ami") as replay:
        served = _session(replay.port, format_action("Ping", "t-3"), format_action("Originate", "t-4"))
    by_id = {m.action_id: m for m in served if m.response and not m.event}
    assert by_id["t-2"]["EventList"] == "start"
    assert [m["ListItems"] for m in served if m.event == "CoreShowChannelsComplete"] == ["0"]
    assert (by_id["t-3"].response, by_id["t-3"]["Ping"]) == ("Success", "Pong")
    assert by_id["t-4"].response == "Error"  # nothing is dialled by a replay
    assert set(by_id) == {"t-1", "t-2", "t-3", "t-4"}  # the recorder's Originate and Goodbye are gone
    originate = [m for m in served if m.event == "OriginateResponse"]
    assert [m.action_id for m in originate] == ["page-20240917-0001"]  # recorded events stay whole


def test_speed_paces_the_stream_by_its_timestamps() -> None:
    stamps = _stamps(list(load_recording(RECONNECT).messages))
    span = float(stamps[-1] - stamps[0])
    with Replay(RECONNECT, "--speed", str(span / 1.0)) as replay:  # the whole span in one second
        arrivals = _arrivals(replay.port)
    first = next(t for t, count in arrivals if count >= 1)
    last = next(t for t, count in arrivals if count == len(stamps))
    assert 0.9 <= last - first < 5


def _arrivals(port: int) -> list[tuple[float, int]]:
    """When each chunk came, and how many timestamped messages had come by then."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(format_action("Login", "t-1") + format_action("CoreShowChannels", "t-2"))
        arrivals, data = [], b""
        while chunk := sock.recv(65536):
            data += chunk
            arrivals.append((time.monotonic(), len(_stamps(list(iter_messages(data))))))
    return arrivals


def test_dutygw_main_serves_in_a_thread_and_returns_zero(capsys: pytest.CaptureFixture[str]) -> None:
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(cli.main(["replay", str(RECONNECT), "--port", "0"])))
    thread.start()
    deadline = time.monotonic() + 10
    out = ""
    while "listening on" not in out and time.monotonic() < deadline:
        out += capsys.readouterr().out
        time.sleep(0.02)
    served = _session(int(out.strip().rsplit(":", 1)[1]))
    thread.join(timeout=10)
    assert result == [0]
    assert len(_events(served)) == len(load_recording(RECONNECT).messages)


def test_a_missing_file_is_an_input_error_with_its_exit_code(tmp_path: Path) -> None:
    assert cli.main(["replay", str(tmp_path / "nope.ami"), "--port", "0"]) == 4
