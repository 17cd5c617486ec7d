"""One file-type rule for the fax intake and the page loader (``ocr.formats``)."""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from gateway.fax.mail import document_mail, parse_mail
from ocr.errors import UnsupportedFormat
from ocr.formats import FAX_TYPES, declared, document_type, sniff
from ocr.pages import load_pages
from tests.conftest import FAX_FIXTURES

ZONE = ZoneInfo("Asia/Shanghai")
ARRIVED = datetime(2026, 11, 23, 3, 0, 5, tzinfo=UTC)


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("1", (40, 30), 1).save(out, format="PNG", dpi=(200, 200))
    return out.getvalue()


def mail_with(data: bytes, content_type: str) -> bytes:
    return (b"Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
            b"Content-Type: " + content_type.encode() + b"\r\nContent-Disposition: attachment\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(data) + b"--B--\r\n")


@pytest.mark.parametrize(("data", "kind"), [
    ((FAX_FIXTURES / "fax_003.tif").read_bytes(), "image/tiff"),
    (png_bytes(), "image/png"),
])
def test_the_intake_and_the_loader_agree_on_what_a_file_is(data: bytes, kind: str) -> None:
    attachment = parse_mail(mail_with(data, "application/octet-stream"), arrived_at=ARRIVED, zone=ZONE).attachment
    assert attachment is not None and attachment.content_type == kind == sniff(data)
    assert document_mail(data, "fax.bin", arrived_at=ARRIVED, zone=ZONE).attachment.content_type == kind  # type: ignore[union-attr]
    assert load_pages(data, content_type="text/plain", max_pages=5, max_pixels=10**8)  # the bytes win


def test_a_truncated_png_signature_is_no_png_for_either() -> None:
    """The 8-byte PNG signature (the intake's old rule; the loader used to accept 4 bytes)."""
    data = b"\x89PNG" + bytes(20)
    assert sniff(data) is None
    assert parse_mail(mail_with(data, "image/tiff"), arrived_at=ARRIVED, zone=ZONE).attachment.content_type is None  # type: ignore[union-attr]
    with pytest.raises(UnsupportedFormat):
        load_pages(data, max_pages=5, max_pixels=10**8)


def test_declared_types_are_a_hint_in_the_same_vocabulary() -> None:
    assert declared("image/TIFF-FX; application=faxbw") == "image/tiff"
    assert declared("application/octet-stream") is None
    assert document_type(b"nothing known", "application/pdf; name=x.pdf") == "application/pdf"
    assert document_type(b"%PDF-1.4", "image/tiff") == "application/pdf"
    assert {sniff(b) for b in (b"II*\x00", b"MM\x00*", b"%PDF", b"%!PS", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")} \
        == set(FAX_TYPES)
