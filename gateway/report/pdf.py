"""The report as a printable A4 PDF for the 值班记录 binder.

reportlab embeds TrueType outlines only (Noto Sans CJK is CFF), so the font is a TrueType
Chinese face found through fontconfig (WenQuanYi Zen Hei from fonts-wqy-zenhei by default),
taken out of its .ttc collection by index.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from functools import cache
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    TableStyle,
)
from reportlab.platypus import Table as PdfTable

from gateway.report.fonts import PDF_FAMILIES, find_face
from gateway.report.layout import NONE, SIGNATURE_LINES, Document, Section, Table

FONT = "ReportCJK"
CELL_SIZE = 7.5
CELL_PADDING = 6.0
"""Points of left + right padding (2 each) plus a little slack so a cell never wraps by a hair."""
MARGIN = 15 * mm
WIDTH = A4[0] - 2 * MARGIN
URGENT_FILL = colors.HexColor("#f8d0d0")


@cache
def _register_font() -> str:
    face = find_face(PDF_FAMILIES, truetype_only=True)
    pdfmetrics.registerFont(TTFont(FONT, str(face.path), subfontIndex=face.index))
    return FONT


def _styles() -> dict[str, ParagraphStyle]:
    font = _register_font()
    base = ParagraphStyle("body", fontName=font, fontSize=10, leading=14, wordWrap="CJK")
    # keepWithNext: a heading or caption never stands alone at the foot of a page
    return {
        "title": ParagraphStyle("title", parent=base, fontSize=16, leading=22, spaceAfter=6),
        "h2": ParagraphStyle("h2", parent=base, fontSize=12.5, leading=18, spaceBefore=8, spaceAfter=3,
                             keepWithNext=1),
        "body": base,
        "signature": ParagraphStyle("signature", parent=base, fontSize=11, leading=16, spaceBefore=14),
        "caption": ParagraphStyle("caption", parent=base, fontSize=9.5, spaceBefore=4, spaceAfter=3,
                                  keepWithNext=1),
        "cell": ParagraphStyle("cell", parent=base, fontSize=CELL_SIZE, leading=CELL_SIZE + 2),
    }


def render(doc: Document, charts: Mapping[str, bytes]) -> bytes:
    """``charts`` maps a chart name to its PNG bytes."""
    styles = _styles()
    story: list[Flowable] = [Paragraph(escape(doc.title), styles["title"])]
    for section in doc.sections:
        story += _section(section, charts, styles)
    buffer = io.BytesIO()
    template = SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN, bottomMargin=MARGIN,
        title=doc.title, author="政务值班室", creator="duty-gateway",
    )
    template.build(story, canvasmaker=_numbered(doc.title))
    return buffer.getvalue()


def _section(section: Section, charts: Mapping[str, bytes], styles: dict[str, ParagraphStyle]) -> list[Flowable]:
    parts: list[Flowable] = [Paragraph(escape(section.title), styles["h2"])]
    line_style = styles["signature"] if section.lines == SIGNATURE_LINES else styles["body"]
    lines = [Paragraph(escape(line), line_style) for line in section.lines]
    if section.lines == SIGNATURE_LINES:
        lines = [KeepTogether(lines)]  # signed on one page
    parts += lines
    for name in section.charts:
        if name in charts:
            parts.append(_image(charts[name]))
    for table in section.tables:
        parts += _table(table, styles)
    return parts


def _image(png: bytes) -> Image:
    image = Image(io.BytesIO(png))
    scale = WIDTH / image.imageWidth
    image.drawWidth, image.drawHeight = WIDTH, image.imageHeight * scale
    return image


def _table(table: Table, styles: dict[str, ParagraphStyle]) -> list[Flowable]:
    parts: list[Flowable] = [Paragraph(escape(table.caption), styles["caption"])] if table.caption else []
    if not table.rows:
        return parts + [Paragraph(NONE, styles["body"])]
    cell = styles["cell"]
    data = [[Paragraph(escape(text), cell) for text in row] for row in (table.headings, *table.rows)]
    grid = PdfTable(data, colWidths=_widths(table), repeatRows=1)
    marked = [("BACKGROUND", (0, i + 1), (-1, i + 1), URGENT_FILL) for i in sorted(table.marked)]
    grid.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 2),
        ("RIGHTPADDING", (0, 0), (-1, -1), 2),
        *marked,
    ]))
    return parts + [grid]  # nothing between: the caption's keepWithNext holds on to the table


def _widths(table: Table) -> list[float]:
    """Short columns get their natural width; the long ones (titles) share what is left and wrap."""
    natural = [
        max(stringWidth(row[i], FONT, CELL_SIZE) for row in (table.headings, *table.rows)) + CELL_PADDING
        for i in range(len(table.headings))
    ]
    if sum(natural) <= WIDTH:
        return [w * WIDTH / sum(natural) for w in natural]
    widths, left, wrapping = list(natural), WIDTH, set(range(len(natural)))
    while wrapping:
        share = left / len(wrapping)
        fitting = {i for i in wrapping if natural[i] <= share}
        if not fitting:
            for i in wrapping:
                widths[i] = share
            break
        left -= sum(natural[i] for i in fitting)
        wrapping -= fitting
    return widths


def _numbered(title: str) -> type[Canvas]:
    """A canvas that holds every page back until the end, then writes 第 N 页 共 M 页 on each."""

    class NumberedCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self.saveState()
                self.setFont(FONT, 8)
                self.drawCentredString(A4[0] / 2, 8 * mm, f"{title}　第 {self._pageNumber} 页 共 {total} 页")
                self.restoreState()
                super().showPage()
            super().save()

    return NumberedCanvas
