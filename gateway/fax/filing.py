"""Filing: one spooled mail becomes one receipt (来文登记), a duplicate note, or a quarantine entry.

Steps run in order, each short, each committing what it knows so a crash at any point
is resumed by filing the same mail again (``file`` is idempotent per mail):

1. read the spool file and parse it (``mail.parse_mail``); malformed → quarantined;
2. same document (or, without one, the same mail bytes) as an earlier receipt → ``duplicate``
   (a Message-ID proves nothing: fax servers reuse and omit them);
3. no fax document → quarantined (unless the fax server reports a failed fax: that is a
   receipt needing review, since someone tried to send us something);
4. keep the original under ``faxes/YYYY/`` and insert the numbered receipt (``reading``);
5. load the pages and OCR them; page 1's urgency decision is committed the moment the
   reader decides it (``on_header``), and ``on_urgency(receipt_id)`` is called at once;
6. write fields, page texts and status (``filed`` or ``needs_review``), mark the mail filed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select

from gateway.clock import Clock
from gateway.config import Config
from gateway.fax.mail import Attachment, FaxMail, document_mail, parse_mail
from gateway.fax.numbering import insert_numbered
from gateway.fax.spool import write_durably
from ocr.errors import UnreadableDocument
from ocr.model import PageText, Reason, Rule, UrgencyDecision
from storage.db import Database
from storage.faxes import InboundMail, Receipt, ReceiptPage
from storage.states import FilingOutcome, InboundMailState, ReceiptStatus

if TYPE_CHECKING:  # the OCR engines load only where pages are read (workers, ``fax ingest``)
    from ocr.pages import FaxPage
    from ocr.reader import FaxReading, HeaderReading

log = logging.getLogger("dutygw.fax.filing")

HeaderCallback = Callable[[UrgencyDecision, PageText], None]
"""``(decision, page-1 text)``, as ``ocr.reader.FaxReader`` calls it."""
PageCallback = Callable[[int], None]
"""Told each step before it is done (a page number; see ``ocr.reader.PageCallback``)."""
UrgencyCallback = Callable[[int], None]

_SUFFIXES = {"image/tiff": ".tif", "application/pdf": ".pdf", "application/postscript": ".ps",
             "image/png": ".png", "image/jpeg": ".jpg"}


class Reader(Protocol):
    """What the fax intake needs of the OCR package (``ocr.reader.FaxReader`` fits): all
    pages in one go (``read``, filing in this thread), or the header pass and the rest as
    two jobs (``read_header``, ``read_rest``, in ``gateway.fax.worker``)."""

    def read(self, pages: Sequence[FaxPage], *,
             on_header: HeaderCallback | None = None) -> FaxReading: ...

    def read_header(self, pages: Sequence[FaxPage], *,
                    on_page: PageCallback | None = None) -> HeaderReading: ...

    def read_rest(self, pages: Sequence[FaxPage], header: HeaderReading, *,
                  on_page: PageCallback | None = None) -> FaxReading: ...


PageLoader = Callable[..., list["FaxPage"]]


@dataclass(frozen=True)
class FilingResult:
    mail_id: int
    outcome: FilingOutcome
    receipt_id: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Opened:
    """A mail that became a receipt still to be read (the first steps of filing are done)."""

    mail_id: int
    receipt_id: int
    document: str | None
    """The kept original, or None when the mail carried no readable bytes."""
    content_type: str | None
    has_attachment: bool
    pages_declared: int | None
    reasons: tuple[str, ...]
    """What the mail itself says is wrong (failed fax, implausible time), in Chinese."""


class Filer:
    """Files spooled mails; safe to call again for the same mail after a crash.

    ``file`` does it all in the calling thread (``fax ingest``, tests). The running intake
    calls the steps one by one (``open``, ``record_header``, ``finish``) and reads the
    pages in between in a worker process (``gateway.fax.worker``)."""

    def __init__(
        self,
        config: Config,
        db: Database,
        clock: Clock,
        reader: Callable[[], Reader],
        *,
        on_urgency: UrgencyCallback | None = None,
        load_pages: PageLoader | None = None,
    ) -> None:
        self._config = config
        self._db = db
        self._clock = clock
        self._reader = reader
        self._on_urgency = on_urgency or (lambda _receipt_id: None)
        self._load_pages = load_pages or _default_loader
        self._originals = config.paths.data_dir / "faxes"

    def pending(self) -> list[int]:
        """Mails accepted but not yet filed, oldest first (what a restart must finish)."""
        with self._db.session() as session:
            query = select(InboundMail.id).where(InboundMail.state == InboundMailState.SPOOLED).order_by(InboundMail.id)
            return list(session.scalars(query))

    def file(self, mail_id: int) -> FilingResult:
        opened = self.open(mail_id)
        if isinstance(opened, FilingResult):
            return opened
        return self._read_and_finish(opened)

    def open(self, mail_id: int) -> FilingResult | Opened:
        """Parse, set aside (duplicate, quarantine) or open the numbered receipt."""
        with self._db.session() as session:
            row = session.get(InboundMail, mail_id)
            if row is None or row.state != InboundMailState.SPOOLED:
                return FilingResult(mail_id, FilingOutcome.SKIPPED)
            spool_path, arrived_at = Path(row.spool_path), row.received_at
        try:
            fax = self._parse(spool_path, arrived_at)
        except Exception as exc:  # the mail is kept (spool file) and shown to a person
            log.exception("mail %d could not be parsed", mail_id)
            return self._set_mail_state(mail_id, InboundMailState.QUARANTINED,
                                       f"邮件无法解析：{exc}")
        return self._file_parsed(mail_id, fax)

    def _parse(self, spool_path: Path, arrived_at: datetime) -> FaxMail:
        raw = spool_path.read_bytes()
        if spool_path.suffix == ".eml":
            return parse_mail(raw, arrived_at=arrived_at, zone=self._config.zone)
        return document_mail(raw, spool_path.name, arrived_at=arrived_at, zone=self._config.zone)

    def _file_parsed(self, mail_id: int, fax: FaxMail) -> FilingResult | Opened:
        attachment = fax.attachment
        self._note_mail(mail_id, fax, attachment)
        duplicate = self._duplicate_reason(mail_id, fax, attachment)
        if duplicate is not None:
            log.info("mail %d is a duplicate: %s", mail_id, duplicate)
            return self._set_mail_state(mail_id, InboundMailState.DUPLICATE, duplicate)
        if attachment is None and not fax.failed:
            reason = _no_attachment_reason(fax)
            log.warning("mail %d quarantined: %s", mail_id, reason)
            return self._set_mail_state(mail_id, InboundMailState.QUARANTINED, reason)
        receipt_id, original = self._open_receipt(mail_id, fax, attachment)
        return Opened(mail_id, receipt_id, str(original) if original else None,
                      attachment.declared_type if attachment else None, attachment is not None,
                      fax.pages_declared, tuple(_fax_server_reasons(fax, attachment)))

    # --- state of the mail -------------------------------------------------------------

    def _note_mail(self, mail_id: int, fax: FaxMail, attachment: Attachment | None) -> None:
        with self._db.session() as session:
            row = session.get_one(InboundMail, mail_id)
            row.attachment_sha256 = attachment.sha256 if attachment and attachment.data else None
            row.message_id = row.message_id or fax.message_id

    def _set_mail_state(self, mail_id: int, state: InboundMailState,
                        reason: str | None) -> FilingResult:
        """Set a mail aside (duplicate, quarantined): that is also what its filing came to."""
        with self._db.session() as session:
            row = session.get_one(InboundMail, mail_id)
            row.state, row.reason = state, reason
        return FilingResult(mail_id, FilingOutcome(state), None, reason)

    def _duplicate_reason(self, mail_id: int, fax: FaxMail, attachment: Attachment | None) -> str | None:
        """Why this mail repeats an earlier one (naming that receipt), or None.

        A duplicate is the same content and nothing else: the same fax document, or (for a
        mail without one, such as a failed-fax report) the same mail byte for byte. A
        Message-ID is no evidence: fax servers and gateways reuse and omit them.
        """
        with self._db.session() as session:
            if session.scalar(select(Receipt.id).where(Receipt.mail_id == mail_id)) is not None:
                return None  # resuming our own receipt after a crash
            if attachment is not None and attachment.data:
                query = select(Receipt).where(Receipt.original_sha256 == attachment.sha256)
                earlier = session.scalars(query.order_by(Receipt.id)).first()
                if earlier is not None:
                    return f"与{earlier.receipt_no}重复（同一传真文件，sha256 {attachment.sha256[:12]}…）"
                return None
            raw_sha = session.get_one(InboundMail, mail_id).sha256
            query = (select(Receipt).join(InboundMail, Receipt.mail_id == InboundMail.id)
                     .where(InboundMail.sha256 == raw_sha, InboundMail.id != mail_id))
            earlier = session.scalars(query.order_by(Receipt.id)).first()
            if earlier is not None:
                return f"与{earlier.receipt_no}重复（同一封邮件，逐字节相同）"
        return None

    # --- the receipt -------------------------------------------------------------------

    def _open_receipt(self, mail_id: int, fax: FaxMail, attachment: Attachment | None
                      ) -> tuple[int, Path | None]:
        original = self._keep_original(fax, attachment)
        with self._db.session() as session:
            existing = session.scalar(select(Receipt.id).where(Receipt.mail_id == mail_id))
        if existing is not None:
            return existing, original
        year = fax.received_at.astimezone(self._config.zone).year

        def make() -> Receipt:
            return Receipt(
                year=year, mail_id=mail_id, received_at=fax.received_at,
                received_time_source=fax.received_time_source,
                station=fax.station or fax.sender_number, sender_number=fax.sender_number,
                dpi_x=fax.dpi[0] if fax.dpi else None, dpi_y=fax.dpi[1] if fax.dpi else None,
                pages=fax.pages_declared or 0,
                original_path=str(original) if original else None,
                original_sha256=attachment.sha256 if attachment and attachment.data else None,
                content_type=(attachment.content_type or attachment.declared_type) if attachment else None,
                status=ReceiptStatus.READING, review_reasons=[], urgency_reasons=[],
            )

        receipt = insert_numbered(self._db, make)
        log.info("mail %d → receipt %s", mail_id, receipt.receipt_no)
        return receipt.id, original

    def _keep_original(self, fax: FaxMail, attachment: Attachment | None) -> Path | None:
        """The original document is the record: stored once, by content, under its year."""
        if attachment is None or not attachment.data:
            return None
        year = fax.received_at.astimezone(self._config.zone).year
        suffix = _SUFFIXES.get(attachment.content_type or "", ".bin")
        path = self._originals / str(year) / f"{attachment.sha256[:20]}{suffix}"
        if not path.exists():
            write_durably(path, attachment.data)
        return path

    def _read_and_finish(self, opened: Opened) -> FilingResult:
        """Read in this thread (no watchdog) and finish: ``fax ingest`` and tests."""
        reasons = list(opened.reasons)
        reading: FaxReading | None = None
        total_pages: int | None = None
        if opened.has_attachment:
            try:
                data = Path(opened.document).read_bytes() if opened.document else b""
                pages = self._load_pages(data, content_type=opened.content_type,
                                         max_pages=self._config.ocr.max_pages,
                                         max_pixels=self._config.ocr.max_pixels)
                total_pages = pages[0].total_pages
                reasons += page_count_reasons(opened.pages_declared, len(pages), total_pages)
                reading = self._reader().read(pages, on_header=self._header_recorder(opened.receipt_id))
            except UnreadableDocument as exc:
                reasons.append(f"附件无法读取：{exc}")
                self.record_unreadable(opened.receipt_id, str(exc))
                self._notify(opened.receipt_id)
            except Exception as exc:  # the engine broke, not the fax: a person must read it
                log.exception("OCR failed on receipt %d", opened.receipt_id)
                reasons.append(f"识别程序出错：{type(exc).__name__}: {exc}")
                self.record_unreadable(opened.receipt_id, f"{type(exc).__name__}: {exc}")
                self._notify(opened.receipt_id)
        return self.finish(opened, reading, total_pages, reasons)

    def _header_recorder(self, receipt_id: int) -> HeaderCallback:
        def on_header(decision: UrgencyDecision, _page1_text: PageText) -> None:
            self.record_header(receipt_id, decision)
            self._notify(receipt_id)

        return on_header

    def record_header(self, receipt_id: int, decision: UrgencyDecision) -> None:
        """Commit page 1's urgency decision (the pager reads it from here)."""
        with self._db.session() as session:
            receipt = session.get_one(Receipt, receipt_id)
            _apply_decision(receipt, decision)
            receipt.urgency_decided_at = self._clock.now()

    def record_unreadable(self, receipt_id: int, error: str) -> None:
        """Nobody can tell whether an unreadable fax is urgent: treat it as possibly urgent."""
        reason = Reason(rule=Rule.UNREADABLE_DOCUMENT, word="", where=error[:200])
        self.record_header(receipt_id, UrgencyDecision(False, True, None, None, None, (reason,)))

    def _notify(self, receipt_id: int) -> None:
        try:
            self._on_urgency(receipt_id)
        except Exception:
            log.exception("on_urgency callback failed for receipt %d", receipt_id)

    def finish(self, opened: Opened, reading: FaxReading | None, total_pages: int | None,
               reasons: Sequence[str]) -> FilingResult:
        """Store what was read and the review reasons; the mail is filed."""
        mail_id, receipt_id = opened.mail_id, opened.receipt_id
        with self._db.session() as session:
            receipt = session.get_one(Receipt, receipt_id)
            mail = session.get_one(InboundMail, mail_id)
            if total_pages is not None:
                receipt.pages = total_pages
            review = list(reasons)
            if reading is not None:
                review += _reading_reasons(reading)
                _apply_reading(receipt, reading)
            receipt.review_reasons = list(dict.fromkeys(review))
            status = ReceiptStatus.NEEDS_REVIEW if receipt.review_reasons else ReceiptStatus.FILED
            if receipt.status != ReceiptStatus.SIGNED:  # signed while its pages were read: it stays signed
                receipt.status = status
            receipt.filed_at = self._clock.now()
            mail.state, mail.reason = InboundMailState.FILED, None
        log.info("receipt %d %s", receipt_id, status)
        return FilingResult(mail_id, FilingOutcome(status), receipt_id,
                            "; ".join(dict.fromkeys(reasons)) or None)


def _default_loader(*args: Any, **kwargs: Any) -> list[FaxPage]:
    from ocr.pages import load_pages

    return load_pages(*args, **kwargs)


def _apply_decision(receipt: Receipt, decision: UrgencyDecision) -> None:
    receipt.is_urgent = decision.is_urgent
    receipt.possibly_urgent = decision.possibly_urgent
    receipt.urgency = decision.level
    receipt.classification = decision.classification or receipt.classification
    receipt.secrecy_period = decision.secrecy_period or receipt.secrecy_period
    receipt.urgency_reasons = [reason.as_dict() for reason in decision.reasons]


def _apply_reading(receipt: Receipt, reading: FaxReading) -> None:
    """The register fields and page texts. Not the urgency decision: ``record_header``
    stored it, and the fields' urgency and classification are that decision's."""
    fields = reading.fields
    for name in ("copy_no", "doc_number", "issuer", "title", "recipients", "doc_date", "sender"):
        setattr(receipt, name, getattr(fields, name))
    receipt.page_texts = [_page_row(page) for page in reading.pages]
    receipt.ocr_engine = next((page.engine for page in reading.pages), None)
    receipt.ocr_confidence = reading.confidence


def _page_row(page: PageText) -> ReceiptPage:
    lines = [{"text": ln.text, "box": list(ln.box), "confidence": ln.confidence} for ln in page.lines]
    return ReceiptPage(page_no=page.page_no, text=page.text, lines=lines,
                       confidence=page.confidence, engine=page.engine, error=page.error)


def _reading_reasons(reading: FaxReading) -> list[str]:
    reasons = list(reading.review)
    others = [name for name in reading.fields.conflicts if name != "doc_number"]  # the reader names that one
    if others:
        reasons.append(f"字段不一致：{'、'.join(others)}")
    return reasons


def _fax_server_reasons(fax: FaxMail, attachment: Attachment | None) -> list[str]:
    reasons = [fax.time_note] if fax.time_note else []
    if fax.failed:
        detail = "，".join(f"{k} {v}" for k, v in (("状态", fax.status), ("错误", fax.error)) if v)
        reasons.append(f"传真机报告接收失败（{detail}）" if detail else "传真机报告接收失败")
    if attachment is None:
        reasons.append("邮件中没有传真文件")
    elif not attachment.data:
        reasons.append("传真文件为空（0 字节）")
    return reasons


def page_count_reasons(declared: int | None, read: int, total: int) -> list[str]:
    reasons = []
    if declared is not None and declared > total:
        reasons.append(f"只收到 {total} 页，传真机报告 {declared} 页（不完整）")
    if total > read:
        reasons.append(f"文件共 {total} 页，只识别了前 {read} 页")
    return reasons


def _no_attachment_reason(fax: FaxMail) -> str:
    detail = f"；MIME 问题：{', '.join(fax.problems)}" if fax.problems else ""
    return f"邮件中没有传真文件（主题「{fax.subject[:80]}」）{detail}"
