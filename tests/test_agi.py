"""The press-1 dialog over the real AGI protocol: FastAGI on loopback and the local script."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from gateway.clock import UTC, FixedClock
from gateway.paging.agi import (
    GOODBYE_TEXT,
    THANKS_TEXT,
    FastAgiServer,
    PageAck,
    encode_page_text,
    page_text,
    user_event_body,
)
from gateway.paging.speech import FALLBACK_PAGE, text_key

ROOT = Path(__file__).resolve().parents[1]
TEXT = "这里是政务值班室，王局长您好。传真〔2026〕0137号，省应急管理厅，特急，关于防汛工作的通知。按1确认收到，按2重听。"


class NamedPrompts:
    """Names each text by its hash, as the speech cache does, without running espeak-ng."""

    def prompt(self, text: str, fallback: str = FALLBACK_PAGE) -> str:
        return f"/sounds/page-{text_key(text)}"


@dataclass
class FakeAsterisk:
    """The PBX's half of one AGI session: answers each command as Asterisk 22 does.

    ``keys`` says what the callee does at each chance to press a key (a ``STREAM FILE``
    with escape digits, or a ``WAIT FOR DIGIT``): a digit, "" for nothing, or "hangup".
    """

    keys: list[str]
    variables: dict[str, str]
    commands: list[str] = field(default_factory=list)
    user_events: list[str] = field(default_factory=list)
    played: list[str] = field(default_factory=list)

    def talk(self, reader: IO[str], writer: IO[str]) -> None:
        env = {"agi_network": "yes", "agi_network_script": "page", "agi_channel": "PJSIP/trunk-0000001b",
               "agi_context": "paging", "agi_extension": "ack", "agi_uniqueid": "1795332880.27"}
        writer.write("".join(f"{k}: {v}\n" for k, v in env.items()) + "\n")
        writer.flush()
        for line in reader:
            command = line.strip()
            self.commands.append(command)
            reply = self.answer(command)
            if reply is None:
                return
            writer.write(reply + "\n")
            writer.flush()
            if command.startswith("HANGUP"):
                return

    def answer(self, command: str) -> str | None:
        if command.startswith("GET VARIABLE"):
            name = command.split()[-1].strip('"')
            value = self.variables.get(name)
            return "200 result=0" if value is None else f"200 result=1 ({value})"
        if command.startswith("STREAM FILE"):
            match = re.match(r'STREAM FILE (\S+) "([^"]*)"', command)
            assert match, command
            self.played.append(match.group(1))
            return self._key("200 result={} endpos=8000") if match.group(2) else "200 result=0 endpos=8000"
        if command.startswith("WAIT FOR DIGIT"):
            return self._key("200 result={}")
        if command.startswith("EXEC UserEvent"):
            self.user_events.append(command.split(" ", 2)[2].strip('"'))
            return "200 result=0"
        return "200 result=1"

    def _key(self, template: str) -> str | None:
        key = self.keys.pop(0) if self.keys else ""
        if key == "hangup":
            return None
        return template.format(ord(key) if key else 0)


def _variables() -> dict[str, str]:
    return {"PAGE_ID": "dutygw-page-7-1", "PAGE_NUMBER": "13700003333", "PAGE_TEXT_B64": encode_page_text(TEXT)}


def _dial_fastagi(port: int, pbx: FakeAsterisk) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock, \
            sock.makefile("r", encoding="utf-8", newline="\n") as reader, \
            sock.makefile("w", encoding="utf-8", newline="\n") as writer:
        pbx.talk(reader, writer)


async def _run_calls(*pbxes: FakeAsterisk) -> list[PageAck]:
    acks: list[PageAck] = []
    clock = FixedClock()
    server = FastAgiServer("127.0.0.1", 0, NamedPrompts(), clock, on_ack=acks.append)
    port = await server.start()
    try:
        for pbx in pbxes:
            await asyncio.to_thread(_dial_fastagi, port, pbx)
        await asyncio.sleep(0.05)  # the last on_ack is scheduled from the worker thread
    finally:
        await server.stop()
    return acks


def _events(pbx: FakeAsterisk) -> list[tuple[str, str, str]]:
    """(Digit, ReadStatus, Round) of each PageAck the dialplan would raise."""
    parsed = []
    for body in pbx.user_events:
        name, *fields = body.split(",")
        assert name == "PageAck"
        headers = dict(f.split(": ", 1) if ": " in f else (f.rstrip(":"), "") for f in fields)
        assert headers["PageID"] == "dutygw-page-7-1" and headers["Number"] == "13700003333"
        parsed.append((headers["Digit"], headers["ReadStatus"], headers["Round"]))
    return parsed


def test_press_1_during_the_page_acknowledges_and_thanks() -> None:
    pbx = FakeAsterisk(["1"], _variables())
    acks = asyncio.run(_run_calls(pbx))
    assert _events(pbx) == [("1", "OK", "1")]
    assert pbx.played == [NamedPrompts().prompt(TEXT), NamedPrompts().prompt(THANKS_TEXT)]
    assert pbx.commands[-1].startswith("HANGUP")
    assert [(a.page_id, a.digit, a.number, a.at) for a in acks] == [
        ("dutygw-page-7-1", "1", "13700003333", FixedClock().now())]


def test_2_repeats_and_a_1_while_waiting_counts() -> None:
    pbx = FakeAsterisk(["2", "", "1"], _variables())
    asyncio.run(_run_calls(pbx))
    assert _events(pbx) == [("2", "OK", "1"), ("1", "OK", "2")]
    assert pbx.played.count(NamedPrompts().prompt(TEXT)) == 2


def test_silence_for_three_rounds_is_not_an_acknowledgement() -> None:
    pbx = FakeAsterisk([], _variables())
    acks = asyncio.run(_run_calls(pbx))
    assert _events(pbx) == [("", "TIMEOUT", "1"), ("", "TIMEOUT", "2"), ("", "TIMEOUT", "3")]
    assert pbx.played[-1] == NamedPrompts().prompt(GOODBYE_TEXT)
    assert all(a.digit != "1" for a in acks)


def test_a_hang_up_mid_dialog_ends_quietly_and_the_server_keeps_serving() -> None:
    dropped = FakeAsterisk(["", "hangup"], _variables())
    next_call = FakeAsterisk(["1"], _variables())
    acks = asyncio.run(_run_calls(dropped, next_call))
    assert _events(dropped) == []
    assert [a.digit for a in acks] == ["1"]


def test_missing_page_text_plays_the_recorded_fallback() -> None:
    pbx = FakeAsterisk(["1"], {"PAGE_ID": "dutygw-page-7-1", "PAGE_NUMBER": "13700003333"})
    asyncio.run(_run_calls(pbx))
    assert pbx.played[0] == FALLBACK_PAGE


def test_the_local_agi_script_runs_the_same_dialog(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DUTYGW_SOUNDS_DIR": str(tmp_path / "sounds")}
    script = subprocess.Popen([sys.executable, str(ROOT / "dialplan" / "agi" / "dutygw_page.py")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8", env=env)
    pbx = FakeAsterisk(["", "", "1"], _variables())
    assert script.stdout is not None and script.stdin is not None
    with script.stdin, script.stdout:
        pbx.talk(script.stdout, script.stdin)
    assert script.wait(timeout=60) == 0
    assert _events(pbx) == [("", "TIMEOUT", "1"), ("1", "OK", "2")]
    assert pbx.played[0] in (FALLBACK_PAGE, str(tmp_path / "sounds" / f"page-{text_key(TEXT)}"))


@pytest.mark.parametrize("text", [TEXT, "a,b=c;d", "紧急，请回电 027-87654321"])
def test_page_text_survives_the_originate_variable(text: str) -> None:
    encoded = encode_page_text(text)
    assert "," not in encoded and page_text(encoded) == text
    assert page_text("not base64!") == ""


def test_user_event_body_is_what_the_gateway_parses() -> None:
    body = user_event_body(PageAck("dutygw-page-1-2", "1", "OK", 2, "13700003333"))
    assert body == ("PageAck,PageID: dutygw-page-1-2,Digit: 1,ReadStatus: OK,Round: 2,"
                    "Number: 13700003333,Source: agi")
    assert FixedClock().now().tzinfo is UTC
