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
    LivePage,
    PageAck,
    page_text,
    page_text_variables,
    read_page_text,
    parse_agi_env,
    user_event_body,
)
from gateway.paging.pager import new_page_token
from gateway.paging.speech import FALLBACK_PAGE, text_key

ROOT = Path(__file__).resolve().parents[1]
TEXT = "这里是政务值班室，王局长您好。传真〔2026〕0137号，省应急管理厅，特急，关于防汛工作的通知。按1确认收到，按2重听。"
TOKEN = new_page_token()
"""The live page's id, as the pager makes one per attempt."""
CHANNEL = "PJSIP/trunk-0000001b"


def text_variables(text: str) -> dict[str, str]:
    """The channel variables an Originate with this page text sets."""
    return dict(variable.split("=", 1) for variable in page_text_variables(text))


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
    env: dict[str, str] = field(default_factory=dict)
    """Overrides of the AGI environment (``agi_channel``, ``agi_arg_1``…)."""

    def talk(self, reader: IO[str], writer: IO[str]) -> None:
        env = {"agi_network": "yes", "agi_network_script": "page", "agi_channel": CHANNEL,
               "agi_context": "paging", "agi_extension": "ack", "agi_uniqueid": "1795332880.27", **self.env}
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
    return {"PAGE_ID": TOKEN, "PAGE_NUMBER": "13700003333", **text_variables(TEXT)}


@dataclass
class Directory:
    """The pager's side of ``authorise``: one live page, on one channel."""

    pages: dict[tuple[str, str], LivePage]
    asked: list[tuple[str, str, str]] = field(default_factory=list)

    async def authorise(self, token: str, channel: str, uniqueid: str) -> LivePage | None:
        self.asked.append((token, channel, uniqueid))
        return self.pages.get((token, channel))


def _live(text: str = TEXT) -> Directory:
    return Directory({(TOKEN, CHANNEL): LivePage(TOKEN, "13700003333", text)})


def _dial_fastagi(port: int, pbx: FakeAsterisk) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock, \
            sock.makefile("r", encoding="utf-8", newline="\n") as reader, \
            sock.makefile("w", encoding="utf-8", newline="\n") as writer:
        pbx.talk(reader, writer)


async def _run_calls(*pbxes: FakeAsterisk, directory: Directory | None = None) -> list[PageAck]:
    acks: list[PageAck] = []
    clock = FixedClock()
    directory = directory or _live()
    server = FastAgiServer("127.0.0.1", 0, NamedPrompts(), clock, authorise=directory.authorise,
                           on_ack=acks.append)
    port = await server.start()
    try:
        for pbx in pbxes:
            await asyncio.to_thread(_dial_fastagi, port, pbx)
    finally:
        await server.stop()  # waits for the workers; their on_ack calls are queued on this loop
    await asyncio.sleep(0)
    return acks


def _events(pbx: FakeAsterisk) -> list[tuple[str, str, str]]:
    """(Digit, ReadStatus, Round) of each PageAck the dialplan would raise."""
    parsed = []
    for body in pbx.user_events:
        name, *fields = body.split(",")
        assert name == "PageAck"
        headers = dict(f.split(": ", 1) if ": " in f else (f.rstrip(":"), "") for f in fields)
        assert headers["PageID"] == TOKEN and headers["Number"] == "13700003333"
        parsed.append((headers["Digit"], headers["ReadStatus"], headers["Round"]))
    return parsed


def test_press_1_during_the_page_acknowledges_and_thanks() -> None:
    pbx = FakeAsterisk(["1"], _variables())
    acks = asyncio.run(_run_calls(pbx))
    assert _events(pbx) == [("1", "OK", "1")]
    assert pbx.played == [NamedPrompts().prompt(TEXT), NamedPrompts().prompt(THANKS_TEXT)]
    assert pbx.commands[-1].startswith("HANGUP")
    assert [(a.page_id, a.digit, a.number, a.at) for a in acks] == [(TOKEN, "1", "13700003333", FixedClock().now())]
    assert any(c.startswith('SET VARIABLE "PAGE_DIALOG" "done"') for c in pbx.commands), "tells the dialplan"


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
    pbx = FakeAsterisk(["1"], {"PAGE_ID": TOKEN, "PAGE_NUMBER": "13700003333"})
    asyncio.run(_run_calls(pbx, directory=_live(text="")))
    assert pbx.played[0] == FALLBACK_PAGE


def test_the_spoken_text_is_the_gateways_never_the_peers() -> None:
    """A channel variable claiming other words changes nothing: the pager's text is spoken."""
    forged = {**_variables(), **text_variables("紧急通知：请立即转账到以下账户")}
    pbx = FakeAsterisk(["1"], forged)
    asyncio.run(_run_calls(pbx))
    assert pbx.played[0] == NamedPrompts().prompt(TEXT)


@pytest.mark.parametrize("variables, env", [
    ({"PAGE_ID": "dutygw-page-1-1", "PAGE_NUMBER": "13700003333"}, {}),  # the old, guessable id
    ({"PAGE_ID": "dutygw-page-1-1"}, {"agi_arg_1": "dutygw-page-1-1"}),  # the same, as the AGI argument
    (_variables(), {"agi_channel": "PJSIP/trunk-000000ff"}),  # the live token, from a channel not ours
    ({}, {}),  # no id at all
])
def test_a_forged_session_is_refused_and_acknowledges_nothing(variables: dict[str, str],
                                                              env: dict[str, str]) -> None:
    pbx = FakeAsterisk(["1", "1", "1"], variables, env=env)
    acks = asyncio.run(_run_calls(pbx))
    assert acks == [] and pbx.user_events == [] and pbx.played == []
    assert all(c.startswith("GET VARIABLE") for c in pbx.commands), "nothing but the id was asked"


def test_the_page_id_can_come_as_the_agi_argument() -> None:
    """The dialplan passes ${PAGE_ID} as AGI's first argument: no round trip is needed."""
    pbx = FakeAsterisk(["1"], {**_variables(), "PAGE_ID": ""}, env={"agi_arg_1": TOKEN})
    directory = _live()
    acks = asyncio.run(_run_calls(pbx, directory=directory))
    assert [a.digit for a in acks] == ["1"]
    assert directory.asked == [(TOKEN, CHANNEL, "1795332880.27")]
    assert not any(c.startswith("GET VARIABLE") for c in pbx.commands)


def test_eight_idle_connections_do_not_hold_up_a_real_dialog() -> None:
    """Idle sessions wait on the event loop, not in the dialog's worker threads."""

    async def scenario() -> tuple[list[PageAck], list[bytes]]:
        acks: list[PageAck] = []
        server = FastAgiServer("127.0.0.1", 0, NamedPrompts(), FixedClock(), authorise=_live().authorise,
                               on_ack=acks.append, env_timeout=120)
        port = await server.start()
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(8)]
        try:
            pbx = FakeAsterisk(["1"], _variables())
            await asyncio.wait_for(asyncio.to_thread(_dial_fastagi, port, pbx), 60)
            still_open = []
            for sock in idle:  # none was dropped to make room: each is still waiting for its environment
                sock.setblocking(False)
                try:
                    still_open.append(sock.recv(1))
                except BlockingIOError:
                    still_open.append(b"open")
        finally:
            for sock in idle:
                sock.close()
            await server.stop()
        await asyncio.sleep(0)
        return acks, still_open

    acks, still_open = asyncio.run(scenario())
    assert [a.digit for a in acks] == ["1"]
    assert still_open == [b"open"] * 8


def test_an_idle_connection_is_closed_after_the_environment_timeout() -> None:
    async def scenario() -> bytes:
        server = FastAgiServer("127.0.0.1", 0, NamedPrompts(), FixedClock(), authorise=_live().authorise,
                               env_timeout=0.2)
        port = await server.start()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                return await asyncio.to_thread(sock.recv, 10)  # b"" once the server closes it
        finally:
            await server.stop()

    assert asyncio.run(scenario()) == b""


def test_fastagi_listens_only_on_the_configured_address() -> None:
    async def scenario() -> tuple[str, bool]:
        server = FastAgiServer("127.0.0.1", 0, NamedPrompts(), FixedClock(), authorise=_live().authorise)
        port = await server.start()
        try:
            assert server._listener is not None
            bound = server._listener.getsockname()[0]
            try:
                socket.create_connection(("127.0.0.2", port), timeout=5).close()
                other = True
            except OSError:
                other = False
            return bound, other
        finally:
            await server.stop()

    assert asyncio.run(scenario()) == ("127.0.0.1", False)
    with pytest.raises(OSError, match="agi_host"):
        asyncio.run(FastAgiServer("", 0, NamedPrompts(), FixedClock()).start())


def test_agi_environment_parsing() -> None:
    data = b"agi_network: yes\nagi_channel: PJSIP/trunk-00000040\nagi_arg_1: abc:def\n\nGARBAGE: 1\n"
    assert parse_agi_env(data) == {"agi_network": "yes", "agi_channel": "PJSIP/trunk-00000040",
                                   "agi_arg_1": "abc:def"}


def _local_script(pbx: FakeAsterisk, **environment: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "DUTYGW_SOUNDS_DIR"}
    env.update(PYTHONPATH=str(ROOT), **environment)
    script = subprocess.Popen([sys.executable, str(ROOT / "dialplan" / "agi" / "dutygw_page.py")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8", env=env)
    assert script.stdout is not None and script.stdin is not None
    with script.stdin, script.stdout:
        pbx.talk(script.stdout, script.stdin)
    return script.wait(timeout=60)


def test_the_local_agi_script_runs_the_same_dialog(tmp_path: Path) -> None:
    pbx = FakeAsterisk(["", "", "1"], _variables())
    assert _local_script(pbx, DUTYGW_SOUNDS_DIR=str(tmp_path / "sounds")) == 0
    assert _events(pbx) == [("", "TIMEOUT", "1"), ("1", "OK", "2")]
    assert pbx.played[0] == str(tmp_path / "sounds" / f"page-{text_key(TEXT)}")


def test_the_local_agi_renders_where_the_dialplan_says(tmp_path: Path) -> None:
    """``AGI(dutygw_page.py,${PAGE_ID},${PAGE_SOUNDS})``: the second argument is the folder."""
    folder = tmp_path / "from-dialplan"
    pbx = FakeAsterisk(["1"], _variables(), env={"agi_arg_1": TOKEN, "agi_arg_2": str(folder)})
    assert _local_script(pbx, DUTYGW_SOUNDS_DIR=str(tmp_path / "elsewhere")) == 0
    assert pbx.played[0] == str(folder / f"page-{text_key(TEXT)}")
    assert (folder / f"page-{text_key(TEXT)}.wav").is_file() and not (tmp_path / "elsewhere").exists()


LONG_PAGE = "现有三份紧急传真。" + "第一份，湖北省应急管理厅来文，关于长江流域防汛抗旱紧急部署的通知，特急。" * 12


@pytest.mark.parametrize("text", [TEXT, "a,b=c;d", "紧急，请回电 027-87654321", LONG_PAGE])
def test_page_text_survives_the_originate_variables(text: str) -> None:
    variables = text_variables(text)
    assert all("," not in value for value in variables.values())
    assert read_page_text(variables.get) == text
    assert page_text("not base64!") == ""


def test_no_originate_line_is_longer_than_asterisks_ami_limit() -> None:
    """Asterisk's manager discards an input line over 1,024 bytes, and with it the Originate."""
    from gateway.ami.framing import format_action
    from gateway.config import load_config
    from gateway.paging.escalation import PlaceCall
    from gateway.paging.originate import originate_fields

    call = PlaceCall(1, "attempt-1", "13700003333", "director", "主任", (1, 2, 3))
    wire = format_action("Originate", "a1", **originate_fields(load_config(ROOT / "examples" / "dutygw.toml", env={}), call, LONG_PAGE, 4573, "tok"))
    assert len(text_variables(LONG_PAGE)) > 1
    assert max(len(line) for line in wire.split(b"\r\n")) <= 1024


def test_user_event_body_is_what_the_gateway_parses() -> None:
    body = user_event_body(PageAck("dutygw-page-1-2", "1", "OK", 2, "13700003333"))
    assert body == ("PageAck,PageID: dutygw-page-1-2,Digit: 1,ReadStatus: OK,Round: 2,"
                    "Number: 13700003333,Source: agi")
    assert FixedClock().now().tzinfo is UTC
