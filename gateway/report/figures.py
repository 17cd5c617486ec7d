"""The figures of one shift's report, computed from plain rows (no database, no clock).

Everything the report says is decided here, so the HTML, PDF, spreadsheet and JSON forms
can never disagree. Rows are frozen values read by ``gateway.report.query``; "open"
items are judged as of ``as_of`` (the end of the shift for the morning report), so making
a past shift's report again gives the same handover list.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

from gateway import terms
from storage.states import ReceiptStatus

MISSED_KINDS = terms.MISSED_OUTCOME
"""Inbound outcomes that count as missed, with the words duty staff read."""


@dataclass(frozen=True)
class ShiftInfo:
    key: str
    day: date
    name: str
    label: str
    start: datetime
    end: datetime
    rest_day: bool = False
    day_reason: str | None = None
    """What kind of day it is when not a plain workday: 国庆节, 周末, 调休上班…."""
    calendar_missing: bool = False
    leader: str | None = None
    officers: tuple[str, ...] = ()
    leader_number: str | None = None


@dataclass(frozen=True)
class CallRow:
    direction: str
    caller: str | None
    arrived_at: datetime
    outcome: str
    dialed: str | None = None
    caller_name: str | None = None
    caller_unit: str | None = None
    caller_withheld: bool = False
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    ring_seconds: float | None = None
    rings: int | None = None
    rule_met: bool | None = None
    answered_by: str | None = None
    talk_seconds: float | None = None
    hangup_cause: int | None = None
    called_back_at: datetime | None = None
    called_back_by: str | None = None
    callback_connected: bool | None = None
    closed_at: datetime | None = None
    """When the call that handled this missed call (connected callback, or the caller's
    later answered call) began; None while it is open."""
    linkedid: str | None = None
    note: str | None = None
    matter: str | None = None
    """事由, as the officer entered it in the console."""
    handling: str | None = None
    instruction: str | None = None
    final_party: str | None = None
    transferred_to: str | None = None
    picked_up_by: str | None = None

    @property
    def is_voice_in(self) -> bool:
        """An inbound call to the duty line (fax calls are reported as receipts)."""
        return self.direction == "in" and self.outcome != "fax"

    @property
    def is_missed(self) -> bool:
        return self.is_voice_in and self.outcome in MISSED_KINDS

    def called_back_by_then(self, as_of: datetime) -> bool:
        """A callback was tried (connected or not) by ``as_of``."""
        return self.called_back_at is not None and self.called_back_at <= as_of

    def closed_by_then(self, as_of: datetime) -> bool:
        """The duty room had spoken to the caller by ``as_of``."""
        return self.closed_at is not None and self.closed_at <= as_of


@dataclass(frozen=True)
class GapRow:
    lost_at: datetime
    reconnected_at: datetime | None
    reason: str | None = None


@dataclass(frozen=True)
class ReceiptRow:
    receipt_no: str
    received_at: datetime
    issuer: str | None
    doc_number: str | None
    title: str | None
    urgency: str | None
    classification: str | None
    is_urgent: bool
    pages: int
    status: str
    signed_by: str | None = None
    signed_at: datetime | None = None

    def signed_by_then(self, as_of: datetime) -> bool:
        """Signed for by ``as_of``; a receipt marked signed without a time counts as signed."""
        return self.signed_at <= as_of if self.signed_at is not None else self.status == ReceiptStatus.SIGNED


@dataclass(frozen=True)
class AttemptRow:
    role: str
    name: str
    number: str
    planned_at: datetime
    sent_at: datetime | None
    answered_at: datetime | None
    result: str


@dataclass(frozen=True)
class PageRow:
    opened_at: datetime
    deadline_at: datetime
    receipt_nos: tuple[str, ...]
    state: str
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    deadline_met: bool | None
    attempts: tuple[AttemptRow, ...] = ()
    stopped_by: str | None = None
    """Who stopped the paging from the console (人工停止), at ``closed_at``, for ``stop_reason``."""
    stop_reason: str | None = None
    closed_at: datetime | None = None

    def acknowledged_by_then(self, as_of: datetime) -> bool:
        return self.acknowledged_at is not None and self.acknowledged_at <= as_of

    def stopped_by_then(self, as_of: datetime) -> bool:
        return self.stopped_by is not None and self.closed_at is not None and self.closed_at <= as_of


def gap_of(call: CallRow, gaps: Sequence[GapRow]) -> GapRow | None:
    """The listener gap that left ``call`` unknown: the first one that began after it arrived."""
    during = [g for g in gaps if g.lost_at <= call.arrived_at
              and (g.reconnected_at is None or g.reconnected_at > call.arrived_at)]
    later = sorted((g for g in gaps if g.lost_at > call.arrived_at), key=lambda g: g.lost_at)
    return next(iter(during or later), None)


@dataclass(frozen=True)
class MissedGroup:
    """Missed calls from one number; a withheld number is never grouped with another."""

    caller: str | None
    calls: tuple[CallRow, ...]
    open: bool
    """Some call of the group was not handled by the report's instant."""


@dataclass(frozen=True)
class UnsentReport:
    shift_key: str
    made_at: datetime
    state: str
    last_error: str | None


@dataclass(frozen=True)
class HandoverRow:
    outgoing_by: str | None
    outgoing_at: datetime | None
    incoming_by: str | None
    incoming_at: datetime | None
    notes: str
    log_entries: str
    items: tuple[str, ...]


@dataclass(frozen=True)
class SetAsideRow:
    """Mail the intake accepted but made no receipt of (quarantined, duplicate), and why."""

    received_at: datetime
    kind: str
    """``quarantined`` or ``duplicate``."""
    reason: str | None
    mail_from: str


@dataclass(frozen=True)
class ShiftFigures:
    shift: ShiftInfo
    as_of: datetime
    calls_in: int
    answered: int
    rule_met: int
    late: tuple[CallRow, ...]
    missed: tuple[MissedGroup, ...]
    outbound: tuple[CallRow, ...]
    unknown: tuple[CallRow, ...]
    gaps: tuple[GapRow, ...]
    faxes: tuple[ReceiptRow, ...]
    pages: tuple[PageRow, ...]
    hourly: tuple[tuple[datetime, int, int], ...]
    """(hour start, answered, missed) for every hour the shift covers."""
    rings: tuple[tuple[int, int], ...]
    """(rings before answer, calls) for answered calls whose rings are known."""
    answer_within_rings: int
    unsent_reports: tuple[UnsentReport, ...] = ()
    calls: tuple[CallRow, ...] = field(default=(), repr=False)
    """Every call of the shift, in order: the spreadsheet's rows."""
    handover: HandoverRow | None = None
    """The shift's 交接班 sheet as signed in the console, if it was."""

    covered_from: datetime | None = None
    """Set when the gateway began watching during the shift: the report covers only from then."""

    set_aside: tuple[SetAsideRow, ...] = ()
    """Mail of the shift set aside by the fax intake (listed in the report and handover)."""

    @property
    def handed_on(self) -> tuple[CallRow, ...]:
        """Duty-line calls transferred (to the leader, a colleague) or picked up elsewhere."""
        return tuple(c for c in self.calls if c.is_voice_in and (c.transferred_to or c.picked_up_by))

    @property
    def rule_met_percent(self) -> float | None:
        return None if self.calls_in == 0 else 100.0 * self.rule_met / self.calls_in

    @property
    def missed_calls(self) -> int:
        return sum(len(group.calls) for group in self.missed)

    @property
    def missed_open(self) -> tuple[CallRow, ...]:
        calls = (c for group in self.missed for c in group.calls if not c.closed_by_then(self.as_of))
        return tuple(sorted(calls, key=lambda c: c.arrived_at))

    @property
    def urgent_faxes(self) -> tuple[ReceiptRow, ...]:
        return tuple(receipt for receipt in self.faxes if receipt.is_urgent)

    @property
    def unsigned_faxes(self) -> tuple[ReceiptRow, ...]:
        return tuple(r for r in self.faxes if not r.signed_by_then(self.as_of))

    @property
    def pages_acknowledged(self) -> int:
        return sum(1 for page in self.pages if page.acknowledged_by_then(self.as_of))

    @property
    def unacknowledged_pages(self) -> tuple[PageRow, ...]:
        return tuple(page for page in self.pages
                     if not page.acknowledged_by_then(self.as_of) and not page.stopped_by_then(self.as_of))

    @property
    def deadline_met(self) -> int:
        return sum(1 for page in self.pages if page.deadline_met)


def compute(
    shift: ShiftInfo,
    calls: Iterable[CallRow],
    receipts: Iterable[ReceiptRow],
    pages: Iterable[PageRow],
    gaps: Iterable[GapRow] = (),
    *,
    answer_within_rings: int = 3,
    as_of: datetime | None = None,
    unsent_reports: Sequence[UnsentReport] = (),
    watching_since: datetime | None = None,
    set_aside: Iterable[SetAsideRow] = (),
) -> ShiftFigures:
    """The report's figures; rows outside the shift window are ignored, not trusted."""
    as_of = shift.end if as_of is None else as_of
    mine = tuple(sorted((c for c in calls if _within(shift, c.arrived_at)), key=lambda c: c.arrived_at))
    inbound = [c for c in mine if c.is_voice_in]
    answered = [c for c in inbound if c.outcome == "answered"]
    return ShiftFigures(
        shift=shift,
        as_of=as_of,
        calls_in=len(inbound),
        answered=len(answered),
        rule_met=sum(1 for c in answered if c.rule_met),
        late=tuple(c for c in answered if not c.rule_met),
        missed=group_missed([c for c in inbound if c.is_missed], as_of),
        outbound=tuple(c for c in mine if c.direction == "out"),
        unknown=tuple(c for c in inbound if c.outcome == "unknown"),
        gaps=tuple(sorted((g for g in gaps if _gap_touches(shift, g)), key=lambda g: g.lost_at)),
        faxes=tuple(sorted((r for r in receipts if _within(shift, r.received_at)), key=lambda r: r.received_at)),
        pages=tuple(sorted((p for p in pages if _within(shift, p.opened_at)), key=lambda p: p.opened_at)),
        hourly=hourly(shift, inbound),
        rings=ring_distribution(answered),
        answer_within_rings=answer_within_rings,
        unsent_reports=tuple(unsent_reports),
        calls=mine,
        covered_from=watching_since if watching_since is not None and shift.start < watching_since < shift.end
        else None,
        set_aside=tuple(sorted((m for m in set_aside if _within(shift, m.received_at)),
                               key=lambda m: m.received_at)),
    )


def group_missed(missed: Sequence[CallRow], as_of: datetime) -> tuple[MissedGroup, ...]:
    """One group per calling number, in order of its first missed call.

    A group is open while any of its calls has not been handled by ``as_of``.
    """
    groups: dict[object, list[CallRow]] = {}
    for index, call in enumerate(missed):
        key: object = call.caller if call.caller and not call.caller_withheld else ("withheld", index)
        groups.setdefault(key, []).append(call)
    return tuple(
        MissedGroup(
            caller=members[0].caller,
            calls=tuple(members),
            open=any(not c.closed_by_then(as_of) for c in members),
        )
        for members in groups.values()
    )


def hourly(shift: ShiftInfo, inbound: Sequence[CallRow]) -> tuple[tuple[datetime, int, int], ...]:
    """Answered and missed inbound calls per hour slot from the shift's start."""
    slots = max(1, math.ceil((shift.end - shift.start).total_seconds() / 3600))
    answered = [0] * slots
    missed = [0] * slots
    for call in inbound:
        slot = min(slots - 1, int((call.arrived_at - shift.start).total_seconds() // 3600))
        if call.outcome == "answered":
            answered[slot] += 1
        elif call.is_missed:
            missed[slot] += 1
    return tuple((shift.start + timedelta(hours=i), answered[i], missed[i]) for i in range(slots))


def ring_distribution(answered: Sequence[CallRow]) -> tuple[tuple[int, int], ...]:
    counts = Counter(c.rings for c in answered if c.rings is not None)
    return tuple(sorted(counts.items()))


def _within(shift: ShiftInfo, instant: datetime) -> bool:
    return shift.start <= instant < shift.end


def _gap_touches(shift: ShiftInfo, gap: GapRow) -> bool:
    """A listener gap overlapping the shift leaves its calls unknown."""
    return gap.lost_at < shift.end and (gap.reconnected_at is None or gap.reconnected_at > shift.start)


def summary(figures: ShiftFigures, tz: tzinfo) -> dict[str, object]:
    """The headline numbers (``dutygw report --format json``); times in the duty room's zone."""
    return {
        "shift": figures.shift.key,
        "label": figures.shift.label,
        "start": figures.shift.start.astimezone(tz).isoformat(timespec="seconds"),
        "end": figures.shift.end.astimezone(tz).isoformat(timespec="seconds"),
        "leader": figures.shift.leader,
        "calls_in": figures.calls_in,
        "answered": figures.answered,
        "rule_met": figures.rule_met,
        "rule_met_percent": None if figures.rule_met_percent is None else round(figures.rule_met_percent, 1),
        "late": len(figures.late),
        "missed": figures.missed_calls,
        "missed_numbers": len(figures.missed),
        "missed_open": len(figures.missed_open),
        "outbound": len(figures.outbound),
        "unknown": len(figures.unknown),
        "listener_gaps": len(figures.gaps),
        "faxes": len(figures.faxes),
        "urgent_faxes": len(figures.urgent_faxes),
        "unsigned_faxes": len(figures.unsigned_faxes),
        "pages": len(figures.pages),
        "pages_acknowledged": figures.pages_acknowledged,
        "deadline_met": figures.deadline_met,
        "unsent_reports": [u.shift_key for u in figures.unsent_reports],
    }
