"""``gateway.fax.mail``: what fax servers mail, parsed as pure bytes → value."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.fax.mail import (
    FaxMail,
    decode_header,
    document_mail,
    parse_mail,
    parse_time,
    resolution_dpi,
    sniff,
)
from tests.conftest import FAX_FIXTURES
from tests.fax_mails import asterisk_mail, commercial_mail, crlf, hylafax_mail

ZONE = ZoneInfo("Asia/Shanghai")
ARRIVED = datetime(2026, 11, 23, 3, 0, 5, tzinfo=UTC)
TIFF = (FAX_FIXTURES / "fax_003.tif").read_bytes()
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
LOCAL = datetime(2025, 3, 18, 4, 27, 9, tzinfo=ZONE)


def parse(raw: bytes) -> FaxMail:
    return parse_mail(raw, arrived_at=ARRIVED, zone=ZONE)


def test_hylafax_faxrcvd_mail() -> None:
    mail = parse(hylafax_mail(TIFF, station="+86 517 4817762", pages=2, received=LOCAL,
                              caller="05174817762"))
    assert (mail.station, mail.sender_number, mail.pages_declared) == ("+86 517 4817762", "05174817762", 2)
    assert mail.received_at == LOCAL and mail.received_time_source == "fax_server"
    assert mail.attachment is not None and mail.attachment.data == TIFF
    assert (mail.attachment.content_type, mail.attachment.filename) == ("image/tiff", "fax00000123.tif")
    assert not mail.failed and mail.problems == ()


def test_asterisk_mail_with_x_fax_headers() -> None:
    mail = parse(asterisk_mail(TIFF, station="+86 27 8888 9999", pages=2, received=LOCAL,
                               caller="02788889999"))
    assert (mail.station, mail.sender_number, mail.pages_declared) == ("+86 27 8888 9999", "02788889999", 2)
    assert (mail.status, mail.error, mail.received_at) == ("SUCCESS", "OK", LOCAL)
    assert not mail.failed


def test_asterisk_failed_fax_report() -> None:
    mail = parse(asterisk_mail(None, station="SENDER", pages=1, received=LOCAL, status="FAILED",
                               error="FAX_ERROR_TRAINING"))
    assert mail.failed and mail.attachment is None and mail.is_fax_report


def test_faxopt_lines_in_the_body_only() -> None:
    raw = crlf(b"From: asterisk@pbx\nTo: fax@duty.local\nSubject: fax\nMIME-Version: 1.0\n"
               b"Content-Type: multipart/mixed; boundary=XX\n\n--XX\nContent-Type: text/plain\n\n"
               b"REMOTESTATIONID: 0710 3456789\nPAGES: 3\nSTATUS: SUCCESS\nERROR: OK\n"
               b"callerid: \"Yichang\" <07103456789>\nRECEIVED: 1795332847\n--XX\n"
               b"Content-Type: image/tiff\nContent-Transfer-Encoding: base64\n\n"
               + base64.encodebytes(TIFF[:3000]) + b"--XX--\n")
    mail = parse(raw)
    assert (mail.station, mail.pages_declared) == ("0710 3456789", 3)
    assert "07103456789" in (mail.sender_number or "")
    assert mail.received_at == datetime.fromtimestamp(1795332847, UTC)


def test_commercial_mail_gb2312_subject_with_gbk_only_characters() -> None:
    raw = commercial_mail(PDF, number="0517-4817762", pages=3, sent=LOCAL, filename="堃镕来文.pdf")
    mail = parse(raw)
    assert mail.subject == "您收到一份新传真：来自 0517-4817762，共3页"
    assert (mail.sender_number, mail.pages_declared) == ("0517-4817762", 3)
    assert mail.received_time_source == "date_header" and mail.received_at == LOCAL
    assert mail.attachment is not None and mail.attachment.filename == "堃镕来文.pdf"
    assert mail.attachment.content_type == "application/pdf"


@pytest.mark.parametrize("header, text", [
    ("=?utf-8?b?" + base64.b64encode("特急传真".encode()).decode() + "?=", "特急传真"),
    ("=?GB2312?B?" + base64.b64encode("堃县来电".encode("gb18030")).decode() + "?=", "堃县来电"),
    ("=?gbk?Q?=CC=D8=BC=B1?= fax", "特急 fax"),
    ("=?GB18030?B?" + base64.b64encode("𠀀测试".encode("gb18030")).decode() + "?=", "𠀀测试"),
    ("plain ascii", "plain ascii"),
    ("=?unknown-charset?B?" + base64.b64encode("测试".encode()).decode() + "?=", "测试"),
])
def test_encoded_words(header: str, text: str) -> None:
    assert decode_header(header) == text


def test_raw_8bit_gbk_headers_and_quoted_encoded_filename() -> None:
    name = "=?GB18030?B?" + base64.b64encode("值班传真.tif".encode("gb18030")).decode() + "?="
    raw = crlf(b"Subject: " + "来自应急局的传真".encode("gbk") + b"\nMIME-Version: 1.0\n"
               b"Content-Type: multipart/mixed; boundary=B\n\n--B\n"
               b"Content-Type: application/octet-stream; name=\"" + name.encode() + b"\"\n"
               b"Content-Transfer-Encoding: base64\n\n" + base64.encodebytes(TIFF[:600]) + b"--B--\n")
    mail = parse(raw)
    assert mail.subject == "来自应急局的传真"
    assert mail.attachment is not None and mail.attachment.filename == "值班传真.tif"
    assert mail.attachment.content_type == "image/tiff"


@pytest.mark.parametrize("declared, data, sniffed", [
    ("text/plain", TIFF[:500], "image/tiff"),
    ("application/octet-stream", PDF, "application/pdf"),
    ("image/jpeg", b"%!PS-Adobe-3.0\n", "application/postscript"),
    ("application/pdf", b"MM\x00*" + bytes(20), "image/tiff"),
    ("image/tiff", b"\x89PNG\r\n\x1a\n" + bytes(8), "image/png"),
    ("image/tiff", b"\xff\xd8\xff\xe0" + bytes(8), "image/jpeg"),
    ("image/tiff", b"not a fax at all", None),
])
def test_wrong_content_type_is_sniffed(declared: str, data: bytes, sniffed: str | None) -> None:
    raw = crlf(b"Subject: x\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n--B\n"
               b"Content-Type: " + declared.encode() + b"\nContent-Disposition: attachment\n"
               b"Content-Transfer-Encoding: base64\n\n" + base64.encodebytes(data) + b"--B--\n")
    attachment = parse(raw).attachment
    assert attachment is not None
    assert (attachment.content_type, attachment.declared_type) == (sniffed, declared)


def test_time_falls_back_to_smtp_arrival() -> None:
    mail = parse(b"Subject: no date\r\n\r\nbody\r\n")
    assert (mail.received_at, mail.received_time_source) == (ARRIVED, "smtp")
    assert mail.attachment is None and not mail.is_fax_report


@pytest.mark.parametrize("text, expected", [
    ("2026:11:22 15:34:25", datetime(2026, 11, 22, 15, 34, 25, tzinfo=ZONE)),
    ("2026/11/22 15:34", datetime(2026, 11, 22, 15, 34, tzinfo=ZONE)),
    ("2026-11-22T15:34:25+08:00", datetime(2026, 11, 22, 7, 34, 25, tzinfo=UTC)),
    ("2026-11-22 07:34:25 +0000", datetime(2026, 11, 22, 7, 34, 25, tzinfo=UTC)),
    ("Sun, 22 Nov 2026 15:34:25 +0800", datetime(2026, 11, 22, 7, 34, 25, tzinfo=UTC)),
    ("1795332847", datetime.fromtimestamp(1795332847, UTC)),
    ("yesterday", None),
    ("2026-13-45 99:99", None),
])
def test_fax_server_time_stamps(text: str, expected: datetime | None) -> None:
    assert parse_time(text, ZONE) == expected


def test_bare_document_as_a_mail() -> None:
    mail = document_mail(TIFF, "fax.tif", arrived_at=ARRIVED, zone=ZONE)
    assert mail.attachment is not None and mail.attachment.content_type == "image/tiff"
    assert mail.received_at == ARRIVED and mail.message_id is None


def test_spandsp_tiff_tags_are_fax_server_facts() -> None:
    """Asterisk's ReceiveFAX (spandsp) writes the receive time and the remote station id into
    the TIFF: used when the mail itself does not say (and for a TIFF ingested by hand)."""
    received = next((FAX_FIXTURES.parent / "fax-received").glob("*.tif")).read_bytes()
    bare = document_mail(received, "fax.tif", arrived_at=ARRIVED, zone=ZONE)
    assert (bare.station, bare.received_time_source) == ("+86 27 8888 9999", "fax_server")
    assert bare.received_at == datetime(2026, 11, 22, 15, 34, 25, tzinfo=ZONE)
    mailed = parse(asterisk_mail(received, station="FROM MAIL", pages=2, received=LOCAL))
    assert (mailed.station, mailed.received_at) == ("FROM MAIL", LOCAL)


def test_real_asterisk_received_tiff_is_sniffed() -> None:
    received = next((FAX_FIXTURES.parent / "fax-received").glob("*.tif"))
    assert sniff(Path(received).read_bytes()) == "image/tiff"


@pytest.mark.parametrize("date", [
    "Mon, 01 Jan 0001 00:00:00 +0800",   # overflows when converted to UTC
    "Fri, 31 Dec 9999 23:59:59 +0000",   # would be numbered 传真〔9999〕
    "Thu, 01 Jan 1970 08:00:00 +0800",   # a dead clock battery
    "Sat, 01 Dec 2029 10:00:00 +0800",   # years ahead
])
def test_an_implausible_sender_time_gives_way_to_the_gateways_clock(date: str) -> None:
    raw = crlf(f"From: fax@pbx\nTo: fax@duty.local\nSubject: fax\nDate: {date}\n"
               f"Message-ID: <t@pbx>\nMIME-Version: 1.0\nContent-Type: image/tiff\n"
               f"Content-Transfer-Encoding: base64\n\n".encode() + base64.encodebytes(TIFF[:3000]))
    mail = parse(raw)
    assert (mail.received_at, mail.received_time_source) == (ARRIVED, "smtp")
    assert mail.time_note is not None and "不可信" in mail.time_note and date[:16] in mail.time_note


def test_an_implausible_fax_server_time_falls_back_to_a_plausible_date_header() -> None:
    raw = asterisk_mail(TIFF, station="S", pages=1, received=LOCAL)
    raw = raw.replace(b"X-Fax-Received: " + LOCAL.isoformat(timespec="seconds").encode(),
                      b"X-Fax-Received: 9999-12-31T23:59:59+08:00")
    mail = parse(raw)
    assert (mail.received_at, mail.received_time_source) == (LOCAL, "date_header")
    assert mail.time_note is None


def test_a_plausible_late_delivery_keeps_the_senders_time() -> None:
    """A fax server that held mail while the gateway was down: the fax's own time is the truth."""
    mail = parse(hylafax_mail(TIFF, station="S", pages=1, received=LOCAL))
    assert (mail.received_at, mail.received_time_source, mail.time_note) == (LOCAL, "fax_server", None)


@pytest.mark.parametrize(("text", "dpi"), [
    ("8031x3850", (204, 98)), ("8031x7700", (204, 196)), ("204x196", (204, 196)),
    ("Normal", (204, 98)), ("Fine", (204, 196)), ("", None), (None, None),
])
def test_resolution_is_stored_as_dpi(text: str | None, dpi: tuple[int, int] | None) -> None:
    assert resolution_dpi(text) == dpi


def test_asterisk_resolution_in_pixels_per_metre_becomes_dpi() -> None:
    raw = asterisk_mail(TIFF, station="S", pages=1, received=LOCAL).replace(
        b"X-Fax-Status:", b"X-Fax-Resolution: 8031x3850\r\nX-Fax-Status:")
    assert parse(raw).dpi == (204, 98)
