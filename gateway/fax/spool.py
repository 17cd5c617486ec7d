"""Durable files: a mail is on disk, fsync'd, before anyone is told it was received.

Write to a temporary name, fsync the file, rename into place, fsync the folder: after a
crash the file is either whole under its final name or not there at all.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from pathlib import Path

from gateway.fax.mail import decode_header
from storage.db import Database
from storage.faxes import InboundMail
from storage.states import InboundMailState


def write_durably(path: Path, data: bytes) -> Path:
    """Put ``data`` at ``path`` atomically and durably (survives kill -9 and power loss)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class Spool:
    """``<data_dir>/spool/``: every accepted message, kept as received (the evidence)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def put(self, raw: bytes, received_at: datetime, suffix: str = ".eml") -> Path:
        digest = hashlib.sha256(raw).hexdigest()[:12]
        name = f"{received_at:%Y%m%dT%H%M%S%f}-{digest}-{uuid.uuid4().hex[:6]}{suffix}"
        return write_durably(self.folder / name, raw)

    def discard_leftovers(self) -> list[Path]:
        """Temporary files of writes a crash interrupted (never acknowledged, safe to drop)."""
        if not self.folder.is_dir():
            return []
        leftovers = list(self.folder.glob(".*.tmp"))
        for path in leftovers:
            path.unlink(missing_ok=True)
        return leftovers


@dataclass(frozen=True)
class Arrival:
    """Who handed us a message, and when: the SMTP envelope, or a file given by hand."""

    received_at: datetime
    mail_from: str = ""
    rcpt_tos: tuple[str, ...] = ()
    peer: str = ""


def accept(db: Database, spool: Spool, raw: bytes, arrival: Arrival, suffix: str = ".eml") -> int:
    """Store a message durably (file, then row) and return its ``InboundMail`` id.

    Only after this returns may the sender be told ``250``; if it raises, nothing was
    promised and the sender retries (a spool file without a row is never acknowledged).
    """
    path = spool.put(raw, arrival.received_at, suffix)
    row = InboundMail(
        received_at=arrival.received_at,
        spool_path=str(path),
        sha256=hashlib.sha256(raw).hexdigest(),
        message_id=_message_id(raw) if suffix == ".eml" else None,
        mail_from=arrival.mail_from[:500],
        rcpt_to=",".join(arrival.rcpt_tos)[:1000],
        peer=arrival.peer[:100],
        size=len(raw),
        state=InboundMailState.SPOOLED,
    )
    with db.session() as session:
        session.add(row)
        session.flush()
        return row.id


def _message_id(raw: bytes) -> str | None:
    headers = BytesHeaderParser().parsebytes(raw)
    value = headers.get("Message-ID")
    text = decode_header(value) if value is not None else ""
    return text.strip()[:500] or None
