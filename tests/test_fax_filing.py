"""Filing without the socket: numbering under concurrency, the fast path, crash resumption."""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from gateway.clock import FixedClock
from gateway.config import Config
from gateway.fax.filing import Filer
from gateway.fax.numbering import insert_numbered
from gateway.fax.spool import Arrival, Spool, accept
from ocr.model import FaxFields, OcrLine, PageText, Reason, UrgencyDecision
from ocr.reader import FaxReading
from storage import queries
from storage.db import Database
from storage.faxes import InboundMail, Receipt
from tests.conftest import FAX_FIXTURES
from tests.fax_mails import (
    CrashingReader,
    NullReader,
    asterisk_mail,
    blank_tiff,
    fax_config,
    null_reading,
)

ZONE = ZoneInfo("Asia/Shanghai")
NIGHT = datetime(2026, 11, 22, 2, 10, tzinfo=ZONE)


def test_numbers_do_not_collide_under_concurrency(any_database: Database) -> None:
    """Eight writers at once, 40 receipts: 1…40, no gap, no repeat (SQLite and PostgreSQL)."""
    def make() -> Receipt:
        return Receipt(year=2026, received_at=NIGHT, status="filed", review_reasons=[], urgency_reasons=[])

    def writer() -> None:
        for _ in range(5):
            insert_numbered(any_database, make)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with any_database.session() as session:
        seqs = sorted(session.scalars(select(Receipt.seq).where(Receipt.year == 2026)))
    assert seqs == list(range(1, 41))


def test_a_new_year_starts_again_at_one(database: Database) -> None:
    def receipt_of(year: int) -> Receipt:
        return Receipt(year=year, received_at=NIGHT, review_reasons=[], urgency_reasons=[])

    for year in (2025, 2025, 2026):
        insert_numbered(database, functools.partial(receipt_of, year))
    with database.session() as session:
        numbers = [r.receipt_no for r in session.scalars(select(Receipt).order_by(Receipt.id))]
    assert numbers == ["传真〔2025〕0001号", "传真〔2025〕0002号", "传真〔2026〕0001号"]


class UrgentReader:
    """Decides page 1 is urgent, then reads the other pages; records what the database said
    while it was still reading (to prove the decision was committed before the rest)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.seen_while_reading: list[tuple[str, bool, Any]] = []

    def read(self, pages: Sequence[Any], *, on_header: Any = None) -> FaxReading:
        reason = Reason("header_mark", "特急", "page 1 header zone, line 2", 0.97, "test")
        decision = UrgencyDecision(True, False, "特急", "机密", "1年", (reason,))
        on_header(decision, PageText(1, (OcrLine("特急", (1, 2, 30, 40), 0.97),), "test", 40, 50))
        with self.db.session() as session:
            receipt = session.scalars(select(Receipt)).one()
            self.seen_while_reading.append((receipt.status, receipt.is_urgent, receipt.urgency_decided_at))
        texts = tuple(PageText(p.page_no, (OcrLine(f"第{p.page_no}页", (1, 2, 30, 40), 0.9),), "test",
                               p.image.width, p.image.height) for p in pages)
        fields = FaxFields(doc_number="白政办〔2025〕156号", issuer="白山市人民政府办公室", title="关于…的通知",
                           urgency="特急", classification="机密")
        return null_reading(texts, fields, decision, 0.9)


def spooled(config: Config, db: Database, raw: bytes, suffix: str = ".eml") -> int:
    return accept(db, Spool(config.paths.data_dir / "spool"), raw, Arrival(datetime.now(UTC)), suffix)


def test_fast_path_commits_urgency_and_calls_back_before_the_other_pages(tmp_path: Path,
                                                                         database: Database) -> None:
    config = fax_config(tmp_path)
    clock = FixedClock(datetime(2026, 11, 21, 18, 10, 30, tzinfo=UTC))
    reader = UrgentReader(database)
    called: list[tuple[int, str]] = []

    def on_urgency(receipt_id: int) -> None:
        with database.session() as session:
            called.append((receipt_id, session.get(Receipt, receipt_id).status))  # type: ignore[union-attr]

    filer = Filer(config, database, clock, lambda: reader, on_urgency=on_urgency)
    mail_id = spooled(config, database, asterisk_mail(blank_tiff(3), station="S", pages=3, received=NIGHT))
    result = filer.file(mail_id)
    assert result.outcome == "filed"
    assert called == [(result.receipt_id, "reading")]
    assert reader.seen_while_reading == [("reading", True, clock.now())]
    with database.session() as session:
        receipt = session.get(Receipt, result.receipt_id)
        assert receipt is not None
        assert (receipt.urgency, receipt.classification, receipt.is_urgent) == ("特急", "机密", True)
        assert receipt.urgency_reasons[0]["word"] == "特急"
        assert [p.text for p in receipt.page_texts] == ["第1页", "第2页", "第3页"]
        assert receipt.page_texts[0].lines == [{"text": "第1页", "box": [1, 2, 30, 40], "confidence": 0.9}]
        assert receipt.ocr_confidence == pytest.approx(0.9)


class SigningReader(UrgentReader):
    """The officer signs the fax from page 1 while its other pages are still being read."""

    def read(self, pages: Sequence[Any], *, on_header: Any = None) -> FaxReading:
        def header_then_sign(decision: UrgencyDecision, text: PageText) -> None:
            on_header(decision, text)
            with self.db.session() as session:
                receipt_id = session.scalars(select(Receipt.id)).one()
                assert queries.sign_receipt(session, receipt_id, "值班员张三", datetime.now(UTC))

        return super().read(pages, on_header=header_then_sign)


def test_a_fax_signed_while_its_pages_are_read_stays_signed(tmp_path: Path, database: Database) -> None:
    config = fax_config(tmp_path)
    filer = Filer(config, database, FixedClock(), lambda: SigningReader(database))
    mail_id = spooled(config, database, asterisk_mail(blank_tiff(2), station="S", pages=2, received=NIGHT))
    result = filer.file(mail_id)
    assert result.outcome == "filed"
    with database.session() as session:
        receipt = session.get_one(Receipt, result.receipt_id)
        assert (receipt.status, receipt.signed_by) == ("signed", "值班员张三")
        assert receipt.doc_number == "白政办〔2025〕156号" and receipt.filed_at is not None
        with pytest.raises(ValueError, match="who signs"):
            queries.sign_receipt(session, receipt.id, "  ", datetime.now(UTC))
        assert not queries.sign_receipt(session, receipt.id, "李四", datetime.now(UTC))  # the first stands


def test_engine_crash_still_makes_a_receipt_possibly_urgent(tmp_path: Path, database: Database) -> None:
    config = fax_config(tmp_path)
    called: list[int] = []
    filer = Filer(config, database, FixedClock(), CrashingReader, on_urgency=called.append)
    mail_id = spooled(config, database, asterisk_mail(blank_tiff(1), station="S", pages=1, received=NIGHT))
    result = filer.file(mail_id)
    assert result.outcome == "needs_review" and "injected OCR engine crash" in (result.reason or "")
    with database.session() as session:
        receipt = session.get(Receipt, result.receipt_id)
        assert receipt is not None and receipt.possibly_urgent and receipt.urgency_decided_at is not None
    assert called == [result.receipt_id]


def test_refiling_after_a_crash_reuses_the_receipt(tmp_path: Path, database: Database) -> None:
    """A crash after the receipt row but before the end: filing again finishes that receipt."""
    config = fax_config(tmp_path)
    mail_id = spooled(config, database, asterisk_mail(blank_tiff(2), station="S", pages=2, received=NIGHT))
    crashing = Filer(config, database, FixedClock(), lambda: _Kill(), load_pages=None)
    with pytest.raises(_Killed):
        crashing.file(mail_id)
    with database.session() as session:
        assert session.scalars(select(Receipt.status)).all() == ["reading"]
        assert session.get(InboundMail, mail_id).state == "spooled"  # type: ignore[union-attr]
    filer = Filer(config, database, FixedClock(), NullReader)
    assert filer.pending() == [mail_id]
    result = filer.file(mail_id)
    assert result.outcome == "filed" and filer.pending() == []
    assert filer.file(mail_id).outcome == "skipped"
    with database.session() as session:
        assert session.scalars(select(Receipt.status)).all() == ["filed"]


class _Killed(BaseException):
    """Stands for the process dying mid-read (not an Exception: nothing may catch it)."""


class _Kill:
    def read(self, pages: Sequence[Any], *, on_header: Any = None) -> FaxReading:
        raise _Killed


def test_quarantine_keeps_the_spool_file(tmp_path: Path, database: Database) -> None:
    config = fax_config(tmp_path)
    mail_id = spooled(config, database, b"Subject: lunch\r\n\r\nno fax here\r\n")
    result = Filer(config, database, FixedClock(), NullReader).file(mail_id)
    assert result.outcome == "quarantined"
    with database.session() as session:
        mail = session.get(InboundMail, mail_id)
        assert mail is not None and mail.state == "quarantined" and "邮件中没有传真文件" in (mail.reason or "")
        assert Path(mail.spool_path).read_bytes() == b"Subject: lunch\r\n\r\nno fax here\r\n"


def test_bare_tiff_ingest(tmp_path: Path, database: Database) -> None:
    config = fax_config(tmp_path)
    mail_id = spooled(config, database, blank_tiff(2), ".tif")
    result = Filer(config, database, FixedClock(), NullReader).file(mail_id)
    assert result.outcome == "filed"
    with database.session() as session:
        receipt = session.get(Receipt, result.receipt_id)
        assert receipt is not None and receipt.pages == 2 and receipt.received_time_source == "smtp"


def test_a_reused_message_id_never_drops_a_different_fax(tmp_path: Path, database: Database) -> None:
    """Fax servers reuse and omit Message-IDs: a different (urgent) fax under an earlier id is read."""
    config = fax_config(tmp_path)
    ordinary = asterisk_mail(blank_tiff(1, height=90), station="A", pages=1, received=NIGHT, message_id="<1@pbx>")
    urgent_tiff = (FAX_FIXTURES / "fax_022.tif").read_bytes()
    urgent = asterisk_mail(urgent_tiff, station="B", pages=1, received=NIGHT, message_id="<1@pbx>")
    filer = Filer(config, database, FixedClock(), NullReader)
    first = filer.file(spooled(config, database, ordinary))
    second = filer.file(spooled(config, database, urgent))
    again = filer.file(spooled(config, database, urgent))  # the same fax mailed twice is a duplicate
    assert (first.outcome, second.outcome, again.outcome) == ("filed", "filed", "duplicate")
    assert first.receipt_id != second.receipt_id
    with database.session() as session:
        receipt = session.get_one(Receipt, second.receipt_id)
        assert receipt.station == "B" and receipt.original_sha256 is not None
        assert receipt.receipt_no in (session.get_one(InboundMail, again.mail_id).reason or "")


def test_a_failed_fax_report_mailed_twice_is_one_receipt(tmp_path: Path, database: Database) -> None:
    config = fax_config(tmp_path)
    report = asterisk_mail(None, station="C", pages=0, received=NIGHT, status="FAILED", error="NO_CARRIER",
                           message_id="<fail@pbx>")
    other = asterisk_mail(None, station="D", pages=0, received=NIGHT, status="FAILED", error="NO_CARRIER",
                          message_id="<fail@pbx>")
    filer = Filer(config, database, FixedClock(), NullReader)
    outcomes = [filer.file(spooled(config, database, raw)).outcome for raw in (report, report, other)]
    assert outcomes == ["needs_review", "duplicate", "needs_review"]


@pytest.mark.parametrize("date", ["Mon, 01 Jan 0001 00:00:00 +0800", "Fri, 31 Dec 9999 23:59:59 +0000"])
def test_a_fax_with_an_implausible_date_is_filed_at_the_gateways_time(tmp_path: Path, database: Database,
                                                                      date: str) -> None:
    config = fax_config(tmp_path)
    raw = asterisk_mail(blank_tiff(1), station="DATE", pages=1, received=NIGHT)
    raw = raw.replace(b"X-Fax-Received: ", b"X-Old-Received: ")
    head, body = raw.split(b"\r\n\r\n", 1)
    head = b"\r\n".join(ln for ln in head.split(b"\r\n") if not ln.startswith(b"Date:"))
    raw = head + f"\r\nDate: {date}\r\n\r\n".encode() + body
    before = datetime.now(UTC)
    result = Filer(config, database, FixedClock(), NullReader).file(spooled(config, database, raw))
    assert result.outcome == "needs_review", result
    with database.session() as session:
        receipt = session.get_one(Receipt, result.receipt_id)
        assert before <= receipt.received_at <= datetime.now(UTC)
        assert receipt.received_time_source == "smtp" and receipt.year == before.astimezone(ZONE).year
        assert any("不可信" in reason and date[:16] in reason for reason in receipt.review_reasons)
        assert (receipt.dpi_x, receipt.dpi_y) == (204, 98)  # RESOLUTION: 8040x3850 pixels per metre
