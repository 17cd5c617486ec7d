"""Turn a received document (fax TIFF, PDF, PostScript, PNG/JPEG) into page images.

The edge of the OCR package: everything after this works on ``FaxPage`` values and never
sees a file format. Each page keeps its own resolution, because a fax page at standard
resolution (204×98 dpi) has pixels twice as tall as wide and must be stretched before OCR.

Limits are checked *before* a page is decoded, so a hostile file cannot make us allocate
gigabytes: ``max_pixels`` per page and ``max_pages`` per document. A document longer than
``max_pages`` is legitimate (a 100-page fax happens); we read its first ``max_pages`` pages
and every page says how many the document really has (``total_pages``), so the register can
show "read 60 of 100 pages".
"""

from __future__ import annotations

import io
import logging
import os
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from PIL import Image, UnidentifiedImageError

from ocr.errors import (
    CorruptDocument,
    DocumentTooLarge,
    EmptyDocument,
    EncryptedDocument,
    UnreadableDocument,
    UnsupportedFormat,
)
from ocr.formats import JPEG, PDF, PNG, POSTSCRIPT, TIFF, document_type, label

log = logging.getLogger("dutygw.ocr.pages")

PDF_DPI = 300
"""Rendering resolution of PDF and PostScript pages: what the OCR engines read best."""

RENDER_TIMEOUT_S = 60
"""Ghostscript's own limit; the intake's OCR worker kills a stuck render far sooner."""
RENDER_CPU_S_PER_PAGE = 2
"""CPU seconds ghostscript may use per page asked for (a fax page takes well under one).
The kernel stops a program that never ends (``RLIMIT_CPU``): the reader that called it
goes on with its models loaded, where the intake's watchdog would have to kill it."""


def render_cpu_limit(max_pages: int) -> int:
    """CPU seconds ghostscript may use to render up to ``max_pages`` pages."""
    return RENDER_CPU_S_PER_PAGE * max(1, min(max_pages, 1000))


@dataclass(frozen=True)
class FaxPage:
    """One page image as received: mode ``"1"`` (fax) or ``"L"`` (grey), and its resolution."""

    image: Image.Image
    dpi: tuple[float, float]
    """(horizontal, vertical) dots per inch; (204, 98) is a standard-resolution fax page."""
    page_no: int
    """1-based."""
    total_pages: int
    """Pages in the whole document; more than were read when the document was capped."""

    @property
    def is_square(self) -> bool:
        return abs(self.dpi[0] - self.dpi[1]) <= 0.02 * max(self.dpi)


def load_pages(
    source: Path | bytes,
    *,
    content_type: str | None = None,
    max_pages: int,
    max_pixels: int,
    count_pages: bool = True,
) -> list[FaxPage]:
    """Read up to ``max_pages`` pages of a document; ``UnreadableDocument`` if it can't be.

    ``count_pages=False`` skips counting the whole document (``total_pages`` is then the
    pages read): the header pass wants page 1 at once, and a TIFF can chain 10,000 pages.

    ``content_type`` (a MIME type from the mail or the fax server) is only a hint: the
    file's own magic bytes win, because fax-to-mail gateways often say octet-stream.
    """
    head = _head(source)
    if not head:
        raise EmptyDocument("the document is empty (0 bytes)")
    kind = document_type(head, content_type)
    loaders = {TIFF: _load_raster, PNG: _load_raster, JPEG: _load_raster, PDF: _load_pdf, POSTSCRIPT: _load_postscript}
    if kind not in loaders:
        raise UnsupportedFormat(f"not a fax image or PDF (starts with {head[:8]!r})")
    pages = loaders[kind](source, max_pages=max_pages, max_pixels=max_pixels, count_pages=count_pages)
    if not pages:
        raise EmptyDocument(f"the {label(kind)} document has no pages")
    if pages[0].total_pages > len(pages):
        log.warning("document has %d pages; only the first %d were read",
                    pages[0].total_pages, len(pages))
    return pages


def _head(source: Path | bytes) -> bytes:
    if isinstance(source, bytes):
        return source[:16]
    with open(source, "rb") as f:
        return f.read(16)


def _open(source: Path | bytes) -> IO[bytes]:
    """A file object over the source without copying it (a view for bytes)."""
    return io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")


# --- raster images (TIFF, PNG, JPEG) -------------------------------------------------

def _load_raster(source: Path | bytes, *, max_pages: int, max_pixels: int,
                 count_pages: bool = True) -> list[FaxPage]:
    with _open(source) as f, _pillow_errors():
        image = Image.open(f)
        if count_pages:
            total = getattr(image, "n_frames", 1)
            return [_decoded(image, i, total, max_pixels) for i in _frames(image, total, max_pages)]
        pages = [_decoded(image, i, 0, max_pixels) for i in _frames(image, None, max_pages)]
        return [replace(page, total_pages=len(pages)) for page in pages]


def _frames(image: Image.Image, total: int | None, max_pages: int) -> Iterator[int]:
    """Seek to each frame in turn (Pillow decodes TIFF pages one at a time)."""
    for index in range(max_pages if total is None else min(total, max_pages)):
        try:
            image.seek(index)
        except EOFError:
            return
        yield index


def _decoded(image: Image.Image, index: int, total: int, max_pixels: int) -> FaxPage:
    width, height = image.size
    if width * height > max_pixels:
        raise DocumentTooLarge(
            f"page {index + 1} is {width}×{height} pixels, more than the limit of {max_pixels}")
    with _libtiff_complaints() as complaints:
        image.load()
    if complaints():
        raise CorruptDocument(f"page {index + 1} is damaged (libtiff: {complaints()[:160]})")
    page = image.copy() if image.mode in ("1", "L") else image.convert("L")
    return FaxPage(page, _dpi(image), index + 1, total)


_LIBTIFF_DAMAGE = re.compile(r"Bad code word|Premature EO[LF]|Read error|Uncompressed data|"
                             r"Line length mismatch|not enough data|Incorrect count", re.IGNORECASE)


@contextmanager
def _libtiff_complaints() -> Iterator[Callable[[], str]]:
    """What libtiff wrote to stderr while decoding: Pillow decodes a damaged G3/G4 page
    without an error (the rest of the page comes out as noise), libtiff only says so there.
    The process's stderr is borrowed for the decode (milliseconds)."""
    sys.stderr.flush()
    with tempfile.TemporaryFile() as capture:
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        said: list[str] = []
        try:
            yield lambda: " ".join(said)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace")
            said.extend(line for line in text.splitlines() if _LIBTIFF_DAMAGE.search(line))
            if text and not said:
                sys.stderr.write(text)


def _dpi(image: Image.Image) -> tuple[float, float]:
    """The page's resolution; a fax without the tag is guessed from its shape."""
    dpi = image.info.get("dpi")
    if dpi and dpi[0] > 1 and dpi[1] > 1:
        return float(dpi[0]), float(dpi[1])
    width, height = image.size
    squashed = height < 1.1 * width  # an A4 fax page at 204×98 is wider than tall
    return (204.0, 98.0) if squashed else (204.0, 196.0)


_CORRUPT = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error,
            UserWarning)


@contextmanager
def _pillow_errors() -> Iterator[None]:
    """Pillow's complaints about a file, as our errors.

    Its bomb guard becomes ``DocumentTooLarge``; a damaged file shows up as one of several
    exceptions, or only as a ``UserWarning`` ("Corrupt EXIF data", "truncated"), which we
    treat as the corruption it is rather than OCR half a page.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        warnings.simplefilter("error", UserWarning)
        try:
            yield
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise DocumentTooLarge(f"decompression bomb refused by Pillow: {exc}") from exc
        except UnreadableDocument:
            raise
        except _CORRUPT as exc:
            raise CorruptDocument(f"damaged or truncated image file: {exc}") from exc


# --- PDF --------------------------------------------------------------------------------

def _load_pdf(source: Path | bytes, *, max_pages: int, max_pixels: int,
              count_pages: bool = True) -> list[FaxPage]:
    import pypdfium2 as pdfium  # only PDF intake needs it

    try:
        pdf = pdfium.PdfDocument(source)
    except pdfium.PdfiumError as exc:
        raise _pdf_refusal(source) from exc
    try:
        total = len(pdf)
        return [_render(pdf[i], i, total, max_pixels) for i in range(min(total, max_pages))]
    finally:
        pdf.close()


def _pdf_refusal(source: Path | bytes) -> UnreadableDocument:
    """Why PDFium refused the file.

    PDFium's error code is global and stale after an earlier failure, so the file itself is
    searched instead: an ``/Encrypt`` entry means a password; an empty page tree
    (``/Count 0``, no page object) means no pages; anything else is damage (a truncated
    file loses its page tree).
    """
    if _mentions(source, rb"/Encrypt\b"):
        return EncryptedDocument("the PDF is password-protected")
    if _mentions(source, rb"/Count\s+0\b") and not _mentions(source, rb"/Type\s*/Page\b"):
        return EmptyDocument("the PDF has no pages")
    return CorruptDocument("damaged PDF: PDFium cannot read it")


def _mentions(source: Path | bytes, pattern: bytes, chunk: int = 1 << 20) -> bool:
    """Whether ``pattern`` occurs in the file, reading a large file one chunk at a time."""
    regex = re.compile(pattern)
    with _open(source) as f:
        tail = b""
        while block := f.read(chunk):
            if regex.search(tail + block):
                return True
            tail = block[-64:]
    return False


def _render(page: object, index: int, total: int, max_pixels: int) -> FaxPage:
    width_pt, height_pt = page.get_size()  # type: ignore[attr-defined]
    scale = PDF_DPI / 72
    if width_pt * scale * height_pt * scale > max_pixels:
        raise DocumentTooLarge(
            f"page {index + 1} would render to more than {max_pixels} pixels at {PDF_DPI} dpi")
    bitmap = page.render(scale=scale, grayscale=True)  # type: ignore[attr-defined]
    image = bitmap.to_pil().convert("L")
    return FaxPage(image, (float(PDF_DPI), float(PDF_DPI)), index + 1, total)


# --- PostScript (HylaFAX may hand over .ps) ---------------------------------------------

def _load_postscript(source: Path | bytes, *, max_pages: int, max_pixels: int,
                     count_pages: bool = True) -> list[FaxPage]:
    """Rasterise with ghostscript into a private folder, then read the page images."""
    gs = shutil.which("gs")
    if gs is None:
        raise UnsupportedFormat("PostScript needs ghostscript (gs), which is not installed",
                                remedy="install ghostscript or have the fax server send TIFF")
    with tempfile.TemporaryDirectory(prefix="dutygw-ps-") as work:
        path = source if isinstance(source, Path) else _spill(source, Path(work) / "in.ps")
        command = [gs, "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pnggray",
                   f"-r{PDF_DPI}", f"-dLastPage={max_pages}",
                   f"-sOutputFile={work}/page-%04d.png", str(path)]
        cpu_limit = render_cpu_limit(max_pages)
        returncode, stderr = _run_with_cpu_limit(command, cpu_limit)
        files = sorted(Path(work).glob("page-*.png"))
        if returncode == -signal.SIGXCPU:
            raise CorruptDocument(f"PostScript 渲染超过{cpu_limit}秒（处理器时间）仍未完成"
                                  f"（{len(files)}页已渲染），已中止")
        if returncode != 0 and not files:
            raise CorruptDocument(f"ghostscript could not read the PostScript: "
                                  f"{stderr.decode(errors='replace').strip()[:200]}")
        total = len(files)  # ghostscript cannot count pages without rendering them all
        return [_png_page(f, i, total, max_pixels) for i, f in enumerate(files)]


def _run_with_cpu_limit(command: list[str], cpu_seconds: int) -> tuple[int, bytes]:
    """Run ``command`` with at most ``cpu_seconds`` of CPU time (SIGXCPU ends it) and
    ``RENDER_TIMEOUT_S`` of wall time; returns its exit code and standard error."""
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as process:
        try:  # set from outside: preexec_fn is unsafe in a process with threads (onnxruntime's)
            resource.prlimit(process.pid, resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
        except (ProcessLookupError, PermissionError):
            pass  # already finished
        try:
            _, stderr = process.communicate(timeout=RENDER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        return process.returncode, stderr


def _spill(data: bytes, path: Path) -> Path:
    path.write_bytes(data)
    return path


def _png_page(path: Path, index: int, total: int, max_pixels: int) -> FaxPage:
    with _pillow_errors(), Image.open(path) as image:
        page = _decoded(image, index, total, max_pixels)
    return FaxPage(page.image, (float(PDF_DPI), float(PDF_DPI)), index + 1, total)
