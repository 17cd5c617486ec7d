"""Spoken pages and e-mails built from the fixture faxes' ground truth; classified faxes leak nothing."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.shifts.config import CalendarConfig
from gateway.shifts.calendar import shift_at
from gateway.paging.notices import (
    NIGHT_DIGEST,
    URGENT_NOTICE,
    MailNotice,
    night_digest_mail,
    spoken_count,
    spoken_page_text,
    spoken_phone,
    spoken_receipt_no,
    urgent_notice_mail,
)
from storage.faxes import Receipt
from tests.conftest import FAX_FIXTURES

TZ = ZoneInfo("Asia/Shanghai")
ROOM: dict[str, Any] = {"room_name": "市政府值班室", "room_phone": "027-87654321"}


def receipt_from_fixture(name: str, seq: int, classification: str | None = "as printed") -> Receipt:
    """A receipt filled in as the register would be, from a fixture fax's ground truth."""
    truth = json.loads((FAX_FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    fields = truth["fields"]
    return Receipt(
        id=seq, year=2026, seq=seq, received_at=datetime(2026, 11, 21, 15, seq % 60, tzinfo=ZoneInfo("UTC")),
        is_urgent=bool(fields["is_urgent"]), possibly_urgent=False, urgency=fields["urgency"],
        classification=fields["classification"] if classification == "as printed" else classification,
        issuer=fields["issuer"], title=fields["title"], doc_number=fields["doc_number"], pages=fields["pages"],
        original_path=str(FAX_FIXTURES / truth["file"]), content_type="image/tiff",
    )


def leaks(receipt: Receipt) -> list[str]:
    """The distinctive strings of a receipt that must never appear in a notice about it."""
    return [s for s in (receipt.title, receipt.issuer, receipt.doc_number, str(receipt.original_path),
                        receipt.urgency) if s]


def mail_text(notice: MailNotice) -> str:
    return "\n".join([notice.subject, notice.body, *(f"{a.path} {a.filename}" for a in notice.attachments)])


@pytest.mark.parametrize(("year", "seq", "spoken"), [
    (2026, 137, "传真二〇二六年第一百三十七号"),
    (2026, 1, "传真二〇二六年第一号"),
    (2026, 12, "传真二〇二六年第十二号"),
    (2027, 1005, "传真二〇二七年第一千零五号"),
])
def test_receipt_numbers_are_spoken_year_by_digit_number_as_said(year: int, seq: int, spoken: str) -> None:
    assert spoken_receipt_no(year, seq) == spoken


@pytest.mark.parametrize(("n", "spoken"), [(1, "一"), (2, "两"), (3, "三"), (10, "十"), (12, "十二"), (20, "二十"), (35, "三十五")])
def test_counts(n: int, spoken: str) -> None:
    assert spoken_count(n) == spoken


def test_phone_numbers_are_spoken_digit_by_digit() -> None:
    assert spoken_phone("027-87654321") == "〇二七，八七六五，四三二幺"
    assert spoken_phone("13800138000") == "幺三八，〇〇幺三，八〇〇〇"


def test_spoken_page_for_one_urgent_fax() -> None:
    telegram = receipt_from_fixture("fax_022", 137)
    text = spoken_page_text([telegram], **ROOM)
    assert text.startswith("这里是市政府值班室。现有一份紧急传真。")
    assert "传真二〇二六年第一百三十七号" in text
    for told in (telegram.issuer, telegram.urgency, telegram.title):
        assert told and told in text
    assert text.endswith("按1确认收到，按2重听。")


def test_spoken_page_announces_how_many_in_order() -> None:
    receipts = [receipt_from_fixture("fax_008", 140), receipt_from_fixture("fax_006", 141),
                receipt_from_fixture("fax_020", 142)]
    text = spoken_page_text(receipts, **ROOM)
    assert "现有三份紧急传真" in text
    positions = [text.index(marker) for marker in ("第一份", "第一百四十号", "第二份", "第一百四十一号", "第三份",
                                                   "第一百四十二号")]
    assert positions == sorted(positions)


def test_possibly_urgent_fax_without_a_mark_is_said_to_be_possibly_urgent() -> None:
    report = receipt_from_fixture("fax_002", 150)
    report.is_urgent, report.possibly_urgent = False, True
    assert "可能为紧急件" in spoken_page_text([report], **ROOM)


@pytest.mark.parametrize(("fixture", "classification"), [
    ("fax_003", "as printed"),  # 机密★1年, 特急, with a 发文字号
    ("fax_021", "as printed"),  # 秘密
    ("fax_022", "绝密"),  # a 特提 telegram marked top secret
])
def test_classified_faxes_leak_nothing(fixture: str, classification: str) -> None:
    secret = receipt_from_fixture(fixture, 138, classification)
    assert secret.classification and leaks(secret)
    open_fax = receipt_from_fixture("fax_008", 139)
    spoken = spoken_page_text([secret, open_fax], **ROOM)
    notice = urgent_notice_mail([secret, open_fax], **ROOM)
    digest = night_digest_mail([secret, open_fax], shift_at(secret.received_at, CalendarConfig(), TZ), **ROOM)
    for text in (spoken, mail_text(notice), mail_text(digest)):
        for secret_text in leaks(secret):
            assert secret_text not in text
        assert "第一百三十八号" in text or "传真〔2026〕0138号" in text
        assert "密级传真" in text
        assert str(open_fax.title) in text  # the open fax beside it is still told in full
    assert "请回电值班室〇二七，八七六五，四三二幺" in spoken
    assert "027-87654321" in notice.body and "027-87654321" in digest.body
    assert [a.path for a in notice.attachments] == [open_fax.original_path]


def test_classified_alone_subject_says_only_what_arrived() -> None:
    secret = receipt_from_fixture("fax_003", 5)
    notice = urgent_notice_mail([secret], **ROOM)
    assert notice.subject == "【紧急传真】传真〔2026〕0005号 密级传真，请与值班室联系"
    assert notice.attachments == ()
    message = ("这里是市政府值班室。现有一份紧急传真。传真二〇二六年第五号，收到一份密级传真，"
               "请回电值班室〇二七，八七六五，四三二幺。")
    assert spoken_page_text([secret], **ROOM) == f"{message}重复一遍。{message}按1确认收到，按2重听。"


def test_urgent_notice_mail_attaches_the_original() -> None:
    urgent = receipt_from_fixture("fax_012", 137)
    notice = urgent_notice_mail([urgent], **ROOM, shift_key="2026-11-21/night")
    assert notice.kind == URGENT_NOTICE and notice.receipt_ids == (137,)
    assert notice.subject == f"【紧急传真】传真〔2026〕0137号 加急 {urgent.title}"
    assert "市政府值班室收到紧急传真1份" in notice.body
    for field in (urgent.issuer, urgent.doc_number, urgent.title, "2026-11-21 23:17"):
        assert field and field in notice.body
    (original,) = notice.attachments
    assert (original.path, original.filename, original.content_type) == (
        urgent.original_path, "传真〔2026〕0137号.tif", "image/tiff")


def test_night_digest_lists_each_fax_of_the_shift() -> None:
    receipts = [receipt_from_fixture(name, seq) for name, seq in (("fax_004", 160), ("fax_010", 161))]
    shift = shift_at(datetime(2026, 11, 21, 23, tzinfo=TZ), CalendarConfig(), TZ)
    digest = night_digest_mail(receipts, shift, **ROOM)
    assert (digest.kind, digest.shift_key, digest.receipt_ids, digest.attachments) == (
        NIGHT_DIGEST, "2026-11-21/night", (160, 161), ())
    assert digest.subject == "【来文摘要】2026年11月21日夜班 共2份"
    assert "11月21日19:00至11月22日08:00" in digest.body
    for receipt in receipts:
        assert receipt.receipt_no in digest.body and str(receipt.title) in digest.body
    empty = night_digest_mail([], shift, **ROOM)
    assert "未收到普通来文" in empty.body
