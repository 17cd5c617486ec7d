"""The ``[calendar]`` section's types: the shifts and the days they fall on.

They live with the calendar, not in ``gateway.config``, so the calendar needs nothing above it;
``gateway.config`` imports them to build ``Config``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time


@dataclass(frozen=True)
class ShiftConfig:
    name: str
    label: str
    start: time
    end: time
    night: bool | None = None
    """Whether urgent faxes in this shift page the leadership; unset: a shift crossing midnight does."""


@dataclass(frozen=True)
class CalendarConfig:
    """Shifts and the days they fall on (chinesecalendar, plus what the unit adds)."""

    shifts: list[ShiftConfig] = field(
        default_factory=lambda: [
            ShiftConfig("day", "白班", time(8), time(19)),
            ShiftConfig("night", "夜班", time(19), time(8)),
        ]
    )
    holiday_shifts: list[ShiftConfig] = field(default_factory=list)
    """Shifts on rest days (weekends, holidays), if they differ; empty means the same as workdays."""
    extra_holidays: list[str] = field(default_factory=list)
    """ISO dates treated as rest days (a unit's own, or the years chinesecalendar lacks);
    a name may follow the date: ``"2027-01-01 元旦"``."""
    extra_workdays: list[str] = field(default_factory=list)
    """ISO dates treated as working days (调休 the package does not know yet)."""
    special_days: list[str] = field(default_factory=list)
    """ISO dates of 特殊敏感时间: treated like a rest day for paging."""
