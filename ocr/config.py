"""The ``[urgency]`` section's type: the words the urgency and classification rules look for.

It lives in ``ocr`` (the lower floor that uses it), so ``ocr`` needs nothing from
``gateway.config``; ``gateway.config`` imports it to build ``Config``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class UrgencyConfig:
    """The words the urgency and classification rules look for (lists live here, not in code)."""

    urgent_marks: list[str] = field(default_factory=lambda: ["特提", "特急", "加急", "急件"])
    not_urgent_marks: list[str] = field(default_factory=lambda: ["平急"])
    not_urgent_options: list[str] = field(default_factory=lambda: ["一般", "较急", "平急"])
    """Printed options of a 紧急程度 box row that do not make a fax urgent when ticked."""
    urgent_flags: list[str] = field(default_factory=lambda: ["紧急信息", "紧急"])
    """Words that make a report or cover sheet urgent when they stand in the header zone."""
    classifications: list[str] = field(default_factory=lambda: ["绝密", "机密", "秘密"])
    low_confidence: float = 0.6
    """Below this OCR confidence a near-miss of an urgency word makes the fax possibly urgent."""
