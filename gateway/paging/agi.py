"""The "press 1" dialog of a page call, and the FastAGI server that runs it for Asterisk.

When the paged person answers, the dialplan's ``[paging]`` context runs an AGI: either
this module's FastAGI server (``AGI(agi://gateway:4573/page)``) or the local script
``dialplan/agi/dutygw_page.py``; both run ``run_page_dialog``. The dialog speaks the page
(its text arrives base64-encoded in the channel variable ``PAGE_TEXT_B64``, set by the
gateway's Originate), then "按1确认收到，按2重听", up to three rounds. Each round raises
``UserEvent(PageAck, PageID, Digit, ReadStatus, Round)``, so the gateway learns the result
over AMI in either mode, as the lab dialplan's ``Read()`` version does. Only a 1 is an
acknowledgement: silence, a 2, a hang-up, a voicemail greeting or an operator's
announcement are not.

pyst2's ``asterisk.agi.AGI`` speaks the protocol; its own ``fastagi`` module is Python 2
only, and its constructor installs a SIGHUP handler (main thread only), so the server
uses a small subclass over each connection's socket file in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import logging
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Protocol

from asterisk.agi import AGI, AGIException

from gateway.clock import Clock
from gateway.paging.speech import FALLBACK_GOODBYE, FALLBACK_PAGE, FALLBACK_THANKS

log = logging.getLogger("dutygw.paging.agi")

ROUNDS = 3
DIGIT_TIMEOUT_MS = 6000
THANKS_TEXT = "已确认收到，谢谢。"
GOODBYE_TEXT = "未收到确认，稍后将再次呼叫，再见。"
PROMPT_SUFFIX = "按1确认收到，按2重听。"


@dataclass(frozen=True)
class PageAck:
    """One round's result, as the gateway records it."""

    page_id: str
    digit: str
    read_status: str
    round: int
    number: str | None
    at: datetime | None = None


@dataclass(frozen=True)
class DialogResult:
    page_id: str
    acknowledged: bool
    rounds: int
    hung_up: bool


class Prompts(Protocol):
    """Turns text into something ``STREAM FILE`` can play (a fallback name when it cannot)."""

    def prompt(self, text: str, fallback: str = FALLBACK_PAGE) -> str: ...


class SilentWriter(io.StringIO):
    """pyst2 writes a trace of every command to ``stderr``; nobody needs it."""

    def write(self, text: str) -> int:
        return len(text)


class ConnectionAGI(AGI):  # type: ignore[misc]
    """pyst2's AGI without its SIGHUP handler, so it runs in any thread over any stream."""

    def __init__(self, stdin: IO[str], stdout: IO[str]) -> None:
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = SilentWriter()
        self._got_sighup = False
        self.env: dict[str, str] = {}
        self._get_agi_env()


def page_text(encoded: str) -> str:
    """The spoken text from ``PAGE_TEXT_B64``; empty when missing or damaged."""
    try:
        return base64.b64decode(encoded.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        return ""


def encode_page_text(text: str) -> str:
    """For the Originate: base64 survives AMI's comma-separated ``Variable`` header intact."""
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def user_event_body(ack: PageAck) -> str:
    """``UserEvent`` data: the event name, then ``Header: value`` pairs separated by commas."""
    fields = [f"PageID: {ack.page_id}", f"Digit: {ack.digit}", f"ReadStatus: {ack.read_status}",
              f"Round: {ack.round}", f"Number: {ack.number or ''}", "Source: agi"]
    return "PageAck," + ",".join(fields)


def run_page_dialog(agi: Any, prompts: Prompts, report: Callable[[PageAck], None] | None = None,
                    rounds: int = ROUNDS, digit_timeout_ms: int = DIGIT_TIMEOUT_MS) -> DialogResult:
    """Speak the page and wait for a 1, up to ``rounds`` times; hang up at the end."""
    page_id = agi.get_variable("PAGE_ID") or agi.env.get("agi_arg_1", "")
    number = agi.get_variable("PAGE_NUMBER") or None
    text = page_text(agi.get_variable("PAGE_TEXT_B64"))
    speech = prompts.prompt(text) if text else FALLBACK_PAGE
    for round_no in range(1, rounds + 1):
        digit = _one_round(agi, speech, digit_timeout_ms)
        status = "OK" if digit else "TIMEOUT"
        ack = PageAck(page_id, digit, status, round_no, number)
        agi.appexec("UserEvent", user_event_body(ack))
        if report is not None:
            report(ack)
        if digit == "1":
            agi.stream_file(prompts.prompt(THANKS_TEXT, FALLBACK_THANKS))
            agi.hangup()
            return DialogResult(page_id, True, round_no, False)
    agi.stream_file(prompts.prompt(GOODBYE_TEXT, FALLBACK_GOODBYE))
    agi.hangup()
    return DialogResult(page_id, False, rounds, False)


def _one_round(agi: Any, speech: str, digit_timeout_ms: int) -> str:
    """Play the page (a key cuts it short), then wait for a key; '' when none came."""
    digit = agi.stream_file(speech, "12")
    if not digit:
        digit = agi.wait_for_digit(digit_timeout_ms)
    return digit or ""


def serve_one(stdin: IO[str], stdout: IO[str], prompts: Prompts,
              report: Callable[[PageAck], None] | None = None) -> DialogResult | None:
    """One AGI session over a stream pair; a hang-up mid-dialog is normal, not an error."""
    page_id = ""
    try:
        agi = ConnectionAGI(stdin, stdout)
        page_id = agi.env.get("agi_channel", "")
        return run_page_dialog(agi, prompts, report)
    except (AGIException, OSError, ValueError) as exc:
        log.info("page dialog on %s ended early: %s", page_id or "?", exc.__class__.__name__)
        return None


class FastAgiServer:
    """Serves ``agi://host:port/page``: each connection runs the dialog in a worker thread."""

    def __init__(self, host: str, port: int, prompts: Prompts, clock: Clock,
                 on_ack: Callable[[PageAck], None] | None = None, workers: int = 8) -> None:
        self.host = host
        self.port = port
        self.prompts = prompts
        self.clock = clock
        self.on_ack = on_ack
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fastagi")
        self._listener: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        self._loop = asyncio.get_running_loop()
        listener = socket.create_server((self.host, self.port))
        listener.setblocking(False)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._accepting = asyncio.create_task(self._accept_loop(), name="fastagi-accept")
        log.info("FastAGI listening on %s:%s", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
            await asyncio.gather(self._accepting, return_exceptions=True)
        if self._listener is not None:
            self._listener.close()
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._listener is not None
        while True:
            connection, _peer = await loop.sock_accept(self._listener)
            loop.run_in_executor(self._executor, self._serve, connection)

    def _serve(self, connection: socket.socket) -> None:
        connection.setblocking(True)
        connection.settimeout(300)
        with connection, connection.makefile("r", encoding="utf-8", newline="\n") as reader, \
                connection.makefile("w", encoding="utf-8", newline="\n") as writer:
            serve_one(reader, writer, self.prompts, self._report)

    def _report(self, ack: PageAck) -> None:
        if self.on_ack is not None and self._loop is not None:
            stamped = PageAck(ack.page_id, ack.digit, ack.read_status, ack.round, ack.number, self.clock.now())
            self._loop.call_soon_threadsafe(self.on_ack, stamped)
