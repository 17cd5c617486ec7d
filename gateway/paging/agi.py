"""The "press 1" dialog of a page call, and the FastAGI server that runs it for Asterisk.

When the paged person answers, the dialplan's ``[paging]`` context runs an AGI: either
this module's FastAGI server (``AGI(agi://gateway:4573/page,${PAGE_ID})``) or the local
script ``dialplan/agi/dutygw_page.py``; both run ``run_page_dialog``. The dialog speaks
the page, then "按1确认收到，按2重听", up to three rounds. Each round raises
``UserEvent(PageAck, PageID, Digit, ReadStatus, Round)``, so the gateway learns the result
over AMI in either mode, as the lab dialplan's ``Read()`` version does. Only a 1 is an
acknowledgement: silence, a 2, a hang-up, a voicemail greeting or an operator's
announcement are not. At the end the dialog sets ``PAGE_DIALOG=done``, which tells the
dialplan the question was asked (otherwise it asks it itself with the recorded prompt).

The FastAGI server trusts nothing its peer says. It reads the AGI environment on the
event loop with a short time limit (so idle or slow connections cost no worker thread),
asks the pager whether the session's page id is a live attempt's token on a channel the
gateway's own Originate created (``authorise``), and closes the connection otherwise. The
text spoken comes from the pager (built from the receipts when the call is answered),
never from the peer's channel variables. Only the local script, which runs inside
Asterisk, speaks ``PAGE_TEXT_B64``.

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
import re
import socket
from collections.abc import Awaitable, Callable
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
ENV_TIMEOUT_SECONDS = 5.0
"""Asterisk sends the whole AGI environment at once on connect; a peer that does not is refused."""
COMMAND_TIMEOUT_SECONDS = 120.0
"""The longest wait for one reply during the dialog (a ``STREAM FILE`` of a long page)."""
MAX_ENV_BYTES = 16384

_RESULT = re.compile(r"^200 result=(-?\d+)(?: \((.*)\))?")


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
class LivePage:
    """What one answered page call says: its token, who was called, the text to speak."""

    page_id: str
    number: str | None
    text: str


@dataclass(frozen=True)
class DialogResult:
    page_id: str
    acknowledged: bool
    rounds: int
    hung_up: bool


class Prompts(Protocol):
    """Turns text into something ``STREAM FILE`` can play (a fallback name when it cannot)."""

    def prompt(self, text: str, fallback: str = FALLBACK_PAGE) -> str: ...


Authorise = Callable[[str, str, str], Awaitable[LivePage | None]]
"""(page id, agi_channel, agi_uniqueid) → the page to run, or None to refuse the session."""


class SilentWriter(io.StringIO):
    """pyst2 writes a trace of every command to ``stderr``; nobody needs it."""

    def write(self, text: str) -> int:
        return len(text)


class ConnectionAGI(AGI):  # type: ignore[misc]
    """pyst2's AGI without its SIGHUP handler, so it runs in any thread over any stream;
    ``env`` given when the environment was already read (by the FastAGI server)."""

    def __init__(self, stdin: IO[str], stdout: IO[str], env: dict[str, str] | None = None) -> None:
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = SilentWriter()
        self._got_sighup = False
        self.env: dict[str, str] = dict(env) if env is not None else {}
        if env is None:
            self._get_agi_env()


def parse_agi_env(data: bytes) -> dict[str, str]:
    """``agi_name: value`` lines up to the blank line, as Asterisk sends them on connect."""
    env: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        line = line.strip()
        if not line:
            break
        key, _, value = line.partition(":")
        if key.strip():
            env[key.strip()] = value.strip()
    return env


TEXT_VARIABLE = "PAGE_TEXT_B64"
TEXT_CHUNK_CHARS = 800
"""Base64 characters per ``Variable`` line: Asterisk's manager reads at most 1,024 bytes of
one input line (``inbuf[1025]`` in manager.c) and discards a longer one, which would lose the
whole Originate. A page of several faxes, said twice, runs past that, so the text is split
over ``PAGE_TEXT_B64``, ``PAGE_TEXT_B64_2``, … and joined again by the AGI."""
TEXT_MAX_PARTS = 16


def page_text(encoded: str) -> str:
    """The spoken text from the joined ``PAGE_TEXT_B64`` parts; empty when missing or damaged."""
    try:
        return base64.b64decode(encoded.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        return ""


def page_text_variables(text: str) -> list[str]:
    """For the Originate: base64 (it survives AMI's comma-separated ``Variable`` header), in
    parts short enough for Asterisk's AMI line limit."""
    encoded = base64.b64encode(text.encode("utf-8")).decode("ascii")
    parts = [encoded[i:i + TEXT_CHUNK_CHARS] for i in range(0, len(encoded), TEXT_CHUNK_CHARS)][:TEXT_MAX_PARTS]
    names = [TEXT_VARIABLE] + [f"{TEXT_VARIABLE}_{n}" for n in range(2, len(parts) + 1)]
    return [f"{name}={part}" for name, part in zip(names, parts or [""])]


def read_page_text(get_variable: Callable[[str], str | None]) -> str:
    """Join the parts ``page_text_variables`` made, reading channel variables until one is empty."""
    parts = [get_variable(TEXT_VARIABLE) or ""]
    for n in range(2, TEXT_MAX_PARTS + 1):
        part = get_variable(f"{TEXT_VARIABLE}_{n}") or ""
        if not part:
            break
        parts.append(part)
    return page_text("".join(parts))


def user_event_body(ack: PageAck) -> str:
    """``UserEvent`` data: the event name, then ``Header: value`` pairs separated by commas."""
    fields = [f"PageID: {ack.page_id}", f"Digit: {ack.digit}", f"ReadStatus: {ack.read_status}",
              f"Round: {ack.round}", f"Number: {ack.number or ''}", "Source: agi"]
    return "PageAck," + ",".join(fields)


def page_from_channel(agi: Any) -> LivePage:
    """The local script's page: the channel variables the gateway's Originate set."""
    page_id = agi.get_variable("PAGE_ID") or agi.env.get("agi_arg_1", "")
    return LivePage(page_id, agi.get_variable("PAGE_NUMBER") or None, read_page_text(agi.get_variable))


def run_page_dialog(agi: Any, prompts: Prompts, page: LivePage, report: Callable[[PageAck], None] | None = None,
                    rounds: int = ROUNDS, digit_timeout_ms: int = DIGIT_TIMEOUT_MS) -> DialogResult:
    """Speak the page and wait for a 1, up to ``rounds`` times; hang up at the end."""
    speech = prompts.prompt(page.text) if page.text else FALLBACK_PAGE
    for round_no in range(1, rounds + 1):
        digit = _one_round(agi, speech, digit_timeout_ms)
        status = "OK" if digit else "TIMEOUT"
        ack = PageAck(page.page_id, digit, status, round_no, page.number)
        agi.appexec("UserEvent", user_event_body(ack))
        if report is not None:
            report(ack)
        if digit == "1":
            _finish(agi, prompts.prompt(THANKS_TEXT, FALLBACK_THANKS))
            return DialogResult(page.page_id, True, round_no, False)
    _finish(agi, prompts.prompt(GOODBYE_TEXT, FALLBACK_GOODBYE))
    return DialogResult(page.page_id, False, rounds, False)


def _finish(agi: Any, farewell: str) -> None:
    agi.set_variable("PAGE_DIALOG", "done")
    agi.stream_file(farewell)
    agi.hangup()


def _one_round(agi: Any, speech: str, digit_timeout_ms: int) -> str:
    """Play the page (a key cuts it short), then wait for a key; '' when none came."""
    digit = agi.stream_file(speech, "12")
    if not digit:
        digit = agi.wait_for_digit(digit_timeout_ms)
    return digit or ""


def serve_one(stdin: IO[str], stdout: IO[str], prompts: Prompts,
              report: Callable[[PageAck], None] | None = None) -> DialogResult | None:
    """One local-AGI session over stdin/stdout (run by Asterisk itself, so its channel
    variables are the gateway's); a hang-up mid-dialog is normal, not an error."""
    channel = ""
    try:
        agi = ConnectionAGI(stdin, stdout)
        channel = agi.env.get("agi_channel", "")
        return run_page_dialog(agi, prompts, page_from_channel(agi), report)
    except (AGIException, OSError, ValueError) as exc:
        log.info("page dialog on %s ended early: %s", channel or "?", exc.__class__.__name__)
        return None


class FastAgiServer:
    """Serves ``agi://host:port/page`` for authorised sessions only; each runs in a worker thread."""

    def __init__(self, host: str, port: int, prompts: Prompts, clock: Clock, *,
                 authorise: Authorise | None = None, on_ack: Callable[[PageAck], None] | None = None,
                 workers: int = 8, env_timeout: float = ENV_TIMEOUT_SECONDS,
                 command_timeout: float = COMMAND_TIMEOUT_SECONDS) -> None:
        self.host = host
        self.port = port
        self.prompts = prompts
        self.clock = clock
        self.authorise = authorise
        """Without it every session is refused: nothing is acknowledged on a peer's word."""
        self.on_ack = on_ack
        self.env_timeout = env_timeout
        self.command_timeout = command_timeout
        self.refused = 0
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fastagi")
        self._listener: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._handshakes: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> int:
        """Listen on the configured address only; returns the bound port (useful with port 0)."""
        if not self.host.strip():
            raise OSError("[paging] agi_host is empty: name the one address Asterisk connects to")
        self._loop = asyncio.get_running_loop()
        listener = socket.create_server((self.host, self.port))
        listener.setblocking(False)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._accepting = asyncio.create_task(self._accept_loop(), name="fastagi-accept")
        log.info("FastAGI listening on %s:%s", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        for task in [self._accepting, *self._handshakes]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*[t for t in [self._accepting, *self._handshakes] if t is not None],
                             return_exceptions=True)
        if self._listener is not None:
            self._listener.close()
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._listener is not None
        while True:
            connection, peer = await loop.sock_accept(self._listener)
            task = asyncio.create_task(self._handshake(connection, str(peer[0])))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, connection: socket.socket, peer: str) -> None:
        """Environment and authorisation on the event loop; only a real page gets a worker."""
        try:
            page, env = await self._admit(connection)
        except (TimeoutError, OSError, ValueError) as exc:
            log.warning("FastAGI session from %s dropped: %s", peer, str(exc) or type(exc).__name__)
            page, env = None, {}
        except asyncio.CancelledError:
            connection.close()
            raise
        except Exception:
            log.exception("FastAGI session from %s failed before the dialog", peer)
            page, env = None, {}
        if page is None:
            self.refused += 1
            if env:
                log.warning("FastAGI session from %s (channel %s) refused: not a live page of a call this "
                            "gateway placed", peer, env.get("agi_channel", "?"))
            connection.close()
            return
        assert self._loop is not None
        self._loop.run_in_executor(self._executor, self._serve, connection, env, page)

    async def _admit(self, connection: socket.socket) -> tuple[LivePage | None, dict[str, str]]:
        stream = _AsyncLines(connection)
        env = parse_agi_env(await asyncio.wait_for(stream.read_until(b"\n\n"), self.env_timeout))
        token = env.get("agi_arg_1", "")
        if not token:
            token = await asyncio.wait_for(stream.get_variable("PAGE_ID"), self.env_timeout)
        if stream.surplus:
            raise ValueError("data before any command was sent")
        if self.authorise is None or not token:
            return None, env
        return await self.authorise(token, env.get("agi_channel", ""), env.get("agi_uniqueid", "")), env

    def _serve(self, connection: socket.socket, env: dict[str, str], page: LivePage) -> None:
        connection.setblocking(True)
        connection.settimeout(self.command_timeout)
        try:
            with connection, connection.makefile("r", encoding="utf-8", newline="\n") as reader, \
                    connection.makefile("w", encoding="utf-8", newline="\n") as writer:
                run_page_dialog(ConnectionAGI(reader, writer, env), self.prompts, page, self._report)
        except (AGIException, OSError, ValueError) as exc:
            log.info("page dialog on %s ended early: %s", env.get("agi_channel", "?"), exc.__class__.__name__)

    def _report(self, ack: PageAck) -> None:
        if self.on_ack is not None and self._loop is not None:
            stamped = PageAck(ack.page_id, ack.digit, ack.read_status, ack.round, ack.number, self.clock.now())
            self._loop.call_soon_threadsafe(self.on_ack, stamped)


class _AsyncLines:
    """Reads the start of an AGI session on the event loop (non-blocking socket)."""

    def __init__(self, connection: socket.socket) -> None:
        self._connection = connection
        self._buffer = b""

    @property
    def surplus(self) -> bytes:
        return self._buffer

    async def read_until(self, marker: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        while marker not in self._buffer:
            if len(self._buffer) > MAX_ENV_BYTES:
                raise ValueError("AGI environment too long")
            data = await loop.sock_recv(self._connection, 4096)
            if not data:
                raise ValueError("connection closed before the AGI environment ended")
            self._buffer += data.replace(b"\r\n", b"\n")
        head, _, self._buffer = self._buffer.partition(marker)
        return head + marker

    async def get_variable(self, name: str) -> str:
        await asyncio.get_running_loop().sock_sendall(self._connection, f'GET VARIABLE "{name}"\n'.encode())
        line = (await self.read_until(b"\n")).decode("utf-8", "replace").strip()
        match = _RESULT.match(line)
        return (match.group(2) or "") if match and match.group(1) == "1" else ""
