"""The report as duty staff read it: titled sections of lines and tables, in Chinese.

One pure layout feeds the HTML and the PDF, so the e-mail and the printed copy for the
值班记录 binder always say the same thing. Times are shown in the duty room's zone.
A classified receipt's ``hidden`` fields (the title, by default) are never written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from gateway import terms
from gateway.calls.parties import handled_text, leader_roles
from gateway.report.figures import (
    MISSED_KINDS,
    CallRow,
    MissedGroup,
    PageRow,
    ReceiptRow,
    ShiftFigures,
    gap_of,
)
from storage.faxes import is_classified
from storage.states import InboundMailState

HIDDEN = "（密件，不显示）"
NONE = "无"
STATUS = terms.RECEIPT_STATUS
ATTEMPT_RESULT = terms.ATTEMPT_RESULT
PAGE_STATE = terms.PAGE_STATE
CALL_OUTCOME = terms.CALL_OUTCOME
WEEKDAYS = "一二三四五六日"


@dataclass(frozen=True)
class Table:
    headings: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""
    marked: frozenset[int] = frozenset()
    """Rows (by index) to stand out: an urgent fax. The text says so too, for a grey printer."""


@dataclass(frozen=True)
class Section:
    title: str
    lines: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    charts: tuple[str, ...] = ()
    """Names of charts drawn here: ``hourly``, ``rings``."""


@dataclass(frozen=True)
class Document:
    title: str
    sections: tuple[Section, ...]


@dataclass(frozen=True)
class Style:
    tz: ZoneInfo
    hidden_fields: frozenset[str] = frozenset({"title"})


def document(figures: ShiftFigures, style: Style) -> Document:
    shift = figures.shift
    return Document(
        title=f"值班报告 {shift.day:%Y年%m月%d日} {shift.label}",
        sections=(
            _shift_section(figures, style),
            _calls_section(figures, style),
            _late_section(figures, style),
            _missed_section(figures, style),
            _outbound_section(figures, style),
            _unknown_section(figures, style),
            _fax_section(figures, style),
            _pages_section(figures, style),
            _handover_section(figures, style),
            _signature_section(),
        ),
    )


SIGNATURE_LINES = (
    "交班人（签字）：＿＿＿＿＿＿＿＿　　接班人（签字）：＿＿＿＿＿＿＿＿",
    "带班领导（签字）：＿＿＿＿＿＿＿＿　　交接时间：＿＿＿＿年＿＿月＿＿日＿＿时＿＿分",
)


def _signature_section() -> Section:
    """The handover is signed on the printed copy for the 值班记录 binder."""
    return Section("十、交接班签字", SIGNATURE_LINES)


def when(instant: datetime | None, style: Style, *, with_date: bool = False) -> str:
    if instant is None:
        return ""
    local = instant.astimezone(style.tz)
    return f"{local:%m-%d %H:%M:%S}" if with_date else f"{local:%H:%M:%S}"


def caller_text(call: CallRow) -> str:
    return terms.WITHHELD if call.caller_withheld or not call.caller else call.caller


def _shift_section(figures: ShiftFigures, style: Style) -> Section:
    shift = figures.shift
    start, end = shift.start.astimezone(style.tz), shift.end.astimezone(style.tz)
    day_kind = shift.day_reason or ("休息日" if shift.rest_day else "工作日")
    lines = [
        f"日期：{shift.day:%Y年%m月%d日}（星期{WEEKDAYS[shift.day.weekday()]}，{day_kind}）",
        f"班次：{shift.label}　{start:%m月%d日 %H:%M} 至 {end:%m月%d日 %H:%M}",
        f"带班领导：{shift.leader or '（值班表未录入）'}",
        f"值班人员：{'、'.join(shift.officers) if shift.officers else '（值班表未录入）'}",
    ]
    if shift.calendar_missing:
        lines.append("注意：日历数据缺少本年度节假日安排，节假日按配置判断。")
    if figures.covered_from is not None:
        lines.append(f"注意：网关于 {figures.covered_from.astimezone(style.tz):%m月%d日 %H:%M} 开始监听，"
                     "本报告只含此后的来电和来文，此前的部分班次未监听。")
    return Section("一、班次", tuple(lines))


def _calls_section(figures: ShiftFigures, style: Style) -> Section:
    percent = figures.rule_met_percent
    rate = "—" if percent is None else f"{percent:.1f}%"
    rings = figures.answer_within_rings
    lines = (
        (f"来电总数：{figures.calls_in}　已接：{figures.answered}　未接：{figures.missed_calls}"
         f"　结果不明：{len(figures.unknown)}"),
        f"{rings}声内接听：{figures.rule_met}（占来电 {rate}）　超时接听：{len(figures.late)}",
        f"未接来电未处理：{len(figures.missed_open)}　去电：{len(figures.outbound)}",
        *_handed_on_lines(figures, style),
    )
    return Section("二、来电情况", lines, charts=("hourly", "rings"))


def _handed_on_lines(figures: ShiftFigures, style: Style) -> tuple[str, ...]:
    """Each transfer or pickup in one line: "02:15 13800001111 8001 接听后转 8010 带班领导"."""
    roles = leader_roles(figures.shift.leader_number)
    return tuple(
        f"转接/代接：{when(c.arrived_at, style)} {caller_text(c)} "
        + handled_text(c.answered_by, c.final_party, c.transferred_to, c.picked_up_by, roles)
        for c in figures.handed_on
    )


def _late_section(figures: ShiftFigures, style: Style) -> Section:
    rows = tuple(
        (when(c.arrived_at, style), caller_text(c), c.caller_name or "", _int(c.rings), c.answered_by or "")
        for c in figures.late
    )
    table = Table(("来电时间", "来电号码", "姓名", "振铃（声）", "接听人"), rows)
    return Section(f"三、超过{figures.answer_within_rings}声接听", tables=(table,))


def _missed_section(figures: ShiftFigures, style: Style) -> Section:
    headings = ("来电时间", "号码", "姓名", "单位", "次数", "振铃（声）", "类型", "事由", "处理情况", "回拨时间", "回拨人")
    rows = tuple(_missed_row(group, figures.as_of, style) for group in figures.missed)
    lines = ("同一号码多次未接合并为一行。",) if any(len(g.calls) > 1 for g in figures.missed) else ()
    return Section("四、未接来电", lines, tables=(Table(headings, rows),))


def _missed_row(group: MissedGroup, as_of: datetime, style: Style) -> tuple[str, ...]:
    first = group.calls[0]
    callback = _last_callback(group.calls, as_of)
    return (
        "、".join(when(c.arrived_at, style) for c in group.calls),
        caller_text(first),
        first.caller_name or "",
        first.caller_unit or "",
        str(len(group.calls)),
        "、".join(_int(c.rings) for c in group.calls),
        "、".join(dict.fromkeys(MISSED_KINDS[c.outcome] for c in group.calls)),
        "；".join(dict.fromkeys(c.matter for c in group.calls if c.matter)),
        "；".join(p for p in (_handling(group, callback, as_of), *dict.fromkeys(c.handling for c in group.calls if c.handling)) if p),
        when(callback.called_back_at, style, with_date=True) if callback else "",
        (callback.called_back_by or "") if callback else "",
    )


def _handling(group: MissedGroup, callback: CallRow | None, as_of: datetime) -> str:
    """回拨 status words: a connected callback, the caller getting through, or still open."""
    if not group.open:
        if callback is not None and callback.callback_connected:
            return "已回拨，已接通"
        return "对方再次来电已接听"
    if callback is not None:
        return "已回拨，未接通（未处理）"
    return "未回拨"


def _last_callback(calls: Sequence[CallRow], as_of: datetime) -> CallRow | None:
    called = [c for c in calls if c.called_back_by_then(as_of)]
    return max(called, key=lambda c: c.called_back_at) if called else None  # type: ignore[arg-type, return-value]


def _outbound_section(figures: ShiftFigures, style: Style) -> Section:
    rows = tuple(
        (when(c.arrived_at, style), c.caller or "", c.dialed or "", CALL_OUTCOME.get(c.outcome, c.outcome),
         _duration(c.talk_seconds))
        for c in figures.outbound
    )
    return Section("五、去电", tables=(Table(("时间", "分机", "拨出号码", "结果", "通话时长"), rows),))


def _unknown_section(figures: ShiftFigures, style: Style) -> Section:
    calls = tuple((when(c.arrived_at, style), caller_text(c), _unknown_reason(c, figures, style))
                  for c in figures.unknown)
    gaps = tuple(
        (when(g.lost_at, style, with_date=True), when(g.reconnected_at, style, with_date=True) or "未恢复",
         _duration((g.reconnected_at - g.lost_at).total_seconds()) if g.reconnected_at else "")
        for g in figures.gaps
    )
    return Section(
        "六、结果不明的来电与监听中断",
        ("监听中断期间的来电无法确认是否接听，请核对话机记录。",) if gaps else (),
        tables=(Table(("来电时间", "号码", "说明"), calls, "结果不明的来电"),
                Table(("中断时间", "恢复时间", "时长"), gaps, "监听中断")),
    )


def _unknown_reason(call: CallRow, figures: ShiftFigures, style: Style) -> str:
    gap = gap_of(call, figures.gaps)
    if gap is None:
        return "通话结束情况未记录"
    return f"通话中监听中断（{when(gap.lost_at, style, with_date=True)}），结果不明"


def _fax_section(figures: ShiftFigures, style: Style) -> Section:
    headings = ("登记号", "收文时间", "来文单位", "文号", "标题", "紧急程度", "密级", "页数", "状态")
    rows = tuple(_fax_row(r, style) for r in figures.faxes)
    urgent = frozenset(i for i, r in enumerate(figures.faxes) if r.is_urgent)
    lines = [f"收文 {len(figures.faxes)} 件，其中紧急 {len(figures.urgent_faxes)} 件。"]
    if style.hidden_fields and any(is_classified(r.classification) for r in figures.faxes):
        hidden = "、".join(_FIELD_NAMES[f] for f in sorted(style.hidden_fields))
        lines.append(f"密件不显示{hidden}，请查阅纸质件。")
    tables = [Table(headings, rows, marked=urgent)]
    if figures.set_aside:
        lines.append(f"另有来信 {len(figures.set_aside)} 封未登记（隔离或重复），见下表，原件留存。")
        tables.append(_set_aside_table(figures, style))
    return Section("七、来文（传真）", tuple(lines), tables=tuple(tables))


def _set_aside_table(figures: ShiftFigures, style: Style) -> Table:
    rows = tuple((when(m.received_at, style), terms.SET_ASIDE_KIND.get(m.kind, m.kind), m.mail_from, m.reason or "")
                 for m in figures.set_aside)
    return Table(("收到时间", "类别", "发件人", "原因"), rows, "未登记的来信")


_FIELD_NAMES = {"title": "标题", "issuer": "来文单位", "doc_number": "文号"}
URGENT_MARK = "【紧急】"


def urgency_text(r: ReceiptRow) -> str:
    """An urgent fax is marked in words as well as colour: 【紧急】加急."""
    return f"{URGENT_MARK}{r.urgency or ''}" if r.is_urgent else (r.urgency or "")


def _fax_row(r: ReceiptRow, style: Style) -> tuple[str, ...]:
    secret = is_classified(r.classification)

    def shown(name: str, value: str | None) -> str:
        return HIDDEN if secret and name in style.hidden_fields else (value or "")

    return (
        r.receipt_no, when(r.received_at, style), shown("issuer", r.issuer), shown("doc_number", r.doc_number),
        shown("title", r.title), urgency_text(r), r.classification or "",
        str(r.pages), STATUS.get(r.status, r.status),
    )


def _pages_section(figures: ShiftFigures, style: Style) -> Section:
    lines = [
        (f"紧急来文电话通知 {len(figures.pages)} 次，已确认 {figures.pages_acknowledged} 次，"
         f"10分钟内确认 {figures.deadline_met} 次。")
    ]
    tables = []
    for number, page in enumerate(figures.pages, start=1):
        lines.append(_page_line(number, page, figures.as_of, style))
        rows = tuple(
            (when(a.sent_at or a.planned_at, style), f"{a.role} {a.name}".strip(), a.number,
             ATTEMPT_RESULT.get(a.result, a.result))
            for a in page.attempts
        )
        tables.append(Table(("呼叫时间", "被通知人", "号码", "结果"), rows, f"通知{number}"))
    return Section("八、紧急来文电话通知", tuple(lines), tables=tuple(tables))


def _page_line(number: int, page: PageRow, as_of: datetime, style: Style) -> str:
    acknowledged = (
        f"{page.acknowledged_by or ''} 于 {when(page.acknowledged_at, style)} 确认"
        if page.acknowledged_by_then(as_of) else "未确认"
    )
    if page.stopped_by_then(as_of):
        acknowledged += f"，人工停止（{page.stopped_by} 于 {when(page.closed_at, style)}，原因：{page.stop_reason or '—'}）"
    deadline = {True: "是", False: "否", None: "—"}[page.deadline_met]
    return (f"通知{number}：{'、'.join(page.receipt_nos)}，{when(page.opened_at, style)} 开始，"
            f"{acknowledged}；10分钟内确认：{deadline}")


def _handover_section(figures: ShiftFigures, style: Style) -> Section:
    missed = tuple(
        (when(c.arrived_at, style), caller_text(c), c.caller_name or "", MISSED_KINDS[c.outcome],
         "回拨未接通" if c.called_back_by_then(figures.as_of) else "未回拨")
        for c in figures.missed_open
    )
    faxes = tuple((r.receipt_no, when(r.received_at, style), urgency_text(r), STATUS.get(r.status, r.status))
                  for r in figures.unsigned_faxes)
    urgent = frozenset(i for i, r in enumerate(figures.unsigned_faxes) if r.is_urgent)
    pages = tuple((when(p.opened_at, style), "、".join(p.receipt_nos), PAGE_STATE.get(p.state, p.state)) for p in figures.unacknowledged_pages)
    lines = tuple(
        f"报告 {u.shift_key}（{when(u.made_at, style, with_date=True)} 生成）尚未发出：{u.last_error or u.state}"
        for u in figures.unsent_reports
    )
    lines = lines + _signed_sheet(figures, style)
    quarantined = tuple(m for m in figures.set_aside if m.kind == InboundMailState.QUARANTINED)
    extra = (_set_aside_table(replace(figures, set_aside=quarantined), style),) if quarantined else ()
    return Section("九、交接班事项", lines, tables=(
        Table(("来电时间", "号码", "姓名", "类型", "情况"), missed, "未处理的未接来电"),
        Table(("登记号", "收文时间", "紧急程度", "状态"), faxes, "未签收的来文", marked=urgent),
        Table(("通知时间", "来文", "状态"), pages, "未确认的电话通知"),
        *extra,
    ))


def _signed_sheet(figures: ShiftFigures, style: Style) -> tuple[str, ...]:
    sheet = figures.handover
    if sheet is None:
        return ("交接班单：交班人尚未签字。",)
    incoming = (f"接班人 {sheet.incoming_by}（{when(sheet.incoming_at, style, with_date=True)}）"
                if sheet.incoming_by else "接班人尚未签字")
    lines = [f"交接班单：交班人 {sheet.outgoing_by}（{when(sheet.outgoing_at, style, with_date=True)}），{incoming}。"]
    lines += [f"交班说明：{sheet.notes}"] if sheet.notes else []
    lines += [f"值班日志：{entry}" for entry in sheet.log_entries.splitlines() if entry.strip()]
    lines += [f"移交事项：{item}" for item in sheet.items]
    return tuple(lines)


def _int(value: int | None) -> str:
    return "" if value is None else str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}分{rest:02d}秒"

