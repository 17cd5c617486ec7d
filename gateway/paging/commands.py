"""``dutygw roster import FILE.csv`` and ``dutygw shift [--at TIME]``."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.cli import config_from_args
from gateway.clock import SystemClock
from gateway.errors import InputError
from gateway.shifts.calendar import Shift, check_calendar, shift_at
from gateway.shifts.roster import OnDuty, on_duty, parse_roster, store_roster
from storage.db import open_database


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    roster = subparsers.add_parser("roster", help="the duty roster (值班表)")
    actions = roster.add_subparsers(dest="roster_command", required=True, metavar="ACTION")
    importer = actions.add_parser("import", help="import a roster CSV (date,shift,leader,leader_phone,officers)")
    importer.add_argument("file", type=Path, metavar="FILE.csv")
    importer.set_defaults(func=_import)
    shift = subparsers.add_parser("shift", help="the shift and the leader on duty at a time (default: now)")
    shift.add_argument("--at", default=None, metavar="TIME",
                       help="ISO 8601 time (naive: the duty room's zone), e.g. 2026-11-21T23:14")
    shift.set_defaults(func=_shift)


def _import(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    check_calendar(config.calendar)
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read roster {args.file}: {exc.strerror}") from None
    rows = parse_roster(data, str(args.file), config.calendar)
    db = open_database(config.database_url)
    try:
        with db.session() as session:
            count = store_roster(session, rows, SystemClock().now())
    finally:
        db.dispose()
    dates = sorted(row.duty_date for row in rows)
    span = f" ({dates[0]} – {dates[-1]})" if dates else ""
    print(f"imported {count} roster entries from {args.file}{span}")
    return 0


def _shift(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    check_calendar(config.calendar)
    instant = _instant(args.at, config.zone)
    shift = shift_at(instant, config.calendar, config.zone)
    db = open_database(config.database_url)
    try:
        with db.session() as session:
            duty = on_duty(session, shift.duty_date, shift.name)
    finally:
        db.dispose()
    print(describe(shift, duty, config.zone))
    return 0


def describe(shift: Shift, duty: OnDuty | None, tz: ZoneInfo) -> str:
    """Two lines for the duty officer: the shift and its day, then who leads it."""
    start, end = shift.start.astimezone(tz), shift.end.astimezone(tz)
    day = "休息日" if shift.rest_day else "工作日"
    notes = [n for n in (shift.day_reason, "特殊敏感时间" if shift.special_day else None) if n]
    if notes:
        day += f"（{'，'.join(dict.fromkeys(notes))}）"
    if shift.data_missing:
        day += " [警告：无该年节假日数据，按周一至周五工作日计算]"
    first = f"{shift.key}  {shift.label}  {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M}  {day}"
    if duty is None:
        return first + "\n带班领导：值班表中无本班记录"
    officers = f"  值班人员：{'、'.join(duty.officers)}" if duty.officers else ""
    return first + f"\n带班领导：{duty.leader} {duty.leader_number or '（无电话）'}{officers}"


def _instant(text: str | None, tz: ZoneInfo) -> datetime:
    if text is None:
        return SystemClock().now()
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"--at {text!r}: not an ISO 8601 time (e.g. 2026-11-21T23:14)") from None
    return when.replace(tzinfo=tz) if when.tzinfo is None else when
