"""Bad input over a real socket: every case ends in a clear SMTP reply, a receipt needing
review, or a quarantine entry — and the service keeps serving afterwards.

One service (module scope) takes all cases in a row, as a real one would on a bad night.
OCR is the null reader here: these cases are about intake, not about reading.
"""

from __future__ import annotations

import base64
import smtplib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from storage.db import open_database
from storage.faxes import InboundMail, Receipt
from tests.conftest import FAX_FIXTURES
from tests.fax_mails import (
    POSTSCRIPT,
    RECIPIENT,
    NullReader,
    RunningService,
    asterisk_mail,
    blank_tiff,
    bomb_tiff,
    crlf,
    empty_pdf,
    encrypted_pdf,
    fax_config,
    hylafax_mail,
    image_bytes,
    pdf_of_tiff,
    running_service,
)

ZONE = ZoneInfo("Asia/Shanghai")
WHEN = datetime(2026, 11, 22, 23, 40, tzinfo=ZONE)
TIFF = (FAX_FIXTURES / "fax_002.tif").read_bytes()
LIMIT = 2_000_000


def fixture(name: str) -> bytes:
    return (FAX_FIXTURES / f"{name}.tif").read_bytes()


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[str], bytes]
    """Message-ID → the raw mail."""
    expect: str
    """``smtp:CODE``, ``filed``, ``needs_review:WORDS``, ``quarantined:WORDS``."""
    to: str = RECIPIENT


def with_part(body: bytes, *, content_type: str = "image/tiff", encoding: str = "base64",
              disposition: str = "attachment; filename=fax.tif", subject: bytes = b"fax",
              encoded: bytes | None = None) -> Callable[[str], bytes]:
    def build(message_id: str) -> bytes:
        head = [b"From: fax@pbx", b"To: " + RECIPIENT.encode(), b"Subject: " + subject,
                b"Message-ID: " + message_id.encode(), b"MIME-Version: 1.0",
                b"Content-Type: multipart/mixed; boundary=BND", b"", b"--BND",
                b"Content-Type: text/plain", b"", b"Sender: 0710-3456789", b"--BND"]
        if content_type:
            head.append(b"Content-Type: " + content_type.encode())
        if disposition:
            head.append(b"Content-Disposition: " + disposition.encode())
        head += [b"Content-Transfer-Encoding: " + encoding.encode(), b""]
        payload = encoded if encoded is not None else base64.encodebytes(body)
        return crlf(b"\n".join(head) + b"\n" + payload + b"\n--BND--\n")
    return build


def simple(text: bytes) -> Callable[[str], bytes]:
    return lambda message_id: crlf(b"Message-ID: " + message_id.encode() + b"\n" + text)


def asterisk(document: bytes | None, **options: object) -> Callable[[str], bytes]:
    defaults: dict[str, object] = {"station": "0710 3456789", "pages": 1, "received": WHEN}
    return lambda mid: asterisk_mail(document, message_id=mid, **{**defaults, **options})  # type: ignore[arg-type]


def truncated_mime(message_id: str) -> bytes:
    whole = hylafax_mail(TIFF, station="S", pages=1, received=WHEN, message_id=message_id)
    return whole[: len(whole) // 2]


def forwarded(message_id: str) -> bytes:
    inner = EmailMessage()
    inner["Subject"] = "Fax"
    inner.set_content("Pages: 1")
    inner.add_attachment(blank_tiff(2, height=120), maintype="image", subtype="tiff", filename="f.tif")
    outer = EmailMessage()
    outer["Message-ID"] = message_id
    outer["Subject"] = "Fwd: Fax"
    outer.set_content("see attached")
    outer.add_attachment(inner)
    return crlf(outer.as_bytes())


def logo_then_fax(message_id: str) -> bytes:
    message = EmailMessage()
    message["Message-ID"] = message_id
    message["Subject"] = "fax with a logo"
    message.set_content("fax")
    message.add_attachment(image_bytes("PNG"), maintype="image", subtype="png", filename="logo.png")
    message.add_attachment(blank_tiff(3, height=100), maintype="image", subtype="tiff", filename="fax.tif")
    return crlf(message.as_bytes())


CASES = [
    Case("relay attempt", with_part(TIFF), "smtp:550", to="boss@example.com"),
    Case("over the size limit", with_part(bytes(LIMIT)), "smtp:552"),
    Case("bare LF line endings", lambda mid: hylafax_mail(TIFF, station="S", pages=1, received=WHEN,
                                                          message_id=mid).replace(b"\r\n", b"\n"), "smtp:500"),
    Case("truncated MIME", truncated_mime, "needs_review:附件无法读取"),
    Case("attachment without Content-Type", with_part(TIFF, content_type=""), "filed"),
    Case("TIFF labelled application/msword", with_part(fixture("fax_014"), content_type="application/msword"),
         "filed"),
    Case("TIFF labelled text/plain, no filename", with_part(fixture("fax_020"), content_type="text/plain",
                                                            disposition=""),
         "filed"),
    Case("PDF labelled image/tiff", with_part(pdf_of_tiff(TIFF)), "filed"),
    Case("base64 garbage", with_part(b"", encoded=b"SUkqAB5h$$$$====AAAA*&^%\n~~~~"), "needs_review:附件无法读取"),
    Case("base64 of random bytes", with_part(bytes(range(256)) * 40), "needs_review:附件无法读取"),
    Case("not base64 at all", with_part(b"", encoded=b"!!@@##$$%%^^&&**\n"), "needs_review:0 字节"),
    Case("zero-byte TIFF", with_part(b""), "needs_review:0 字节"),
    Case("corrupt TIFF", with_part(TIFF[:8] + bytes(range(256)) * 20), "needs_review:附件无法读取"),
    Case("truncated TIFF", with_part(TIFF[: len(TIFF) // 3]), "needs_review:附件无法读取"),
    Case("TIFF decompression bomb", with_part(bomb_tiff()), "needs_review:附件无法读取"),
    Case("100-page fax", with_part(blank_tiff(100, height=80)), "needs_review:共 100 页"),
    Case("PDF without pages", with_part(empty_pdf(), content_type="application/pdf"), "needs_review:no pages"),
    Case("encrypted PDF", with_part(encrypted_pdf(), content_type="application/pdf"),
         "needs_review:password"),
    Case("PostScript fax", with_part(POSTSCRIPT, content_type="application/postscript"), "filed"),
    Case("JPEG scan labelled TIFF", with_part(image_bytes("JPEG")), "filed"),
    Case("raw GBK bytes in headers", with_part(blank_tiff(1), subject="紧急传真".encode("gbk")), "filed"),
    Case("unknown charset subject", with_part(blank_tiff(1, height=90), subject=b"=?x-klingon?B?AAAA?="), "filed"),
    Case("no attachment", simple(b"Subject: hello\n\nJust text, no fax.\n"), "quarantined:邮件中没有传真文件"),
    Case("Word document only", with_part(b"PK\x03\x04docx", content_type="application/vnd.openxmlformats",
                                         disposition="attachment; filename=a.docx"), "quarantined:邮件中没有传真文件"),
    Case("headers only", simple(b"Subject: nothing\n"), "quarantined"),
    Case("binary junk instead of a mail", simple(bytes(range(1, 250)).replace(b"\n", b"") + b"\n"), "quarantined"),
    Case("multipart without boundary", simple(b"Content-Type: multipart/mixed\n\nnothing here\n"), "quarantined"),
    Case("failed fax report, no TIFF", asterisk(None, status="FAILED", error="FAX_ERROR_TRAINING"),
         "needs_review:接收失败"),
    Case("partial fax", asterisk(blank_tiff(1, height=110), pages=3, status="FAILED", error="FAX_ERROR_PARTIAL"),
         "needs_review:不完整"),
    Case("forwarded fax mail", forwarded, "filed"),
    Case("logo PNG before the TIFF", logo_then_fax, "filed"),
]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, tuple], RunningService]]:
    config = fax_config(tmp_path_factory.mktemp("bad"), max_message_bytes=LIMIT)
    db = open_database(config.database_url)
    results: dict[str, tuple] = {}
    with running_service(config, db, NullReader()) as service:
        for case in CASES:
            message_id = make_msgid(domain="bad.test")
            results[case.name] = (message_id, send(service, case.build(message_id), case.to))
        service.wait_idle()
        yield results, service
    db.dispose()


def send(service: RunningService, raw: bytes, to: str) -> tuple[int, bytes]:
    try:
        code, reply = service.send(raw, to=to)
    except smtplib.SMTPResponseException as exc:
        code, reply = exc.smtp_code, exc.smtp_error
    return code, reply if isinstance(reply, bytes) else reply.encode()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, outcomes: tuple[dict[str, tuple], RunningService]) -> None:
    results, service = outcomes
    message_id, (code, reply) = results[case.name]
    kind, _, words = case.expect.partition(":")
    with service.service._db.session() as session:
        mail = session.scalars(select(InboundMail).where(InboundMail.message_id == message_id)).first()
        receipt = None if mail is None else session.scalars(select(Receipt).where(Receipt.mail_id == mail.id)).first()
    if kind == "smtp":
        assert code == int(words) and mail is None, reply
        return
    assert code == 250 and mail is not None, reply
    assert Path(mail.spool_path).is_file()
    if kind == "quarantined":
        assert (mail.state, receipt) == ("quarantined", None)
        assert words in (mail.reason or "")
        return
    assert receipt is not None and mail.state == "filed"
    assert receipt.status == kind, receipt.review_reasons
    assert words in "；".join(receipt.review_reasons)


def test_service_still_serves_a_good_fax_after_the_bad_ones(
    outcomes: tuple[dict[str, tuple], RunningService],
) -> None:
    _results, service = outcomes
    message_id = make_msgid(domain="good.test")
    code, _ = service.send(hylafax_mail(blank_tiff(2, height=150), station="GOOD", pages=2, received=WHEN,
                                        message_id=message_id))
    service.wait_idle()
    assert code == 250
    with service.service._db.session() as session:
        receipt = session.scalars(select(Receipt).join(InboundMail, Receipt.mail_id == InboundMail.id)
                                  .where(InboundMail.message_id == message_id)).one()
        assert (receipt.status, receipt.pages, receipt.station) == ("filed", 2, "GOOD")


def test_at_least_25_malformed_cases() -> None:
    assert len(CASES) >= 25
