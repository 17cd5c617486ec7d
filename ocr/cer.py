"""Character error rate: how far OCR text is from the ground truth.

Levenshtein distance over the length of the ground truth, both with all whitespace
removed (line breaks and the spaces between table cells are layout, not content), capped
at 1 so one hopeless page cannot outweigh the rest of a mean.
"""

from __future__ import annotations

import re

from rapidfuzz.distance import Levenshtein

_WHITESPACE = re.compile(r"\s+")


def squeeze(text: str) -> str:
    """The text without any whitespace."""
    return _WHITESPACE.sub("", text)


def cer(ocr_text: str, truth: str) -> float:
    """Character error rate of ``ocr_text`` against ``truth``, 0 (perfect) .. 1."""
    reference, hypothesis = squeeze(truth), squeeze(ocr_text)
    if not reference:
        return 0.0 if not hypothesis else 1.0
    return min(1.0, Levenshtein.distance(hypothesis, reference) / len(reference))
