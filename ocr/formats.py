"""What kind of document a file is, by its first bytes: the one vocabulary (MIME types).

Used by the fax intake (``gateway.fax.mail``: which attachment of a mail is the fax) and by
the page loader (``ocr.pages``: how to decode it), so both always agree on what a file is.
The bytes win over what the mail claims: fax-to-mail gateways often say octet-stream.
"""

from __future__ import annotations

TIFF, PDF, POSTSCRIPT, PNG, JPEG = "image/tiff", "application/pdf", "application/postscript", "image/png", "image/jpeg"
FAX_TYPES = (TIFF, PDF, POSTSCRIPT, PNG, JPEG)
"""The document types a fax may come as, the likeliest fax first."""

_MAGIC = (
    (b"II*\x00", TIFF),
    (b"MM\x00*", TIFF),
    (b"%PDF", PDF),
    (b"%!PS", POSTSCRIPT),
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
)
_ALIASES = {"image/tiff-fx": TIFF}
"""Declared types that name one of ours by another name (RFC 3949's TIFF-FX is a TIFF)."""


def sniff(head: bytes) -> str | None:
    """The document type by its magic bytes (what the file is, whatever the mail says), or None."""
    return next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)


def declared(content_type: str | None) -> str | None:
    """The fax document type a ``Content-Type`` value names (parameters ignored), or None."""
    kind = (content_type or "").split(";")[0].strip().lower()
    kind = _ALIASES.get(kind, kind)
    return kind if kind in FAX_TYPES else None


def document_type(head: bytes, content_type: str | None = None) -> str | None:
    """The bytes' type if they say; else the declared one (a hint only)."""
    return sniff(head) or declared(content_type)


def label(kind: str) -> str:
    """A short name for messages: ``TIFF``, ``PDF``, ``PS``…"""
    return "PS" if kind == POSTSCRIPT else kind.rpartition("/")[2].upper()
