"""Reading one shift's rows from the database, bounded by the shift's window.

Every query is limited by an indexed instant (``arrived_at``, ``received_at``,
``opened_at``), so a report costs what its shift holds, not what the history holds.
Rows leave here as the frozen values of ``gateway.report.figures``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased, selectinload

from gateway.config import Config
from gateway.report.figures import (
    AttemptRow,
    CallRow,
    GapRow,
    HandoverRow,
    PageRow,
    ReceiptRow,
    SetAsideRow,
    ShiftFigures,
    ShiftInfo,
    UnsentReport,
    compute,
)
from gateway.shifts.calendar import Shift, shift_by_key
from gateway.shifts.roster import on_duty
from storage.calls import Call, ListenerGap, PhonebookEntry
from storage.console import CallNote
from storage.db import Database
from storage.faxes import Receipt, set_aside_mail
from storage.paging import Escalation, OutboundMail

REPORT_MAIL_KIND = "report"


def shift_figures(db: Database, config: Config, shift_key: str, as_of: datetime | None = None) -> ShiftFigures:
    """The figures of the shift named ``shift_key`` (e.g. ``2026-11-21/night``)."""
    shift = shift_by_key(shift_key, config.calendar, config.zone)
    with db.session() as session:
        figures = compute(
            shift_info(session, shift),
            calls(session, shift.start, shift.end),
            receipts(session, shift.start, shift.end),
            pages(session, shift.start, shift.end),
            gaps(session, shift.start, shift.end),
            answer_within_rings=config.duty.answer_within_rings,
            as_of=as_of,
            unsent_reports=unsent_reports(session, shift.key, shift.end),
            watching_since=watching_since(config),
            set_aside=set_aside(session, shift.start, shift.end),
        )
        return replace(figures, handover=handover_row(session, shift.key))


def handover_row(session: Session, shift_key: str) -> HandoverRow | None:
    """The console's signed 交接班 sheet of the shift (None if the outgoing officer has not signed)."""
    from storage.handover import sheet

    row = sheet(session, shift_key)
    if row is None or row.outgoing_by is None:
        return None
    from storage.console import display_names, person

    names = display_names(session)  # the sheet shows who signed as staff know them (王芳, not wangfang)
    return HandoverRow(person(names, row.outgoing_by), row.outgoing_at,
                       person(names, row.incoming_by) or None, row.incoming_at, row.notes,
                       row.log_entries, tuple(str(i.get("text", "")) for i in row.items))


WATCHING_SINCE_FILE = "watching-since"
"""In the data folder: when this gateway first started watching (ISO 8601), written once."""


def watching_since(config: Config) -> datetime | None:
    """When the gateway first watched the PBX; ``None`` if unknown (then reports cover whole shifts)."""
    try:
        text = (config.paths.data_dir / WATCHING_SINCE_FILE).read_text(encoding="utf-8").strip()
        return datetime.fromisoformat(text)
    except (OSError, ValueError):
        return None


def mark_watching_since(config: Config, now: datetime) -> datetime:
    """Remember the first start (only the first); returns the remembered instant."""
    known = watching_since(config)
    if known is not None:
        return known
    path = config.paths.data_dir / WATCHING_SINCE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(now.isoformat(), encoding="utf-8")
    return now


def shift_info(session: Session, shift: Shift) -> ShiftInfo:
    duty = on_duty(session, shift.duty_date, shift.name)
    return ShiftInfo(
        key=shift.key, day=shift.duty_date, name=shift.name, label=shift.label,
        start=shift.start, end=shift.end, rest_day=shift.rest_day, day_reason=shift.day_reason,
        calendar_missing=shift.data_missing,
        leader=duty.leader if duty else None, officers=duty.officers if duty else (),
        leader_number=duty.leader_number if duty else None,
    )


def calls(session: Session, start: datetime, end: datetime) -> list[CallRow]:
    """Calls that arrived in [start, end): a call belongs to the shift it rang in.

    The phonebook is read again, so a caller added after the call is named too.
    """
    closer = aliased(Call)
    query = (
        select(Call, closer.arrived_at, PhonebookEntry.name, PhonebookEntry.unit, CallNote)
        .outerjoin(closer, Call.closed_by_call_id == closer.id)
        .outerjoin(CallNote, CallNote.call_id == Call.id)
        .outerjoin(PhonebookEntry, (PhonebookEntry.number == Call.caller) & Call.caller_withheld.is_(False))
        .where(Call.arrived_at >= start, Call.arrived_at < end)
        .order_by(Call.arrived_at)
    )
    return [_noted(_call_row(call, closed_at), name, unit, note) for call, closed_at, name, unit, note in session.execute(query)]


def _noted(row: CallRow, name: str | None, unit: str | None, note: CallNote | None) -> CallRow:
    """The phonebook names the caller; what the officer typed in the console wins over both."""
    if name:
        row = replace(row, caller_name=name, caller_unit=unit)
    if note is None:
        return row
    return replace(row, caller_name=note.caller_name or row.caller_name, caller_unit=note.caller_unit or row.caller_unit,
                   matter=note.matter or None, handling=note.handling or None, instruction=note.instruction or None)


def gaps(session: Session, start: datetime, end: datetime) -> list[GapRow]:
    query = select(ListenerGap).where(
        ListenerGap.lost_at < end,
        or_(ListenerGap.reconnected_at.is_(None), ListenerGap.reconnected_at > start),
    )
    return [GapRow(g.lost_at, g.reconnected_at, g.reason) for g in session.scalars(query)]


def receipts(session: Session, start: datetime, end: datetime) -> list[ReceiptRow]:
    query = select(Receipt).where(Receipt.received_at >= start, Receipt.received_at < end)
    return [_receipt_row(r) for r in session.scalars(query.order_by(Receipt.received_at))]


def set_aside(session: Session, start: datetime, end: datetime) -> list[SetAsideRow]:
    """Quarantined and duplicate mail of the shift (``storage.faxes.set_aside_mail``)."""
    return [SetAsideRow(m.received_at, m.state, m.reason, m.mail_from)
            for m in reversed(set_aside_mail(session, since=start, until=end))]


def pages(session: Session, start: datetime, end: datetime) -> list[PageRow]:
    query = (
        select(Escalation)
        .where(Escalation.opened_at >= start, Escalation.opened_at < end)
        .options(selectinload(Escalation.attempts))
        .order_by(Escalation.opened_at)
    )
    escalations = list(session.scalars(query))
    ids = {int(i) for e in escalations for i in e.receipt_ids}
    numbers = _receipt_numbers(session, ids)
    return [_page_row(e, numbers) for e in escalations]


def unsent_reports(session: Session, shift_key: str, before: datetime) -> list[UnsentReport]:
    """Earlier reports whose mail has not gone out yet (the next report says so)."""
    query = select(OutboundMail).where(
        OutboundMail.kind == REPORT_MAIL_KIND,
        OutboundMail.state != "sent",
        OutboundMail.created_at < before,
        OutboundMail.shift_key != shift_key,
    )
    return [
        UnsentReport(m.shift_key or "", m.created_at, m.state, m.last_error)
        for m in session.scalars(query.order_by(OutboundMail.created_at))
    ]


def _receipt_numbers(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    found = session.execute(select(Receipt.id, Receipt.year, Receipt.seq).where(Receipt.id.in_(ids)))
    return {rid: f"传真〔{year}〕{seq:04d}号" for rid, year, seq in found}


def _call_row(call: Call, closed_at: datetime | None) -> CallRow:
    return CallRow(
        direction=call.direction, caller=call.caller, arrived_at=call.arrived_at,  # type: ignore[arg-type]
        outcome=call.outcome or "unknown",
        dialed=call.dialed, caller_name=call.caller_name, caller_unit=call.caller_unit,
        caller_withheld=bool(call.caller_withheld), answered_at=call.answered_at, ended_at=call.ended_at,
        ring_seconds=call.ring_seconds, rings=call.rings, rule_met=call.rule_met,
        answered_by=call.answered_by, talk_seconds=call.talk_seconds, hangup_cause=call.hangup_cause,
        called_back_at=call.called_back_at, called_back_by=call.called_back_by,
        callback_connected=call.callback_connected, closed_at=closed_at, linkedid=call.linkedid,
        note=call.note or ("通话尚未结束" if call.outcome is None else None),
        final_party=call.final_party, transferred_to=call.transferred_to, picked_up_by=call.picked_up_by,
    )


def _receipt_row(r: Receipt) -> ReceiptRow:
    return ReceiptRow(
        receipt_no=r.receipt_no, received_at=r.received_at, issuer=r.issuer, doc_number=r.doc_number,
        title=r.title, urgency=r.urgency, classification=r.classification, is_urgent=r.is_urgent,
        pages=r.pages, status=r.status, signed_by=r.signed_by, signed_at=r.signed_at,
    )


def _page_row(e: Escalation, numbers: dict[int, str]) -> PageRow:
    return PageRow(
        opened_at=e.opened_at, deadline_at=e.deadline_at,
        receipt_nos=tuple(numbers.get(int(i), f"#{i}") for i in e.receipt_ids),
        state=e.state, acknowledged_at=e.acknowledged_at, acknowledged_by=e.acknowledged_by,
        deadline_met=e.deadline_met, attempts=_attempts(e),
        stopped_by=e.stopped_by if e.state == "stopped" else None, stop_reason=e.stop_reason, closed_at=e.closed_at,
    )


def _attempts(e: Escalation) -> tuple[AttemptRow, ...]:
    return tuple(
        AttemptRow(a.role, a.name, a.number, a.planned_at, a.sent_at, a.answered_at, a.result)
        for a in e.attempts
    )

