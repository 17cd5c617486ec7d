"""The roster (值班表): who leads each shift, read from the office's CSV and looked up per shift.

Offices export the roster from Excel, so the file may be UTF-8 (with or without BOM) or
GB18030, and headings may be English or Chinese. Every row is checked before anything is
written: a bad line is an ``InputError`` naming the file and line, and nothing is imported.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.calls.numbers import dialable as normalise_number  # one normaliser for every number
from gateway.errors import InputError
from gateway.shifts.config import CalendarConfig
from gateway.textfiles import decode_spreadsheet_text, header_columns
from storage.roster import RosterEntry

COLUMNS = {
    "date": ("date", "duty_date", "日期", "值班日期"),
    "shift": ("shift", "班次"),
    "leader": ("leader", "leader_name", "带班领导", "领导"),
    "leader_phone": ("leader_phone", "leader_number", "领导电话", "联系电话", "电话"),
    "officers": ("officers", "值班人员", "值班员"),
}
REQUIRED = ("date", "shift", "leader")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日")
_OFFICER_SPLIT = re.compile(r"[、,，;；/\s]+")


@dataclass(frozen=True)
class OnDuty:
    """The roster's entry for one shift: the leader paged first, and the officers on duty."""

    duty_date: date
    shift: str
    leader: str
    leader_number: str
    officers: tuple[str, ...] = ()
    source: str = ""


def parse_roster(data: bytes, source: str, calendar: CalendarConfig) -> list[OnDuty]:
    """Rows of a roster CSV; shift may be given by name (night) or label (夜班)."""
    text = decode_spreadsheet_text(data, source, what="the roster")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise InputError(f"{source}: the roster file is empty")
    columns = _columns(header, source)
    shifts = _shift_names(calendar)
    rows = []
    for line_no, cells in enumerate(reader, start=2):
        if any(cell.strip() for cell in cells):
            rows.append(_row(cells, columns, shifts, f"{source}, line {line_no}"))
    _check_unique(rows)
    return rows


def store_roster(session: Session, rows: Iterable[OnDuty], now: datetime) -> int:
    """Write rows, replacing any entry for the same date and shift; returns how many."""
    count = 0
    for row in rows:
        entry = session.scalar(
            select(RosterEntry).where(RosterEntry.duty_date == row.duty_date, RosterEntry.shift == row.shift)
        )
        if entry is None:
            entry = RosterEntry(duty_date=row.duty_date, shift=row.shift)
            session.add(entry)
        entry.leader_name, entry.leader_number = row.leader, row.leader_number
        entry.officers, entry.source, entry.imported_at = list(row.officers), row.source, now
        count += 1
    return count


def on_duty(session: Session, duty_date: date, shift: str) -> OnDuty | None:
    """The roster entry for a shift (``Shift.duty_date``, ``Shift.name``), if one was imported."""
    entry = session.scalar(
        select(RosterEntry).where(RosterEntry.duty_date == duty_date, RosterEntry.shift == shift)
    )
    if entry is None:
        return None
    return OnDuty(entry.duty_date, entry.shift, entry.leader_name, entry.leader_number,
                  tuple(entry.officers or ()), entry.source)


def _columns(header: Sequence[str], source: str) -> dict[str, int]:
    return header_columns(header, COLUMNS, REQUIRED, source, remedy=(
        "the header needs date,shift,leader (or 日期,班次,带班领导), optionally leader_phone,officers"))


def _shift_names(calendar: CalendarConfig) -> dict[str, str]:
    names: dict[str, str] = {}
    for shift in [*calendar.shifts, *calendar.holiday_shifts]:
        names[shift.name.lower()] = shift.name
        names.setdefault(shift.label, shift.name)
    return names


def _row(cells: Sequence[str], columns: dict[str, int], shifts: dict[str, str], where: str) -> OnDuty:
    def cell(key: str) -> str:
        index = columns.get(key)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    shift = shifts.get(cell("shift").lower()) or shifts.get(cell("shift"))
    if shift is None:
        raise InputError(f"{where}: unknown shift {cell('shift')!r} (known: {', '.join(sorted(set(shifts)))})")
    if not cell("leader"):
        raise InputError(f"{where}: no leader named for {cell('date')} {cell('shift')}")
    try:
        number = normalise_number(cell("leader_phone"))
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None
    officers = tuple(o for o in _OFFICER_SPLIT.split(cell("officers")) if o)
    return OnDuty(_date(cell("date"), where), shift, cell("leader"), number, officers, where)


def _date(text: str, where: str) -> date:
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise InputError(f"{where}: {text!r} is not a date (use 2026-11-21)")


def _check_unique(rows: list[OnDuty]) -> None:
    seen: dict[tuple[date, str], str] = {}
    for row in rows:
        key = (row.duty_date, row.shift)
        if key in seen:
            raise InputError(f"{row.source}: {row.duty_date} {row.shift} is already given at {seen[key]}")
        seen[key] = row.source
