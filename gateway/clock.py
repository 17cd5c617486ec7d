"""Time is passed in: logic never reads the wall clock itself.

The daemon hands a ``SystemClock`` to what needs "now"; tests and replays hand a
``FixedClock`` they move by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class FixedClock:
    """A clock that stands still until moved; for tests and replays."""

    current: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> datetime:
        self.current += timedelta(seconds=seconds)
        return self.current

    def set(self, when: datetime) -> None:
        self.current = when


def utc_from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def as_utc(when: datetime) -> datetime:
    """Aware datetime in UTC; a naive one is taken to be UTC already (as the database stores it)."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def local_iso(when: datetime | None, tz: ZoneInfo = SHANGHAI) -> str | None:
    """ISO 8601 with offset in the duty room's zone, for what people read."""
    return None if when is None else as_utc(when).astimezone(tz).isoformat(timespec="seconds")


class ShiftedClock:
    """Real time moved to another instant, running at real speed from there.

    ``dutygw demo`` uses it to play a recorded afternoon as a night shift.
    """

    def __init__(self, start: datetime) -> None:
        import time

        self._monotonic = time.monotonic
        self._start = as_utc(start)
        self._real_start = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._monotonic() - self._real_start)
