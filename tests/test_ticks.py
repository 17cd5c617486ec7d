"""Reading the ticked box from the fax image (report forms, cover sheets), on the fixtures.

OCR reads only the printed labels (□一般 □较急 □紧急); the choice is a hand-drawn tick or a
filled ■. Uses the session's OCR'd corpus (``tests.ocr_corpus``) for the label boxes.
"""

from __future__ import annotations

import re

import pytest

from ocr.config import UrgencyConfig
from ocr.normalise import NormaliseOptions, normalise
from ocr.ticks import TICK_DPI, Tick, read_ticks
from ocr.urgency import decide, option_rows
from ocr.zones import Row, layout
from tests.ocr_corpus import OcrPage

pytestmark = pytest.mark.ocr
RULES = UrgencyConfig()


def _read(page: OcrPage, row: Row) -> tuple[Tick, ...]:
    """The boxes measured on a sharp (``TICK_DPI``) rendering of the page, as the reader does."""
    sharp = normalise(page.page, NormaliseOptions(dpi=TICK_DPI)).image
    return read_ticks(sharp, row, scale=TICK_DPI / page.normalised.dpi)


def _ticks(page: OcrPage) -> list[list[tuple[str, bool]]]:
    rows = option_rows(layout(page.text))
    return [[(t.word, t.ticked) for t in _read(page, row)] for row in rows]


@pytest.mark.parametrize("name, urgent", [("fax_001", True), ("fax_016", False),
                                          ("fax_024", False)])
def test_report_form_urgency_comes_from_the_tick(
        ocr_corpus: dict[str, tuple[OcrPage, ...]], name: str, urgent: bool) -> None:
    page = ocr_corpus[name][0]
    page_layout = layout(page.text)
    (row,) = option_rows(page_layout)
    ticks = _read(page, row)
    assert sum(t.ticked for t in ticks) == 1, ticks  # one option is chosen on every form
    decision = decide(page_layout, RULES, ticks={row.index: ticks})
    assert (decision.is_urgent, decision.possibly_urgent) == (urgent, False)
    assert "紧急" in page.truth  # the printed word is there either way: only the tick tells


def test_every_form_and_cover_box_row_reads_as_its_truth(
        ocr_corpus: dict[str, tuple[OcrPage, ...]]) -> None:
    """Report forms: 紧急 ticked exactly when the fax is urgent. Cover sheets: the ■ option
    of the ground truth (the one printed filled) is the one found ticked."""
    checked = 0
    for name, pages in ocr_corpus.items():
        page = pages[0]
        fixture = page.fixture.sidecar
        rows = _ticks(page)
        if fixture["kind"] == "report_form":
            (row,) = rows
            ticked = [word for word, on in row if on]
            assert len(ticked) == 1, (name, row)
            assert ticked[0].endswith("紧急") is fixture["fields"]["is_urgent"], name
            checked += 1
        elif fixture["kind"] == "cover" and "■" in page.truth:
            filled = re.search(r"■(\S+)", page.truth)
            assert filled is not None
            (row,) = rows
            assert [word for word, on in row if on] == [filled.group(1)], (name, row)
            checked += 1
    assert checked >= 5
