"""Build fax mails the way real fax servers write them, around a document's bytes.

* ``hylafax_mail`` — HylaFAX faxrcvd: a text part of ``Key: value`` lines (Sender = TSI,
  Pages, Quality, Received as ``YYYY:MM:DD HH:MM:SS`` local time, CallID1…) plus the
  document (TIFF, PDF or PostScript) as an attachment.
* ``asterisk_mail`` — the duty room's ReceiveFAX dialplan script: ``X-Fax-*`` headers
  (REMOTESTATIONID, PAGES, STATUS, ERROR, callerid, received time) and the TIFF.
* ``commercial_mail`` — a fax-to-email service: number and pages in a (Chinese, RFC 2047)
  subject, a PDF or TIFF with a GBK-encoded RFC 2231 file name.
"""

from __future__ import annotations

import asyncio
import io
import smtplib
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email.header import Header
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from gateway.clock import Clock, SystemClock
from gateway.config import Config, DatabaseConfig, DutyConfig, OcrConfig, PathsConfig, SmtpConfig
from ocr.model import FaxFields, PageText, Reason, UrgencyDecision
from ocr.reader import FaxReading, HeaderReading
from storage.db import Database

RECIPIENT = "fax@duty.local"


def crlf(raw: bytes) -> bytes:
    """SMTP line endings, as a mail server sends them (smtplib leaves bytes untouched)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def hylafax_mail(
    document: bytes, *, station: str, pages: int, received: datetime, caller: str = "",
    subtype: str = "tiff", filename: str = "fax00000123.tif", message_id: str | None = None,
) -> bytes:
    body = "\n".join([
        f"{filename} (ftp://fax.duty.local:4559/recvq/{filename}):",
        f"                Sender: {station}",
        f"                 Pages: {pages}",
        "               Quality: Normal",
        "                  Page: ISO A4",
        f"              Received: {received:%Y:%m:%d %H:%M:%S}",
        "         TimeToReceive: 1:12",
        "            SignalRate: 14400 bit/s",
        "            DataFormat: 2-D MMR",
        "         ErrCorrect: Yes",
        f"               CallID1: {caller}",
        "               CallID2: ",
        "            ReceivedOn: ttyIAX0",
        "                CommID: 000000123 (ftp://fax.duty.local:4559/log/c000000123)",
        "",
    ])
    message = MIMEMultipart("mixed")
    message["From"] = "The HylaFAX Receive Agent <fax@pbx.duty.local>"
    message["To"] = RECIPIENT
    message["Subject"] = f"Facsimile received from {station}"
    message["Date"] = format_datetime(received)
    message["Message-ID"] = message_id or make_msgid(domain="pbx.duty.local")
    message.attach(MIMEText(body, "plain", "us-ascii"))
    main = "image" if subtype == "tiff" else "application"
    part = MIMEApplication(document, subtype)
    if main == "image":
        del part["Content-Type"]
        part["Content-Type"] = "image/tiff"
    part.add_header("Content-Disposition", "attachment", filename=filename)
    message.attach(part)
    return crlf(message.as_bytes())


def asterisk_mail(
    document: bytes | None, *, station: str, pages: int, received: datetime, caller: str = "",
    status: str = "SUCCESS", error: str = "OK", message_id: str | None = None,
    filename: str = "fax-20261122-153407.tif", content_type: str = "image/tiff",
) -> bytes:
    message = EmailMessage()
    message["From"] = "Asterisk PBX <asterisk@pbx.duty.local>"
    message["To"] = RECIPIENT
    message["Subject"] = f"Fax from {caller or station}"
    message["Date"] = format_datetime(received)
    message["Message-ID"] = message_id or make_msgid(domain="pbx.duty.local")
    message["X-Fax-Remote-Station"] = station
    message["X-Fax-Pages"] = str(pages)
    message["X-Fax-Status"] = status
    message["X-Fax-Error"] = error
    message["X-Fax-CallerID"] = caller
    message["X-Fax-Received"] = received.isoformat(timespec="seconds")
    message.set_content(
        f"REMOTESTATIONID: {station}\nPAGES: {pages}\nSTATUS: {status}\nERROR: {error}\n"
        f"RESOLUTION: 8040x3850\ncallerid: {caller}\n")
    if document is not None:
        maintype, subtype = content_type.split("/")
        message.add_attachment(document, maintype=maintype, subtype=subtype, filename=filename)
    return crlf(message.as_bytes())


def commercial_mail(
    document: bytes, *, number: str, pages: int, sent: datetime, subtype: str = "pdf",
    filename: str = "传真件.pdf", message_id: str | None = None,
) -> bytes:
    message = MIMEMultipart("mixed")
    message["From"] = "云传真 <noreply@efax.example.cn>"
    message["To"] = RECIPIENT
    message["Subject"] = Header(f"您收到一份新传真：来自 {number}，共{pages}页", "gb2312").encode()
    message["Date"] = format_datetime(sent)
    message["Message-ID"] = message_id or make_msgid(domain="efax.example.cn")
    message.attach(MIMEText("您好，附件是您收到的传真，请查收。", "plain", "gb2312"))
    part = MIMEApplication(document, subtype)
    part.add_header("Content-Disposition", "attachment", filename=("gbk", "", filename))
    message.attach(part)
    return crlf(message.as_bytes())


# --- a running service on a loopback port, for tests that talk SMTP ---------------------


def fax_config(data_dir: Path, **smtp: Any) -> Config:
    """A configuration for one test: its own data folder and SQLite file, SMTP on a free port."""
    return Config(
        duty=DutyConfig(numbers=["02787654321"], extensions=["8001"]),
        database=DatabaseConfig(url=f"sqlite:///{data_dir / 'dutygw.sqlite'}"),
        paths=PathsConfig(data_dir=data_dir),
        smtp=SmtpConfig(**{"port": 0, **smtp}),
        ocr=OcrConfig(max_pages=60),
    )


def null_reading(pages: tuple[PageText, ...], fields: FaxFields, urgency: UrgencyDecision,
                 confidence: float | None = None) -> FaxReading:
    """A reading with nothing doubtful in it (what a fake reader returns)."""
    return FaxReading(pages, fields, urgency, confidence, ())


@dataclass
class NullReader:
    """Reads nothing (OCRmyPDF's null engine): for tests of intake mechanics, not of OCR.

    It still honours the reader's contract: ``on_header`` first, then every page.
    ``crash_on`` makes it raise on pages of that size (crash injection).
    """

    page_delay: float = 0.0
    calls: list[int] = field(default_factory=list)

    def read(self, pages: Sequence[Any], *, on_header: Callable[[UrgencyDecision, Any], None] | None = None
             ) -> FaxReading:
        decision = UrgencyDecision(False, False, None, None, None,
                                   (Reason("no_ocr", "", "null reader in tests"),))
        if on_header is not None:
            on_header(decision, PageText(1, (), "null", 0, 0))
        texts = []
        for page in pages:
            time.sleep(self.page_delay)
            texts.append(PageText(page.page_no, (), "null", page.image.width, page.image.height))
        self.calls.append(len(pages))
        return null_reading(tuple(texts), FaxFields(), decision)

    def read_header(self, pages: Sequence[Any], *, on_page: Any = None) -> HeaderReading:
        decision = UrgencyDecision(False, False, None, None, None, (Reason("no_ocr", "", "null reader in tests"),))
        time.sleep(self.page_delay)
        return HeaderReading(decision, (PageText(1, (), "null", pages[0].image.width, pages[0].image.height),))

    def read_rest(self, pages: Sequence[Any], header: HeaderReading, *, on_page: Any = None
                  ) -> FaxReading:
        texts = [header.texts[0]]
        for page in pages[1:]:
            time.sleep(self.page_delay)
            texts.append(PageText(page.page_no, (), "null", page.image.width, page.image.height))
        self.calls.append(len(pages))
        return null_reading(tuple(texts), FaxFields(), header.decision)


class CrashingReader:
    """An OCR engine that breaks (injected fault): the fax must still become a receipt."""

    def read(self, pages: Sequence[Any], *, on_header: Any = None) -> FaxReading:
        raise RuntimeError("injected OCR engine crash")

    def read_header(self, pages: Sequence[Any], *, on_page: Any = None) -> Any:
        raise RuntimeError("injected OCR engine crash")


@dataclass
class RunningService:
    service: Any
    loop: asyncio.AbstractEventLoop
    urgent: list[tuple[int, float]]

    @property
    def port(self) -> int:
        return int(self.service.port)

    def call(self, coroutine: Any, timeout: float = 600) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def wait_idle(self, timeout: float = 600) -> None:
        self.call(self.service.idle(), timeout)

    def send(self, raw: bytes, *, to: str = RECIPIENT, sender: str = "fax@pbx.duty.local") -> Any:
        """Mail ``raw`` with smtplib; returns the DATA reply (code, message)."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=60) as client:
            client.ehlo("pbx.duty.local")
            code, message = client.mail(sender)
            if code != 250:
                return code, message
            code, message = client.rcpt(to)
            if code != 250:
                return code, message
            return client.data(raw)


@contextmanager
def running_service(
    config: Config, db: Database, reader: Any, clock: Clock | None = None, on_urgency: Any = None,
) -> Iterator[RunningService]:
    """``FaxService`` on its own event loop in a thread, as the daemon would run it.

    ``reader`` None: the configured reader in the service's own worker processes."""
    from gateway.fax.service import FaxService

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fax-service-loop", daemon=True)
    thread.start()
    urgent: list[tuple[int, float]] = []
    service = FaxService(config, db, clock or SystemClock(),
                         reader_factory=None if reader is None else (lambda: reader),
                         on_urgency=on_urgency or (lambda rid: urgent.append((rid, time.monotonic()))))
    running = RunningService(service, loop, urgent)
    running.call(service.start(), 30)
    try:
        yield running
    finally:
        running.call(service.stop(), 600)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


# --- documents, good and bad --------------------------------------------------------------


def pdf_of_tiff(tiff: bytes) -> bytes:
    """A fax TIFF as a commercial service's PDF (one image per page)."""
    from PIL import Image, ImageSequence

    with Image.open(io.BytesIO(tiff)) as image:
        frames = [frame.convert("L") for frame in ImageSequence.Iterator(image)]
    out = io.BytesIO()
    frames[0].save(out, "PDF", save_all=True, append_images=frames[1:], resolution=204.0)
    return out.getvalue()


def blank_tiff(pages: int, *, width: int = 1728, height: int = 200) -> bytes:
    """A multi-page G4 fax TIFF of blank pages (cheap to make, real to decode)."""
    from PIL import Image

    frames = [Image.new("1", (width, height), 1) for _ in range(pages)]
    out = io.BytesIO()
    frames[0].save(out, "TIFF", compression="group4", save_all=True, append_images=frames[1:],
                   dpi=(204, 98))
    return out.getvalue()


def bomb_tiff(side: int = 200_000) -> bytes:
    """A tiny G4 TIFF whose header claims ``side``×``side`` pixels (a decompression bomb)."""
    data = bytearray(blank_tiff(1))
    assert data[:4] == b"II*\x00"
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    for index in range(count):
        entry = ifd + 2 + 12 * index
        tag, kind = struct.unpack_from("<HH", data, entry)
        if tag in (256, 257, 278):  # width, length, rows per strip
            if kind == 3:
                struct.pack_into("<HHIHH", data, entry, tag, 4, 1, 0, 0)
            struct.pack_into("<I", data, entry + 8, side)
    return bytes(data)


def empty_pdf() -> bytes:
    import pypdfium2

    out = io.BytesIO()
    pypdfium2.PdfDocument.new().save(out)
    return out.getvalue()


def encrypted_pdf() -> bytes:
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    page = canvas.Canvas(out, encrypt="secret")
    page.drawString(100, 700, "classified")
    page.showPage()
    page.save()
    return out.getvalue()


def image_bytes(kind: str) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("L", (800, 600), 255)
    ImageDraw.Draw(image).text((50, 50), "FAX", fill=0)
    out = io.BytesIO()
    image.save(out, kind, dpi=(200, 200))
    return out.getvalue()


def many_pages_tiff(pages: int = 10_000, *, width: int = 1728, height: int = 1100) -> bytes:
    """A TIFF claiming ``pages`` pages: one blank G4 page whose directory is chained
    ``pages`` times (every directory points at the same strip), 1.5 MB in all."""
    from PIL import Image

    one = io.BytesIO()
    Image.new("1", (width, height), 1).save(one, "TIFF", compression="group4", dpi=(204, 98))
    data = bytearray(one.getvalue())
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    size = 2 + 12 * count + 4
    entries = bytes(data[ifd:ifd + size - 4])
    out = data + b"\0" * (len(data) % 2)
    offsets = [ifd] + [len(out) + i * size for i in range(pages - 1)]
    out += (entries + bytes(4)) * (pages - 1)
    for index, at in enumerate(offsets):
        following = offsets[index + 1] if index + 1 < len(offsets) else 0
        struct.pack_into("<I", out, at + size - 4, following)
    return bytes(out)


def corrupt_tiff(tiff: bytes) -> bytes:
    """A real fax TIFF whose page 1 data is overwritten a little way in (line noise on the
    line: libtiff decodes the rest of the page as garbage)."""
    from PIL import Image

    with Image.open(io.BytesIO(tiff)) as image:
        strip = int(image.tag_v2[273][0])
    damaged = bytearray(tiff)
    damaged[strip + 2000:strip + 6000] = bytes(range(256)) * 15 + bytes(160)
    return bytes(damaged)


POSTSCRIPT_LOOP = b"%!PS-Adobe-3.0\n{} loop\n"
"""A PostScript program that never ends (ghostscript renders it forever)."""

POSTSCRIPT = b"%!PS-Adobe-3.0\n/Helvetica findfont 24 scalefont setfont\n72 720 moveto (FAX) show\nshowpage\n"
