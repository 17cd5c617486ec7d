"""The shift's call log as a spreadsheet (calls.xlsx), one row per call, for the binder and audits.

Only what duty staff read: the words of ``gateway.terms``, no PBX internals (no Linkedid,
no device labels such as "Duty Desk 1", no ``pbx``). Times are real Excel date-times in
the duty room's zone, columns wide enough for them, and a filter on the header row."""

from __future__ import annotations

import io
from datetime import datetime

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from gateway import terms
from gateway.calls.parties import handled_text, leader_roles
from gateway.report.figures import CallRow, ShiftFigures
from gateway.report.layout import Style, caller_text

HEADINGS = (
    "方向", "来电时间", "主叫号码", "姓名", "单位", "被叫号码", "结果", "振铃（声）", "振铃秒数",
    "符合振铃规定", "接听人", "接听时间", "通话秒数", "结束时间", "回拨时间", "回拨人", "回拨接通", "事由", "处理情况", "领导批示", "备注",
)
TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
TIME_WIDTH = 21
SECONDS_FORMAT = "0.0"


def render(figures: ShiftFigures, style: Style) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "通话记录"
    sheet.append(list(HEADINGS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    roles = leader_roles(figures.shift.leader_number)
    for call in figures.calls:
        sheet.append(_row(call, style, roles))
    for index, heading in enumerate(HEADINGS, start=1):
        letter = get_column_letter(index)
        values = [cell.value for cell in sheet[letter][1:]]
        width = max([2 * len(heading) + 2, 10] + [_width(v) for v in values])
        sheet.column_dimensions[letter].width = width
        for cell in sheet[letter][1:]:
            if isinstance(cell.value, datetime):
                cell.number_format = TIME_FORMAT
            elif isinstance(cell.value, float):
                cell.number_format = SECONDS_FORMAT
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(HEADINGS))}{max(1, sheet.max_row)}"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _width(value: object) -> int:
    if isinstance(value, datetime):
        return TIME_WIDTH
    text = "" if value is None else str(value)
    return min(60, sum(2 if ord(ch) > 0x2E7F else 1 for ch in text) + 2)


def _row(call: CallRow, style: Style, roles: dict[str, str] | None = None) -> list[object]:
    inbound = call.direction == "in"
    return [
        terms.word(terms.DIRECTION, call.direction), _local(call.arrived_at, style), caller_text(call),
        # an outbound call's "caller" is a duty phone: its PBX device label is no one's name
        (call.caller_name or "") if inbound else "", (call.caller_unit or "") if inbound else "", call.dialed or "",
        terms.word(terms.CALL_OUTCOME, call.outcome, default=terms.IN_PROGRESS), call.rings,
        _seconds(call.ring_seconds), terms.YES_NO[call.rule_met], _answered_by(call, roles),
        _local(call.answered_at, style), _seconds(call.talk_seconds), _local(call.ended_at, style),
        _local(call.called_back_at, style), call.called_back_by or "",
        terms.YES_NO[call.callback_connected],
        call.matter or "", call.handling or "", call.instruction or "", _note(call),
    ]


def _answered_by(call: CallRow, roles: dict[str, str] | None) -> str:
    """The first answer, and the transfer or pickup ("8001 接听后转 8010 带班领导")."""
    return handled_text(call.answered_by, call.final_party, call.transferred_to, call.picked_up_by, roles)


def _note(call: CallRow) -> str:
    """Notes are for staff; an unknown outcome says why in words."""
    if call.outcome == "unknown":
        return "监听中断，结果不明，请核对话机记录"
    return call.note if call.note and not call.note.isascii() else ""


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _local(instant: datetime | None, style: Style) -> datetime | None:
    """Excel has no zones: local wall time, as duty staff read it."""
    return None if instant is None else instant.astimezone(style.tz).replace(tzinfo=None)
