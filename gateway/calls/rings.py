"""Rings heard in China's cadence: ring N starts at ``cadence * (N - 1)`` seconds.

Shared by the call tracker (the duty line's own calls) and the spot checks (the units'
lines), so both count a ring the same way.
"""

from __future__ import annotations

import math


def rings_heard(ring_seconds: float, cadence: float = 5.0) -> int:
    """How many rings had begun ``ring_seconds`` after ringing started (1 at 0 s)."""
    return math.floor(max(ring_seconds, 0.0) / cadence) + 1


def within_rule(rings: int, answer_within_rings: int = 3) -> bool:
    """The 3-ring rule (or the configured one) held for an answer during ring ``rings``."""
    return rings <= answer_within_rings
