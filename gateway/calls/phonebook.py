"""The duty room's phonebook (number, name, unit) from the CSV people keep in Excel.

Excel on a Chinese Windows saves CSV as GB18030 (GBK); newer versions save UTF-8 with
a BOM. Both are read; numbers are normalised like every caller number, so the book
matches however the carrier spells the caller. A bad row stops the import with the
file and line named, and nothing of that file is written.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.calls.numbers import normalise
from gateway.errors import InputError
from gateway.textfiles import decode_spreadsheet_text
from storage.calls import PhonebookEntry
from storage.db import Database

_HEADER_WORDS = {"number", "号码", "电话", "电话号码"}


@dataclass(frozen=True)
class Contact:
    number: str
    name: str
    unit: str | None


def read_csv(path: Path) -> list[Contact]:
    """Every contact in the file; ``InputError`` naming file and line for a bad row."""
    try:
        text = decode_spreadsheet_text(path.read_bytes(), path, what="the phonebook")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the phonebook: {exc.strerror}") from None
    contacts: dict[str, Contact] = {}
    for line_no, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells) or (line_no == 1 and cells[0].lower() in _HEADER_WORDS):
            continue
        contact = _contact(cells, path, line_no)
        contacts[contact.number] = contact
    return list(contacts.values())



def _contact(cells: list[str], path: Path, line_no: int) -> Contact:
    if len(cells) < 2 or not cells[1]:
        raise InputError(f"{path}, line {line_no}: expected number,name[,unit], got {','.join(cells)!r}",
                         remedy="fix or delete that line and import again")
    number = normalise(cells[0])
    if number.withheld or not number.number.lstrip("+").isdigit():
        raise InputError(f"{path}, line {line_no}: {cells[0]!r} is not a telephone number",
                         remedy="fix or delete that line and import again")
    unit = cells[2] if len(cells) > 2 and cells[2] else None
    return Contact(number.number, cells[1], unit)


def import_phonebook(db: Database, path: Path) -> int:
    """Add or update every contact of the file; returns how many."""
    contacts = read_csv(path)
    with db.session() as session:
        for contact in contacts:
            entry = session.scalar(select(PhonebookEntry).where(PhonebookEntry.number == contact.number))
            if entry is None:
                session.add(PhonebookEntry(number=contact.number, name=contact.name, unit=contact.unit))
            else:
                entry.name, entry.unit = contact.name, contact.unit
    return len(contacts)


def lookup(session: Session, number: str | None) -> PhonebookEntry | None:
    if not number:
        return None
    return session.scalar(select(PhonebookEntry).where(PhonebookEntry.number == number))
