"""The subordinate units and their published duty numbers, imported from the office's CSV.

Every row is checked before anything is written; all bad rows are reported together, each
with its line number, and then nothing at all is imported (a half-imported list would
silently leave units unchecked).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.errors import InputError
from gateway.textfiles import decode_spreadsheet_text, header_columns
from storage.spotcheck import SpotUnit

COLUMNS = {
    "name": ("name", "unit", "单位", "单位名称"),
    "group": ("group", "分组", "类别", "单位类别"),
    "number": ("number", "phone", "值班电话", "电话", "号码"),
    "contact": ("contact", "联系人", "值班联系人"),
}
REQUIRED = ("name", "number")
_LANDLINE = re.compile(r"0\d{9,11}")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_EXTENSION = re.compile(r"\d{3,6}")
"""An internal extension (a unit on the same PBX)."""


@dataclass(frozen=True)
class Unit:
    name: str
    group: str
    number: str
    contact: str
    line: int


def parse_units(data: bytes, source: str) -> list[Unit]:
    """The units of a CSV (UTF-8 or GB18030 from Excel); raises ``InputError`` listing every bad line."""
    text = decode_spreadsheet_text(data, source, what="the unit list")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise InputError(f"{source}: the unit list is empty")
    columns = _columns(rows[0], source)
    units: list[Unit] = []
    problems: list[tuple[int, str]] = []
    for line_no, cells in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue
        unit, problem = _unit(cells, columns, line_no)
        if unit is not None:
            units.append(unit)
        else:
            problems.append((line_no, f"第{line_no}行：{problem}"))
    problems += _duplicates(units)
    if problems:
        listed = "\n".join(text for _, text in sorted(problems))
        raise InputError(f"{source}: {len(problems)} 行有误，未导入任何单位：\n" + listed,
                         remedy="fix the lines named and import the whole file again")
    return units


def store_units(session: Session, units: Sequence[Unit], source: str, now: datetime) -> int:
    """Insert or update each unit by name; units no longer listed are kept but made inactive."""
    existing = {u.name: u for u in session.scalars(select(SpotUnit))}
    for unit in units:
        row = existing.pop(unit.name, None)
        if row is None:
            row = SpotUnit(name=unit.name)
            session.add(row)
        row.group_name, row.number, row.contact = unit.group, unit.number, unit.contact
        row.active, row.source, row.imported_at = True, f"{source}, line {unit.line}", now
    for row in existing.values():
        row.active = False
    return len(units)


def import_units(session: Session, path: Path, now: datetime) -> int:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the unit list: {exc.strerror}") from None
    return store_units(session, parse_units(data, str(path)), str(path), now)


def normalise_number(text: str) -> str:
    """Digits as the PBX dials them: spaces, dashes and brackets dropped, +86 / 0086 dropped."""
    number = re.sub(r"[\s\-()（）]", "", text)
    for prefix in ("+86", "0086"):
        number = number.removeprefix(prefix)
    return number


def _columns(header: Sequence[str], source: str) -> dict[str, int]:
    return header_columns(header, COLUMNS, REQUIRED, source,
                          remedy="the header needs 单位名称,值班电话 (or name,number), optionally 分组,联系人")


def _unit(cells: Sequence[str], columns: dict[str, int], line_no: int) -> tuple[Unit | None, str | None]:
    def cell(key: str) -> str:
        index = columns.get(key)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    name, raw = cell("name"), cell("number")
    if not name:
        return None, "缺少单位名称"
    number = normalise_number(raw)
    if not raw:
        return None, f"{name}：缺少值班电话"
    if not (_LANDLINE.fullmatch(number) or _MOBILE.fullmatch(number) or _EXTENSION.fullmatch(number)):
        return None, f"{name}：值班电话 {raw!r} 不是有效的固定电话（含区号）或手机号码"
    return Unit(name, cell("group"), number, cell("contact"), line_no), None


def _duplicates(units: Sequence[Unit]) -> list[tuple[int, str]]:
    seen: dict[str, int] = {}
    problems = []
    for unit in units:
        if unit.name in seen:
            problems.append((unit.line, f"第{unit.line}行：{unit.name} 与第{seen[unit.name]}行重复"))
        seen.setdefault(unit.name, unit.line)
    return problems
