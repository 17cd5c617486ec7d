"""Queries the console, the CLI and the reports share: one place for each question.

Every list is bounded by an indexed column and a LIMIT, so a page costs what it shows,
not what a year of history holds. Writes that people make (notes, corrections,
signatures) go with their audit entry in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVarTuple

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from storage.calls import Call, PhonebookEntry
from storage.console import (
    AuditEntry,
    CallbackRequest,
    CallNote,
    ReceiptCorrection,
    ReceiptDelivery,
)
from storage.faxes import Receipt
from storage.paging import Escalation, PageAttempt
from storage.spotcheck import SpotAttempt, SpotCheck
from storage.states import ReceiptStatus

_Row = TypeVarTuple("_Row")
"""What a filtered query selects (a call, or a call and its note)."""

MISSED = ("missed_abandoned", "missed_no_answer", "missed_busy")
NOTE_FIELDS = ("caller_name", "caller_unit", "matter", "handling", "instruction")
CORRECTABLE = ("doc_number", "issuer", "title", "urgency", "classification", "recipients", "doc_date", "sender")


@dataclass(frozen=True)
class CallFilter:
    start: datetime | None = None
    end: datetime | None = None
    missed: bool = False
    late: bool = False
    """Answered, but after the ring rule (unanswered-late)."""
    unknown: bool = False
    """Callers the phonebook does not know (or withheld numbers)."""


def call_log(session: Session, where: CallFilter, limit: int = 50, offset: int = 0) -> list[tuple[Call, CallNote | None]]:
    """Calls newest first with the officer's note, one page of them."""
    query = _filtered(select(Call, CallNote).outerjoin(CallNote, CallNote.call_id == Call.id), where)
    query = query.order_by(Call.arrived_at.desc(), Call.id.desc()).limit(limit).offset(offset)
    return [(call, note) for call, note in session.execute(query)]


def _filtered(query: Select[*_Row], where: CallFilter) -> Select[*_Row]:
    if where.start is not None:
        query = query.where(Call.arrived_at >= where.start)
    if where.end is not None:
        query = query.where(Call.arrived_at < where.end)
    if where.missed:
        # coalesce() keeps SQLite on the arrived_at index (newest first, stop at LIMIT) rather
        # than collecting a year of missed calls through the outcome index and sorting them
        query = query.where(Call.direction == "in", func.coalesce(Call.outcome, "").in_(MISSED))
    if where.late:
        query = query.where(Call.outcome == "answered", Call.rule_met.is_(False))
    if where.unknown:
        known = select(PhonebookEntry.id).where(PhonebookEntry.number == Call.caller).exists()
        query = query.where(Call.direction == "in", or_(Call.caller_withheld.is_(True), ~known))
    return query


def recent_calls(session: Session, *, since: datetime | None, missed: bool, limit: int) -> list[Call]:
    """``dutygw calls``: the same rows as the console's call log."""
    return [call for call, _ in call_log(session, CallFilter(start=since, missed=missed), limit=limit)]


def ringing_calls(session: Session, limit: int = 20) -> list[Call]:
    """Calls in flight (ringing or talking) among the newest: the board's top strip."""
    newest = select(Call.id).order_by(Call.id.desc()).limit(limit).subquery()
    query = select(Call).where(Call.id.in_(select(newest.c.id)), Call.complete.is_(False))
    return list(session.scalars(query.order_by(Call.arrived_at.desc())))


def change_mark(session: Session) -> tuple[Any, ...]:
    """A cheap fingerprint of what a page shows: it changes with every AMI write, filed fax,
    page attempt or console edit. Only primary-key reads of the newest rows."""
    calls = session.execute(
        select(Call.id, Call.outcome, Call.answered_at, Call.complete, Call.called_back_at, Call.closed_by_call_id)
        .order_by(Call.id.desc()).limit(20)).all()
    receipts = session.execute(select(Receipt.id, Receipt.status).order_by(Receipt.id.desc()).limit(10)).all()
    pages = session.execute(select(Escalation.id, Escalation.state).order_by(Escalation.id.desc()).limit(5)).all()
    attempt = session.execute(select(PageAttempt.id, PageAttempt.result).order_by(PageAttempt.id.desc()).limit(1)).all()
    audit = session.scalar(select(func.max(AuditEntry.id)))
    return (tuple(calls), tuple(receipts), tuple(pages), tuple(attempt), audit, _spot_mark(session))


def _spot_mark(session: Session) -> tuple[Any, ...]:
    """Spot checks: a new check, a call placed, a call's result (each finished check ends one)."""
    tries = session.execute(select(SpotAttempt.id, SpotAttempt.outcome).order_by(SpotAttempt.id.desc()).limit(5))
    return (session.scalar(select(func.max(SpotCheck.id))), tuple(tries.all()))


@dataclass(frozen=True)
class OpenItems:
    missed: list[tuple[Call, CallNote | None]]
    unsigned: list[Receipt]
    pages: list[Escalation]


def open_items(session: Session, now: datetime, window: timedelta = timedelta(days=3)) -> OpenItems:
    """Missed calls not yet handled, receipts not signed, pages not acknowledged (recent ones)."""
    since = now - window
    missed = session.execute(
        select(Call, CallNote).outerjoin(CallNote, CallNote.call_id == Call.id)
        .where(Call.arrived_at >= since, Call.direction == "in", Call.outcome.in_(MISSED),
               Call.closed_by_call_id.is_(None))
        .order_by(Call.arrived_at.desc()).limit(100)).all()
    unsigned = session.scalars(
        select(Receipt).where(Receipt.received_at >= since, Receipt.status != ReceiptStatus.SIGNED)
        .order_by(Receipt.received_at.desc()).limit(100))
    pages = session.scalars(
        select(Escalation).where(Escalation.opened_at >= since,
                                 Escalation.state.not_in(("acknowledged", "stopped")))  # 人工停止: decided
        .order_by(Escalation.opened_at.desc()).limit(20))
    return OpenItems([(c, n) for c, n in missed], list(unsigned), list(pages))


def audit(session: Session, at: datetime, actor: str, action: str, target: str,
          old: dict[str, Any] | None = None, new: dict[str, Any] | None = None, address: str = "") -> None:
    session.add(AuditEntry(at=at, actor=actor, action=action, target=target, old=old or {}, new=new or {},
                           address=address))


def save_call_note(session: Session, call_id: int, values: dict[str, str], actor: str, at: datetime,
                   address: str = "") -> dict[str, str]:
    """Store the officer's fields of a call; returns the fields that changed (audited old → new)."""
    if session.get(Call, call_id) is None:
        raise LookupError(f"no call {call_id}")
    note = session.scalar(select(CallNote).where(CallNote.call_id == call_id))
    if note is None:
        note = CallNote(call_id=call_id, updated_by=actor, updated_at=at, **{f: "" for f in NOTE_FIELDS})
        session.add(note)
    old = {f: getattr(note, f) for f in NOTE_FIELDS if f in values and getattr(note, f) != values[f]}
    new = {f: values[f] for f in old}
    if not new:
        return {}
    for name, value in new.items():
        setattr(note, name, value)
    note.updated_by, note.updated_at = actor, at
    audit(session, at, actor, "call.note", f"call:{call_id}", old, new, address)
    return new


def learn_contact(session: Session, number: str, name: str, unit: str, actor: str, at: datetime,
                  address: str = "") -> None:
    """The officer agreed to put what they typed into the phonebook."""
    entry = session.scalar(select(PhonebookEntry).where(PhonebookEntry.number == number))
    old = {"name": entry.name, "unit": entry.unit} if entry is not None else {}
    if entry is None:
        session.add(PhonebookEntry(number=number, name=name, unit=unit or None))
    else:
        entry.name, entry.unit = name, unit or None
    audit(session, at, actor, "phonebook.learn", f"number:{number}", old, {"name": name, "unit": unit}, address)


def call_notes(session: Session, call_ids: Sequence[int]) -> dict[int, CallNote]:
    if not call_ids:
        return {}
    return {n.call_id: n for n in session.scalars(select(CallNote).where(CallNote.call_id.in_(call_ids)))}


def callbacks_of(session: Session, call_id: int) -> list[CallbackRequest]:
    return list(session.scalars(select(CallbackRequest).where(CallbackRequest.call_id == call_id)
                                .order_by(CallbackRequest.id)))


def call_history(session: Session, call_id: int) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(AuditEntry.target == f"call:{call_id}")
                                .order_by(AuditEntry.id)))


def receipt_register(session: Session, start: datetime | None = None, end: datetime | None = None,
                     unsigned: bool = False, limit: int = 50, offset: int = 0) -> list[Receipt]:
    query = select(Receipt)
    if start is not None:
        query = query.where(Receipt.received_at >= start)
    if end is not None:
        query = query.where(Receipt.received_at < end)
    if unsigned:
        query = query.where(Receipt.status != ReceiptStatus.SIGNED)
    query = query.order_by(Receipt.received_at.desc(), Receipt.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(query))


def corrections(session: Session, receipt_ids: Sequence[int]) -> dict[int, dict[str, ReceiptCorrection]]:
    """The newest correction of each field, per receipt."""
    out: dict[int, dict[str, ReceiptCorrection]] = {}
    if not receipt_ids:
        return out
    query = select(ReceiptCorrection).where(ReceiptCorrection.receipt_id.in_(receipt_ids)).order_by(ReceiptCorrection.id)
    for row in session.scalars(query):
        out.setdefault(row.receipt_id, {})[row.field] = row
    return out


def effective(receipt: Receipt, fixes: dict[str, ReceiptCorrection], name: str) -> Any:
    """A field as the register reads now: the officer's correction, else the machine's reading."""
    return fixes[name].value if name in fixes else getattr(receipt, name)


def correct_receipt(session: Session, receipt_id: int, name: str, value: str, actor: str, at: datetime,
                    address: str = "") -> bool:
    """Keep an officer's reading of ``name`` beside the machine's; False when nothing changed."""
    if name not in CORRECTABLE:
        raise ValueError(f"field {name!r} cannot be corrected")
    receipt = session.get(Receipt, receipt_id)
    if receipt is None:
        raise LookupError(f"no receipt {receipt_id}")
    current = effective(receipt, corrections(session, [receipt_id]).get(receipt_id, {}), name)
    if (current or "") == value:
        return False
    session.add(ReceiptCorrection(receipt_id=receipt_id, field=name, machine_value=getattr(receipt, name),
                                  value=value, corrected_by=actor, corrected_at=at))
    audit(session, at, actor, "receipt.correct", f"receipt:{receipt_id}", {name: current}, {name: value}, address)
    return True


def sign_receipt(session: Session, receipt_id: int, actor: str, at: datetime, address: str = "") -> bool:
    """签收, by the console and the CLI alike; False when it was already signed (the first
    signature stands). A fax may be signed while its later pages are still being read: the
    officer has page 1 in hand, and filing keeps the signature."""
    receipt = session.get(Receipt, receipt_id)
    if receipt is None:
        raise LookupError(f"no receipt {receipt_id}")
    if not actor.strip():
        raise ValueError("a signature names who signs")
    if receipt.status == ReceiptStatus.SIGNED:
        return False
    old = {"status": receipt.status}
    receipt.status, receipt.signed_by, receipt.signed_at = ReceiptStatus.SIGNED, actor.strip(), at
    audit(session, at, actor.strip(), "receipt.sign", f"receipt:{receipt_id}", old,
          {"status": ReceiptStatus.SIGNED}, address)
    return True


def deliver_receipt(session: Session, receipt_id: int, recipient: str, actor: str, at: datetime,
                    address: str = "") -> None:
    """分送: record to whom the receipt was passed on."""
    if session.get(Receipt, receipt_id) is None:
        raise LookupError(f"no receipt {receipt_id}")
    session.add(ReceiptDelivery(receipt_id=receipt_id, recipient=recipient, delivered_by=actor, delivered_at=at))
    audit(session, at, actor, "receipt.deliver", f"receipt:{receipt_id}", {}, {"recipient": recipient}, address)


def deliveries(session: Session, receipt_id: int) -> list[ReceiptDelivery]:
    return list(session.scalars(select(ReceiptDelivery).where(ReceiptDelivery.receipt_id == receipt_id)
                                .order_by(ReceiptDelivery.id)))
