"""Which printed option box (□一般 □较急 □紧急, □紧急 □请审阅 …) was ticked or filled.

OCR reads only the printed labels; the choice is a hand-drawn √ in the box or a filled ■.
So we look at the image. The row's band is cut into groups of ink at the wide gaps between
options (vertical table rules taken out first): each option is one group, its box first.
Each option word, placed by its OCR box, falls in one group; the box is the start of the
group, and we measure the ink *inside* its outline (the outline's sides are found and left
out), so an empty box scores about 0 whatever the print, a tick some, a ■ nearly 1. A box
counts as ticked when it is full, or clearly inkier than the row's other boxes.

RapidOCR sometimes reads the box as a character ("口较急", "亡紧急"), sometimes not, and
sometimes merges two options ("请回复L仅供参考"); the groups come from the image, so this
does not move the boxes. Measure at ``TICK_DPI``: at the OCR's lower resolution and blur a
box outline fades to nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from statistics import median

import numpy as np
from PIL import Image

from ocr.model import Box
from ocr.zones import LABELS, MORE_LABELS, Row

_BOXLIKE_CJK = "口"
"""OCR reads an empty □ as the character 口."""
_LABEL = re.compile("^(" + "|".join(sorted((*LABELS, *MORE_LABELS), key=len, reverse=True))
                    + ")[:：]?")

TICK_DPI = 300.0
"""Resolution the boxes are measured at (the OCR reads at a lower one)."""
TICKED = 0.03
"""A box with less ink than this inside its outline is empty."""
TICK_RATIO = 2.5
TICK_MARGIN = 0.02
"""…and a ticked box has clearly more ink than the row's other boxes (ratio × median + margin)."""
FILLED = 0.5
"""A box this full of ink is ticked (■) whatever the other boxes hold."""
_WORD = re.compile(r"[\u4e00-\u9fff]+?(?=口[\u4e00-\u9fff]{2}|[^\u4e00-\u9fff]|$)")
"""A run of CJK characters; a 口 (an empty □ as OCR reads it) between two words splits them."""


@dataclass(frozen=True)
class OptionSpot:
    """Where an option's word and its box are estimated to be (normalised page pixels)."""

    word: str
    box: Box


@dataclass(frozen=True)
class Tick:
    word: str
    ticked: bool
    ink: float
    """Fraction of dark pixels in the box area, 0..1."""
    box: Box


def option_words(row: Row) -> list[str]:
    """The option words of a checkbox row, left to right, without the row's label."""
    return [word for word, _, _ in _word_places(row)]


def _word_places(row: Row) -> list[tuple[str, float, bool]]:
    """Each option word, the x of its middle (estimated from its place in its OCR box), and
    whether the row's label shares its OCR box (then its ink group starts with the label)."""
    places = []
    for cell in row.cells:
        text = cell.text.replace(" ", "")
        label = _LABEL.match(text)
        after = label.end() if label else -1
        pitch = (cell.box[2] - cell.box[0]) / max(len(text), 1)
        for match in _WORD.finditer(text, max(after, 0)):
            start, word = match.start(), match.group()
            if word.startswith(_BOXLIKE_CJK) and len(word) > 2:
                start, word = start + 1, word[1:]
            middle = cell.box[0] + (start + len(word) / 2) * pitch
            places.append((word, middle, match.start() == after))
    return places


def option_spots(grey: np.ndarray, row: Row) -> list[OptionSpot]:
    """Each option word with the square where its box is printed.

    The row band is cut into groups of ink separated by gaps (table rules taken out): an
    option is one group, its box first, then its word. Each word goes to the group under
    its estimated middle; the box is the start of that group.
    """
    x0, y0, x1, y1 = _band(row)
    x0, x1 = max(x0, 0), min(x1, grey.shape[1])
    width = 0.8 * median(c.box[3] - c.box[1] for c in row.cells)
    inked = (grey[y0:y1, x0:x1] < 128).any(axis=0) & ~_rules(grey, row, x0, x1)
    groups = [(x0 + a, x0 + b) for a, b in _groups(inked, gap=int(0.9 * width))
              if b - a > 0.1 * width]
    spots = []
    for word, middle, after_label in _word_places(row):
        group = min(groups, key=lambda g: 0 if g[0] <= middle <= g[1]
                    else min(abs(middle - g[0]), abs(middle - g[1])), default=None)
        if group is None:
            continue
        left = group[0] if not after_label else int(group[1] - (len(word) + 0.9) * width)
        spots.append(OptionSpot(word, (left, y0, int(left + 0.8 * width), y1)))
    return spots


def _rules(grey: np.ndarray, row: Row, x0: int, x1: int) -> np.ndarray:
    """Columns crossed by a vertical table rule: inked above *and* below the text boxes."""
    top, bottom = row.box[1], row.box[3]
    near, far = max(1, (bottom - top) // 30), max(3, (bottom - top) // 8)
    above = grey[max(top - far, 0):max(top - near, 1), x0:x1] < 128
    below = grey[min(bottom + near, grey.shape[0] - 1):min(bottom + far, grey.shape[0]),
                 x0:x1] < 128
    rule = above.any(axis=0) & below.any(axis=0)
    return np.convolve(rule, np.ones(2 * near + 3), mode="same") > 0


def _band(row: Row) -> Box:
    """The row's text band, trimmed top and bottom to stay clear of table rules."""
    tops = sorted(c.box[1] for c in row.cells)
    bottoms = sorted(c.box[3] for c in row.cells)
    top, bottom = tops[len(tops) // 2], bottoms[len(bottoms) // 2]
    trim = int(0.12 * (bottom - top))
    box = row.box
    return box[0] - (bottom - top), top + trim, box[2] + (bottom - top), bottom - trim


def _groups(inked: np.ndarray, *, gap: int) -> list[tuple[int, int]]:
    """Runs of inked columns, merging runs separated by fewer than ``gap`` blank columns."""
    groups: list[tuple[int, int]] = []
    for x in np.flatnonzero(inked):
        if groups and x - groups[-1][1] <= gap:
            groups[-1] = (groups[-1][0], int(x) + 1)
        else:
            groups.append((int(x), int(x) + 1))
    return groups


def interior_ink(grey: np.ndarray, box: Box) -> float:
    """Fraction of dark pixels inside the printed box's outline.

    The outline's sides are the outermost columns inked over much of the box's height, its
    top and bottom the rows inked nearly all across between them (at standard resolution
    they are often lost); both are left out, so an empty box scores near 0 whatever its
    print quality, a tick some, a filled ■ nearly 1.
    """
    x0, y0 = max(box[0], 0), max(box[1], 0)
    x1, y1 = min(box[2], grey.shape[1]), min(box[3], grey.shape[0])
    ink_ = grey[y0:y1, x0:x1] < 128
    h, w = ink_.shape
    if h < 6 or w < 6:
        return 0.0
    margin = max(1, round(0.08 * min(h, w)))
    sides = np.flatnonzero(ink_.sum(axis=0) >= 0.4 * h)
    left, right = (sides[0], sides[-1]) if len(sides) >= 2 else (0, w - 1)
    inside = ink_[:, left + margin:right - margin + 1]
    if inside.size == 0:
        return 0.0
    lines = inside.mean(axis=1) > 0.6
    if lines.mean() > 0.5:
        return float(inside.mean())  # a filled box: its "lines" are all of it
    keep = ~np.convolve(lines, np.ones(2 * margin + 1), mode="same").astype(bool)
    return float(inside[keep].mean()) if keep.any() else 0.0


def read_ticks(image: Image.Image, row: Row, *, scale: float = 1.0) -> tuple[Tick, ...]:
    """Each option of a checkbox row, ticked or not, with the ink inside its box.

    ``image`` may be a sharper rendering of the page the row was read from (``TICK_DPI``
    against the OCR's lower resolution), ``scale`` times its size: a box outline is a
    hairline that the OCR resolution and its blur leave too faint to measure.
    """
    grey = np.asarray(image.convert("L"))
    spots = option_spots(grey, _scaled(row, scale) if scale != 1.0 else row)
    inks = [interior_ink(grey, spot.box) for spot in spots]
    return tuple(Tick(spot.word, _ticked(value, inks[:i] + inks[i + 1:]), round(value, 3),
                      spot.box)
                 for i, (spot, value) in enumerate(zip(spots, inks)))


def _scaled(row: Row, scale: float) -> Row:
    cells = tuple(replace(c, box=(round(c.box[0] * scale), round(c.box[1] * scale),
                                  round(c.box[2] * scale), round(c.box[3] * scale)))
                  for c in row.cells)
    return Row(cells, row.index)


def _ticked(value: float, others: list[float]) -> bool:
    if value >= FILLED:
        return True
    baseline = median(others) if others else 0.0
    return value >= TICKED and value >= TICK_RATIO * baseline + TICK_MARGIN
