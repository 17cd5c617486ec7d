"""Outbound mail through a real SMTP relay on loopback (aiosmtpd), including a relay that is down."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import socket
import sqlite3
import ssl
import subprocess
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import select

from gateway.clock import UTC, FixedClock
from gateway.config import Config, DutyConfig, MailConfig
from gateway.outbox import Mailer, MailService, Queuer, queue_mail
from gateway.paging.outgoing import escalation_notice_key, queue_due_digests, queue_urgent_notice
from gateway.paging.notices import urgent_notice_mail
from storage.db import Database
from storage.faxes import Receipt
from storage.paging import OutboundMail
from tests.conftest import FAX_FIXTURES

NOW = datetime(2026, 11, 21, 15, 20, tzinfo=UTC)
ROOM: dict[str, Any] = {"room_name": "市政府值班室", "room_phone": "027-87654321"}
SECRETARIAT = ["mishuke@gov.example"]


class Capture:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def relay_port() -> int:
    return free_port()


@pytest.fixture
def relay(relay_port: int) -> Iterator[Capture]:
    handler = Capture()
    controller = Controller(handler, hostname="127.0.0.1", port=relay_port)
    controller.start()
    yield handler
    controller.stop()


def receipt(seq: int, fixture_file: str, **fields: Any) -> Receipt:
    return Receipt(id=seq, year=2026, seq=seq, received_at=NOW, is_urgent=True, possibly_urgent=False,
                   urgency="特急", pages=2, original_path=str(FAX_FIXTURES / fixture_file),
                   content_type="image/tiff", **fields)


def queue(database: Database, *receipts: Receipt) -> int:
    notice = urgent_notice_mail(list(receipts), **ROOM)
    with database.session() as s:
        row = queue_mail(s, notice, SECRETARIAT, NOW)
        s.flush()
        return row.id


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def stored(database: Database, row_id: int) -> OutboundMail:
    with database.session() as s:
        return s.get_one(OutboundMail, row_id)


def test_urgent_notice_goes_out_with_chinese_subject_and_the_original(
        database: Database, relay: Capture, relay_port: int) -> None:
    fax = receipt(137, "fax_022.tif", issuer="江州市人民政府办公室", title="关于做好寒潮低温雨雪冰冻天气防范应对工作的通知",
                  doc_number="江政办明电〔2025〕47号")
    row_id = queue(database, fax)
    mailer = Mailer(database, MailConfig(relay_port=relay_port, secretariat=SECRETARIAT), FixedClock(NOW))
    assert asyncio.run(mailer.send_due()) == 1
    ((recipients, raw),) = relay.messages
    assert recipients == SECRETARIAT
    assert b"=?utf-8?" in raw.split(b"\r\n\r\n", 1)[0].lower()  # the header itself is 7-bit, encoded
    message = parsed(raw)
    assert message["Subject"] == f"【紧急传真】传真〔2026〕0137号 特急 {fax.title}"
    body = message.get_body(("plain",))
    assert body is not None and fax.title in body.get_content()
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == "传真〔2026〕0137号.tif"
    assert attachment.get_content_type() == "image/tiff"
    assert attachment.get_content() == (FAX_FIXTURES / "fax_022.tif").read_bytes()
    row = stored(database, row_id)
    assert (row.state, row.tries, row.sent_at, row.last_error) == ("sent", 1, NOW, None)
    assert asyncio.run(mailer.send_due()) == 0  # sent once only


def test_classified_fax_mail_carries_no_image_and_no_content(
        database: Database, relay: Capture, relay_port: int) -> None:
    secret = receipt(138, "fax_003.tif", issuer="清源县森林防灭火指挥部办公室", classification="机密",
                     title="关于进一步加强春季森林防灭火工作的通知", doc_number="清森防指办〔2025〕30号")
    queue(database, secret)
    mailer = Mailer(database, MailConfig(relay_port=relay_port), FixedClock(NOW))
    assert asyncio.run(mailer.send_due()) == 1
    ((_, raw),) = relay.messages
    message = parsed(raw)
    assert list(message.iter_attachments()) == []
    text = message["Subject"] + message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    for leak in ("清源县", "森林防灭火", "清森防指办", "fax_003"):
        assert leak not in text
    assert "密级传真" in text and "027-87654321" in text


def test_relay_down_is_retried_later(database: Database, relay_port: int) -> None:
    row_id = queue(database, receipt(139, "fax_008.tif", title="关于立即开展道路交通安全大检查的通知"))
    clock = FixedClock(NOW)
    mailer = Mailer(database, MailConfig(relay_port=relay_port, retry_minutes=10), clock)
    assert asyncio.run(mailer.send_due()) == 0  # nothing listens on the port yet
    row = stored(database, row_id)
    assert (row.state, row.tries, row.due_at) == ("pending", 1, NOW + timedelta(minutes=10))
    assert row.last_error and "Connection" in row.last_error
    clock.advance(300)
    assert asyncio.run(mailer.send_due()) == 0  # not due yet: no second try
    assert stored(database, row_id).tries == 1

    handler = Capture()
    controller = Controller(handler, hostname="127.0.0.1", port=relay_port)
    controller.start()
    try:
        clock.advance(300)
        assert asyncio.run(mailer.send_due()) == 1
    finally:
        controller.stop()
    row = stored(database, row_id)
    assert (row.state, row.tries, row.sent_at, row.last_error) == ("sent", 2, clock.now(), None)
    assert len(handler.messages) == 1


def test_missing_original_still_sends_the_notice(database: Database, relay: Capture, relay_port: int,
                                                 tmp_path: Path) -> None:
    fax = receipt(140, "fax_008.tif", title="关于立即开展道路交通安全大检查的通知")
    fax.original_path = str(tmp_path / "gone.tif")
    queue(database, fax)
    assert asyncio.run(Mailer(database, MailConfig(relay_port=relay_port), FixedClock(NOW)).send_due()) == 1
    message = parsed(relay.messages[0][1])
    assert list(message.iter_attachments()) == []
    assert "无法读取" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_without_recipients_the_mail_is_kept_as_failed(database: Database) -> None:
    notice = urgent_notice_mail([receipt(141, "fax_008.tif", title="通知")], **ROOM)
    with database.session() as s:
        queue_mail(s, notice, [], NOW)
    with database.session() as s:
        (row,) = s.scalars(select(OutboundMail)).all()
        assert (row.state, row.last_error) == ("failed", "no recipients: set [mail] secretariat")


def test_mail_service_sends_when_woken_and_stops_cleanly(
        database: Database, relay: Capture, relay_port: int) -> None:
    config = Config(duty=DutyConfig(numbers=["02787654321"], extensions=["8001"]),
                    mail=MailConfig(relay_port=relay_port))

    async def scenario() -> None:
        service = MailService(config, database, FixedClock(NOW), interval_seconds=3600)
        await service.start()
        try:
            await _until(lambda: service.passes == 0)  # the first pass finds nothing
            queue(database, receipt(142, "fax_008.tif", title="关于立即开展道路交通安全大检查的通知"))
            service.wake()
            await _until(lambda: not relay.messages or service.passes < 2)  # the pass ends after the relay has it
            assert service.passes == 2  # sent by the woken pass, not the hourly one
        finally:
            await service.stop()

    asyncio.run(scenario())
    assert len(relay.messages) == 1


async def _until(waiting: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        await asyncio.sleep(0.02)
        if not waiting():
            return


def test_kinds_can_have_their_own_message_builder(database: Database, relay: Capture, relay_port: int) -> None:
    def as_report(row: OutboundMail, sender: str) -> EmailMessage:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = sender, ", ".join(row.recipients), "报告"
        message.set_content(f"<p>{row.body}</p>", subtype="html")
        return message

    notice = urgent_notice_mail([receipt(143, "fax_008.tif", title="通知")], **ROOM)
    with database.session() as s:
        queue_mail(s, dataclasses.replace(notice, kind="report"), SECRETARIAT, NOW)
    mailer = Mailer(database, MailConfig(relay_port=relay_port), FixedClock(NOW), {"report": as_report})
    assert asyncio.run(mailer.send_due()) == 1
    message = parsed(relay.messages[0][1])
    assert message["Subject"] == "报告" and message.get_content_type() == "text/html"


SHANGHAI = ZoneInfo("Asia/Shanghai")


def config_for(relay_port: int = 25) -> Config:
    return Config(duty=DutyConfig(numbers=["02787654321"], extensions=["8001"], room_phone="027-87654321"),
                  mail=MailConfig(relay_port=relay_port, secretariat=SECRETARIAT))


def file_receipt(database: Database, seq: int, local: str, status: str = "filed", **fields: Any) -> None:
    with database.session() as s:
        s.add(Receipt(year=2026, seq=seq, received_at=datetime.fromisoformat(local).replace(tzinfo=SHANGHAI),
                      status=status, pages=1, **fields))


def test_digest_of_saturday_night_lists_its_ordinary_faxes_once(database: Database) -> None:
    file_receipt(database, 200, "2026-11-21T18:30", title="白班的普通来文")  # Saturday day shift
    file_receipt(database, 201, "2026-11-21T21:05", title="关于召开全县安全生产工作会议的通知", issuer="青河县人民政府办公室")
    file_receipt(database, 202, "2026-11-22T02:40", title="已电话通知的紧急来文", is_urgent=True, urgency="特急")
    file_receipt(database, 203, "2026-11-22T05:10", title="一份机密的来文", classification="机密")
    file_receipt(database, 204, "2026-11-22T07:59", title="交班前最后一份", status="reading")
    config = config_for()
    at = datetime(2026, 11, 22, 8, 5, tzinfo=SHANGHAI)
    with database.session() as s:
        queued = queue_due_digests(s, config, at)
        # Saturday's day shift is a rest-day shift too: its digest went at 19:00.
        assert [(row.shift_key, row.receipt_ids) for row in queued] == [("2026-11-21/day", [1])]
    with database.session() as s:
        assert queue_due_digests(s, config, at + timedelta(minutes=9)) == []  # 07:59 fax still being read
    with database.session() as s:
        (night,) = queue_due_digests(s, config, at + timedelta(minutes=11))
        assert (night.kind, night.shift_key, night.recipients) == ("night_digest", "2026-11-21/night", SECRETARIAT)
        assert night.receipt_ids == [2, 4, 5]  # the urgent fax was paged, not digested
        assert night.subject == "【来文摘要】2026年11月21日夜班 共3份"
        assert "关于召开全县安全生产工作会议的通知" in night.body and "一份机密的来文" not in night.body
    with database.session() as s:
        assert queue_due_digests(s, config, at + timedelta(hours=1)) == []  # one digest per shift


def test_queue_urgent_notice_uses_the_secretariat_and_the_room(database: Database) -> None:
    fax = receipt(300, "fax_008.tif", title="关于立即开展道路交通安全大检查的通知")
    with database.session() as s:
        row = queue_urgent_notice(s, [fax], config_for(), NOW, shift_key="2026-11-23/day")
        assert (row.kind, row.recipients, row.shift_key, row.state) == (
            "urgent_notice", SECRETARIAT, "2026-11-23/day", "pending")
        assert "027-87654321" in row.body and row.attachments[0]["filename"] == "传真〔2026〕0300号.tif"


class RefusesOne(Capture):
    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.startswith("gone@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_a_refused_recipient_does_not_resend_to_the_others(
        database: Database, relay_port: int, caplog: pytest.LogCaptureFixture) -> None:
    handler = RefusesOne()
    controller = Controller(handler, hostname="127.0.0.1", port=relay_port)
    controller.start()
    try:
        notice = urgent_notice_mail([receipt(144, "fax_008.tif", title="通知")], **ROOM)
        with database.session() as s:
            row = queue_mail(s, notice, [*SECRETARIAT, "gone@gov.example"], NOW)
            s.flush()
            row_id = row.id
        assert asyncio.run(Mailer(database, MailConfig(relay_port=relay_port), FixedClock(NOW)).send_due()) == 1
    finally:
        controller.stop()
    assert [recipients for recipients, _ in handler.messages] == [SECRETARIAT]
    assert stored(database, row_id).state == "sent"
    assert "gone@gov.example (550)" in caplog.text


# -- idempotent notices ------------------------------------------------------------------------


def test_an_urgent_notice_is_queued_once_per_key(database: Database) -> None:
    """A sweep after a crash, or a second fallback, finds the notice already in the outbox."""
    fax = receipt(301, "fax_008.tif", title="关于立即开展道路交通安全大检查的通知")
    for _ in range(3):
        with database.session() as s:
            queue_urgent_notice(s, [fax], config_for(), NOW)
    with database.session() as s:
        queue_urgent_notice(s, [fax], config_for(), NOW, key=escalation_notice_key(7, [301]))
        queue_urgent_notice(s, [fax], config_for(), NOW, key=escalation_notice_key(7, [301]))
    with database.session() as s:
        keys = list(s.scalars(select(OutboundMail.dedupe_key).order_by(OutboundMail.id)))
    assert keys == ["receipt:301", "escalation:7:301"]


def test_the_outbox_refuses_a_second_row_with_the_same_key(database: Database) -> None:
    """The unique key holds even for a writer that skips the check (two processes at once)."""
    import sqlalchemy.exc

    notice = urgent_notice_mail([receipt(302, "fax_008.tif")], **ROOM)
    with database.session() as s:
        queue_mail(s, notice, SECRETARIAT, NOW, key="receipt:302")
    with pytest.raises(sqlalchemy.exc.IntegrityError), database.session() as s:
        s.add(OutboundMail(kind="urgent_notice", created_at=NOW, due_at=NOW, subject="x", body="y",
                           dedupe_key="receipt:302"))


# -- STARTTLS and AUTH ---------------------------------------------------------------------------


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl, as an administrator would make one)."""
    cert, key = tmp_path / "relay.crt", tmp_path / "relay.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=relay",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


class Accounts:
    def __init__(self, **passwords: str) -> None:
        self.passwords = passwords
        self.logins: list[str] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        login, password = auth_data.login.decode(), auth_data.password.decode()
        if self.passwords.get(login) != password:
            return AuthResult(success=False, handled=False)
        self.logins.append(login)
        return AuthResult(success=True)


@pytest.fixture
def secure_relay(relay_port: int, tls_files: tuple[Path, Path]) -> Iterator[tuple[Capture, Accounts]]:
    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler, accounts = Capture(), Accounts(dutygw="s3cret-pw")
    controller = Controller(handler, hostname="127.0.0.1", port=relay_port, tls_context=context,
                            require_starttls=True, auth_required=True, auth_require_tls=True,
                            authenticator=accounts)
    controller.start()
    yield handler, accounts
    controller.stop()


def _secure(relay_port: int, cert: Path, **changes: Any) -> MailConfig:
    base = MailConfig(relay_port=relay_port, secretariat=SECRETARIAT, starttls=True, username="dutygw",
                      password="s3cret-pw", ca_file=cert)
    return dataclasses.replace(base, **changes)


def test_relay_with_starttls_and_auth(database: Database, secure_relay: tuple[Capture, Accounts], relay_port: int,
                                      tls_files: tuple[Path, Path]) -> None:
    handler, accounts = secure_relay
    row_id = queue(database, receipt(310, "fax_008.tif", title="通知"))
    assert asyncio.run(Mailer(database, _secure(relay_port, tls_files[0]), FixedClock(NOW)).send_due()) == 1
    assert accounts.logins == ["dutygw"] and len(handler.messages) == 1
    assert stored(database, row_id).state == "sent"


@pytest.mark.parametrize("changes, error", [
    ({"password": "wrong"}, "SMTPAuthenticationError"),
    ({"starttls": False}, "password would go in clear"),
    ({"username": "", "password": ""}, "SMTP"),  # the relay insists on AUTH
    ({"ca_file": None}, "CERTIFICATE_VERIFY_FAILED"),  # a certificate nobody vouches for
])
def test_relay_security_failures_keep_the_mail_queued(database: Database, secure_relay: tuple[Capture, Accounts],
                                                       relay_port: int, tls_files: tuple[Path, Path],
                                                       changes: dict[str, Any], error: str) -> None:
    handler, _ = secure_relay
    row_id = queue(database, receipt(311, "fax_008.tif", title="通知"))
    mailer = Mailer(database, _secure(relay_port, tls_files[0], **changes), FixedClock(NOW))
    assert asyncio.run(mailer.send_due()) == 0
    row = stored(database, row_id)
    assert handler.messages == [] and row.state == "pending" and error in (row.last_error or "")
    assert "s3cret" not in (row.last_error or "")


# -- a database held locked ------------------------------------------------------------------------


def test_a_locked_database_does_not_stall_the_mail_loop(database: Database, relay: Capture, relay_port: int) -> None:
    """While another connection holds BEGIN IMMEDIATE the mail pass waits off the loop: the loop runs on."""
    path = database.url.removeprefix("sqlite:///")
    held, release = threading.Event(), threading.Event()
    beats: list[int] = []

    def hold_lock() -> None:
        connection = sqlite3.connect(path, timeout=30, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        held.set()
        release.wait(60)
        connection.execute("ROLLBACK")
        connection.close()

    async def scenario() -> int:
        queue(database, receipt(320, "fax_008.tif", title="通知"))
        service = MailService(config_for(relay_port), database, FixedClock(NOW), interval_seconds=0.05)
        locker = threading.Thread(target=hold_lock)
        locker.start()
        await asyncio.to_thread(held.wait, 30)
        await service.start()
        try:
            for _ in range(20):  # the loop keeps beating while the pass waits for the lock
                await asyncio.sleep(0.01)
                beats.append(len(beats))
            assert service.passes == 0, "the pass is still waiting for the lock"
        finally:
            release.set()
            await asyncio.to_thread(locker.join, 30)
        while not relay.messages:
            await asyncio.sleep(0.02)
        await service.stop()
        return len(relay.messages)

    assert asyncio.run(asyncio.wait_for(scenario(), 60)) == 1
    assert len(beats) == 20


def test_mail_service_runs_the_queuers_it_is_given_then_sends(
        database: Database, relay: Capture, relay_port: int) -> None:
    """The outbox knows no kind of mail: the daemon passes paging's digest queuer in."""
    file_receipt(database, 210, "2026-11-21T21:05", title="关于召开全县安全生产工作会议的通知")
    config = config_for(relay_port)
    at = datetime(2026, 11, 22, 8, 30, tzinfo=SHANGHAI)
    digests: Queuer = lambda s, now: queue_due_digests(s, config, now)  # noqa: E731

    async def scenario() -> None:
        service = MailService(config, database, FixedClock(at), interval_seconds=3600, queuers=[digests])
        await service.start()
        try:
            await _until(lambda: not relay.messages)
        finally:
            await service.stop()

    asyncio.run(scenario())
    (message,) = [parsed(raw) for _, raw in relay.messages]
    assert message["Subject"] == "【来文摘要】2026年11月21日夜班 共1份"
    with database.session() as s:
        assert [(r.kind, r.state) for r in s.scalars(select(OutboundMail))] == [("night_digest", "sent")]
