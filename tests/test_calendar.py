"""Shifts on real dates: statutory holidays, 调休, the year chinesecalendar does not know yet."""

from __future__ import annotations

import logging
from datetime import date, datetime, time
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.config import load_config
from gateway.shifts.config import CalendarConfig, ShiftConfig
from gateway.errors import ConfigError, InputError
from gateway.shifts import calendar as cal
from gateway.shifts.calendar import (
    calendar_data_missing,
    day_info,
    shift_at,
    shift_by_key,
    shifts_between,
)

TZ = ZoneInfo("Asia/Shanghai")
DEFAULT = CalendarConfig()
OFFICE_HOURS = CalendarConfig(shifts=[ShiftConfig("day", "白班", time(8), time(17)),
                                      ShiftConfig("night", "夜班", time(17), time(8))])
SPLIT_HOLIDAYS = CalendarConfig(
    shifts=[ShiftConfig("day", "白班", time(8), time(18)), ShiftConfig("night", "夜班", time(18), time(7))],
    holiday_shifts=[ShiftConfig("am", "上午班", time(8), time(13)), ShiftConfig("pm", "下午班", time(13), time(18)),
                    ShiftConfig("night", "夜班", time(18), time(8))],
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees the once-per-year warning afresh."""
    monkeypatch.setattr(cal, "_warned_years", set())


@pytest.mark.parametrize(("day", "rest", "reason"), [
    (date(2026, 10, 1), True, "国庆节"),
    (date(2026, 10, 7), True, "国庆节"),
    (date(2026, 10, 10), False, "调休上班（国庆节）"),  # a Saturday worked for National Day
    (date(2026, 2, 14), False, "调休上班（春节）"),  # a Saturday worked for Spring Festival
    (date(2026, 2, 17), True, "春节"),
    (date(2026, 11, 21), True, "周末"),
    (date(2026, 11, 23), False, None),
    (date(2026, 6, 19), True, "端午节"),
])
def test_days_from_chinesecalendar(day: date, rest: bool, reason: str | None) -> None:
    info = day_info(day, DEFAULT)
    assert (info.rest, info.reason, info.special, info.data_missing) == (rest, reason, False, False)


@pytest.mark.parametrize(("instant", "key", "start", "end", "rest", "night"), [
    ("2026-10-01T10:00", "2026-10-01/day", "2026-10-01T08:00", "2026-10-01T19:00", True, False),
    ("2026-10-02T03:00", "2026-10-01/night", "2026-10-01T19:00", "2026-10-02T08:00", True, True),
    ("2026-10-10T09:30", "2026-10-10/day", "2026-10-10T08:00", "2026-10-10T19:00", False, False),
    ("2026-11-21T18:59:58", "2026-11-21/day", "2026-11-21T08:00", "2026-11-21T19:00", True, False),
    ("2026-11-21T19:00:03", "2026-11-21/night", "2026-11-21T19:00", "2026-11-22T08:00", True, True),
    ("2026-11-23T07:59:59", "2026-11-22/night", "2026-11-22T19:00", "2026-11-23T08:00", True, True),
    ("2026-11-23T08:00:00", "2026-11-23/day", "2026-11-23T08:00", "2026-11-23T19:00", False, False),
])
def test_default_shifts(instant: str, key: str, start: str, end: str, rest: bool, night: bool) -> None:
    shift = shift_at(at(instant), DEFAULT, TZ)
    assert (shift.key, shift.start, shift.end, shift.rest_day, shift.night) == (key, at(start), at(end), rest, night)
    assert shift.label == ("夜班" if night else "白班")
    assert shift.contains(at(instant))
    assert shift_by_key(key, DEFAULT, TZ) == shift


def test_instant_in_utc_lands_in_local_shift() -> None:
    utc = datetime.fromisoformat("2026-11-21T10:59:58+00:00")  # 18:59:58 in Shanghai
    assert shift_at(utc, DEFAULT, TZ).key == "2026-11-21/day"
    assert shift_at(utc.replace(second=59, minute=59, hour=11), DEFAULT, TZ).key == "2026-11-21/night"


def test_new_years_eve_night_runs_into_a_year_without_data(caplog: pytest.LogCaptureFixture) -> None:
    assert calendar_data_missing(2027) and not calendar_data_missing(2026)
    with caplog.at_level(logging.WARNING, logger="dutygw.shifts.calendar"):
        night = shift_at(at("2026-12-31T19:30"), DEFAULT, TZ)
        morning = shift_at(at("2027-01-01T03:00"), DEFAULT, TZ)
        day = shift_at(at("2027-01-01T10:00"), DEFAULT, TZ)
        saturday = shift_at(at("2027-01-02T10:00"), DEFAULT, TZ)
    assert night == morning
    assert (night.key, night.end, night.night, night.data_missing) == (
        "2026-12-31/night", at("2027-01-01T08:00"), True, True)
    assert (day.key, day.rest_day, day.data_missing) == ("2027-01-01/day", False, True)  # weekday fallback
    assert (saturday.rest_day, saturday.day_reason) == (True, "周末")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "2027" in r.getMessage()]
    assert len(warnings) == 1, "warned once per missing year, loudly"


def test_configured_days_override_the_package_and_fill_missing_years() -> None:
    config = CalendarConfig(extra_holidays=["2027-01-01 元旦", "2026-11-24"], extra_workdays=["2026-10-03"],
                            special_days=["2026-11-25"])
    assert (day_info(date(2027, 1, 1), config).rest, day_info(date(2027, 1, 1), config).reason) == (True, "元旦")
    assert day_info(date(2026, 11, 24), config).rest  # a Tuesday the unit takes off
    assert day_info(date(2026, 11, 24), config).reason == cal.CONFIGURED_HOLIDAY
    assert not day_info(date(2026, 10, 3), config).rest
    special = shift_at(at("2026-11-25T10:00"), config, TZ)
    assert (special.rest_day, special.special_day, special.off_hours, special.day_reason) == (
        False, True, True, "特殊敏感时间")
    assert not shift_at(at("2026-11-23T10:00"), config, TZ).off_hours


@pytest.mark.parametrize(("instant", "key", "start", "end"), [
    ("2026-11-23T16:59:59", "2026-11-23/day", "2026-11-23T08:00", "2026-11-23T17:00"),
    ("2026-11-23T17:00:00", "2026-11-23/night", "2026-11-23T17:00", "2026-11-24T08:00"),
])
def test_office_hours_layout(instant: str, key: str, start: str, end: str) -> None:
    shift = shift_at(at(instant), OFFICE_HOURS, TZ)
    assert (shift.key, shift.start, shift.end) == (key, at(start), at(end))


@pytest.mark.parametrize(("instant", "key", "start", "end", "label"), [
    # Friday, a workday: 08:00–18:00 then a night meant to end 07:00 …
    ("2026-11-20T17:59", "2026-11-20/day", "2026-11-20T08:00", "2026-11-20T18:00", "白班"),
    # … that runs on until Saturday's first shift starts, so 07:30 still belongs to it.
    ("2026-11-21T07:30", "2026-11-20/night", "2026-11-20T18:00", "2026-11-21T08:00", "夜班"),
    ("2026-11-21T12:59", "2026-11-21/am", "2026-11-21T08:00", "2026-11-21T13:00", "上午班"),
    ("2026-11-21T13:00", "2026-11-21/pm", "2026-11-21T13:00", "2026-11-21T18:00", "下午班"),
    ("2026-11-22T23:00", "2026-11-22/night", "2026-11-22T18:00", "2026-11-23T08:00", "夜班"),
    # Monday night, a workday again: configured to end 07:00, it runs to Tuesday's 08:00.
    ("2026-11-23T19:00", "2026-11-23/night", "2026-11-23T18:00", "2026-11-24T08:00", "夜班"),
    ("2026-10-01T14:00", "2026-10-01/pm", "2026-10-01T13:00", "2026-10-01T18:00", "下午班"),
])
def test_split_holiday_day_shifts(instant: str, key: str, start: str, end: str, label: str) -> None:
    shift = shift_at(at(instant), SPLIT_HOLIDAYS, TZ)
    assert (shift.key, shift.start, shift.end, shift.label) == (key, at(start), at(end), label)


def test_shifts_between_cover_time_without_gaps() -> None:
    shifts = list(shifts_between(at("2026-11-20T12:00"), at("2026-11-23T12:00"), SPLIT_HOLIDAYS, TZ))
    assert [s.key for s in shifts] == [
        "2026-11-20/day", "2026-11-20/night", "2026-11-21/am", "2026-11-21/pm", "2026-11-21/night",
        "2026-11-22/am", "2026-11-22/pm", "2026-11-22/night", "2026-11-23/day",
    ]
    assert all(a.end == b.start for a, b in pairwise(shifts))


def test_unknown_shift_key_and_bad_dates_are_named() -> None:
    with pytest.raises(InputError, match="no shift 'am' on 2026-11-23"):
        shift_by_key("2026-11-23/am", SPLIT_HOLIDAYS, TZ)
    with pytest.raises(ConfigError, match="calendar.extra_holidays"):
        cal.check_calendar(CalendarConfig(extra_holidays=["2027-13-01"]))
    with pytest.raises(ConfigError, match="unique"):
        cal.check_calendar(CalendarConfig(shifts=[ShiftConfig("day", "白班", time(8), time(19))] * 2))


def test_calendar_from_toml_with_a_24_hour_shift(tmp_path: Path) -> None:
    path = tmp_path / "dutygw.toml"
    path.write_text(
        '[duty]\nnumbers = ["02787654321"]\nextensions = ["8001"]\n'
        "[calendar]\n"
        'shifts = [{name = "all", label = "全天班", start = "08:30", end = "08:30", night = false}]\n'
        'extra_holidays = ["2027-02-08 春节"]\n',
        encoding="utf-8",
    )
    config = load_config(path, env={})
    workday = shift_at(at("2026-11-24T03:00"), config.calendar, config.zone)
    assert (workday.key, workday.start, workday.end) == ("2026-11-23/all", at("2026-11-23T08:30"), at("2026-11-24T08:30"))
    assert (workday.night, workday.off_hours) == (False, False)
    spring = shift_at(at("2027-02-08T12:00"), config.calendar, config.zone)
    assert (spring.rest_day, spring.day_reason, spring.off_hours) == (True, "春节", True)
