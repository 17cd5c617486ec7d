"""The outbox: every outbound mail is queued as an ``OutboundMail`` row, then sent through the relay.

``queue_mail`` queues a ``MailNotice`` (paging's notices and digests, reports, 情况通报);
``MailService`` runs the queuers it is given (paging's night digests), then sends what is due.
It knows no kind of mail: the daemon passes in the queuers and the message builders of the
kinds that need a richer form (``report``), so nothing here imports the modules that use it.

The row is written first, so a notice survives a restart or a relay that is down; a
failed send stays ``pending`` with ``tries`` and ``last_error`` updated and is tried
again ``retry_minutes`` later. A notice queued with a ``key`` is queued once: the same
key again (a sweep after a crash, a second fallback) finds the row and adds nothing.
smtplib blocks, so each send runs in a worker thread, and every unit of database work
runs through ``db.run`` (never a session on the event loop). The relay may require
STARTTLS and AUTH (``[mail] starttls``, ``username``, ``password``).
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.clock import Clock
from gateway.config import Config, MailConfig
from storage.db import Database
from storage.paging import OutboundMail
from storage.states import MailState

log = logging.getLogger("dutygw.outbox")

SEND_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Attachment:
    path: str
    filename: str
    content_type: str


@dataclass(frozen=True)
class MailNotice:
    """An e-mail ready to queue (``queue_mail`` makes it an ``OutboundMail`` row)."""

    kind: str
    subject: str
    body: str
    attachments: tuple[Attachment, ...]
    receipt_ids: tuple[int, ...]
    shift_key: str | None = None


def queued_with_key(session: Session, key: str) -> OutboundMail | None:
    return session.scalar(select(OutboundMail).where(OutboundMail.dedupe_key == key).limit(1))


def queue_mail(session: Session, notice: MailNotice, recipients: Sequence[str], now: datetime,
               due_at: datetime | None = None, key: str | None = None) -> OutboundMail:
    """Add the notice as a pending row (in the caller's transaction); sent when due.

    With ``key``, a notice already queued under it is returned instead of a second row.
    """
    if key is not None and (existing := queued_with_key(session, key)) is not None:
        return existing
    row = OutboundMail(
        dedupe_key=key,
        kind=notice.kind, created_at=now, due_at=due_at or now, recipients=list(recipients),
        subject=notice.subject, body=notice.body, receipt_ids=list(notice.receipt_ids),
        attachments=[{"path": a.path, "filename": a.filename, "content_type": a.content_type}
                     for a in notice.attachments],
        shift_key=notice.shift_key, state=MailState.PENDING, tries=0,
    )
    if not row.recipients:
        row.state, row.last_error = MailState.FAILED, "no recipients: set [mail] secretariat"
        log.error("mail %r not sent: no recipients configured ([mail] secretariat)", notice.subject)
    session.add(row)
    return row


def envelope(row: OutboundMail, sender: str) -> EmailMessage:
    """Headers of a queued mail; its Message-ID is stable, so a resend is recognisable."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(row.recipients)
    message["Subject"] = row.subject
    message["Date"] = formatdate(row.created_at.timestamp(), localtime=False)
    message["Message-ID"] = make_msgid(idstring=f"dutygw.{row.id}", domain=sender.rpartition("@")[2] or "dutygw.local")
    return message


def build_message(row: OutboundMail, sender: str) -> EmailMessage:
    """The MIME message: UTF-8 throughout, Chinese subject and file names encoded per RFC 2047/2231."""
    message = envelope(row, sender)
    body, files = row.body, []
    for attachment in row.attachments:
        path = Path(attachment["path"])
        if path.is_file():
            files.append((path.read_bytes(), attachment))
        else:  # an urgent notice must still go out; say what is missing instead
            body += f"\n（附件 {attachment['filename']} 无法读取，请到值班室查看原件）"
    message.set_content(body, charset="utf-8")
    for data, attachment in files:
        maintype, _, subtype = attachment["content_type"].partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream",
                               filename=attachment["filename"])
    return message


MessageBuilder = Callable[[OutboundMail, str], EmailMessage]
"""Builds the MIME message of a queued row of one kind, given the sender address."""
Queuer = Callable[[Session, datetime], Sequence[OutboundMail]]
"""Queues what has become due (in the given session) at the start of each pass."""


def secure_session(smtp: smtplib.SMTP, config: MailConfig) -> None:
    """STARTTLS (certificate checked against ``ca_file`` or the system's CAs), then AUTH.

    A password is never sent over a connection that is not encrypted.
    """
    if config.starttls:
        context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
        smtp.starttls(context=context)
    if config.username:
        if not config.starttls:
            raise ValueError("[mail] username is set but starttls is off: the password would go in clear")
        smtp.login(config.username, config.password)


class Mailer:
    """Sends the due rows of the queue; ``builders`` give some kinds (``report``) a richer form."""

    def __init__(self, db: Database, config: MailConfig, clock: Clock,
                 builders: Mapping[str, MessageBuilder] | None = None) -> None:
        self._db, self._config, self._clock = db, config, clock
        self._builders = dict(builders or {})

    async def send_due(self) -> int:
        """Try every pending mail that is due; returns how many went out."""
        sent = 0
        for row_id in await self._db.run(self._due_ids, self._clock.now()):
            sent += await self._send_one(row_id)
        return sent

    def _due_ids(self, now: datetime) -> list[int]:
        with self._db.session() as s:
            query = select(OutboundMail.id).where(OutboundMail.state == MailState.PENDING, OutboundMail.due_at <= now)
            return list(s.scalars(query.order_by(OutboundMail.due_at, OutboundMail.id)))

    async def _send_one(self, row_id: int) -> int:
        try:
            message, recipients = await self._db.run(self._message, row_id)
            refused = await asyncio.to_thread(self._deliver, message, recipients)
        except (OSError, ValueError, smtplib.SMTPException) as exc:
            await self._db.run(self._record, row_id, self._clock.now(), error=f"{type(exc).__name__}: {exc}")
            return 0
        if refused:  # the others got it; a resend would duplicate it for them
            log.warning("mail %d: relay refused %s", row_id, ", ".join(f"{r} ({c})" for r, (c, _) in refused.items()))
        await self._db.run(self._record, row_id, self._clock.now(), error=None)
        return 1

    def _message(self, row_id: int) -> tuple[EmailMessage, list[str]]:
        with self._db.session() as s:
            row = s.get_one(OutboundMail, row_id)
            build = self._builders.get(row.kind, build_message)
            return build(row, self._config.sender), list(row.recipients)

    def _deliver(self, message: EmailMessage, recipients: list[str]) -> dict[str, tuple[int, bytes]]:
        config = self._config
        with smtplib.SMTP(config.relay_host, config.relay_port, timeout=SEND_TIMEOUT_SECONDS) as smtp:
            secure_session(smtp, config)
            return smtp.send_message(message, from_addr=config.sender, to_addrs=recipients)

    def _record(self, row_id: int, now: datetime, *, error: str | None) -> None:
        with self._db.session() as s:
            row = s.get_one(OutboundMail, row_id)
            row.tries += 1
            if error is None:
                row.state, row.sent_at, row.last_error = MailState.SENT, now, None
                log.info("mail %d (%s) sent to %s", row.id, row.kind, ", ".join(row.recipients))
                return
            row.last_error = error
            row.due_at = now + timedelta(minutes=self._config.retry_minutes)
            log.warning("mail %d (%s) not sent (try %d): %s; retrying at %s",
                        row.id, row.kind, row.tries, error, row.due_at.isoformat(timespec="seconds"))


class MailService:
    """The daemon's mail loop: a pass every ``interval_seconds``, or at once when ``wake``-d."""

    def __init__(self, config: Config, db: Database, clock: Clock, interval_seconds: float = 30.0, *,
                 builders: Mapping[str, MessageBuilder] | None = None, queuers: Sequence[Queuer] = ()) -> None:
        self.mailer = Mailer(db, config.mail, clock, builders)
        self._config, self._db, self._clock = config, db, clock
        self._queuers = tuple(queuers)
        self._interval = interval_seconds
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.passes = 0

    def wake(self) -> None:
        """Something urgent was queued: send now rather than at the next pass."""
        self._wake.set()

    async def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name="mail")

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    def _queue_due(self, now: datetime) -> None:
        with self._db.session() as s:
            for queuer in self._queuers:
                queuer(s, now)

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self._db.run(self._queue_due, self._clock.now())
                await self.mailer.send_due()
            except Exception:  # a database hiccup must not end the loop; the rows stay queued
                log.exception("mail pass failed; trying again in %.0f s", self._interval)
            self.passes += 1
            try:
                await asyncio.wait_for(self._wake.wait(), self._interval)
            except TimeoutError:
                pass
            self._wake.clear()
