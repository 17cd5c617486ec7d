"""``dutygw calls`` (the call log) and ``dutygw phonebook import``.

The table is for people at a terminal: Chinese headings and outcome words, columns
padded by display width so 张三 lines up with ASCII names. ``--format json`` is for
programs: the field names and ISO 8601 times with the duty room's offset are a contract.
"""

from __future__ import annotations

import argparse
import json
import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gateway import terms
from gateway.calls.phonebook import import_phonebook
from gateway.calls.tracker import PBX
from gateway.cli import config_from_args
from gateway.clock import SystemClock, as_utc, local_iso
from gateway.errors import InputError
from storage.calls import Call
from storage.db import Database, open_database

JSON_FIELDS = (
    "direction", "caller", "caller_name", "caller_unit", "dialed", "arrived_at", "ringing_at",
    "answered_at", "ended_at", "ring_seconds", "rings", "rule_met", "answered_by", "talk_seconds",
    "outcome", "hangup_cause", "called_back_at",
    "final_party", "transferred_to", "picked_up_by", "note",
)
_TIME_FIELDS = {"arrived_at", "ringing_at", "answered_at", "ended_at", "called_back_at"}
_SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*([mhd])", re.IGNORECASE)
_SPAN_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    calls = subparsers.add_parser("calls", help="recent calls on the duty line (来电记录)")
    calls.add_argument("--missed", action="store_true", help="only missed inbound calls")
    calls.add_argument("--since", metavar="WHEN",
                       help="ISO date/time (naive: duty-room time) or a span back from now: 30m, 24h, 7d")
    calls.add_argument("--limit", type=int, default=50, help="at most N calls, newest first (default 50)")
    calls.add_argument("--format", choices=("table", "json"), default="table")
    calls.set_defaults(func=_calls)

    phonebook = subparsers.add_parser("phonebook", help="the phonebook that names callers (通讯录)")
    actions = phonebook.add_subparsers(dest="action", required=True, metavar="ACTION")
    importer = actions.add_parser("import", help="import a CSV: number,name,unit (UTF-8 or GB18030)")
    importer.add_argument("file", type=Path, metavar="FILE.csv")
    importer.set_defaults(func=_import)


def _calls(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    since = parse_since(args.since, SystemClock().now(), config.zone) if args.since else None
    if args.limit < 1:
        raise InputError("--limit must be at least 1")
    db = open_database(config.database_url)
    try:
        rows = recent_calls(db, since=since, missed=args.missed, limit=args.limit)
    finally:
        db.dispose()
    if args.format == "json":
        print(json.dumps([call_json(row, config.zone) for row in rows], ensure_ascii=False, indent=2))
    else:
        print(render_table(rows, config.zone))
    return 0


def _import(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    db = open_database(config.database_url)
    try:
        count = import_phonebook(db, args.file)
    finally:
        db.dispose()
    print(f"已导入通讯录 {count} 条：{args.file}")
    return 0


def parse_since(text: str, now: datetime, zone: Any) -> datetime:
    """``24h``/``30m``/``7d`` back from ``now``, or an ISO date/time (naive means duty-room time)."""
    span = _SPAN.fullmatch(text.strip())
    if span is not None:
        return now - timedelta(**{_SPAN_UNITS[span.group(2).lower()]: float(span.group(1))})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"--since {text!r}: expected e.g. 24h, 7d, 2026-11-22 or 2026-11-22T08:00") from None
    return as_utc(when.replace(tzinfo=zone) if when.tzinfo is None else when)


def recent_calls(db: Database, *, since: datetime | None, missed: bool, limit: int) -> list[Call]:
    """The same query as the console's call log (``storage.queries``)."""
    from storage import queries

    with db.session() as session:
        return queries.recent_calls(session, since=since, missed=missed, limit=limit)


def call_json(row: Call, zone: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in JSON_FIELDS:
        value = getattr(row, name)
        out[name] = precise_iso(value, zone) if name in _TIME_FIELDS else value
    return out


def precise_iso(when: datetime | None, zone: Any) -> str | None:
    """ISO 8601 in the duty room's zone keeping the fraction (an answer at :17.92 is not :17)."""
    if when is None:
        return None
    return as_utc(when).astimezone(zone).isoformat(timespec="milliseconds")


_HEADINGS = ("时间", "方向", "号码", "姓名/单位", "被叫", "振铃", "接听", "结果", "回拨")


def render_table(rows: Sequence[Call], zone: Any) -> str:
    if not rows:
        return "（没有通话记录）"
    lines = [_HEADINGS] + [_row_cells(row, zone) for row in rows]
    widths = [max(display_width(line[i]) for line in lines) for i in range(len(_HEADINGS))]
    return "\n".join("  ".join(pad(cell, w) for cell, w in zip(line, widths)).rstrip() for line in lines)


def _row_cells(row: Call, zone: Any) -> tuple[str, ...]:
    when = local_iso(row.arrived_at, zone) or ""
    who = " ".join(p for p in (row.caller_name, row.caller_unit) if p)
    rings = f"{row.rings}声 {row.ring_seconds:.0f}秒" if row.rings is not None and row.ring_seconds is not None else ""
    answered = terms.AUTO_ANSWERED if row.answered_by == PBX else row.answered_by or ""
    if row.picked_up_by:
        answered += " 代接"
    if row.transferred_to and row.final_party:
        answered += f" 转{row.final_party}"
    if row.rule_met is False and row.outcome == "answered":
        answered += " 超时"
    return (
        when[:19].replace("T", " "),
        terms.word(terms.DIRECTION, row.direction),
        terms.WITHHELD if row.caller_withheld else row.caller,
        who,
        row.dialed or "",
        rings,
        answered,
        terms.CALL_OUTCOME.get(row.outcome, row.outcome) if row.outcome else terms.IN_PROGRESS,
        _callback_cell(row, zone),
    )


def _callback_cell(row: Call, zone: Any) -> str:
    if row.called_back_at is None:
        return "再次来电已接" if row.closed_by_call_id is not None else ""
    when = (local_iso(row.called_back_at, zone) or "")[11:16]
    state = "已接通" if row.callback_connected else "未接通"
    return f"{when} {row.called_back_by or ''} {state}"


def display_width(text: str) -> int:
    """Columns a terminal gives the text: CJK (wide and fullwidth) characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))
