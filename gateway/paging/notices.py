"""What the phone says and what the secretariat reads about urgent and overnight faxes.

Pure, in Simplified Chinese. A classified fax (秘密/机密/绝密) must leak nothing, so the
builders never format a receipt directly: each receipt first passes through
``notice_item``, the one place that decides what may be told, and a classified receipt
comes out of it with nothing but its receipt number and arrival time. No formatter below
can reach a title, an issuer or the original image of a classified fax.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import PurePath
from zoneinfo import ZoneInfo

from gateway.clock import SHANGHAI
from gateway.outbox import Attachment, MailNotice
from gateway.paging import spoken
from gateway.shifts.calendar import Shift
from storage.faxes import Receipt, is_classified

URGENT_NOTICE = "urgent_notice"
NIGHT_DIGEST = "night_digest"


@dataclass(frozen=True)
class NoticeItem:
    """What may be told about one receipt; for a classified fax the content fields are empty."""

    receipt_id: int | None
    receipt_no: str
    spoken_no: str
    received_at: datetime
    classified: bool
    possibly_urgent: bool
    urgency: str | None = None
    issuer: str | None = None
    title: str | None = None
    doc_number: str | None = None
    pages: int | None = None
    original: Attachment | None = None


def notice_item(receipt: Receipt) -> NoticeItem:
    """The single gate between a receipt and any notice: classified content stops here."""
    told = NoticeItem(
        receipt.id, receipt.receipt_no, spoken_receipt_no(receipt.year, receipt.seq),
        receipt.received_at, classified=is_classified(receipt.classification),
        possibly_urgent=bool(receipt.possibly_urgent and not receipt.is_urgent),
    )
    if told.classified:
        return told
    return replace(
        told, urgency=receipt.urgency, issuer=receipt.issuer, title=receipt.title,
        doc_number=receipt.doc_number, pages=receipt.pages, original=_original(receipt),
    )


def spoken_page_text(receipts: Sequence[Receipt], *, room_name: str, room_phone: str) -> str:
    """The message played when a leader answers the page; ends with the keys to press."""
    items = [notice_item(r) for r in receipts]
    parts = [f"这里是{room_name}。现有{spoken_count(len(items))}份紧急传真。"]
    for number, item in enumerate(items, start=1):
        lead = f"第{spoken_number(number)}份，" if len(items) > 1 else ""
        parts.append(lead + _spoken_item(item, room_phone))
    return spoken.twice("".join(parts)) + "按1确认收到，按2重听。"


def urgent_notice_mail(receipts: Sequence[Receipt], *, room_name: str, room_phone: str,
                       tz: ZoneInfo = SHANGHAI, shift_key: str | None = None) -> MailNotice:
    """The immediate mail to the secretariat; originals attached except for classified faxes."""
    items = [notice_item(r) for r in receipts]
    subject = f"【紧急传真】{_subject_list(items)}"
    body = "\n".join([
        "秘书科：", "",
        f"{room_name}收到紧急传真{len(items)}份，请及时处理。", "",
        *(_mail_entry(n, item, room_phone, tz) for n, item in enumerate(items, start=1)),
        _footer(room_name, room_phone),
    ])
    attachments = tuple(item.original for item in items if item.original is not None)
    return MailNotice(URGENT_NOTICE, subject, body, attachments, _ids(items), shift_key)


def night_digest_mail(receipts: Sequence[Receipt], shift: Shift, *, room_name: str,
                      room_phone: str, tz: ZoneInfo = SHANGHAI) -> MailNotice:
    """The digest of ordinary faxes received in an off-hours shift, sent when it ends."""
    items = [notice_item(r) for r in receipts]
    span = f"{shift.start.astimezone(tz):%m月%d日%H:%M}至{shift.end.astimezone(tz):%m月%d日%H:%M}"
    subject = f"【来文摘要】{shift.duty_date:%Y年%m月%d日}{shift.label} 共{len(items)}份"
    intro = f"{shift.label}（{span}）{room_name}共收到普通来文{len(items)}份，摘要如下（原件在值班室登记备查）："
    body = "\n".join([
        "秘书科：", "", intro if items else f"{shift.label}（{span}）{room_name}未收到普通来文。", "",
        *(_mail_entry(n, item, room_phone, tz) for n, item in enumerate(items, start=1)),
        _footer(room_name, room_phone),
    ])
    return MailNotice(NIGHT_DIGEST, subject, body, (), _ids(items), shift.key)


def spoken_receipt_no(year: int, seq: int) -> str:
    """传真〔2026〕0137号 as said aloud: 传真二〇二六年第一百三十七号."""
    return spoken.receipt_no(year, seq)


def spoken_phone(number: str) -> str:
    """027-87654321 → 〇二七，八七六五，四三二幺: digit by digit, 1 as 幺, in groups."""
    return spoken.phone(number)


def spoken_count(n: int) -> str:
    """A count as said before a measure word: 两份, 十二份."""
    return spoken.count(n)


def spoken_number(n: int) -> str:
    """A number as said in an ordinal or alone: 二, 十二, 一百三十五."""
    return spoken.number(n)


def _spoken_item(item: NoticeItem, room_phone: str) -> str:
    if item.classified:
        return f"{item.spoken_no}，收到一份密级传真，请回电值班室{spoken_phone(room_phone)}。"
    urgency = item.urgency or ("可能为紧急件" if item.possibly_urgent else "紧急")
    issuer = f"{item.issuer}来文" if item.issuer else "来文单位未识别"
    number = f"文号：{item.doc_number}，" if item.doc_number else ""
    title = f"标题：{item.title}" if item.title else "标题未识别"
    return f"{item.spoken_no}，{issuer}，{urgency}，{number}{title}。"


def _mail_entry(number: int, item: NoticeItem, room_phone: str, tz: ZoneInfo) -> str:
    received = f"{item.received_at.astimezone(tz):%Y-%m-%d %H:%M}"
    if item.classified:
        return (f"{number}. {item.receipt_no}  收到时间：{received}\n"
                f"   收到一份密级传真，内容不通过邮件传送，请与值班室联系：{room_phone}\n")
    lines = [f"{number}. {item.receipt_no}  {item.urgency or ('可能紧急' if item.possibly_urgent else '')}".rstrip()]
    lines += [f"   来文单位：{item.issuer or '（未识别）'}", f"   文号：{item.doc_number or '（无）'}",
              f"   标题：{item.title or '（未识别）'}", f"   页数：{item.pages or '?'}页",
              f"   收到时间：{received}"]
    if item.original is not None:
        lines.append(f"   原件：附件 {item.original.filename}")
    return "\n".join(lines) + "\n"


def _subject_list(items: Sequence[NoticeItem]) -> str:
    if len(items) == 1:
        item = items[0]
        if item.classified:
            return f"{item.receipt_no} 密级传真，请与值班室联系"
        return f"{item.receipt_no} {item.urgency or ''} {item.title or ''}".replace("  ", " ").strip()
    return f"{len(items)}份：" + "、".join(item.receipt_no for item in items)


def _footer(room_name: str, room_phone: str) -> str:
    return f"—— {room_name}值班系统自动发送。值班室电话：{room_phone}"


def _original(receipt: Receipt) -> Attachment | None:
    if not receipt.original_path:
        return None
    suffix = PurePath(receipt.original_path).suffix.lower()
    kind = receipt.content_type or mimetypes.guess_type(receipt.original_path)[0] or "application/octet-stream"
    return Attachment(receipt.original_path, f"{receipt.receipt_no}{suffix}", kind)


def _ids(items: Sequence[NoticeItem]) -> tuple[int, ...]:
    return tuple(item.receipt_id for item in items if item.receipt_id is not None)
