"""The whole reader on the 24 fixture faxes, with the real engines (acceptance figures).

Pages are OCR'd once per session (``tests.ocr_corpus``); the reader gets the pages as
received, normalises them itself, and has an engine that hands back the session's RapidOCR
reading of a page image it has seen (normalising is deterministic) and really runs RapidOCR
on anything else (the re-read crops of a 文号). Tesseract really reads every header zone.
Run with ``-s`` for the per-fax table.
"""

from __future__ import annotations

import hashlib
from dataclasses import FrozenInstanceError
from typing import Any

import pytest
from PIL import Image

from ocr.config import UrgencyConfig
from ocr.engines import OcrEngine, RapidOcrEngine, TesseractEngine
from ocr.model import PageText, UrgencyDecision
from ocr.reader import FaxReader, FaxReading
from ocr.urgency import formal_level
from tests.ocr_corpus import OcrPage

pytestmark = pytest.mark.ocr
RULES = UrgencyConfig()


class SessionEngine:
    """RapidOCR with the session's readings of whole pages; records what it was asked."""

    name = "rapidocr"

    def __init__(self, real: OcrEngine, corpus: dict[str, tuple[OcrPage, ...]]) -> None:
        self.real = real
        self.known = {_key(p.normalised.image): p.text for pages in corpus.values() for p in pages}
        self.calls: list[Any] = []

    def read(self, image: Image.Image, *, page_no: int = 1) -> PageText:
        text = self.known.get(_key(image))
        self.calls.append(("read", page_no) if text else ("crop", page_no))
        return text if text is not None else self.real.read(image, page_no=page_no)


def _key(image: Image.Image) -> str:
    return hashlib.sha1(image.tobytes()).hexdigest()


@pytest.fixture(scope="module")
def readings(ocr_corpus: dict[str, tuple[OcrPage, ...]], rapid_engine: RapidOcrEngine,
             tesseract_engine: TesseractEngine) -> dict[str, FaxReading]:
    reader = FaxReader(SessionEngine(rapid_engine, ocr_corpus), tesseract_engine, RULES)
    return {name: reader.read([p.page for p in pages]) for name, pages in ocr_corpus.items()}


def _scores(name: str, reading: FaxReading, truth: dict[str, Any]) -> dict[str, bool]:
    fields, decision = reading.fields, reading.urgency
    return {
        "urgent": decision.should_page == truth["is_urgent"],
        "class": fields.classification == truth["classification"],
        "doc_no": fields.doc_number == truth["doc_number"],
        "issuer": fields.issuer == truth["issuer"],
        "title": fields.title == (truth["title"] or "").replace(" ", ""),
    }


def test_acceptance_figures(readings: dict[str, FaxReading],
                            ocr_corpus: dict[str, tuple[OcrPage, ...]]) -> None:
    table = {name: _scores(name, r, ocr_corpus[name][0].fixture.sidecar["fields"])
             for name, r in readings.items()}
    _print_table(readings, table, ocr_corpus)
    n = len(table)
    rate = {k: sum(row[k] for row in table.values()) / n for k in next(iter(table.values()))}
    assert n == 24
    assert [name for name, row in table.items() if not row["urgent"]] == []
    assert [name for name, row in table.items() if not row["class"]] == []
    assert rate["doc_no"] >= 0.95, rate
    assert rate["issuer"] >= 0.90 and rate["title"] >= 0.90, rate


def test_no_false_page_from_a_trap(readings: dict[str, FaxReading],
                                   ocr_corpus: dict[str, tuple[OcrPage, ...]]) -> None:
    """Every fax whose page 1 has an urgent word but is not urgent stays quiet, and says why."""
    traps = [name for name, pages in ocr_corpus.items()
             if "urgent_word_on_page1_but_not_urgent" in pages[0].fixture.sidecar["traps"]]
    assert len(traps) >= 3
    for name in traps:
        decision = readings[name].urgency
        assert not decision.should_page, (name, decision.reasons)
        assert {r.rule for r in decision.reasons} & {"ignored_body", "unticked_box"}, name


def test_every_decision_carries_its_reasons(readings: dict[str, FaxReading]) -> None:
    for name, reading in readings.items():
        if reading.urgency.should_page:
            assert any(r.rule in ("header_mark", "header_flag", "ticked_box", "remark_flag",
                                  "second_reader") for r in reading.urgency.reasons), name


def test_the_register_fields_are_the_one_decisions(readings: dict[str, FaxReading]) -> None:
    """Urgency is decided once (issue 10): the fields' urgency, classification and secrecy
    period are the header pass's decision's, and its reasons stand in the fields once."""
    for name, reading in readings.items():
        f, d = reading.fields, reading.urgency
        assert (f.urgency, f.classification, f.secrecy_period) == (
            formal_level(d.level, RULES), d.classification, d.secrecy_period), name
        assert sum(r in d.reasons for r in f.reasons) == len(d.reasons), name


def test_header_is_decided_before_later_pages_are_read(
        ocr_corpus: dict[str, tuple[OcrPage, ...]], rapid_engine: RapidOcrEngine) -> None:
    engine = SessionEngine(rapid_engine, ocr_corpus)
    reader = FaxReader(engine, None, RULES)
    seen: list[UrgencyDecision] = []

    def on_header(decision: UrgencyDecision, page: PageText) -> None:
        engine.calls.append("header")
        seen.append(decision)
        assert page.page_no == 1

    gongwen = [p.page for p in ocr_corpus["fax_012"]]  # 3 pages as received; 加急
    reading = reader.read(gongwen, on_header=on_header)
    reads = [c for c in engine.calls if c == "header" or c[0] == "read"]
    assert reads == [("read", 1), "header", ("read", 2), ("read", 3)]
    assert seen[0].is_urgent and seen[0] == reading.urgency
    assert len(reading.pages) == 3

    engine.calls.clear()
    cover = [p.normalised for p in ocr_corpus["fax_007"]]  # a cover carrying a 公文: 3 pages
    reader.read(cover, on_header=on_header)
    reads = [c for c in engine.calls if c == "header" or c[0] == "read"]
    assert reads == [("read", 1), ("read", 2), "header", ("read", 3)]


class CrashingEngine:
    name = "crashing"

    def __init__(self, real: OcrEngine, crash_on: int) -> None:
        self.real, self.crash_on = real, crash_on

    def read(self, image: Image.Image, *, page_no: int = 1) -> PageText:
        if page_no == self.crash_on:
            raise RuntimeError("engine crashed")
        return self.real.read(image, page_no=page_no)


def test_unreadable_first_page_is_possibly_urgent_and_reviewed(
        ocr_corpus: dict[str, tuple[OcrPage, ...]], rapid_engine: RapidOcrEngine) -> None:
    engine = CrashingEngine(SessionEngine(rapid_engine, ocr_corpus), crash_on=1)
    reading = FaxReader(engine, None, RULES).read([p.normalised for p in ocr_corpus["fax_004"]])
    assert reading.urgency.possibly_urgent and reading.urgency.should_page
    assert any("第1页无法识别" in note for note in reading.review)
    with pytest.raises(FrozenInstanceError):
        reading.review = ()  # type: ignore[misc]


def _print_table(readings: dict[str, FaxReading], table: dict[str, dict[str, bool]],
                 corpus: dict[str, tuple[OcrPage, ...]]) -> None:
    print()
    print(f"{'fax':8} {'kind':11} {'page?':6} {'level':5} {'class':5} {'doc_number':24} "
          f"{'issuer':22} ok")
    for name, reading in readings.items():
        f, d = reading.fields, reading.urgency
        bad = [k for k, ok in table[name].items() if not ok]
        print(f"{name:8} {corpus[name][0].fixture.sidecar['kind']:11} "
              f"{'yes' if d.should_page else 'no':6} {d.level or '-':5} "
              f"{f.classification or '-':5} "
              f"{f.doc_number or '-':24} {f.issuer or '-':22} {'✓' if not bad else ' '.join(bad)}")
    n = len(table)
    for key in next(iter(table.values())):
        print(f"{key}: {sum(row[key] for row in table.values())}/{n}")
