"""The spot checks' units of work on the database: plans in, due checks out, results stored.

Each function takes a session (the runner hands them to ``db.run``, the CLI calls them in
``db.session()``) and the time, so what they decide is a function of the rows and ``now``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from gateway.config import SpotCheckConfig
from gateway.errors import InputError
from gateway.spotcheck.check import CallResult, Outcome
from gateway.spotcheck.plan import Drawn, Window
from storage.paging import paging_needs_trunk
from storage.spotcheck import SpotAttempt, SpotCheck, SpotNote, SpotPlan, SpotUnit

RETRIED = (Outcome.BUSY, Outcome.UNKNOWN)
"""A busy line (the unit may be on a real call) and a call the gateway lost are tried again."""
POSTPONED_FOR_PAGING = "紧急呼叫占用线路，顺延"


@dataclass(frozen=True)
class Due:
    check_id: int
    number: str
    try_no: int
    """The call's number among the check's calls (a call lost to a restart counts here, not
    in ``SpotCheck.tries``, which counts the tries a busy line is allowed)."""


def units_named(session: Session, names: Sequence[str] = (), groups: Sequence[str] = ()) -> list[SpotUnit]:
    """Active units by name or group; every unit when neither is given."""
    query = select(SpotUnit).where(SpotUnit.active.is_(True)).order_by(SpotUnit.id)
    units = list(session.scalars(query))
    if names or groups:
        units = [u for u in units if u.name in names or u.group_name in groups]
        missing = [n for n in names if n not in {u.name for u in units}]
        missing += [g for g in groups if g not in {u.group_name for u in units}]
        if missing:
            raise InputError(f"没有这些单位或分组：{'、'.join(missing)}", remedy="see 'dutygw spotcheck list --units'")
    if not units:
        raise InputError("no units to check", remedy="import the unit list first: dutygw spotcheck import FILE.csv")
    return units


def create_plan(session: Session, title: str, kind: str, first: date, last: date, windows: Sequence[Window],
                units: Sequence[SpotUnit], drawn: Sequence[Drawn], *, checks_per_unit: int, seed: int,
                spot: SpotCheckConfig, now: datetime) -> SpotPlan:
    plan = SpotPlan(title=title, kind=kind, created_at=now, first_day=first, last_day=last,
                    windows=[[w.start.isoformat(), w.end.isoformat(), w.label] for w in windows],
                    unit_ids=[u.id for u in units], checks_per_unit=checks_per_unit, seed=seed,
                    max_concurrent=spot.max_concurrent, slot_seconds=spot.slot_seconds)
    session.add(plan)
    by_id = {u.id: u for u in units}
    for item in drawn:
        unit = by_id[item.unit_id]
        plan.checks.append(SpotCheck(unit_id=unit.id, unit_name=unit.name, group_name=unit.group_name,
                                     number=unit.number, drawn_at=item.at, due_at=item.at))
    session.flush()
    return plan


def due_checks(session: Session, now: datetime) -> list[Due]:
    rows = session.scalars(select(SpotCheck).where(SpotCheck.state == "planned", SpotCheck.due_at <= now)
                           .order_by(SpotCheck.due_at, SpotCheck.id).options(selectinload(SpotCheck.attempts)))
    return [Due(r.id, r.number, len(r.attempts) + 1) for r in rows]


def trunk_taken_by_paging(session: Session) -> bool:
    return paging_needs_trunk(session)


def postpone(session: Session, check_ids: Sequence[int], until: datetime, reason: str) -> None:
    """Move checks (never drop them): the drawn time stays on record, the move is counted."""
    for check in session.scalars(select(SpotCheck).where(SpotCheck.id.in_(check_ids))):
        check.due_at, check.moves = until, check.moves + 1
        check.move_reason = reason


def start_attempt(session: Session, due: Due, action_id: str, now: datetime) -> None:
    """The try is on record (and the check marked calling) before its Originate leaves."""
    check = session.get_one(SpotCheck, due.check_id)
    check.state, check.tries = "calling", check.tries + 1
    session.add(SpotAttempt(check_id=check.id, try_no=due.try_no, action_id=action_id, sent_at=now))


def record_result(session: Session, result: CallResult, spot: SpotCheckConfig, now: datetime) -> SpotCheck | None:
    """Store one call's result; a busy (or lost) try is retried after the gap while tries remain."""
    attempt = session.scalar(select(SpotAttempt).where(SpotAttempt.action_id == result.action_id))
    if attempt is None or attempt.outcome is not None:
        return None
    _copy(result, attempt)
    attempt.hangup_cause, attempt.time_source, attempt.detail = result.hangup_cause, result.time_source, result.detail
    check = attempt.check
    if result.outcome in RETRIED and check.tries < spot.busy_tries:
        check.state, check.due_at = "planned", now + timedelta(seconds=spot.retry_gap_seconds)
        return check
    _copy(result, check)
    check.rule_met, check.detail = result.rule_met, result.detail
    check.state, check.completed_at = "done", now
    return check


def resume(session: Session, now: datetime) -> int:
    """After a restart: tries sent but never finished are unknown, and their checks planned again."""
    count = 0
    for attempt in session.scalars(select(SpotAttempt).where(SpotAttempt.outcome.is_(None))):
        attempt.outcome, attempt.ended_at = Outcome.UNKNOWN.value, now
        attempt.detail = "网关重启，呼叫结果未知"
        check = attempt.check
        if check.state == "calling":
            check.state, check.due_at = "planned", now
            check.tries = max(check.tries - 1, 0)
        count += 1
    return count


def add_note(session: Session, check_id: int, reviewer: str, text: str, now: datetime) -> SpotNote:
    check = session.get(SpotCheck, check_id)
    if check is None:
        raise InputError(f"no spot check {check_id}")
    if not reviewer.strip() or not text.strip():
        raise InputError("a note needs the reviewer's name (--by) and a text")
    note = SpotNote(check_id=check_id, written_at=now, reviewer=reviewer.strip(), text=text.strip())
    session.add(note)
    return note


def plans_to_report(session: Session, today: date) -> list[int]:
    """Plans whose last day has come, every check done, no 情况通报 yet."""
    plans = session.scalars(select(SpotPlan).where(SpotPlan.kind == "plan", SpotPlan.report_sent_at.is_(None),
                                                   SpotPlan.last_day <= today))
    return [p.id for p in plans if p.checks and all(c.state == "done" for c in p.checks)]


def _copy(result: CallResult, row: SpotAttempt | SpotCheck) -> None:
    row.outcome = result.outcome.value
    row.ringing_at, row.answered_at, row.ended_at = result.ringing_at, result.answered_at, result.ended_at
    row.ring_seconds, row.rings, row.digit, row.recording = (result.ring_seconds, result.rings, result.digit,
                                                             result.recording)
