"""Shifts and the days they fall on: which shift an instant belongs to, and whether it is a rest day.

Pure given the configuration. Days come from ``chinesecalendar`` (weekends, statutory
holidays, 调休 working days) overlaid by the unit's own lists. The package only knows
the years it was released for; past them the gateway must keep working, so it falls back
to plain weekdays plus the configured days and warns loudly, once per missing year.

Every instant belongs to exactly one shift: a shift runs from its start until the next
shift starts. Layouts of consecutive days may leave a gap (a workday night 18:00–07:00
before a rest day starting 08:00) or overlap; the earlier shift then runs until the next
one begins, so no call or fax ever falls between two shifts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import chinese_calendar

from gateway.errors import ConfigError, InputError
from gateway.shifts.config import CalendarConfig, ShiftConfig

log = logging.getLogger("dutygw.shifts.calendar")

HOLIDAY_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "Mid-autumn Festival": "中秋节",
    "National Day": "国庆节",
    "Anti-Fascist 70th Day": "抗战胜利纪念日",
}
WEEKEND = "周末"
MAKEUP_WORKDAY = "调休上班"
SPECIAL = "特殊敏感时间"
CONFIGURED_HOLIDAY = "节假日"

_warned_years: set[int] = set()


@dataclass(frozen=True)
class Day:
    """What kind of day a date is; ``reason`` is what duty staff read (国庆节, 周末, 调休上班…)."""

    day: date
    rest: bool
    reason: str | None
    special: bool
    data_missing: bool
    """chinesecalendar has no data for this year: weekdays plus configured days only."""


@dataclass(frozen=True)
class Shift:
    """One shift as worked: ``key`` names it by the date it starts on, e.g. ``2026-11-21/night``."""

    key: str
    name: str
    label: str
    start: datetime
    end: datetime
    duty_date: date
    night: bool
    """Configured, or else: the configured window crosses midnight."""
    rest_day: bool
    day_reason: str | None
    special_day: bool
    data_missing: bool

    @property
    def off_hours(self) -> bool:
        """Night, weekend, holiday or 特殊敏感时间: nobody is at the office to read a fax."""
        return self.night or self.rest_day or self.special_day

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant < self.end


@lru_cache(maxsize=64)
def calendar_data_missing(year: int) -> bool:
    """True when chinesecalendar holds no holidays for ``year`` (the report shows it)."""
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return True
    return False


def day_info(day: date, config: CalendarConfig) -> Day:
    """Classify a date: configured days first, then chinesecalendar, then plain weekdays."""
    listed = _listed_days(tuple(config.extra_holidays), tuple(config.extra_workdays),
                          tuple(config.special_days))
    holidays, workdays, specials = listed
    special = day in specials
    missing = calendar_data_missing(day.year)
    reason: str | None
    if day in workdays:
        rest, reason = False, MAKEUP_WORKDAY
    elif day in holidays:
        rest, reason = True, holidays[day] or CONFIGURED_HOLIDAY
    elif missing:
        _warn_missing(day.year)
        rest, reason = day.weekday() >= 5, WEEKEND if day.weekday() >= 5 else None
    else:
        rest, reason = _package_day(day)
    if special and reason is None:
        reason = SPECIAL
    return Day(day, rest, reason, special, missing)


def shift_at(instant: datetime, config: CalendarConfig, tz: ZoneInfo) -> Shift:
    """The shift ``instant`` falls in: the one that started last at or before it."""
    if instant.tzinfo is None:
        raise ValueError("shift_at needs an aware datetime")
    local_day = instant.astimezone(tz).date()
    starts = _starts(local_day - timedelta(days=1), local_day + timedelta(days=1), config, tz)
    current = max((s for s in starts if s[0] <= instant), key=lambda s: s[0])
    return _shift(current, starts, config, tz)


def shift_by_key(key: str, config: CalendarConfig, tz: ZoneInfo) -> Shift:
    """The shift named ``YYYY-MM-DD/name`` (as stored on escalations and mails)."""
    day_text, _, name = key.partition("/")
    try:
        day = date.fromisoformat(day_text)
    except ValueError:
        raise InputError(f"shift {key!r}: expected YYYY-MM-DD/name") from None
    starts = _starts(day, day + timedelta(days=1), config, tz)
    found = [s for s in starts if s[1] == day and s[2].name == name]
    if not found:
        names = ", ".join(s.name for s in layout(day, config))
        raise InputError(f"shift {key!r}: no shift {name!r} on {day} (that day has: {names})")
    return _shift(found[0], starts, config, tz)


def shifts_between(start: datetime, end: datetime, config: CalendarConfig, tz: ZoneInfo) -> Iterator[Shift]:
    """Every shift overlapping [start, end), in order."""
    shift = shift_at(start, config, tz)
    while shift.start < end:
        yield shift
        shift = shift_at(shift.end, config, tz)


def layout(day: date, config: CalendarConfig) -> list[ShiftConfig]:
    """The shifts worked on ``day``, in order of start: rest days may have their own."""
    shifts = config.shifts
    if config.holiday_shifts and day_info(day, config).rest:
        shifts = config.holiday_shifts
    return sorted(shifts, key=lambda s: s.start)


def check_calendar(config: CalendarConfig) -> None:
    """Refuse a calendar that cannot work: no shifts, duplicate names, unreadable dates."""
    for key, shifts in (("calendar.shifts", config.shifts), ("calendar.holiday_shifts", config.holiday_shifts)):
        names = [s.name for s in shifts]
        if len(set(names)) != len(names) or len({s.start for s in shifts}) != len(shifts):
            raise ConfigError(f"key {key}: shift names and start times must be unique")
    if not config.shifts:
        raise ConfigError("key calendar.shifts: at least one shift is needed")
    _listed_days(tuple(config.extra_holidays), tuple(config.extra_workdays), tuple(config.special_days))


_Start = tuple[datetime, date, ShiftConfig]


def _starts(first: date, last: date, config: CalendarConfig, tz: ZoneInfo) -> list[_Start]:
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return sorted(
        ((datetime.combine(d, s.start, tz), d, s) for d in days for s in layout(d, config)),
        key=lambda start: start[0],
    )


def _shift(current: _Start, starts: list[_Start], config: CalendarConfig, tz: ZoneInfo) -> Shift:
    begin, day, cfg = current
    later = [s[0] for s in starts if s[0] > begin]
    end = later[0] if later else _next_start(day, config, tz)
    info = day_info(day, config)
    return Shift(
        key=f"{day.isoformat()}/{cfg.name}", name=cfg.name, label=cfg.label, start=begin, end=end,
        duty_date=day, night=cfg.night if cfg.night is not None else cfg.end <= cfg.start, rest_day=info.rest, day_reason=info.reason,
        special_day=info.special,
        data_missing=info.data_missing or calendar_data_missing(end.astimezone(tz).year),
    )


def _next_start(day: date, config: CalendarConfig, tz: ZoneInfo) -> datetime:
    following = day + timedelta(days=1)
    return min(datetime.combine(following, s.start, tz) for s in layout(following, config))


@lru_cache(maxsize=4096)
def _package_day(day: date) -> tuple[bool, str | None]:
    on_holiday, name = chinese_calendar.get_holiday_detail(day)
    chinese = HOLIDAY_NAMES.get(name, name) if name else None
    if on_holiday:
        return True, chinese or WEEKEND
    if name:  # a 调休 working day carries the holiday it pays for
        return False, f"{MAKEUP_WORKDAY}（{chinese}）"
    return False, None


def _warn_missing(year: int) -> None:
    if year in _warned_years:
        return
    _warned_years.add(year)
    log.warning(
        "chinesecalendar has no holiday data for %d: treating Mon–Fri as working days and only the "
        "configured [calendar] extra_holidays/extra_workdays as exceptions. List %d's statutory "
        "holidays and 调休 days there, or upgrade chinesecalendar.", year, year,
    )


@lru_cache(maxsize=32)
def _listed_days(
    holidays: tuple[str, ...], workdays: tuple[str, ...], specials: tuple[str, ...]
) -> tuple[dict[date, str | None], frozenset[date], frozenset[date]]:
    """Parse the configured lists; an entry is ``YYYY-MM-DD`` optionally followed by a name."""
    named = dict(_parse_entry(text, "calendar.extra_holidays") for text in holidays)
    work = frozenset(_parse_entry(text, "calendar.extra_workdays")[0] for text in workdays)
    special = frozenset(_parse_entry(text, "calendar.special_days")[0] for text in specials)
    return named, work, special


def _parse_entry(text: str, key: str) -> tuple[date, str | None]:
    day_text, _, name = text.strip().partition(" ")
    try:
        return date.fromisoformat(day_text), name.strip() or None
    except ValueError:
        raise ConfigError(f"key {key}: {text!r} is not a date (YYYY-MM-DD, optionally a name)") from None
