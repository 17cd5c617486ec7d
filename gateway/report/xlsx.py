"""The shift's call log as a spreadsheet (calls.xlsx), one row per call, for the binder and audits."""

from __future__ import annotations

import io
from datetime import datetime

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from gateway.calls.parties import handled_text, leader_roles
from gateway.report.figures import CallRow, ShiftFigures
from gateway.report.layout import CALL_OUTCOME, Style, caller_text

HEADINGS = (
    "方向", "来电时间", "主叫号码", "姓名", "单位", "被叫号码", "结果", "振铃（声）", "振铃秒数",
    "符合振铃规定", "接听人", "接听时间", "通话秒数", "结束时间", "回拨时间", "回拨人", "回拨接通", "事由", "处理情况", "领导批示", "备注", "Linkedid",
)
DIRECTION = {"in": "来电", "out": "去电"}


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
        sheet.column_dimensions[get_column_letter(index)].width = max(10, 2 * len(heading) + 2)
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _row(call: CallRow, style: Style, roles: dict[str, str] | None = None) -> list[object]:
    return [
        DIRECTION.get(call.direction, call.direction), _local(call.arrived_at, style), caller_text(call),
        call.caller_name or "", call.caller_unit or "", call.dialed or "",
        CALL_OUTCOME.get(call.outcome, call.outcome), call.rings, call.ring_seconds,
        {True: "是", False: "否", None: ""}[call.rule_met],
        handled_text(call.answered_by, call.final_party, call.transferred_to, call.picked_up_by, roles),
        _local(call.answered_at, style), call.talk_seconds, _local(call.ended_at, style),
        _local(call.called_back_at, style), call.called_back_by or "",
        {True: "是", False: "否", None: ""}[call.callback_connected], call.matter or "", call.handling or "", call.instruction or "", call.note or "", call.linkedid or "",
    ]


def _local(instant: datetime | None, style: Style) -> datetime | None:
    """Excel has no zones: local wall time, as duty staff read it."""
    return None if instant is None else instant.astimezone(style.tz).replace(tzinfo=None)
