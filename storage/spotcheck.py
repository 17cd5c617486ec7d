"""Spot checks of the subordinate units' duty lines (值班抽查): units, plans, checks, tries, notes.

A finished check is a record the regulations rely on: once a check or a try has ended it
cannot be changed or deleted (``RecordLocked``); a reviewer adds a note instead, which is
a row of its own and itself never edited. The guard is an ORM flush hook, so every
writer through the models meets it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    event,
    func,
    inspect,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, selectinload

from gateway.errors import GatewayError
from storage.base import Base, UTCDateTime


class RecordLocked(GatewayError):
    """Somebody tried to change a finished spot-check record."""

    remedy = "a finished check cannot be changed; add a reviewer's note with 'dutygw spotcheck note'"


class SpotUnit(Base):
    """A subordinate unit and its published duty number."""

    __tablename__ = "spot_units"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    group_name: Mapped[str] = mapped_column(String(100), default="", index=True)
    number: Mapped[str] = mapped_column(String(50))
    contact: Mapped[str] = mapped_column(String(100), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    source: Mapped[str] = mapped_column(String(300), default="")
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SpotPlan(Base):
    """A plan: which units, which windows, how many checks each, and the seed the times came from."""

    __tablename__ = "spot_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10), default="plan")
    """plan (drawn at random) | now (run at once)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    windows: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """[[start ISO, end ISO, label]] in UTC: the spans the times were drawn in."""
    unit_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    checks_per_unit: Mapped[int] = mapped_column(Integer, default=1)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    max_concurrent: Mapped[int] = mapped_column(Integer, default=1)
    slot_seconds: Mapped[float] = mapped_column(Float, default=120.0)
    report_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    checks: Mapped[list[SpotCheck]] = relationship(back_populates="plan", order_by="SpotCheck.id")


class SpotCheck(Base):
    """One check of one unit: its drawn time, where it was moved, its tries and result."""

    __tablename__ = "spot_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("spot_plans.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("spot_units.id"), index=True)
    unit_name: Mapped[str] = mapped_column(String(200))
    group_name: Mapped[str] = mapped_column(String(100), default="")
    number: Mapped[str] = mapped_column(String(50))
    """The number as it was dialled (a later import does not rewrite history)."""
    drawn_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    """The time the draw gave; kept even when the check is moved."""
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    moves: Mapped[int] = mapped_column(Integer, default=0)
    move_reason: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(12), default="planned", index=True)
    """planned → calling → done."""
    outcome: Mapped[str | None] = mapped_column(String(20))
    tries: Mapped[int] = mapped_column(Integer, default=0)
    ringing_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ring_seconds: Mapped[float | None] = mapped_column(Float)
    rings: Mapped[int | None] = mapped_column(Integer)
    rule_met: Mapped[bool | None] = mapped_column(Boolean)
    digit: Mapped[str | None] = mapped_column(String(10))
    recording: Mapped[str | None] = mapped_column(String(300))
    detail: Mapped[str | None] = mapped_column(Text)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    plan: Mapped[SpotPlan] = relationship(back_populates="checks")
    attempts: Mapped[list[SpotAttempt]] = relationship(back_populates="check", order_by="SpotAttempt.id")
    notes: Mapped[list[SpotNote]] = relationship(back_populates="check", order_by="SpotNote.id")


class SpotAttempt(Base):
    """One call of a check (a busy number is tried again after a gap)."""

    __tablename__ = "spot_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    check_id: Mapped[int] = mapped_column(ForeignKey("spot_checks.id"), index=True)
    try_no: Mapped[int] = mapped_column(Integer)
    action_id: Mapped[str] = mapped_column(String(80), unique=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ringing_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ring_seconds: Mapped[float | None] = mapped_column(Float)
    rings: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str | None] = mapped_column(String(20))
    """None while the call is in flight."""
    hangup_cause: Mapped[int | None] = mapped_column(Integer)
    digit: Mapped[str | None] = mapped_column(String(10))
    recording: Mapped[str | None] = mapped_column(String(300))
    time_source: Mapped[str] = mapped_column(String(10), default="pbx")
    detail: Mapped[str | None] = mapped_column(Text)

    check: Mapped[SpotCheck] = relationship(back_populates="attempts")


class SpotNote(Base):
    """A reviewer's note on a check: added, never edited."""

    __tablename__ = "spot_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    check_id: Mapped[int] = mapped_column(ForeignKey("spot_checks.id"), index=True)
    written_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reviewer: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)

    check: Mapped[SpotCheck] = relationship(back_populates="notes")


_LOCK_COLUMN = {"SpotCheck": "state", "SpotAttempt": "outcome"}
"""Per model: the column that says whether it is finished."""


@event.listens_for(Session, "before_flush")
def _guard_finished_records(session: Session, _context: object, _instances: object) -> None:
    """A finished check, a finished try and a note are written once and never changed."""
    for row in session.deleted:
        if isinstance(row, (SpotCheck, SpotAttempt, SpotNote)):
            raise RecordLocked(f"spot-check record {type(row).__name__} {row.id} cannot be deleted")
    for row in session.dirty:
        if isinstance(row, (SpotCheck, SpotAttempt, SpotNote)) and _was_finished(row) \
                and session.is_modified(row, include_collections=False):
            raise RecordLocked(f"spot-check record {type(row).__name__} {row.id} is finished")
        if isinstance(row, SpotCheck) and _changed(row, _DRAWN):
            raise RecordLocked(f"spot check {row.id}: what was drawn (unit, number, time) is never changed")


_DRAWN = ("plan_id", "unit_id", "unit_name", "number", "drawn_at")
"""What the draw decided: kept as drawn so the plan can be audited against its seed."""


def _changed(row: SpotCheck, columns: tuple[str, ...]) -> bool:
    attrs = inspect(row).attrs  # type: ignore[attr-defined]
    return any(attrs[c].history.deleted for c in columns)


def _was_finished(row: SpotCheck | SpotAttempt | SpotNote) -> bool:
    """Whether the row was already finished as it was loaded, before this change."""
    if isinstance(row, SpotNote):
        return True
    column = _LOCK_COLUMN[type(row).__name__]
    history = inspect(row).attrs[column].history  # type: ignore[attr-defined]
    before = history.deleted[0] if history.deleted else getattr(row, column)
    if isinstance(row, SpotCheck):
        return before == "done"
    return before is not None


# The spot checks as the console (and any reader) lists them: units, plans, checks with their tries and notes.

def listed_units(session: Session) -> list[SpotUnit]:
    """Every unit, active first, by group and then as imported."""
    return list(session.scalars(select(SpotUnit).order_by(SpotUnit.active.desc(), SpotUnit.group_name, SpotUnit.id)))


def listed_plans(session: Session, limit: int = 50) -> list[tuple[SpotPlan, int, int]]:
    """The newest plans with how many checks each holds and how many are done."""
    done = func.count(SpotCheck.id).filter(SpotCheck.state == "done")
    rows = session.execute(select(SpotPlan, func.count(SpotCheck.id), done)
                           .outerjoin(SpotCheck, SpotCheck.plan_id == SpotPlan.id)
                           .group_by(SpotPlan.id).order_by(SpotPlan.id.desc()).limit(limit))
    return [(plan, int(total), int(finished)) for plan, total, finished in rows]


def listed_checks(session: Session, plan_id: int | None = None, limit: int = 200) -> list[SpotCheck]:
    """Checks with their tries and notes loaded, the latest due first (one plan's, or every plan's)."""
    query = select(SpotCheck).options(selectinload(SpotCheck.attempts), selectinload(SpotCheck.notes))
    if plan_id is not None:
        query = query.where(SpotCheck.plan_id == plan_id)
    return list(session.scalars(query.order_by(SpotCheck.due_at.desc(), SpotCheck.id.desc()).limit(limit)))


def check_with_tries(session: Session, check_id: int) -> SpotCheck | None:
    query = select(SpotCheck).where(SpotCheck.id == check_id).options(
        selectinload(SpotCheck.attempts), selectinload(SpotCheck.notes), selectinload(SpotCheck.plan))
    return session.scalar(query)
