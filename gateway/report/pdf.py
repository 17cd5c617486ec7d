"""The report as a printable A4 PDF for the 值班记录 binder.

reportlab embeds TrueType outlines only (Noto Sans CJK is CFF), so the font is a TrueType
Chinese face found through fontconfig (WenQuanYi Zen Hei from fonts-wqy-zenhei by default),
taken out of its .ttc collection by index.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from functools import cache
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Flowable, Image, Paragraph, SimpleDocTemplate, Spacer, TableStyle
from reportlab.platypus import Table as PdfTable

from gateway.report.fonts import PDF_FAMILIES, find_face
from gateway.report.layout import NONE, Document, Section, Table

FONT = "ReportCJK"
CELL_SIZE = 7.5
CELL_PADDING = 6.0
"""Points of left + right padding (2 each) plus a little slack so a cell never wraps by a hair."""
MARGIN = 15 * mm
WIDTH = A4[0] - 2 * MARGIN


@cache
def _register_font() -> str:
    face = find_face(PDF_FAMILIES, truetype_only=True)
    pdfmetrics.registerFont(TTFont(FONT, str(face.path), subfontIndex=face.index))
    return FONT


def _styles() -> dict[str, ParagraphStyle]:
    font = _register_font()
    base = ParagraphStyle("body", fontName=font, fontSize=10, leading=14, wordWrap="CJK")
    return {
        "title": ParagraphStyle("title", parent=base, fontSize=16, leading=22, spaceAfter=6),
        "h2": ParagraphStyle("h2", parent=base, fontSize=12.5, leading=18, spaceBefore=8, spaceAfter=3),
        "body": base,
        "caption": ParagraphStyle("caption", parent=base, fontSize=9.5, spaceBefore=4),
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
    template.build(story, onFirstPage=_footer, onLaterPages=_footer)
    return buffer.getvalue()


def _section(section: Section, charts: Mapping[str, bytes], styles: dict[str, ParagraphStyle]) -> list[Flowable]:
    parts: list[Flowable] = [Paragraph(escape(section.title), styles["h2"])]
    parts += [Paragraph(escape(line), styles["body"]) for line in section.lines]
    for name in section.charts:
        if name in charts:
            parts += [Spacer(1, 2 * mm), _image(charts[name])]
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
    grid.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 2),
        ("RIGHTPADDING", (0, 0), (-1, -1), 2),
    ]))
    return parts + [Spacer(1, 1 * mm), grid]


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


def _footer(canvas: object, template: SimpleDocTemplate) -> None:
    canvas.saveState()  # type: ignore[attr-defined]
    canvas.setFont(FONT, 8)  # type: ignore[attr-defined]
    canvas.drawCentredString(A4[0] / 2, 8 * mm, f"{template.title}　第 {template.page} 页")  # type: ignore[attr-defined]
    canvas.restoreState()  # type: ignore[attr-defined]
