"""Where things are on a page: visual rows, the TTI line, table labels, the header zone.

RapidOCR returns one box per text run, so a table row arrives as several boxes ("等",
"级", "加急", "明电编号", "…〔2025〕11号"). The rules read *rows*: the boxes whose
vertical middles line up, left to right, joined the way the ground truth joins table cells
(two spaces). ``flat`` is the row without whitespace and in NFKC form (full-width digits and
colons folded), which is what the rules match against.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ocr.model import Box, OcrLine, PageText

_SPACE = re.compile(r"\s+")
_CJK = re.compile(r"[\u4e00-\u9fff]")
CENTRED_GAP = 0.04
"""A centred row leaves at least this much of the column free on *both* sides (a title's
lines are at most 140 of the 156 mm; a text line ends within a character of the edge)."""
_TTI_TOP = 0.05
"""The sending station's header line is printed in the top 5 % of the page."""


def flatten(text: str) -> str:
    """NFKC (full-width → ASCII, ideographic space → space) and no whitespace."""
    return _SPACE.sub("", unicodedata.normalize("NFKC", text))


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


@dataclass(frozen=True)
class Row:
    """One visual line of a page: its text boxes, left to right."""

    cells: tuple[OcrLine, ...]
    index: int
    """Position among the page's content rows (after the TTI line), from 0."""

    @property
    def text(self) -> str:
        return "  ".join(cell.text for cell in self.cells)

    @property
    def flat(self) -> str:
        """For matching: NFKC, no whitespace."""
        return flatten(self.text)

    @property
    def plain(self) -> str:
        """For output: as read (Chinese punctuation kept), no whitespace."""
        return _SPACE.sub("", self.text)

    @property
    def box(self) -> Box:
        return (min(c.box[0] for c in self.cells), min(c.box[1] for c in self.cells),
                max(c.box[2] for c in self.cells), max(c.box[3] for c in self.cells))

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    @property
    def confidence(self) -> float:
        return min(cell.confidence for cell in self.cells)


def group_rows(lines: Iterable[OcrLine]) -> list[list[OcrLine]]:
    """Boxes whose vertical middles are closer than half the smaller height share a row."""
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda ln: (ln.box[1] + ln.box[3]) / 2):
        if rows and _same_row(rows[-1], line):
            rows[-1].append(line)
        else:
            rows.append([line])
    return [sorted(row, key=lambda ln: ln.box[0]) for row in rows]


def _same_row(row: Sequence[OcrLine], line: OcrLine) -> bool:
    ref = row[-1].box
    height = min(ref[3] - ref[1], line.box[3] - line.box[1])
    return abs((ref[1] + ref[3]) - (line.box[1] + line.box[3])) / 2 < height / 2


def is_tti(row_cells: Sequence[OcrLine], page_height: int) -> bool:
    """The fax machine's header line: at the very top, mostly Latin letters and digits."""
    top = min(c.box[1] for c in row_cells)
    text = flatten("".join(c.text for c in row_cells))
    if page_height and top > _TTI_TOP * page_height or not text:
        return False
    latin = sum(ch.isascii() for ch in text)
    return latin >= 0.6 * len(text)


@dataclass(frozen=True)
class Layout:
    """A page as rows, with the TTI line set aside (metadata, not document text)."""

    page: PageText
    rows: tuple[Row, ...]
    tti: str | None

    @property
    def width(self) -> int:
        return self.page.width

    @property
    def height(self) -> int:
        return self.page.height

    def column(self) -> tuple[int, int]:
        """Left and right edge of the text column (the widest rows decide)."""
        if not self.rows:
            return 0, self.width
        lefts = sorted(r.box[0] for r in self.rows)
        rights = sorted(r.box[2] for r in self.rows)
        return lefts[len(lefts) // 10], rights[-1 - len(rights) // 10]

    def is_centered(self, row: Row) -> bool:
        """Centred rows are headers and titles; body text starts at the left edge. The first
        line of an indented paragraph has a gap on the left (two characters) and almost none
        on the right: not centred, so a title does not run on into the text."""
        left, right = self.column()
        width = max(right - left, 1)
        gap_left, gap_right = row.box[0] - left, right - row.box[2]
        return (gap_left > 0.04 * width and gap_right > CENTRED_GAP * width
                and abs(gap_left - gap_right) < 0.08 * width)


def layout(page: PageText) -> Layout:
    grouped = group_rows(page.lines)
    tti = []
    while grouped and is_tti(grouped[0], page.height):  # one line, sometimes read as two
        tti.append("  ".join(c.text for c in grouped.pop(0)))
    rows = tuple(Row(tuple(cells), i) for i, cells in enumerate(grouped))
    return Layout(page, rows, "  ".join(tti) or None)


# --- table rows: "label  value  label  value" ------------------------------------------

LABELS = (
    "发电单位", "签批盖章", "等级", "明电编号", "抄送", "密级", "份号",
    "收件单位", "收件人", "传真号码", "发件单位", "发件人", "日期", "页数", "主题", "备注",
    "报告单位", "报告时间", "报告人", "签发人", "联系电话", "电话",
    "事件名称", "事发时间", "事发地点",
    "伤亡情况", "基本情况", "处置情况", "紧急程度",
)
"""Printed labels of the ruled forms (telegram, cover sheet, report form). A row whose first
label lost a character to OCR is still read as a form row (see ``_clipped_label``)."""
MORE_LABELS = (
    "来电单位", "来电时间", "来电人", "来电号码", "来电电话", "接听人", "接电人", "记录人",
    "记录时间", "来电事由", "事由", "主要事项", "来电内容", "内容摘要", "领导批示", "处理意见",
    "办理情况", "缓急程度", "缓急", "急缓",
)
"""Labels of phone-record forms (电话记录) and of cover sheets' 缓急 rows. They are matched
only whole: a clipped one ("由", "人") would make running text that wraps at such a
character look like a form row."""

_NOISE = "[:：.·,，、'\"|丨]?"
_ALL_LABELS = (*LABELS, *MORE_LABELS)
_LABEL_RE = re.compile("|".join(f"(?P<l{i}>{_NOISE.join(label)})" for i, label in
                                sorted(enumerate(_ALL_LABELS), key=lambda x: -len(x[1]))))
"""A label, allowing for a stray mark OCR put between its spaced-out characters (等：级)."""


def _label_of(match: re.Match[str]) -> str:
    return _ALL_LABELS[int(next(k for k, v in match.groupdict().items() if v)[1:])]


def label_values(row: Row) -> dict[str, str]:
    """``{label: value}`` of a table row that starts with a printed label; else ``{}``."""
    flat = row.flat
    matches = list(_LABEL_RE.finditer(flat))
    if not matches:
        return _clipped_cell(row)
    values: dict[str, str] = {}
    if matches[0].start() != 0:
        head = _clipped_label(flat[:matches[0].start()]) or _cut_label(row, matches[0].start())
        if head is None:
            return {}
        values[head[0]] = head[1]
    for match, following in zip(matches, [*matches[1:], None]):
        end = following.start() if following else len(flat)
        values.setdefault(_label_of(match), flat[match.end():end].lstrip(":"))
    return values


def _clipped_cell(row: Row) -> dict[str, str]:
    """A form row whose only label lost its first characters ("由  黄土岭乡矿井险情" for
    事由): taken only when the clipped label is an OCR box of its own, followed by the value
    in another box (a text line that wraps at 由 or 人 is one box)."""
    if len(row.cells) < 2:
        return {}
    head = flatten(row.cells[0].text).strip(":")
    for label in MORE_LABELS:
        if head and len(head) < len(label) and label.endswith(head):
            return {label: "".join(flatten(c.text) for c in row.cells[1:]).lstrip(":")}
    return {}


def _cut_label(row: Row, end: int) -> tuple[str, str] | None:
    """A form row whose first label lost its *last* characters ("等  特急  明电编号 …" for
    等级): only when what is left of the label is an OCR box of its own."""
    head = flatten(row.cells[0].text).strip(":") if len(row.cells) > 1 else ""
    flat = row.flat
    for label in LABELS:
        if head and len(head) < len(label) and label.startswith(head) and flat.startswith(head):
            return label, flat[len(flatten(row.cells[0].text)):end].lstrip(":")
    return None


def _clipped_label(head: str) -> tuple[str, str] | None:
    """A row of a form whose first label lost a character to OCR ("级  加急  明电编号  …"):
    the label it is the end of, and the value after it."""
    for label in _ALL_LABELS:
        shortest = 1 if label in LABELS else 2  # see MORE_LABELS
        for cut in range(1, len(label) - shortest + 1):
            if head.startswith(label[cut:]):
                return label, head[len(label) - cut:].lstrip(":")
    return None
