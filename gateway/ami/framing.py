"""AMI wire format as pure functions: bytes in, ``AmiMessage`` out, and back.

Framing happens on bytes, before any decoding, so a UTF-8 character split across TCP
reads is never cut. Each whole message is decoded as UTF-8, then GB18030 (older PBXes
and carriers send GBK caller names), and as a last resort with backslash escapes, so
no byte is ever silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from gateway.ami.message import AmiMessage

GREETING_PREFIX = b"Asterisk Call Manager/"
_SEPARATOR = b"\r\n\r\n"


def decode_text(raw: bytes) -> str:
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("utf-8", errors="backslashreplace")


def parse_message(block: bytes, received_at: datetime | None = None) -> AmiMessage:
    """One message block (without the blank line) into headers; lines without ':' are kept
    under the empty header name so nothing is lost (e.g. ``Command`` output)."""
    headers: list[tuple[str, str]] = []
    for line in decode_text(block).replace("\r\n", "\n").split("\n"):
        name, sep, value = line.partition(": ")  # the protocol's form, and the hot path
        if sep and ":" not in name:
            headers.append((name, value))
        elif line:
            headers.append(_odd_header(line))
    return AmiMessage(tuple(headers), received_at)


def _odd_header(line: str) -> tuple[str, str]:
    """A line not in ``Name: value`` form: ``Name:value``, ``Name:``, or no header at all."""
    name, sep, value = line.partition(":")
    if sep:
        return name.strip(), value.removeprefix(" ")
    return "", line


class Framer:
    """Incremental framer: ``feed`` bytes as they arrive, get whole messages back.

    Accepts CRLF (the protocol) and bare LF (hand-made streams). The greeting line, which
    has no blank line after it, comes out as a message with header ``Greeting``.
    """

    def __init__(self, max_message_bytes: int = 1 << 20) -> None:
        self._buffer = bytearray()
        self._greeted = False
        self.max_message_bytes = max_message_bytes
        self.discarded_bytes = 0

    def feed(self, data: bytes, received_at: datetime | None = None) -> list[AmiMessage]:
        self._buffer += data
        messages: list[AmiMessage] = []
        if not self._greeted:
            greeting = self._take_greeting(received_at)
            if not self._greeted:
                return messages  # the first line is not complete yet
            if greeting is not None:
                messages.append(greeting)
        for block in self._take_blocks():
            if block.strip():
                messages.append(parse_message(block, received_at))
        self._guard_overflow()
        return messages

    def _take_greeting(self, received_at: datetime | None) -> AmiMessage | None:
        end = self._buffer.find(b"\n")
        if end < 0:
            return None
        line = bytes(self._buffer[:end]).rstrip(b"\r")
        if not line.startswith(GREETING_PREFIX):
            self._greeted = True  # joined mid-stream or a hand-made stream: no greeting
            return None
        del self._buffer[: end + 1]
        self._greeted = True
        return AmiMessage((("Greeting", decode_text(line)),), received_at)

    def _take_blocks(self) -> Iterator[bytes]:
        if b"\n\n" not in self._buffer:  # CRLF only, as Asterisk sends: split in one go
            *blocks, rest = bytes(self._buffer).split(_SEPARATOR)
            self._buffer = bytearray(rest)
            yield from blocks
            return
        while True:
            end, width = _find_blank_line(self._buffer)
            if end < 0:
                return
            block = bytes(self._buffer[:end])
            del self._buffer[: end + width]
            yield block

    def _guard_overflow(self) -> None:
        """A peer that never sends a blank line must not grow the buffer without bound."""
        if len(self._buffer) > self.max_message_bytes:
            self.discarded_bytes += len(self._buffer)
            self._buffer.clear()

    @property
    def pending(self) -> int:
        return len(self._buffer)


def _find_blank_line(buffer: bytearray) -> tuple[int, int]:
    crlf = buffer.find(_SEPARATOR)
    lf = buffer.find(b"\n\n", 0, crlf + 1 if crlf >= 0 else len(buffer))  # only before crlf: linear
    if crlf < 0 and lf < 0:
        return -1, 0
    if lf < 0 or (0 <= crlf <= lf):
        return crlf, 4
    return lf, 2


def iter_messages(data: bytes | Iterable[bytes]) -> Iterator[AmiMessage]:
    """All messages of a recorded stream (whole bytes, or chunks as read)."""
    framer = Framer()
    chunks = [data] if isinstance(data, (bytes, bytearray)) else data
    for chunk in chunks:
        yield from framer.feed(bytes(chunk))


def format_action(action: str, action_id: str, **fields: str) -> bytes:
    """An action on the wire: ``Action`` first, then ``ActionID``, then the fields."""
    lines = [f"Action: {action}", f"ActionID: {action_id}"]
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"{name}: {item}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def format_message(message: AmiMessage) -> bytes:
    """A message back to wire bytes (the replay server and test peers use this)."""
    if message.get("Greeting") is not None and len(message.headers) == 1:
        return (message["Greeting"] + "\r\n").encode("utf-8")
    lines = [f"{k}: {v}" if k else v for k, v in message.headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
