"""Why a received document could not be turned into page images.

One hierarchy under ``UnreadableDocument`` (an ``InputError`` of the gateway), so the
intake can register the fax as "unreadable, look at the original" with a clear reason
instead of crashing. Each class says what the duty officer should do.
"""

from __future__ import annotations

from gateway.errors import InputError


class UnreadableDocument(InputError):
    """The document cannot be read as fax pages."""

    remedy = "open the original file by hand and register it manually"


class EmptyDocument(UnreadableDocument):
    """Zero bytes, or a document with no pages in it."""

    remedy = "ask the sender to send the fax again"


class CorruptDocument(UnreadableDocument):
    """Damaged or truncated file (bad TIFF directory, broken compressed data, bad PDF)."""

    remedy = "ask the sender to send the fax again; keep the damaged file for the record"


class UnsupportedFormat(UnreadableDocument):
    """Not a TIFF, PDF, PostScript, PNG or JPEG file."""


class EncryptedDocument(UnreadableDocument):
    """A password-protected PDF: we never guess passwords."""

    remedy = "ask the sender for an unprotected copy, or open it by hand with the password"


class DocumentTooLarge(UnreadableDocument):
    """A page decodes to more pixels than allowed (a decompression bomb, or a poster)."""

    remedy = "check the file by hand; raise ocr.max_pixels only if the document is genuine"
