"""Who hears about a fax, and how: page the leadership, mail the secretariat, or wait for the digest.

Pure: a decision is a function of the receipt's facts, the shift it arrived in and the
paging configuration, and it carries its reasons (in Chinese: duty staff read them).
Coalescing and "never page a receipt twice" are the escalation engine's calls
(``gateway.paging.escalation.route_receipt``); "is it classified" is ``storage.faxes.is_classified``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.config import ChainStep, PagingConfig
from gateway.shifts.calendar import Shift
from gateway.shifts.roster import OnDuty
from storage.faxes import Receipt, is_classified

log = logging.getLogger("dutygw.paging.policy")

ROSTER = "roster"
"""``ChainStep.number`` that means: the leader on duty, from the roster."""
ROOM = "room"
"""``ChainStep.number`` that means: the duty room's own extension."""

@dataclass(frozen=True)
class ReceiptFacts:
    """What the policy needs to know about a receipt, nothing more."""

    receipt_id: int | None
    receipt_no: str
    is_urgent: bool
    possibly_urgent: bool = False
    classified: bool = False

    @classmethod
    def of(cls, receipt: Receipt) -> ReceiptFacts:
        return cls(receipt.id, receipt.receipt_no, bool(receipt.is_urgent),
                   bool(receipt.possibly_urgent), is_classified(receipt.classification))


@dataclass(frozen=True)
class Decision:
    """What to do about one receipt; ``digest_at`` is when the digest carrying it goes out."""

    page: bool
    notify_now: bool
    """Mail the secretariat at once (with the original unless classified)."""
    digest_at: datetime | None
    redact: bool
    shift_key: str
    reasons: tuple[str, ...]

    @property
    def digest(self) -> bool:
        return self.digest_at is not None


@dataclass(frozen=True)
class ChainMember:
    """A person the escalation calls, in order; ``step`` indexes the configured chain."""

    step: int
    role: str
    name: str
    number: str


def decide(receipt: ReceiptFacts, shift: Shift, paging: PagingConfig) -> Decision:
    """Page, mail now, or put in the digest, with the reasons why."""
    reasons = list(_why_urgent(receipt))
    off_hours = _why_off_hours(shift)
    redact = receipt.classified
    if redact:
        reasons.append("密级传真：通知中只说明收到密件、登记号和值班室电话")
    if not (receipt.is_urgent or receipt.possibly_urgent):
        return _ordinary(receipt, shift, off_hours, reasons)
    if off_hours:
        reasons.extend(off_hours)
        if paging.enabled:
            return Decision(True, False, None, redact, shift.key, (*reasons, "立即逐级电话通知"))
        return Decision(False, True, None, redact, shift.key, (*reasons, "电话通知已关闭，改为立即邮件通知秘书科"))
    reasons.append(f"{shift.label}工作时间：立即邮件通知秘书科")
    page = paging.enabled and paging.page_in_day_shift
    if page:
        reasons.append("已配置白班也电话通知")
    return Decision(page, True, None, redact, shift.key, tuple(reasons))


def resolve_chain(
    paging: PagingConfig, on_duty: OnDuty | None, *, room_number: str = ""
) -> list[ChainMember]:
    """The people to call, in order; steps without a number are skipped (and logged)."""
    members = []
    for index, step in enumerate(paging.chain):
        member, gap = _resolve_step(index, step, on_duty, room_number)
        if member is None:
            log.warning("paging chain step %d (%s) skipped: %s", index + 1, step.role, gap)
        else:
            members.append(member)
    return members


def chain_as_json(members: Sequence[ChainMember]) -> list[dict[str, str]]:
    """The shape ``Escalation.chain`` stores."""
    return [{"role": m.role, "name": m.name, "number": m.number} for m in members]


def _why_urgent(receipt: ReceiptFacts) -> list[str]:
    if receipt.is_urgent:
        return ["紧急传真"]
    if receipt.possibly_urgent:
        return ["可能为紧急传真（识别不确定），按紧急处理"]
    return []


def _why_off_hours(shift: Shift) -> list[str]:
    reasons = []
    if shift.night:
        reasons.append(f"{shift.label}（{shift.start:%H:%M}起）")
    if shift.rest_day:
        reasons.append(f"休息日：{shift.day_reason or '周末'}")
    if shift.special_day:
        reasons.append("特殊敏感时间")
    return reasons


def _ordinary(receipt: ReceiptFacts, shift: Shift, off_hours: list[str], reasons: list[str]) -> Decision:
    if off_hours:
        why = (*reasons, "普通传真", *off_hours, f"列入{shift.label}结束时的来文摘要邮件")
        return Decision(False, False, shift.end, receipt.classified, shift.key, why)
    return Decision(False, False, None, receipt.classified, shift.key, (*reasons, "普通传真，工作时间由值班员处理"))


def _resolve_step(index: int, step: ChainStep, on_duty: OnDuty | None,
                  room_number: str) -> tuple[ChainMember | None, str]:
    if step.number == ROSTER:
        if on_duty is None or not on_duty.leader_number:
            return None, "值班表中没有本班带班领导的电话"
        return ChainMember(index, step.role, step.name or on_duty.leader, on_duty.leader_number), ""
    number = room_number if step.number == ROOM else step.number
    if not number:
        return None, "未配置电话号码"
    return ChainMember(index, step.role, step.name, number), ""
