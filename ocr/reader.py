"""Read a fax: page 1's header first (so paging can start), then the rest, then the fields.

The fast path (``read_header``): page 1 is normalised and read, its header zone is decided (RapidOCR's page
plus a second reader of the header zone only, ticks read from the image), and ``on_header``
is called *before* any later page is OCR'd. A cover sheet's decision also needs the first
page of the document it carries, so for a cover page 2 is read before ``on_header`` too.
Then (``read_rest``, which the intake may run much later and in another process) the
remaining pages, then the register fields. Everything the reader finds doubtful
becomes a review reason (in Chinese: duty staff read them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from PIL import Image

from ocr.config import UrgencyConfig
from ocr.engines import OcrEngine
from ocr.fields import doc_number_spot, document_year, fields_of, header_pages, vote_doc_number
from ocr.model import DOUBTS, Box, FaxFields, OcrLine, PageText, UrgencyDecision
from ocr.normalise import NormalisedPage, NormaliseOptions, normalise
from ocr.pages import FaxPage
from ocr.ticks import TICK_DPI, read_ticks
from ocr.urgency import decide, fax_decision, header_zone_box, option_rows
from ocr.zones import Layout, Row, group_rows, layout

log = logging.getLogger("dutygw.ocr.reader")

PageInput = FaxPage | NormalisedPage | Image.Image
"""A page as received (normalised here), already normalised, or a ready image."""
HeaderCallback = Callable[[UrgencyDecision, PageText], None]
PageCallback = Callable[[int], None]
"""Told the page number before each page is read, and ``FIELDS_STEP`` before the register
fields (a watchdog's heartbeat)."""
FIELDS_STEP = -1
LOW_PAGE_CONFIDENCE = 0.8
REREAD_BELOW = 0.97
"""A 文号 read with less confidence than this is read again from its crop at other scales."""
REREAD_SCALES = (0.75, 1.0, 1.5)
SHARP_REREAD_SCALES = (1.0, 1.5)
SECOND_READER_WIDTH = 2480
"""Page width (A4 at 300 dpi) the header zone is enlarged towards for the second reader."""


@dataclass(frozen=True)
class FaxReading:
    pages: tuple[PageText, ...]
    fields: FaxFields
    urgency: UrgencyDecision
    confidence: float | None
    """Text-length weighted mean OCR confidence over all pages."""
    review: tuple[str, ...]
    """Why a person should look at this receipt (empty when nothing is doubtful)."""


@dataclass(frozen=True)
class HeaderReading:
    """What the header pass found: the decision and the pages it read (plain values, so the
    header pass and the rest can run in different processes)."""

    decision: UrgencyDecision
    texts: tuple[PageText, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Page:
    source: PageInput
    image: Image.Image
    text: PageText
    layout: Layout


class FaxReader:
    def __init__(self, engine: OcrEngine, header_reader: OcrEngine | None = None,
                 rules: UrgencyConfig | None = None,
                 options: NormaliseOptions | None = None) -> None:
        self.engine, self.header_reader = engine, header_reader
        self.rules = rules or UrgencyConfig()
        self.options = options or NormaliseOptions()

    def read(self, pages: Sequence[PageInput], *,
             on_header: HeaderCallback | None = None) -> FaxReading:
        """Read all pages; ``on_header`` gets the urgency decision as soon as it is known."""
        header = self.read_header(pages)
        if on_header is not None:
            on_header(header.decision, header.texts[0])
        return self.read_rest(pages, header)

    def read_header(self, pages: Sequence[PageInput], *,
                    on_page: PageCallback | None = None) -> HeaderReading:
        """The fast path: page 1 (and, for a cover sheet, page 2) and the urgency decision.

        ``pages`` needs only those pages; the intake runs this for every fax before any
        other page of any fax is read."""
        if not pages:
            raise ValueError("a fax has at least one page")
        done = [self._read(pages[0], 1, on_page)]
        if header_pages(done[0].layout, len(pages)) > 1:
            done.append(self._read(pages[1], 2, on_page))
        notes: list[str] = []
        decision = self._decide(done, notes)
        return HeaderReading(decision, tuple(p.text for p in done), tuple(notes))

    def read_rest(self, pages: Sequence[PageInput], header: HeaderReading, *,
                  on_page: PageCallback | None = None) -> FaxReading:
        """The other pages and the register fields, after ``read_header`` (maybe elsewhere)."""
        done = [_Page(page, _image(page, self.options), text, layout(text))
                for page, text in zip(pages, header.texts)]
        done += [self._read(page, n, on_page) for n, page in enumerate(pages[len(done):], len(done) + 1)]
        decision = header.decision
        if on_page is not None:
            on_page(FIELDS_STEP)
        fields = self._fields(done, decision)
        return FaxReading(tuple(p.text for p in done), fields, decision,
                          _confidence([p.text for p in done]),
                          tuple(header.notes) + tuple(_review(done, fields, decision)))

    # --- steps ---------------------------------------------------------------------------

    def _read(self, page: PageInput, page_no: int, on_page: PageCallback | None = None) -> _Page:
        if on_page is not None:
            on_page(page_no)
        image = _image(page, self.options)
        try:
            text = self.engine.read(image, page_no=page_no)
        except Exception as exc:  # noqa: BLE001 - a crash makes the page unreadable
            log.warning("OCR of page %d failed: %s", page_no, exc)
            text = PageText(page_no, (), self.engine.name, image.width, image.height, str(exc))
        return _Page(page, image, text, layout(text))

    def _decide(self, done: Sequence[_Page], notes: list[str]) -> UrgencyDecision:
        decisions = [self._decide_page(page, n, notes) for n, page in enumerate(done, 1)]
        return fax_decision(decisions, self.rules)

    def _decide_page(self, page: _Page, page_no: int, notes: list[str]) -> UrgencyDecision:
        rows = option_rows(page.layout)
        image, scale = self._sharp_image(page) if rows else (page.image, 1.0)
        ticks = {row.index: read_ticks(image, row, scale=scale) for row in rows}
        second = self._second_reading(page, notes)
        return decide(page.layout, self.rules, page_no=page_no, ticks=ticks, second=second,
                      second_engine=self.header_reader.name if self.header_reader else None)

    def _sharp_image(self, page: _Page) -> tuple[Image.Image, float]:
        """The page at ``TICK_DPI`` when we have it as received, else the OCR's image; and
        how many times larger it is. Box outlines and a 文号's brackets want the detail."""
        if not isinstance(page.source, FaxPage) or self.options.dpi >= TICK_DPI:
            return page.image, 1.0
        sharp = normalise(page.source, replace(self.options, dpi=TICK_DPI))
        return sharp.image, TICK_DPI / self.options.dpi

    def _second_reading(self, page: _Page, notes: list[str]) -> tuple[Row, ...]:
        box = header_zone_box(page.layout)
        if self.header_reader is None or box is None:
            return ()
        try:
            text = _read_region(self.header_reader, page.image, box, page.text.page_no)
        except Exception as exc:  # noqa: BLE001 - the second reader is extra evidence only
            log.warning("second reader failed on the header zone: %s", exc)
            notes.append(f"第{page.text.page_no}页版头区第二识别引擎失败：{exc}")
            return ()
        return tuple(Row(tuple(cells), i) for i, cells in enumerate(group_rows(text.lines)))

    def _fields(self, done: Sequence[_Page], decision: UrgencyDecision) -> FaxFields:
        fields = fields_of([p.layout for p in done], decision, self.rules)
        return self._reread_doc_number(done, fields)

    def _reread_doc_number(self, done: Sequence[_Page], fields: FaxFields) -> FaxFields:
        """Read a doubtful 文号 again from its crop at other scales and take the majority."""
        spot = doc_number_spot([p.layout for p in done], fields.kind)
        if fields.doc_number is None or not spot or spot[2] >= REREAD_BELOW:
            return fields
        page_index, box, _ = spot
        page = done[page_index]
        sharp, factor = self._sharp_image(page)
        views = [(page.image, box, s) for s in REREAD_SCALES]
        if factor != 1.0:
            views += [(sharp, _scaled_box(box, factor), s) for s in SHARP_REREAD_SCALES]
        readings = [fields.doc_number]
        for image, where, scale in views:
            try:
                readings.append(_read_scaled(self.engine, image, where, scale))
            except Exception as exc:  # noqa: BLE001 - a failed re-read leaves the first reading
                log.warning("re-reading the 文号 failed: %s", exc)
        issuer = None if fields.kind == "cover" else fields.issuer
        voted = vote_doc_number(readings, document_year([p.layout for p in done]), issuer)
        return replace(fields, doc_number=voted or fields.doc_number)


def _image(page: PageInput, options: NormaliseOptions) -> Image.Image:
    if isinstance(page, FaxPage):
        return normalise(page, options).image
    if isinstance(page, NormalisedPage):
        return page.image
    return page


def _read_region(engine: OcrEngine, image: Image.Image, box: Box, page_no: int) -> PageText:
    """Read one zone, enlarged to about 300 dpi (Tesseract reads small print badly)."""
    scale = max(1, round(SECOND_READER_WIDTH / image.width))
    crop = image.crop(box)
    if scale > 1:
        crop = crop.resize((crop.width * scale, crop.height * scale), Image.Resampling.LANCZOS)
    region = getattr(engine, "read_region", None)  # Tesseract: read as one block of lines
    text = (region(crop, (0, 0, crop.width, crop.height), page_no=page_no) if callable(region)
            else engine.read(crop, page_no=page_no))
    lines = tuple(OcrLine(ln.text, (box[0] + ln.box[0] // scale, box[1] + ln.box[1] // scale,
                                    box[0] + ln.box[2] // scale, box[1] + ln.box[3] // scale),
                          ln.confidence) for ln in text.lines)
    return PageText(page_no, lines, text.engine, image.width, image.height, text.error)


def _read_scaled(engine: OcrEngine, image: Image.Image, box: Box, scale: float) -> str:
    height = box[3] - box[1]
    crop = image.crop((max(box[0] - height, 0), max(box[1] - height // 2, 0),
                       min(box[2] + height, image.width), min(box[3] + height // 2, image.height)))
    size = (round(crop.width * scale), round(crop.height * scale))
    crop = crop.resize(size, Image.Resampling.LANCZOS)
    return "  ".join(ln.text for ln in engine.read(crop).lines)


def _scaled_box(box: Box, factor: float) -> Box:
    return (round(box[0] * factor), round(box[1] * factor),
            round(box[2] * factor), round(box[3] * factor))


def _confidence(texts: Sequence[PageText]) -> float | None:
    scored = [(len(t.text), t.confidence) for t in texts if t.confidence is not None]
    total = sum(n for n, _ in scored)
    return sum(n * c for n, c in scored) / total if total else None


def _review(done: Sequence[_Page], fields: FaxFields, decision: UrgencyDecision) -> list[str]:
    notes = []
    for page in done:
        conf = page.text.confidence
        if page.text.error or not page.text.lines:
            notes.append(f"第{page.text.page_no}页无法识别，请查看原件")
        elif conf is not None and conf < LOW_PAGE_CONFIDENCE:
            notes.append(f"第{page.text.page_no}页识别置信度低（{conf:.2f}），请核对")
    if decision.possibly_urgent:
        why = "、".join(sorted({r.rule for r in decision.reasons if r.rule in DOUBTS}))
        notes.append(f"紧急程度未能确认（{why}），已按紧急处理，请核对原件")
    if "doc_number" in fields.conflicts:
        notes.append("识别到多个不同的文号，请核对")
    if fields.pages_declared and fields.pages_declared != len(done):
        notes.append(f"封面注明共{fields.pages_declared}页，实收{len(done)}页，请与发件人核实")
    return notes

