"""What a fax server mails us, as a value: raw RFC 5322 bytes in, ``FaxMail`` out.

Pure: no I/O, no clock. Fax servers differ in where they put the facts (HylaFAX's
faxrcvd writes ``Sender:``/``Pages:``/``Received:`` lines in the body, an Asterisk
ReceiveFAX script sends ``X-Fax-*`` headers or ``KEY: value`` lines, commercial
fax-to-email puts them in the subject), so every source is read through one table
of key aliases, headers first. Chinese text arrives in UTF-8 or in the GB family;
GB2312 and GBK labels are read as GB18030, their superset, because senders mislabel.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.header
import email.utils
import hashlib
import io
import quopri
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.message import Message
from typing import Any
from zoneinfo import ZoneInfo

from PIL import Image

from ocr.formats import FAX_TYPES, sniff  # one vocabulary with the page loader

_EXTENSIONS = {
    ".tif": "image/tiff", ".tiff": "image/tiff", ".pdf": "application/pdf",
    ".ps": "application/postscript", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
}
_GB_LABELS = {"gb2312", "gb_2312", "gb_2312-80", "gbk", "x-gbk", "cp936", "ms936", "euc-cn", "x-euc-cn", "hz-gb-2312"}

_KEYS: dict[str, tuple[str, ...]] = {
    "station": ("xfaxremotestation", "xfaxremotestationid", "remotestationid", "remotestation",
                "faxremotestationid", "tsi", "sender", "csid", "发送方", "发送方标识", "对方标识"),
    "number": ("xfaxcallerid", "xfaxcallernumber", "callerid", "callernumber", "callid1", "callid",
               "cidnumber", "fromnumber", "faxnumber", "主叫号码", "来电号码", "发送号码"),
    "pages": ("xfaxpages", "pages", "faxpages", "npages", "页数"),
    "received": ("xfaxreceived", "xfaxreceivedat", "received", "receivedat", "receivedtime",
                 "receivetime", "接收时间", "收到时间"),
    "status": ("xfaxstatus", "status", "faxstatus", "状态"),
    "error": ("xfaxerror", "error", "faxerror", "错误"),
    "resolution": ("xfaxresolution", "resolution", "quality"),
}
_ALIASES = {alias: name for name, aliases in _KEYS.items() for alias in aliases}
_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9 _\-]{0,30}|[\u4e00-\u9fff]{2,8})\s*[:：]\s*(.*?)\s*$")
_OK_ERRORS = {"", "ok", "none", "no_error", "noerror", "0", "success"}
_FAILED_STATUS = {"failed", "fail", "failure", "error", "partial"}


@dataclass(frozen=True)
class Attachment:
    """One candidate fax document; ``content_type`` is what the bytes are, not what was claimed."""

    filename: str | None
    content_type: str | None
    declared_type: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def claims_fax(self) -> bool:
        """Labelled as a document we read, even if its bytes turn out not to be one."""
        declared = self.declared_type
        return (declared in FAX_TYPES or declared.startswith("image/")
                or declared in ("application/octet-stream", "application/x-pdf")
                or _suffix(self.filename or "") in _EXTENSIONS)


@dataclass(frozen=True)
class FaxMail:
    message_id: str | None
    subject: str
    station: str | None
    """Sending station identifier (TSI) as the fax server reported it."""
    sender_number: str | None
    """Caller id of the fax call, when the fax server knows it."""
    pages_declared: int | None
    received_at: datetime
    received_time_source: str
    """``fax_server`` (metadata), ``date_header`` or ``smtp`` (arrival)."""
    status: str | None
    error: str | None
    resolution: str | None
    """As the fax server wrote it (``8031x3850`` pixels per metre, ``204x196``, ``Fine``)."""
    attachments: tuple[Attachment, ...]
    problems: tuple[str, ...] = ()
    time_note: str | None = None
    """Why the sender's time was not used (in Chinese, for the register), or None."""

    @property
    def dpi(self) -> tuple[int, int] | None:
        """The resolution in dots per inch, (204, 98) for a standard-resolution page."""
        return resolution_dpi(self.resolution)

    @property
    def attachment(self) -> Attachment | None:
        """The fax document: the best recognised one (TIFF before PDF before images), else the first claimed."""
        return _best(self.attachments)

    @property
    def failed(self) -> bool:
        """The fax server itself says the fax did not come through whole."""
        status = (self.status or "").strip().lower()
        return status in _FAILED_STATUS or (self.error or "").strip().lower() not in _OK_ERRORS

    @property
    def is_fax_report(self) -> bool:
        return self.status is not None or self.pages_declared is not None or self.station is not None


def _best(attachments: Sequence[Attachment]) -> Attachment | None:
    known = sorted((a for a in attachments if a.content_type is not None),
                   key=lambda a: FAX_TYPES.index(a.content_type or ""))  # a logo PNG loses to the TIFF
    chosen = known or [a for a in attachments if a.claims_fax]
    return chosen[0] if chosen else None


def parse_mail(raw: bytes, *, arrived_at: datetime, zone: ZoneInfo) -> FaxMail:
    """Read one fax mail. Never raises on malformed input: oddities land in ``problems``."""
    message = email.message_from_bytes(raw)
    problems = [f"MIME: {type(d).__name__}" for d in message.defects]
    facts: dict[str, str] = {}
    for name, value in message.items():
        _note(facts, name, decode_header(value))
    attachments: list[Attachment] = []
    for part in message.walk():
        problems.extend(f"MIME: {type(d).__name__}" for d in part.defects if part is not message)
        if part.is_multipart():
            continue
        found = _attachment(part)
        if found is not None:
            attachments.append(found)
        else:
            for line in _text(part).splitlines():
                match = _LINE.match(line)
                if match:
                    _note(facts, match.group(1), match.group(2))
    subject = decode_header(message.get("Subject", ""))
    _from_subject(facts, subject)
    for name, value in tiff_facts(_best(attachments)).items():
        facts.setdefault(name, value)
    received_at, source, note = _received_time(facts, message.get("Date"), arrived_at, zone)
    return FaxMail(
        message_id=_message_id(message.get("Message-ID")),
        subject=subject,
        station=_clean(facts.get("station")),
        sender_number=_clean(facts.get("number")),
        pages_declared=_int(facts.get("pages")),
        received_at=received_at,
        received_time_source=source,
        status=_clean(facts.get("status")),
        error=_clean(facts.get("error")),
        resolution=_clean(facts.get("resolution")),
        attachments=tuple(attachments),
        problems=tuple(dict.fromkeys(problems)),
        time_note=note,
    )


def document_mail(data: bytes, filename: str, *, arrived_at: datetime, zone: ZoneInfo) -> FaxMail:
    """A bare document (a .tif or .pdf ingested by hand) as if it had been mailed.

    A fax server's TIFF still carries its facts (spandsp: DateTime, ImageDescription).
    """
    attachment = Attachment(filename, sniff(data), _EXTENSIONS.get(_suffix(filename), ""), data)
    facts = tiff_facts(attachment)
    received_at, source, note = _received_time(facts, None, arrived_at, zone)
    return FaxMail(None, filename, _clean(facts.get("station")), None, None, received_at, source,
                   None, None, None, (attachment,), time_note=note)


def tiff_facts(attachment: Attachment | None) -> dict[str, str]:
    """What a fax server wrote into the TIFF: spandsp (Asterisk ReceiveFAX) puts the receive
    time (local) in DateTime and the remote station id in ImageDescription. Reads tags only."""
    if attachment is None or attachment.content_type != "image/tiff":
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a bomb is refused later, when pages are decoded
            with Image.open(io.BytesIO(attachment.data)) as image:
                tags = dict(getattr(image, "tag_v2", {}))
    except Exception:  # noqa: BLE001 - a damaged TIFF has no facts; reading it reports the damage
        return {}
    facts = {"received": str(tags.get(306, "")).strip(), "station": str(tags.get(270, "")).strip()}
    return {name: value for name, value in facts.items() if value}


def decode_header(value: Any) -> str:
    """An RFC 2047 header as text; raw 8-bit bytes are tried as UTF-8, then GB18030."""
    if value is None:
        return ""
    try:
        if isinstance(value, email.header.Header):  # raw 8-bit bytes, charset unknown-8bit
            chunks = email.header.decode_header(value)
        else:
            chunks = email.header.decode_header(_undo_surrogates(str(value)))
    except (ValueError, binascii.Error, LookupError):
        return str(value)
    out = []
    for chunk, charset in chunks:
        out.append(chunk if isinstance(chunk, str) else _decode(chunk, charset))
    return re.sub(r"\s*\n\s*", " ", "".join(out)).strip()


def _note(facts: dict[str, str], key: str, value: str) -> None:
    name = _ALIASES.get(re.sub(r"[\s_\-]", "", key).lower())
    if name is not None and name not in facts and value.strip():
        facts[name] = value.strip()


def _attachment(part: Message) -> Attachment | None:
    """A part that is (or claims to be) a document; plain body text is not."""
    declared = part.get_content_type()
    filename = _filename(part)
    data = _payload(part)
    kind = sniff(data)
    if kind is None and filename is None and declared.startswith("text/"):
        return None
    if kind is None and filename is None and part.get_content_maintype() == "message":
        return None
    return Attachment(filename, kind, declared, data)


def _payload(part: Message) -> bytes:
    """The decoded body; garbage base64 is decoded leniently, never raised."""
    raw = part.get_payload(decode=False)
    if not isinstance(raw, str):
        return b""
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    data = raw.encode("utf-8", "surrogateescape")  # non-ASCII in a binary "mail" too
    if encoding == "base64":
        cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
        if len(cleaned) % 4 == 1:  # one stray character cannot encode anything
            cleaned = cleaned[:-1]
        cleaned += b"=" * (-len(cleaned) % 4)
        try:
            return base64.b64decode(cleaned)
        except binascii.Error:
            return b""
    if encoding == "quoted-printable":
        return quopri.decodestring(data)
    return data


def _filename(part: Message) -> str | None:
    value = part.get_param("filename", header="content-disposition") or part.get_param("name")
    if value is None:
        return None
    if isinstance(value, tuple):  # RFC 2231: (charset, language, percent-decoded latin-1 text)
        charset, _language, text = value
        return _decode(text.encode("latin-1", "replace"), charset or "utf-8")
    return decode_header(email.utils.unquote(str(value)))


def _text(part: Message) -> str:
    data = _payload(part)
    return _decode(data, part.get_content_charset())


def _decode(data: bytes, charset: str | None) -> str:
    label = (charset or "").strip().lower()
    if label in _GB_LABELS:
        label = "gb18030"
    for candidate in (label, "utf-8", "gb18030"):
        if not candidate:
            continue
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")


def _undo_surrogates(text: str) -> str:
    """Raw 8-bit header bytes come back from the parser as surrogates: decode them properly."""
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    return _decode(text.encode("ascii", "surrogateescape"), None)


_SUBJECT_PAGES = re.compile(r"(?:共\s*(\d{1,3})\s*页|(\d{1,3})\s*(?:pages?|pp?\.?\b|页))", re.IGNORECASE)
_SUBJECT_NUMBER = re.compile(r"(?:from|来自|发送方|主叫)[:：\s]*(\+?\d[\d\s\-()]{4,}\d)", re.IGNORECASE)


def _from_subject(facts: dict[str, str], subject: str) -> None:
    """Commercial fax-to-email services name the number and pages in the subject."""
    pages = _SUBJECT_PAGES.search(subject)
    if pages and "pages" not in facts:
        facts["pages"] = pages.group(1) or pages.group(2)
    number = _SUBJECT_NUMBER.search(subject)
    if number and "number" not in facts:
        facts["number"] = number.group(1).strip()


_STAMP = re.compile(r"(\d{4})\D{1,3}(\d{1,2})\D{1,3}(\d{1,2})\D{1,3}(\d{1,2}):(\d{2})(?::(\d{2}))?")


def parse_time(text: str, zone: ZoneInfo) -> datetime | None:
    """A fax server's time stamp: ISO, HylaFAX ``2026:11:22 15:34:25``, RFC 2822 or epoch.

    A stamp without an offset is the duty room's local time (fax servers write local time).
    """
    text = text.strip()
    if re.fullmatch(r"\d{9,10}(\.\d+)?", text):
        return datetime.fromtimestamp(float(text), UTC)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None:
        match = _STAMP.search(text)
        if match is None:
            return _rfc2822(text)
        year, month, day, hour, minute, second = (int(g) if g else 0 for g in match.groups())
        try:
            parsed = datetime(year, month, day, hour, minute, second)
        except ValueError:
            return None
        offset = re.search(r"([+-])(\d{2}):?(\d{2})\s*$", text[match.end():])
        if offset:
            sign = 1 if offset.group(1) == "+" else -1
            delta = timedelta(hours=int(offset.group(2)), minutes=int(offset.group(3)))
            parsed = parsed.replace(tzinfo=timezone(sign * delta))
    return parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed


def _rfc2822(text: str) -> datetime | None:
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else None


PLAUSIBLE_BEFORE = timedelta(days=5 * 365)
"""Old mail is legitimate (a fax server holding mail while the gateway is down, an archive
filed by hand with ``fax ingest``); a dead clock battery (1970, 0001) is not."""
PLAUSIBLE_AFTER = timedelta(days=1)
"""Clocks drift and zones get misconfigured; a time further ahead than this is wrong."""


def _received_time(
    facts: dict[str, str], date_header: Any, arrived_at: datetime, zone: ZoneInfo
) -> tuple[datetime, str, str | None]:
    """Fax-server metadata first, then the Date header, else when SMTP received it.

    A sender's time far from our own arrival time (year 0001 or 9999, a dead clock
    battery) is not believed: the gateway's clock is used and the reason is kept.
    """
    claims = [("fax_server", facts.get("received"), lambda text: parse_time(text, zone)),
              ("date_header", str(date_header) if date_header else None, _rfc2822)]
    notes = []
    for source, text, parse in claims:
        if not text:
            continue
        try:
            stamp = parse(text)
            stamp = stamp.astimezone(UTC) if stamp is not None else None
        except (OverflowError, ValueError):
            stamp = None
        if stamp is not None and arrived_at - PLAUSIBLE_BEFORE <= stamp <= arrived_at + PLAUSIBLE_AFTER:
            return stamp, source, None
        if stamp is not None or source == "date_header":
            notes.append(f"{_SOURCE_LABELS[source]}「{text.strip()[:40]}」不可信")
    note = f"{'，'.join(notes)}，按网关收到时间登记" if notes else None
    return arrived_at.astimezone(UTC), "smtp", note


_SOURCE_LABELS = {"fax_server": "传真机记录的接收时间", "date_header": "邮件时间"}

_RESOLUTION = re.compile(r"(\d+(?:\.\d+)?)\s*[x×*]\s*(\d+(?:\.\d+)?)")
_QUALITY_DPI = {"normal": (204, 98), "standard": (204, 98), "fine": (204, 196), "superfine": (204, 391)}
INCH = 0.0254


def resolution_dpi(text: str | None) -> tuple[int, int] | None:
    """A fax server's resolution as dots per inch.

    spandsp (Asterisk ``FAXOPT(resolution)``) gives pixels per metre, ``8031x3850``;
    others give dpi (``204x196``) or HylaFAX's quality word (``Normal``, ``Fine``).
    """
    if not text:
        return None
    match = _RESOLUTION.search(text)
    if match is None:
        return _QUALITY_DPI.get(text.strip().lower())
    x, y = float(match.group(1)), float(match.group(2))
    if max(x, y) > 1000:  # no fax is 1000 dpi: these are pixels per metre
        x, y = x * INCH, y * INCH
    return round(x), round(y)


def _message_id(value: Any) -> str | None:
    text = decode_header(value).strip()
    return text[:500] or None


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip().strip('"').strip()
    return None if text.lower() in ("", "unknown", "<unknown>", "anonymous") else text[:200]


def _int(value: str | None) -> int | None:
    match = re.search(r"\d+", value or "")
    return int(match.group()) if match else None


def _suffix(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:].lower() if dot >= 0 else ""
