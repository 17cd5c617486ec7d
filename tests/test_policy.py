"""The paging policy as tables: kind of fax × kind of shift × classified, and the chain."""

from __future__ import annotations

import dataclasses
import logging
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.config import ChainStep, PagingConfig
from gateway.shifts.config import CalendarConfig
from gateway.shifts.calendar import shift_at
from gateway.paging.policy import ChainMember, ReceiptFacts, decide, resolve_chain
from gateway.shifts.roster import OnDuty
from storage.faxes import Receipt, is_classified

TZ = ZoneInfo("Asia/Shanghai")
CALENDAR = CalendarConfig(special_days=["2026-11-25"])
PAGING = PagingConfig()
SHIFTS = {
    "workday day": "2026-11-23T10:00",  # Monday
    "workday night": "2026-11-23T23:00",
    "weekend day": "2026-11-21T10:00",  # Saturday
    "holiday day": "2026-10-01T10:00",  # National Day
    "调休 Saturday": "2026-10-10T10:00",  # a Saturday worked
    "special day": "2026-11-25T10:00",  # a configured 特殊敏感时间 (a Wednesday)
}
KINDS = {
    "urgent": {"is_urgent": True},
    "possibly urgent": {"is_urgent": False, "possibly_urgent": True},
    "ordinary": {"is_urgent": False},
}
PAGE, MAIL, DIGEST, NOTHING = "page", "mail now", "digest", "nothing"
EXPECTED = {
    ("urgent", "workday day"): MAIL,
    ("urgent", "workday night"): PAGE,
    ("urgent", "weekend day"): PAGE,
    ("urgent", "holiday day"): PAGE,
    ("urgent", "调休 Saturday"): MAIL,
    ("urgent", "special day"): PAGE,
    ("possibly urgent", "workday day"): MAIL,
    ("possibly urgent", "workday night"): PAGE,
    ("possibly urgent", "weekend day"): PAGE,
    ("possibly urgent", "holiday day"): PAGE,
    ("possibly urgent", "调休 Saturday"): MAIL,
    ("possibly urgent", "special day"): PAGE,
    ("ordinary", "workday day"): NOTHING,
    ("ordinary", "workday night"): DIGEST,
    ("ordinary", "weekend day"): DIGEST,
    ("ordinary", "holiday day"): DIGEST,
    ("ordinary", "调休 Saturday"): NOTHING,
    ("ordinary", "special day"): DIGEST,
}


def outcome(page: bool, mail: bool, digest: bool) -> str:
    assert [page, mail, digest].count(True) <= 1
    return PAGE if page else MAIL if mail else DIGEST if digest else NOTHING


@pytest.mark.parametrize("classified", [False, True], ids=["open", "classified"])
@pytest.mark.parametrize(("kind", "shift_name"), list(EXPECTED))
def test_decision_table(kind: str, shift_name: str, classified: bool) -> None:
    facts = ReceiptFacts(7, "传真〔2026〕0007号", classified=classified, **KINDS[kind])  # type: ignore[arg-type]
    shift = shift_at(datetime.fromisoformat(SHIFTS[shift_name]).replace(tzinfo=TZ), CALENDAR, TZ)
    decision = decide(facts, shift, PAGING)
    assert outcome(decision.page, decision.notify_now, decision.digest) == EXPECTED[(kind, shift_name)]
    assert decision.redact is classified
    assert decision.shift_key == shift.key
    assert decision.reasons, "every decision says why"
    if decision.digest:
        assert decision.digest_at == shift.end
    if classified:
        assert any("密级" in reason for reason in decision.reasons)
    if kind == "possibly urgent":
        assert any("可能" in reason for reason in decision.reasons)


def test_day_shift_pages_when_configured_and_disabled_paging_mails_instead() -> None:
    urgent = ReceiptFacts(1, "传真〔2026〕0001号", is_urgent=True)
    day = shift_at(datetime(2026, 11, 23, 10, tzinfo=TZ), CALENDAR, TZ)
    night = shift_at(datetime(2026, 11, 23, 23, tzinfo=TZ), CALENDAR, TZ)
    both = decide(urgent, day, dataclasses.replace(PAGING, page_in_day_shift=True))
    assert (both.page, both.notify_now) == (True, True)
    off = decide(urgent, night, dataclasses.replace(PAGING, enabled=False))
    assert (off.page, off.notify_now) == (False, True)
    assert "电话通知已关闭" in off.reasons[-1]


@pytest.mark.parametrize(("mark", "classified"), [
    ("秘密", True), ("机密", True), ("绝密", True), ("机密★1年", True), ("内部", True),
    (None, False), ("", False), ("非密", False), ("公开", False), ("无", False), (" 非密 ", False),
])
def test_what_counts_as_classified(mark: str | None, classified: bool) -> None:
    """One rule at both places that used to differ: the receipt (the console's gate) and the policy."""
    receipt = Receipt(id=7, year=2026, seq=7, is_urgent=True, classification=mark)
    assert is_classified(mark) is classified
    assert receipt.is_classified is classified  # used to say True for 非密, 公开 and 无
    assert ReceiptFacts.of(receipt).classified is classified
    assert decide(ReceiptFacts.of(receipt), shift_at(datetime(2026, 11, 21, 23, 0, tzinfo=TZ), CALENDAR, TZ),
                  PAGING).redact is classified


def test_receipt_facts_from_a_receipt() -> None:
    receipt = Receipt(id=42, year=2026, seq=137, is_urgent=False, possibly_urgent=True, classification="机密")
    assert ReceiptFacts.of(receipt) == ReceiptFacts(42, "传真〔2026〕0137号", False, True, True)


LEADER = OnDuty(date(2026, 11, 21), "night", "张伟", "13800138000")
CHAIN = PagingConfig(chain=[
    ChainStep("带班领导", number="roster"),
    ChainStep("办公室分管主任", "李强", "13900001111"),
    ChainStep("办公室主任", "王芳"),
    ChainStep("值班室", number="room"),
])


@pytest.mark.parametrize(("on_duty", "room", "expected", "gaps"), [
    (LEADER, "8001",
     [ChainMember(0, "带班领导", "张伟", "13800138000"), ChainMember(1, "办公室分管主任", "李强", "13900001111"),
      ChainMember(3, "值班室", "", "8001")],
     ["办公室主任：未配置电话号码"]),
    (None, "",
     [ChainMember(1, "办公室分管主任", "李强", "13900001111")],
     ["带班领导：值班表中没有本班带班领导的电话", "办公室主任：未配置电话号码", "值班室：未配置电话号码"]),
    (dataclasses.replace(LEADER, leader_number=""), "8001",
     [ChainMember(1, "办公室分管主任", "李强", "13900001111"), ChainMember(3, "值班室", "", "8001")],
     ["带班领导：值班表中没有本班带班领导的电话", "办公室主任：未配置电话号码"]),
])
def test_resolve_chain(on_duty: OnDuty | None, room: str, expected: list[ChainMember], gaps: list[str],
                       caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="dutygw.paging.policy"):
        assert resolve_chain(CHAIN, on_duty, room_number=room) == expected
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert [m.partition(" (")[2].replace(") skipped: ", "：") for m in skipped] == gaps
