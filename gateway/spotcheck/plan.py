"""Drawing a plan's check times: pure, seeded, and reproducible for an audit.

The windows come from the shift calendar: every night shift of the period, and the day
shifts of its rest days (weekends and holidays; a 调休 working Saturday is a working day,
so its day shift is not a holiday window). Times are drawn uniformly over the windows'
total length with ``random.Random(seed)``; a time that would put more than
``max_concurrent`` checks on the trunk at once (each holds it for ``slot_seconds``) is
drawn again. The same seed, units and windows always give the same times, so anyone can
redraw a stored plan and compare (``verify``).
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from gateway.errors import InputError
from gateway.shifts.calendar import shifts_between
from gateway.shifts.config import CalendarConfig

MAX_DRAWS = 10_000
"""Redraws allowed per check before the windows are declared too full."""


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    label: str
    """What staff read: ``2026-10-01 夜班 国庆节``."""

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class Drawn:
    unit_id: int
    at: datetime


def windows_for(first: date, last: date, calendar: CalendarConfig, tz: ZoneInfo, *,
                nights: bool = True, rest_days: bool = True) -> tuple[Window, ...]:
    """The shifts of ``first``..``last`` (by duty date) that a plan covers."""
    start = datetime.combine(first, time(0), tz)
    end = datetime.combine(last + timedelta(days=1), time(0), tz)
    chosen = []
    for shift in shifts_between(start, end, calendar, tz):
        if not first <= shift.duty_date <= last:
            continue
        if (nights and shift.night) or (rest_days and shift.rest_day and not shift.night):
            reason = f" {shift.day_reason}" if shift.day_reason else ""
            chosen.append(Window(shift.start, shift.end, f"{shift.duty_date:%Y-%m-%d} {shift.label}{reason}"))
    return tuple(chosen)


def from_now(windows: Sequence[Window], now: datetime) -> tuple[Window, ...]:
    """The windows as far as they are still ahead: a plan never holds a time already past
    (the daemon would place it at once, outside its shift)."""
    return tuple(Window(max(w.start, now), w.end, w.label) for w in windows if w.end > now)


def draw(unit_ids: Sequence[int], windows: Sequence[Window], *, checks_per_unit: int, seed: int,
         max_concurrent: int, slot_seconds: float) -> tuple[Drawn, ...]:
    """Every unit's check times, in time order; the result depends on nothing but the arguments."""
    total = sum(w.seconds for w in windows)
    if total <= 0 or not unit_ids:
        raise InputError("the plan has no time to draw in (no windows) or no units")
    rng = random.Random(seed)
    taken: list[float] = []
    drawn = []
    for unit_id in sorted(unit_ids):
        for _ in range(checks_per_unit):
            offset = _free_offset(rng, total, windows, taken, max_concurrent, slot_seconds)
            bisect.insort(taken, offset)
            drawn.append(Drawn(unit_id, _instant(offset, windows)))
    return tuple(sorted(drawn, key=lambda d: (d.at, d.unit_id)))


def verify(stored: Sequence[Drawn], unit_ids: Sequence[int], windows: Sequence[Window], **params: float) -> bool:
    """Whether a stored plan's times are exactly what its seed draws (an audit)."""
    return tuple(sorted(stored, key=lambda d: (d.at, d.unit_id))) == draw(unit_ids, windows, **params)  # type: ignore[arg-type]


def most_at_once(times: Sequence[datetime], slot_seconds: float) -> int:
    """The largest number of checks holding the trunk at one instant."""
    ordered = sorted(times)
    best = 0
    for i, start in enumerate(ordered):
        best = max(best, bisect.bisect_left(ordered, start + timedelta(seconds=slot_seconds), i) - i)
    return best


def _free_offset(rng: random.Random, total: float, windows: Sequence[Window], taken: list[float],
                 max_concurrent: int, slot_seconds: float) -> float:
    room = [w.seconds - slot_seconds for w in windows]
    for _ in range(MAX_DRAWS):
        offset = float(int(rng.uniform(0, total)))
        if _fits(offset, windows, room) and _overlapping(taken, offset, slot_seconds) < max_concurrent:
            return offset
    raise InputError("the windows are too full for that many checks at the configured concurrency",
                     remedy="fewer checks per unit, a longer period, or a higher [spotcheck] max_concurrent")


def _fits(offset: float, windows: Sequence[Window], room: Sequence[float]) -> bool:
    """The whole slot lies inside the window the offset falls in (a check does not run past its shift)."""
    for window, space in zip(windows, room):
        if offset < window.seconds:
            return offset <= space
        offset -= window.seconds
    return False


def _overlapping(taken: list[float], offset: float, slot_seconds: float) -> int:
    low = bisect.bisect_right(taken, offset - slot_seconds)
    high = bisect.bisect_left(taken, offset + slot_seconds)
    return high - low


def _instant(offset: float, windows: Sequence[Window]) -> datetime:
    for window in windows:
        if offset < window.seconds:
            return window.start + timedelta(seconds=offset)
        offset -= window.seconds
    raise ValueError("offset beyond the windows")
