"""The escalation engine's values to and from their rows (``storage/paging.py``).

Here, not next to the models: ``storage`` sits below ``gateway`` and may not import the
engine's value types (``gateway/paging/escalation.py``, which also reads ``[paging]``
config), so the mapping lives on the gateway's side of the line. The pager calls
``load_open`` and ``store`` through ``db.run``, off the event loop.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.paging.escalation import Attempt, Escalation, Person
from storage.db import Database
from storage.paging import Escalation as EscalationRow
from storage.paging import PageAttempt
from storage.states import EscalationState


def load_open(db: Database) -> list[Escalation]:
    """The open escalations, as the engine resumes them after a restart."""
    with db.session() as session:
        rows = session.scalars(select(EscalationRow).where(EscalationRow.state == EscalationState.OPEN)).all()
        return [escalation_value(row) for row in rows]


def store(db: Database, value: Escalation) -> None:
    """Commit the engine's value (before the pager acts on it: a planned attempt is on disk first)."""
    with db.session() as session:
        store_escalation(session, value)


def escalation_value(row: EscalationRow) -> Escalation:
    """The engine's value of a stored escalation."""
    chain = tuple(Person(p.get("role", ""), p.get("name", ""), p.get("number", "")) for p in row.chain or [])
    attempts = tuple(
        Attempt(
            key=a.action_id, step=a.step, round=a.round, try_no=a.try_no, person=Person(a.role, a.name, a.number),
            planned_at=a.planned_at, due_at=a.due_at or a.planned_at, receipt_ids=tuple(a.receipt_ids or ()),
            sent_at=a.sent_at, answered_at=a.answered_at, ended_at=a.ended_at, result=a.result,
            channel=a.channel, detail=a.detail, page_token=a.page_token,
        )
        for a in row.attempts
    )
    return Escalation(
        id=row.id, opened_at=row.opened_at, deadline_at=row.deadline_at, chain=chain,
        receipt_ids=tuple(row.receipt_ids or ()), attempts=attempts, state=row.state, not_before=row.not_before,
        acknowledged_at=row.acknowledged_at, acknowledged_by=row.acknowledged_by,
        acknowledged_number=row.acknowledged_number, deadline_met=row.deadline_met, closed_at=row.closed_at,
        fallback_at=row.fallback_at, stopped_by=row.stopped_by, stop_reason=row.stop_reason,
    )


def store_escalation(session: Session, value: Escalation) -> EscalationRow:
    """Write the engine's value over its row (attempts matched by ActionID)."""
    row = session.get(EscalationRow, value.id)
    if row is None:
        row = EscalationRow(id=value.id)
        session.add(row)
    for name in ("opened_at", "deadline_at", "state", "not_before", "acknowledged_at", "acknowledged_by",
                 "acknowledged_number", "deadline_met", "closed_at", "fallback_at", "stopped_by", "stop_reason"):
        setattr(row, name, getattr(value, name))
    row.receipt_ids = list(value.receipt_ids)
    row.chain = [{"role": p.role, "name": p.name, "number": p.number} for p in value.chain]
    stored = {a.action_id: a for a in row.attempts}
    for attempt in value.attempts:
        target = stored.get(attempt.key)
        if target is None:
            target = PageAttempt(action_id=attempt.key)
            row.attempts.append(target)
        _copy_attempt(attempt, target)
    return row


def _copy_attempt(attempt: Attempt, row: PageAttempt) -> None:
    row.step, row.round, row.try_no = attempt.step, attempt.round, attempt.try_no
    row.role, row.name, row.number = attempt.person.role, attempt.person.name, attempt.person.number
    row.planned_at, row.due_at, row.receipt_ids = attempt.planned_at, attempt.due_at, list(attempt.receipt_ids)
    row.sent_at, row.answered_at, row.ended_at = attempt.sent_at, attempt.answered_at, attempt.ended_at
    row.result, row.channel, row.detail = attempt.result, attempt.channel, attempt.detail
    row.page_token = attempt.page_token
