"""The Asterisk snippets: asterisklint on every file, then what each context must do."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller

from gateway.config import PagingConfig
from tests.conftest import SHARED

DIALPLAN = Path(__file__).resolve().parents[1] / "dialplan"
EXTENSIONS = DIALPLAN / "extensions_dutygw.conf"
MANAGER = DIALPLAN / "manager_dutygw.conf"
FAX_MAIL = DIALPLAN / "agi" / "dutygw_fax_mail.py"
RECEIVED_TIFF = next((SHARED / "fixtures" / "fax-received").glob("*.tif"))

needs_lint = pytest.mark.skipif(shutil.which("asterisklint") is None, reason="pip install asterisklint")


def _contexts(text: str) -> dict[str, list[str]]:
    """Context name → its extension lines (comments dropped), in order."""
    contexts: dict[str, list[str]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip() if not raw.lstrip().startswith("same") else raw.strip()
        line = re.sub(r"\s+;.*$", "", line)
        if not line:
            continue
        header = re.fullmatch(r"\[([^\]]+)\](\(\+\))?", line)
        if header:
            current = header.group(1)
            contexts.setdefault(current, [])
        elif current is not None:
            contexts[current].append(line)
    return contexts


def _apps(lines: list[str]) -> list[str]:
    """The application of each priority, e.g. ['NoOp', 'Answer', ...]."""
    apps = []
    for line in lines:
        body = line.split("=>", 1)[1]
        step = body.split(",", 2)[-1] if body.strip().startswith(("s,", "ack,", "_X.,")) else body.split(",", 1)[1]
        step = re.sub(r"^\(\w+\)", "", step.strip())
        apps.append(step.split("(", 1)[0].strip())
    return apps


@needs_lint
def test_asterisklint_finds_nothing_in_the_dialplan(tmp_path: Path) -> None:
    shutil.copy(EXTENSIONS, tmp_path / EXTENSIONS.name)
    # asterisklint wants the [general]/[globals] a real extensions.conf has before the include
    (tmp_path / "extensions.conf").write_text(f"[general]\n\n[globals]\n\n#include {EXTENSIONS.name}\n")
    done = subprocess.run(["asterisklint", "dialplan-check", "extensions.conf"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@needs_lint
def test_asterisklint_does_catch_a_broken_dialplan(tmp_path: Path) -> None:
    broken = EXTENSIONS.read_text().replace("ReceiveFAX(", "RecieveFAX(").replace("?acked)", "?acked")
    (tmp_path / "extensions.conf").write_text("[general]\n\n[globals]\n\n" + broken)
    done = subprocess.run(["asterisklint", "dialplan-check", "extensions.conf"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert "RecieveFAX" in done.stderr and "GotoIf" in done.stderr, done.stderr


@needs_lint
def test_manager_conf_parses_cleanly(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from asterisklint import FileConfigParser\n"
        "from asterisklint.defines import MessageDefManager\n"
        "p = FileConfigParser(); p.include(sys.argv[1])\n"
        "print(sorted((c.name, [(v.variable, v.value) for v in c]) for c in p))\n"
        "sys.exit(1 if MessageDefManager.raised else 0)\n"
    )
    # asterisklint predates the "[section](+)" (add to an existing section) syntax: check it
    # on the plain form, and the (+) line itself below.
    text = MANAGER.read_text()
    assert "\n[general](+)\ntimestampevents=yes\n" in text
    plain = tmp_path / MANAGER.name
    plain.write_text(text.replace("[general](+)", "[general]"))
    done = subprocess.run([sys.executable, "-c", script, str(plain)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "('timestampevents', 'yes')" in done.stdout


def test_manager_user_is_least_privilege() -> None:
    user = dict(line.split("=", 1) for line in _contexts(MANAGER.read_text())["dutygw"])
    assert set(user["read"].split(",")) == {"system", "call", "dialplan", "user"}
    assert set(user["write"].split(",")) == {"originate", "reporting", "call"}  # call: Hangup of a stopped page
    assert user["deny"] == "0.0.0.0/0.0.0.0" and user["permit"].startswith("127.0.0.1/")


def test_duty_number_rings_all_phones_and_never_voicemail() -> None:
    text = EXTENSIONS.read_text()
    duty = _contexts(text)["dutygw-duty"]
    dial = next(line for line in duty if "Dial(" in line)
    target, timeout, options = re.search(r"Dial\(([^,]+),(\d+),(\w*)\)", dial).groups()  # type: ignore[union-attr]
    assert target.split("&") == ["PJSIP/8001", "PJSIP/8002"] and int(timeout) >= 60 and "i" in options
    code = "\n".join(line for lines in _contexts(text).values() for line in lines)
    assert "VoiceMail" not in code and "Macro(" not in code


def test_fax_is_reported_from_the_hangup_handler_with_every_fact() -> None:
    contexts = _contexts(EXTENSIONS.read_text())
    fax, report = contexts["dutygw-fax"], contexts["dutygw-fax-report"]
    assert _apps(fax)[:7] == ["NoOp", "Set", "Set", "Set", "Answer", "ReceiveFAX", "Hangup"]
    assert any("CHANNEL(hangup_handler_push)=dutygw-fax-report,s,1" in line for line in fax)
    assert _apps(report)[-1] == "Return"
    system = next(line for line in report if "System(" in line)
    for option in ("file", "status", "error", "pages", "resolution", "station", "callerid", "received"):
        assert f"--{option} '" in system
    for fact in ("status", "error", "pages", "resolution", "remotestationid"):
        assert re.search(rf"FILTER\([^,]+,\$\{{FAXOPT\({fact}\)\}}\)", "\n".join(report)), fact
    assert "--to fax@duty.local" in system and system.rstrip(")").endswith("&")


def test_paging_context_matches_what_the_gateway_originates() -> None:
    config = PagingConfig()
    paging = _contexts(EXTENSIONS.read_text())[config.context]
    assert all(line.startswith(("exten => ack,", "same =>")) for line in paging)
    apps = _apps(paging)
    assert apps[:2] == ["NoOp", "Answer"] and "AGI" in apps and apps[-1] == "Hangup"
    event = next(line for line in paging if "UserEvent(" in line)
    assert "UserEvent(PageAck,PageID: ${PAGE_ID},Digit: ${ACK_DIGIT}," in event
    assert any("Read(ACK_DIGIT,dutygw/page-fallback,1,,1," in line for line in paging)
    for prompt in ("page-fallback", "page-thanks", "page-goodbye"):
        assert (DIALPLAN / "sounds" / f"{prompt}.wav").is_file()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(envelope.content)  # type: ignore[attr-defined]
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[_Inbox, int]]:
    handler = _Inbox()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port  # type: ignore[misc]
    finally:
        controller.stop()


def _mail(port: int, *args: str) -> int:
    done = subprocess.run([sys.executable, str(FAX_MAIL), "--smtp-port", str(port), "--retry-seconds", "0", *args],
                          capture_output=True, text=True, timeout=60, check=False)
    return done.returncode


def test_fax_mail_script_delivers_what_the_intake_reads(inbox: tuple[_Inbox, int]) -> None:
    from gateway.fax.mail import parse_mail

    handler, port = inbox
    assert _mail(port, "--file", str(RECEIVED_TIFF), "--status", "SUCCESS", "--error", "NO_ERROR",
                 "--pages", "2", "--resolution", "8031x3850", "--station", "+86 27 8765 4329",
                 "--callerid", "02787654329", "--received", "1795332847") == 0
    (raw,) = handler.messages
    mail = parse_mail(raw, arrived_at=datetime(2026, 11, 22, 8, tzinfo=UTC), zone=ZoneInfo("Asia/Shanghai"))
    assert (mail.station, mail.sender_number, mail.pages_declared, mail.status) == (
        "+86 27 8765 4329", "02787654329", 2, "SUCCESS")
    assert mail.received_at == datetime.fromtimestamp(1795332847, UTC)
    assert mail.received_time_source == "fax_server" and not mail.failed
    assert mail.attachment is not None and mail.attachment.data == RECEIVED_TIFF.read_bytes()
    assert mail.attachment.content_type == "image/tiff"


def test_a_failed_fax_without_a_file_is_reported_too(inbox: tuple[_Inbox, int], tmp_path: Path) -> None:
    from gateway.fax.mail import parse_mail

    handler, port = inbox
    assert _mail(port, "--file", str(tmp_path / "never-written.tif"), "--status", "FAILED",
                 "--error", "HANGUP", "--pages", "", "--callerid", "02787654329", "--received", "1795332847") == 0
    mail = parse_mail(handler.messages[0], arrived_at=datetime(2026, 11, 22, 8, tzinfo=UTC),
                      zone=ZoneInfo("Asia/Shanghai"))
    assert mail.failed and mail.attachment is None and mail.error == "HANGUP"


def test_fax_mail_script_reports_an_unreachable_gateway() -> None:
    assert _mail(_free_port(), "--status", "FAILED") == 1


def _free_port() -> int:
    """A loopback port nothing listens on (yet)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
