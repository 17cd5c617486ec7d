"""The words duty staff read, in one place: the CLI, the console, the XLSX, the PDF and the
HTML report take them from here, so one thing has one name (withheld is always 号码隐藏, a busy
line always 未接-占线, a filed fax always 待签收), never an internal value or English.
"""

from __future__ import annotations

from collections.abc import Mapping

from ocr.model import Rule
from storage.states import InboundMailState, ReceiptStatus

WITHHELD = "号码隐藏"
"""A caller who withheld the number (or whose number the carrier did not send)."""

AUTO_ANSWERED = "传真机自动应答"
"""``answered_by == "pbx"``: the PBX's ReceiveFAX answered, not a person."""

DIRECTION: Mapping[str, str] = {"in": "来电", "out": "去电"}

MISSED_OUTCOME: Mapping[str, str] = {
    "missed_abandoned": "未接-挂断",
    "missed_no_answer": "未接-超时",
    "missed_busy": "未接-占线",
    "failed": "未接-失败",
}
"""Inbound outcomes that count as missed."""

CALL_OUTCOME: Mapping[str, str] = {
    "answered": "已接", "fax": "传真", "unknown": "结果不明", **MISSED_OUTCOME,
}
IN_PROGRESS = "进行中"

RECEIPT_STATUS: Mapping[str, str] = {
    ReceiptStatus.READING: "识别中", ReceiptStatus.FILED: "待签收",
    ReceiptStatus.NEEDS_REVIEW: "待核对", ReceiptStatus.SIGNED: "已签收",
}
MAIL_STATE: Mapping[str, str] = {
    InboundMailState.SPOOLED: "待登记", InboundMailState.FILED: "已登记",
    InboundMailState.QUARANTINED: "已隔离（未登记）", InboundMailState.DUPLICATE: "重复来文（未登记）",
}
SET_ASIDE_KIND: Mapping[str, str] = {
    InboundMailState.QUARANTINED: "隔离", InboundMailState.DUPLICATE: "重复",
}
"""A mail that made no receipt, in a list of such mails (the register, the report)."""

ATTEMPT_RESULT: Mapping[str, str] = {
    "planned": "待呼叫", "sent": "呼叫中", "answered": "已接听", "acknowledged": "已确认（按1）",
    "not_acknowledged": "接听未确认", "no_answer": "无人接听", "busy": "占线", "failed": "呼叫失败",
    "stopped": "人工停止",
}
PAGE_STATE: Mapping[str, str] = {
    "open": "呼叫中", "acknowledged": "已确认", "exhausted": "全部呼叫未确认", "cancelled": "已取消",
    "stopped": "人工停止",
}

YES_NO: Mapping[bool | None, str] = {True: "是", False: "否", None: ""}


URGENCY_RULE: Mapping[str, str] = {
    Rule.HEADER_MARK: "版头紧急程度标识", Rule.NOT_URGENT_MARK: "标明不紧急", Rule.HEADER_FLAG: "版头紧急字样",
    Rule.TITLE_FLAG: "标题含紧急", Rule.TITLE_OVERRULED: "标题紧急字样不计", Rule.REMARK_FLAG: "附注紧急字样",
    Rule.TICKED_BOX: "表格勾选", Rule.UNTICKED_BOX: "表格未勾选", Rule.UNREADABLE_TICK: "勾选无法辨认",
    Rule.NEAR_MISS: "疑似紧急字样", Rule.UNREADABLE_HEADER: "版头无法识别", Rule.SECOND_READER: "第二识别引擎",
    Rule.CLASSIFICATION: "密级标识", Rule.NEGATED: "否定表述", Rule.IGNORED_BODY: "正文提及（不计）",
    Rule.UNREADABLE_DOCUMENT: "文件无法读取", Rule.ISSUER: "发文机关", Rule.DOC_NUMBER: "文号",
    Rule.DOC_YEAR_FROM_DATES: "由成文日期推定年份",
}
"""Why a fax was (or was not) judged urgent: the rule behind each piece of evidence."""


def word(table: Mapping[str, str], value: str | None, *, default: str = "") -> str:
    """The staff word for ``value``; an unknown internal value is never shown raw."""
    if value is None:
        return default
    return table.get(value, default or "其他")
