"""The fax intake over real sockets with the standard ``smtplib``.

A module-scoped service receives every fixture fax once (HylaFAX-style and Asterisk-style
mails, a commercial PDF, the real Asterisk ReceiveFAX TIFF); the tests then check what
was filed. OCR is the null reader here (reading is tested in ``test_fax_filing`` and by
the OCR package); everything else — SMTP, spool, MIME, page decoding, numbering — is real.
"""

from __future__ import annotations

import hashlib
import json
import smtplib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from gateway.fax import smtp as replies
from storage.db import Database, open_database
from storage.faxes import InboundMail, Receipt
from tests.conftest import FAX_FIXTURES
from tests.fax_mails import (
    RECIPIENT,
    NullReader,
    RunningService,
    asterisk_mail,
    blank_tiff,
    commercial_mail,
    crlf,
    fax_config,
    hylafax_mail,
    pdf_of_tiff,
    running_service,
)

ZONE = ZoneInfo("Asia/Shanghai")
RECEIVED_FAX = next((FAX_FIXTURES.parent / "fax-received").glob("*.tif"))


@dataclass(frozen=True)
class Sent:
    name: str
    document: bytes
    station: str
    pages: int
    received: datetime
    style: str


def fixture_faxes() -> list[Sent]:
    sent = []
    for index, sidecar in enumerate(sorted(FAX_FIXTURES.glob("fax_*.json"))):
        truth = json.loads(sidecar.read_text())
        stamp = truth["fax"]["received_at"] or "2026-11-21T03:05"
        received = datetime.fromisoformat(stamp).replace(second=index, tzinfo=ZONE)
        station = truth["fax"]["sender_fax"] or f"STATION {index}"
        style = "hylafax" if index % 2 else "asterisk"
        document = (FAX_FIXTURES / truth["file"]).read_bytes()
        sent.append(Sent(truth["file"], document, station, truth["fields"]["pages"], received, style))
    sent.append(Sent(RECEIVED_FAX.name, RECEIVED_FAX.read_bytes(), "+86 27 8888 9999", 2,
                     datetime(2026, 11, 22, 15, 34, 25, tzinfo=ZONE), "asterisk"))
    fax_012 = (FAX_FIXTURES / "fax_012.tif").read_bytes()
    sent.append(Sent("fax_012.pdf", pdf_of_tiff(fax_012), "0431-5550123", 3,
                     datetime(2025, 6, 1, 9, 23, 40, tzinfo=ZONE), "commercial"))
    # Either side of midnight on New Year's Eve in Beijing: the year is the local one.
    sent.append(Sent("new-year-eve", blank_tiff(1, height=101), "EVE", 1,
                     datetime(2025, 12, 31, 23, 59, 30, tzinfo=ZONE), "asterisk"))
    sent.append(Sent("new-year", blank_tiff(1, height=102), "NEWYEAR", 1,
                     datetime(2026, 1, 1, 0, 0, 30, tzinfo=ZONE), "hylafax"))
    return sent


def mail_for(fax: Sent) -> bytes:
    if fax.style == "hylafax":
        return hylafax_mail(fax.document, station=fax.station, pages=fax.pages, received=fax.received,
                            caller=fax.station.replace("-", ""))
    if fax.style == "asterisk":
        return asterisk_mail(fax.document, station=fax.station, pages=fax.pages, received=fax.received,
                             caller=fax.station.replace("-", ""))
    return commercial_mail(fax.document, number=fax.station, pages=fax.pages, sent=fax.received)


SENT = fixture_faxes()


@pytest.fixture(scope="module")
def filed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Database, dict[str, tuple[int, bytes]]]]:
    config = fax_config(tmp_path_factory.mktemp("smtp"))
    db = open_database(config.database_url)
    with running_service(config, db, NullReader()) as service:
        replies_by_name = {fax.name: service.send(mail_for(fax)) for fax in SENT}
        service.wait_idle()
    yield db, replies_by_name
    db.dispose()


def receipt_for(db: Database, fax: Sent) -> Receipt:
    digest = hashlib.sha256(fax.document).hexdigest()
    with db.session() as session:
        return session.scalars(select(Receipt).where(Receipt.original_sha256 == digest)).one()


@pytest.mark.parametrize("fax", SENT, ids=[f.name for f in SENT])
def test_every_fax_is_filed_with_the_mail_facts(fax: Sent, filed: tuple[Database, dict]) -> None:
    db, replies_by_name = filed
    assert replies_by_name[fax.name] == (250, replies.ACCEPTED[4:].encode())
    receipt = receipt_for(db, fax)
    assert (receipt.status, receipt.pages) == ("filed", fax.pages), receipt.review_reasons
    assert receipt.received_at == fax.received.astimezone(UTC)
    expected_source = "date_header" if fax.style == "commercial" else "fax_server"
    assert receipt.received_time_source == expected_source
    assert fax.station in (receipt.station or "") or fax.station in (receipt.sender_number or "")
    assert receipt.year == fax.received.year
    assert receipt.urgency_decided_at is not None and receipt.filed_at is not None
    original = Path(receipt.original_path or "")
    assert original.read_bytes() == fax.document
    assert original.parent.name == str(fax.received.year) and original.parent.parent.name == "faxes"


def test_receipt_numbers_are_consecutive_per_year(filed: tuple[Database, dict]) -> None:
    db, _ = filed
    with db.session() as session:
        receipts = list(session.scalars(select(Receipt)))
        mails = list(session.scalars(select(InboundMail)))
    assert len(receipts) == len(SENT) == len(mails)
    assert {m.state for m in mails} == {"filed"}
    for year in {r.year for r in receipts}:
        seqs = sorted(r.seq for r in receipts if r.year == year)
        assert seqs == list(range(1, len(seqs) + 1))
    first = min(receipts, key=lambda r: (r.year, r.seq))
    assert first.receipt_no == f"传真〔{first.year}〕0001号"


# --- replies -------------------------------------------------------------------------------

@pytest.fixture
def service(tmp_path: Path) -> Iterator[RunningService]:
    config = fax_config(tmp_path, max_message_bytes=500_000, allowed_networks=["127.0.0.0/8", "::1/128"])
    db = open_database(config.database_url)
    with running_service(config, db, NullReader()) as running:
        yield running
    db.dispose()


def test_relay_attempt_is_refused(service: RunningService) -> None:
    with smtplib.SMTP("127.0.0.1", service.port) as client:
        client.ehlo("pbx")
        assert client.mail("fax@pbx") == (250, b"2.1.0 OK")
        code, message = client.rcpt("someone@example.com")
        assert (code, message) == (550, replies.NOT_OURS[4:].encode())
        assert client.rcpt(RECIPIENT.upper())[0] == 250


def test_peer_outside_allowed_networks_is_refused(tmp_path: Path) -> None:
    config = fax_config(tmp_path, allowed_networks=["10.1.2.0/24"])
    db = open_database(config.database_url)
    with running_service(config, db, NullReader()) as running, smtplib.SMTP("127.0.0.1", running.port) as client:
        client.ehlo("pbx")
        assert client.mail("fax@pbx") == (554, replies.PEER_REFUSED[4:].encode())
        assert client.rcpt(RECIPIENT)[0] == 503  # no MAIL accepted, so no RCPT either
    db.dispose()


def test_message_over_the_limit_is_refused(service: RunningService) -> None:
    with smtplib.SMTP("127.0.0.1", service.port) as client:
        client.ehlo("pbx")
        assert client.has_extn("size") and client.esmtp_features["size"] == "500000"
        assert client.mail("fax@pbx", ["SIZE=600000"])[0] == 552
    too_big = hylafax_mail(bytes(600_000), station="X", pages=1, received=datetime(2026, 1, 1, tzinfo=ZONE))
    assert service.send(too_big)[0] == 552


def test_storage_failure_answers_451_and_the_retry_is_accepted(service: RunningService) -> None:
    spool = service.service._spool.folder
    spool.rmdir() if spool.exists() else None
    spool.write_text("not a folder")  # the spool cannot be written: nothing may be promised
    mail = asterisk_mail(blank_tiff(1), station="RETRY", pages=1, received=datetime(2026, 3, 1, tzinfo=ZONE))
    assert service.send(mail) == (451, replies.TRY_LATER[4:].encode())
    spool.unlink()
    assert service.send(mail)[0] == 250
    service.wait_idle()
    with service.service._db.session() as session:
        assert [m.state for m in session.scalars(select(InboundMail))] == ["filed"]


def test_mail_is_durable_before_the_reply(service: RunningService) -> None:
    mail = asterisk_mail(blank_tiff(2), station="DURABLE", pages=2, received=datetime(2026, 3, 1, tzinfo=ZONE))
    assert service.send(mail)[0] == 250
    with service.service._db.session() as session:  # not waiting for the filing worker
        row = session.scalars(select(InboundMail)).one()
        assert Path(row.spool_path).read_bytes() == mail and row.size == len(mail)
        assert row.peer.startswith("127.0.0.1:") and row.rcpt_to == RECIPIENT
    service.wait_idle()


def test_duplicates_are_filed_once(service: RunningService) -> None:
    when = datetime(2026, 5, 2, 1, 30, tzinfo=ZONE)
    first = asterisk_mail(blank_tiff(1, height=77), station="DUP", pages=1, received=when, message_id="<dup@pbx>")
    other_id = asterisk_mail(blank_tiff(1, height=77), station="DUP", pages=1, received=when,
                             message_id="<resent@pbx>")
    for raw in (first, first, other_id):
        assert service.send(raw)[0] == 250
    service.wait_idle()
    with service.service._db.session() as session:
        receipts = list(session.scalars(select(Receipt)))
        mails = list(session.scalars(select(InboundMail).order_by(InboundMail.id)))
    assert len(receipts) == 1
    assert [m.state for m in mails] == ["filed", "duplicate", "duplicate"]
    for mail in mails[1:]:
        assert receipts[0].receipt_no in (mail.reason or "") and "同一传真文件" in (mail.reason or "")


# --- end to end with the real reader ---------------------------------------------------------

READ = [
    Sent("fax_012.tif", (FAX_FIXTURES / "fax_012.tif").read_bytes(), "0431-5550123", 3,
         datetime(2026, 11, 23, 1, 12, 5, tzinfo=ZONE), "hylafax"),  # not the TTI line's 2025-06-01 09:23
    Sent("fax_022.tif", (FAX_FIXTURES / "fax_022.tif").read_bytes(), "0517-7011419", 1,
         datetime(2026, 11, 23, 2, 40, 0, tzinfo=ZONE), "asterisk"),
    Sent(RECEIVED_FAX.name, RECEIVED_FAX.read_bytes(), "+86 27 8888 9999", 2,
         datetime(2026, 11, 22, 15, 34, 25, tzinfo=ZONE), "asterisk"),
]


@pytest.fixture(scope="module")
def read_for_real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Database, list]]:
    from gateway.fax.service import build_reader

    config = fax_config(tmp_path_factory.mktemp("ocr"))
    db = open_database(config.database_url)
    with running_service(config, db, build_reader(config)) as service:
        for fax in READ:
            assert service.send(mail_for(fax))[0] == 250
        service.wait_idle()
        urgent_calls = list(service.urgent)
    yield db, urgent_calls
    db.dispose()


@pytest.mark.ocr
@pytest.mark.parametrize("fax", READ, ids=[f.name for f in READ])
def test_real_reading_end_to_end(fax: Sent, read_for_real: tuple[Database, list]) -> None:
    db, urgent_calls = read_for_real
    receipt = receipt_for(db, fax)
    with db.session() as session:
        pages = [p.text for p in session.get(Receipt, receipt.id).page_texts]  # type: ignore[union-attr]
    assert receipt.status in ("filed", "needs_review") and receipt.pages == fax.pages == len(pages)
    assert all(text.strip() for text in pages), "a printed page came back without text"
    assert receipt.received_at == fax.received.astimezone(UTC)  # mail metadata, not the TTI line
    assert receipt.ocr_confidence is not None and receipt.ocr_engine == "rapidocr"
    assert receipt.urgency_decided_at is not None and receipt.filed_at is not None
    assert receipt.urgency_decided_at <= receipt.filed_at
    assert receipt.id in [receipt_id for receipt_id, _ in urgent_calls]


@pytest.mark.ocr
def test_urgent_faxes_would_page(read_for_real: tuple[Database, list]) -> None:
    """fax_012 (加急) and fax_022 (特提): urgent or at least possibly urgent (fail towards paging)."""
    db, _ = read_for_real
    for fax in READ[:2]:
        receipt = receipt_for(db, fax)
        assert receipt.is_urgent or receipt.possibly_urgent, receipt.urgency_reasons
        assert receipt.urgency_reasons


def test_mails_of_the_dialplan_script_itself(service: RunningService) -> None:
    """The PBX's own mailer (dialplan/agi/dutygw_fax_mail.py): a received fax and a failed one."""
    import importlib.util

    from tests.conftest import ROOT

    spec = importlib.util.spec_from_file_location("fax_mail_script", ROOT / "dialplan/agi/dutygw_fax_mail.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    received = script.build_message(script.parse_args([
        "--file", str(RECEIVED_FAX), "--status", "SUCCESS", "--error", "OK", "--pages", "2",
        "--station", "+86 27 8888 9999", "--callerid", "02788889999", "--received", "1795332847"]))
    failed = script.build_message(script.parse_args([
        "--status", "FAILED", "--error", "FAX_ERROR_TRAINING_NO_PARTNER", "--callerid", "02788881111",
        "--received", "1795333000"]))
    for message in (received, failed):
        assert service.send(crlf(message.as_bytes()))[0] == 250
    service.wait_idle()
    with service.service._db.session() as session:
        good, bad = session.scalars(select(Receipt).order_by(Receipt.id)).all()
    assert (good.status, good.pages, good.station, good.sender_number) == (
        "filed", 2, "+86 27 8888 9999", "02788889999")
    assert good.received_at == datetime.fromtimestamp(1795332847, UTC)
    assert bad.status == "needs_review" and bad.original_path is None
    assert "FAX_ERROR_TRAINING_NO_PARTNER" in bad.review_reasons[0]
    assert bad.received_at == datetime.fromtimestamp(1795333000, UTC) and bad.station == "02788881111"


def test_stop_abandons_the_reading_and_the_next_start_resumes_it(tmp_path: Path) -> None:
    config = fax_config(tmp_path)
    db = open_database(config.database_url)
    when = datetime(2026, 7, 1, 3, 0, tzinfo=ZONE)
    with running_service(config, db, NullReader(page_delay=0.3)) as running:
        for height in (61, 62, 63):
            mail = asterisk_mail(blank_tiff(3, height=height), station=f"S{height}", pages=3, received=when)
            assert running.send(mail)[0] == 250
        deadline = time.monotonic() + 30
        while not running.urgent and time.monotonic() < deadline:
            time.sleep(0.02)
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 2, "stop waited for the fax being read"
    with db.session() as session:
        states = [m.state for m in session.scalars(select(InboundMail).order_by(InboundMail.id))]
        assert "reading" in session.scalars(select(Receipt.status)).all()
    assert "spooled" in states
    with running_service(config, db, NullReader()) as running:
        running.wait_idle()
    with db.session() as session:
        assert [m.state for m in session.scalars(select(InboundMail))] == ["filed"] * 3
        assert sorted(r.seq for r in session.scalars(select(Receipt))) == [1, 2, 3]
        assert {r.status for r in session.scalars(select(Receipt))} == {"filed"}
    db.dispose()


def test_an_async_urgency_subscriber_runs_on_the_service_loop(tmp_path: Path) -> None:
    """The paging engine's ``on_urgent_receipt`` is a coroutine function; it must be run."""
    import asyncio
    import threading

    config = fax_config(tmp_path)
    db = open_database(config.database_url)
    seen: list[tuple[int, bool]] = []
    done = threading.Event()

    async def on_urgent_receipt(receipt_id: int) -> None:
        await asyncio.sleep(0)
        seen.append((receipt_id, threading.current_thread().name == "fax-service-loop"))
        done.set()

    with running_service(config, db, NullReader(), on_urgency=on_urgent_receipt) as running:
        mail = asterisk_mail(blank_tiff(1), station="ASYNC", pages=1, received=datetime(2026, 8, 1, tzinfo=ZONE))
        assert running.send(mail)[0] == 250
        running.wait_idle()
        assert done.wait(10)
    assert seen == [(1, True)]
    db.dispose()


def test_debug_logging_never_writes_the_mail_itself(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``dutygw -v``: aiosmtpd logs every DATA line at DEBUG; a classified TIFF must not be
    rebuildable from the log."""
    import logging

    caplog.set_level(logging.DEBUG)
    config = fax_config(tmp_path)
    db = open_database(config.database_url)
    marker = "MARKER-OF-THE-FAX-BODY-7f3a"
    mail = asterisk_mail(blank_tiff(1, height=71), station=marker, pages=1,
                         received=datetime(2026, 9, 1, 2, 0, tzinfo=ZONE))
    with running_service(config, db, NullReader()) as running:
        assert running.send(mail)[0] == 250
        running.wait_idle()
    db.dispose()
    assert "accepted inbound mail" in caplog.text  # the gateway's own lines are there
    assert marker not in caplog.text and "X-Fax-Pages" not in caplog.text


def test_a_filing_step_that_hits_a_locked_database_is_retried_while_running(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The database is held locked (longer than its busy timeout) just after page 1's
    decision: the receipt is filed once the lock goes, not at the next start."""
    import sqlite3
    import threading

    from sqlalchemy import event

    config = fax_config(tmp_path)
    db = open_database(config.database_url)
    event.listen(db.engine, "connect", lambda conn, _record: conn.execute("PRAGMA busy_timeout=100"))
    db.engine.dispose()  # new connections get the short busy timeout
    locker = sqlite3.connect(config.database_url.removeprefix("sqlite:///"), check_same_thread=False,
                             isolation_level=None)
    released = threading.Event()

    def lock_for_a_while(_receipt_id: int) -> None:
        locker.execute("BEGIN EXCLUSIVE")
        threading.Timer(2.0, lambda: (locker.execute("COMMIT"), released.set())).start()

    mail = asterisk_mail(blank_tiff(2, height=73), station="LOCKED", pages=2,
                         received=datetime(2026, 9, 2, 2, 0, tzinfo=ZONE))
    with running_service(config, db, NullReader(), on_urgency=lock_for_a_while) as running:
        assert running.send(mail)[0] == 250
        running.wait_idle(60)
        assert released.is_set()
        with db.session() as session:
            assert [m.state for m in session.scalars(select(InboundMail))] == ["filed"]
            assert [r.status for r in session.scalars(select(Receipt))] == ["filed"]
    assert "retrying" in caplog.text and "locked" in caplog.text
    locker.close()
    db.dispose()
