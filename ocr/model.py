"""Values that flow out of the OCR package: what was read, and what was decided from it.

All immutable. Every decision carries its reasons (which word, where, with what
confidence), so a duty officer or a reviewer can see why a fax was or was not urgent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

Box = tuple[int, int, int, int]
"""(x0, y0, x1, y1) in pixels of the normalised page image."""


@dataclass(frozen=True)
class OcrLine:
    text: str
    box: Box
    confidence: float
    """0..1 as the engine reports it."""


@dataclass(frozen=True)
class PageText:
    page_no: int
    lines: tuple[OcrLine, ...]
    engine: str
    width: int
    height: int
    error: str | None = None

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    @property
    def confidence(self) -> float | None:
        if not self.lines:
            return None
        weights = [max(len(line.text), 1) for line in self.lines]
        return sum(w * line.confidence for w, line in zip(weights, self.lines)) / sum(weights)


class Rule(StrEnum):
    """Which rule a ``Reason`` comes from: made in one module and matched in others (the
    reader's doubts, filing, the register), so a misspelt one is a type error. Stored as
    its string in a receipt's reasons."""

    HEADER_MARK = "header_mark"
    NOT_URGENT_MARK = "not_urgent_mark"
    HEADER_FLAG = "header_flag"
    TITLE_FLAG = "title_flag"
    TITLE_OVERRULED = "title_overruled"
    REMARK_FLAG = "remark_flag"
    TICKED_BOX = "ticked_box"
    UNTICKED_BOX = "unticked_box"
    UNREADABLE_TICK = "unreadable_tick"
    NEAR_MISS = "near_miss"
    UNREADABLE_HEADER = "unreadable_header"
    SECOND_READER = "second_reader"
    CLASSIFICATION = "classification"
    NEGATED = "negated"
    IGNORED_BODY = "ignored_body"
    UNREADABLE_DOCUMENT = "unreadable_document"
    """The document could not be read at all (filing: decode failed, engine crashed)."""
    ISSUER = "issuer"
    DOC_NUMBER = "doc_number"
    DOC_YEAR_FROM_DATES = "doc_year_from_dates"
    """The last three say how a register field was found, not anything about urgency."""


DOUBTS = frozenset({Rule.NEAR_MISS, Rule.UNREADABLE_HEADER, Rule.UNREADABLE_TICK})
"""Rules that make a fax possibly urgent on the page as read: a person checks the original."""


@dataclass(frozen=True)
class Reason:
    """One piece of evidence behind a decision."""

    rule: Rule
    word: str
    where: str
    """e.g. ``page 1 header zone, line 3`` or ``page 1 form, box 3``."""
    confidence: float | None = None
    engine: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule, "word": self.word, "where": self.where,
            "confidence": self.confidence, "engine": self.engine,
        }


@dataclass(frozen=True)
class UrgencyDecision:
    is_urgent: bool
    possibly_urgent: bool
    """Not proven urgent, but the header could not be read well enough to rule it out:
    treated as urgent for paging (fail towards waking someone)."""
    level: str | None
    """The formal mark found: 特提, 特急, 加急, 平急, 急件, 紧急, or None."""
    classification: str | None
    """绝密, 机密, 秘密, or None."""
    secrecy_period: str | None
    reasons: tuple[Reason, ...] = ()

    @property
    def should_page(self) -> bool:
        return self.is_urgent or self.possibly_urgent


@dataclass(frozen=True)
class FaxFields:
    """The register fields (来文登记) of one fax."""

    copy_no: str | None = None
    classification: str | None = None
    secrecy_period: str | None = None
    urgency: str | None = None
    issuer: str | None = None
    doc_number: str | None = None
    title: str | None = None
    recipients: str | None = None
    doc_date: str | None = None
    sender: str | None = None
    pages_declared: int | None = None
    kind: str | None = None
    """gongwen, telegram, report, report_form, cover, letter (best guess)."""
    conflicts: tuple[str, ...] = field(default=())
    """Fields that disagreed between readings or pages; makes the receipt need review."""
    reasons: tuple[Reason, ...] = field(default=())
    """How the fields were found (which row, which rule), for a reviewer."""
