"""The Asterisk snippets: asterisklint on every file, then what each context must do."""

from __future__ import annotations

import ast
import json
import os
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

from gateway.config import PagingConfig, SmtpConfig
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


def _lintable(text: str) -> str:
    """asterisklint predates "[globals](+)" (add to the [globals] extensions.conf has): lint
    the snippet as the one [globals]; the (+) header itself is checked below."""
    assert text.count("\n[globals](+)\n") == 1
    return text.replace("\n[globals](+)\n", "\n[globals]\n")


@needs_lint
def test_asterisklint_finds_nothing_in_the_dialplan(tmp_path: Path) -> None:
    (tmp_path / EXTENSIONS.name).write_text(_lintable(EXTENSIONS.read_text()))
    # asterisklint wants the [general] a real extensions.conf has before the include
    (tmp_path / "extensions.conf").write_text(f"[general]\n\n#include {EXTENSIONS.name}\n")
    done = subprocess.run(["asterisklint", "dialplan-check", "extensions.conf"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@needs_lint
def test_asterisklint_does_catch_a_broken_dialplan(tmp_path: Path) -> None:
    broken = _lintable(EXTENSIONS.read_text()).replace("ReceiveFAX(", "RecieveFAX(").replace("?acked)", "?acked")
    (tmp_path / "extensions.conf").write_text("[general]\n\n" + broken)
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
    target, timeout, options = re.search(r"Dial\(([^,]+),(\d+),(.*)\)$", dial).groups()  # type: ignore[union-attr]
    assert target.split("&") == ["PJSIP/8001", "PJSIP/8002"] and int(timeout) >= 60 and options.startswith("i")
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
    assert system.rstrip(")").endswith("&")


def _globals(text: str) -> dict[str, tuple[str, str]]:
    """The snippet's [globals](+) settings: name → (value, comment)."""
    block = text.split("\n[globals](+)\n", 1)[1].split("\n[", 1)[0]
    settings = {}
    for line in block.splitlines():
        if "=" in line and not line.startswith(";"):
            setting, _, comment = line.partition(";")
            name, value = setting.split("=", 1)
            settings[name.strip()] = (value.strip(), comment.strip())
    return settings


def test_fax_intake_address_and_recipient_are_edit_marked_globals_at_the_top() -> None:
    text = EXTENSIONS.read_text()
    assert text.index("[globals](+)") < text.index("[dutygw-duty]")
    settings = _globals(text)
    smtp = SmtpConfig()
    assert settings["DUTYGW_INTAKE_HOST"][0] == smtp.host and settings["DUTYGW_INTAKE_PORT"][0] == str(smtp.port)
    assert settings["DUTYGW_FAX_TO"][0] == smtp.recipients[0]
    assert all(comment.startswith("EDIT") for _, comment in settings.values())
    system = next(line for line in _contexts(text)["dutygw-fax-report"] if "System(" in line)
    assert "--to '${DUTYGW_FAX_TO}' --smtp-host '${DUTYGW_INTAKE_HOST}' --smtp-port '${DUTYGW_INTAKE_PORT}'" in system
    assert "127.0.0.1" not in system and "2525" not in system and "@" not in system


def _asterisk_filter(allowed: str, text: str) -> str:
    """Asterisk 22's FILTER(): ranges a-b, backslash escapes (\\x41, \\-, \\n …), as
    funcs/func_strings.c expands them with ast_get_encoded_char."""
    def char(at: int) -> tuple[str, int]:
        if allowed[at] != "\\":
            return allowed[at], 1
        nxt = allowed[at + 1]
        if nxt == "x":
            digits = re.match(r"[0-9a-fA-F]{1,2}", allowed[at + 2:])
            assert digits
            return chr(int(digits.group(), 16)), 2 + len(digits.group())
        return {"n": "\n", "r": "\r", "t": "\t"}.get(nxt, nxt), 2

    chars: set[str] = set()
    at = 0
    while at < len(allowed):
        first, used = char(at)
        at += used
        if at < len(allowed) and allowed[at] == "-" and at + 1 < len(allowed):
            last, used = char(at + 1)
            at += 1 + used
            chars.update(chr(c) for c in range(ord(first), ord(last) + 1))
        else:
            chars.add(first)
    return "".join(c for c in text if c in chars)


def _filter_of(fact: str) -> str:
    report = "\n".join(_contexts(EXTENSIONS.read_text())["dutygw-fax-report"])
    match = re.search(rf"FILTER\((.+?),\$\{{FAXOPT\({fact}\)\}}\)", report)
    assert match, fact
    return match.group(1)


@pytest.mark.parametrize("error", [
    "The call dropped prematurely", "Far end cannot receive at the resolution of the image",
    "Disconnected after permitted retries", "T.30 timeout: T1 expired", "NO_ERROR", "HANGUP",
])
def test_the_fax_error_keeps_its_words(error: str) -> None:
    assert _asterisk_filter(_filter_of("error"), error) == error


def test_the_fax_error_filter_keeps_nothing_a_shell_acts_on() -> None:
    hostile = "x' ; rm -rf / ; echo `id` $(id) \"quoted\" & | > < * ? \\ ! # % ~ { } [ ] = , ^"
    kept = _asterisk_filter(_filter_of("error"), hostile)
    assert not set(kept) & set("'\";`$()&|<>*?\\!#%~{}[]=,^\n"), kept
    assert "rm -rf / " in kept  # the words themselves stay; inside '…' they are inert text


def test_duty_calls_are_recorded_from_answer_and_recording_is_optional() -> None:
    contexts = _contexts(EXTENSIONS.read_text())
    duty, record = contexts["dutygw-duty"], contexts["dutygw-record"]
    assert not any("MixMonitor" in line for line in duty)  # nothing starts before a phone answers
    dial = next(line for line in duty if "Dial(" in line)
    assert "U(dutygw-record^s^1^${UNIQUEID})" in dial  # Gosub on the answering channel, pre-bridge
    starts = next(line for line in record if "MixMonitor(" in line)
    assert starts.startswith('exten => s,1,ExecIf($["${DUTYGW_RECORD}" = "yes"]?MixMonitor(')
    assert "${ARG1}" in starts and _apps(record)[-1] == "Return"
    assert _globals(EXTENSIONS.read_text())["DUTYGW_RECORD"][0] == "yes"


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


FAX_MAIL_FLOOR = (3, 8)
"""The oldest Python the PBX-side script promises to run on (its docstring says why)."""


def _interpreters() -> dict[tuple[int, int], str]:
    """Every python3 this machine offers (Debian's, pyenv's, uv's, the suite's own), by version."""
    candidates = {sys.executable, *(shutil.which(f"python3.{minor}") or "" for minor in range(6, 15))}
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates.update(str(p) for p in pyenv.glob("3.*/bin/python3"))
    candidates.update(str(p) for p in Path("/usr/bin").glob("python3.*") if re.fullmatch(r"python3\.\d+", p.name))
    uv = shutil.which("uv")
    if uv:
        listed = subprocess.run([uv, "python", "list", "--only-installed", "--output-format", "json"],
                                capture_output=True, text=True, timeout=60, check=False)
        if listed.returncode == 0:
            candidates.update(entry["path"] for entry in json.loads(listed.stdout) if entry.get("path"))
    found: dict[tuple[int, int], str] = {}
    for path in sorted(c for c in candidates if c):
        done = subprocess.run([path, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True,
                              text=True, timeout=60, check=False)
        if done.returncode == 0:
            major, minor = map(int, done.stdout.split())
            found.setdefault((major, minor), path)
    return found


def test_fax_mail_script_uses_no_syntax_newer_than_its_floor() -> None:
    ast.parse(FAX_MAIL.read_text(encoding="utf-8"), feature_version=FAX_MAIL_FLOOR)
    tree = ast.parse(FAX_MAIL.read_text(encoding="utf-8"))
    modules = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
               for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module}
    assert modules <= set(sys.stdlib_module_names), modules - set(sys.stdlib_module_names)
    # names added to the standard library after 3.8 that a newer interpreter would hide
    newer = {("datetime", "UTC"), ("typing", "Self"), ("typing", "TypeAlias"), ("enum", "StrEnum")}
    imported = {(node.module, alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    assert not imported & newer, imported & newer


def test_fax_mail_script_delivers_under_the_oldest_python_on_this_machine(inbox: tuple[_Inbox, int]) -> None:
    from gateway.fax.mail import parse_mail

    versions = {v: path for v, path in _interpreters().items() if v >= FAX_MAIL_FLOOR}
    oldest = min(versions)
    print(f"dutygw_fax_mail.py under Python {oldest[0]}.{oldest[1]} ({versions[oldest]}); "
          f"found {sorted(versions)}")
    handler, port = inbox
    done = subprocess.run([versions[oldest], "-I", str(FAX_MAIL), "--smtp-port", str(port), "--retry-seconds", "0",
                           "--file", str(RECEIVED_TIFF), "--status", "FAILED", "--error", "The call dropped prematurely",
                           "--pages", "1", "--callerid", "02787654329", "--received", "1795332847"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    mail = parse_mail(handler.messages[0], arrived_at=datetime(2026, 11, 22, 8, tzinfo=UTC),
                      zone=ZoneInfo("Asia/Shanghai"))
    assert mail.error == "The call dropped prematurely" and mail.failed
    assert mail.received_at == datetime.fromtimestamp(1795332847, UTC)
