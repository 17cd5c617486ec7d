"""The escalation engine's values survive their rows, step by step, on a real SQLite database.

What a restarted gateway resumes is what ``rows.load_open`` reads back: each step of a
page's life is stored and read back equal, attempts matched by ActionID (never duplicated),
and a closed escalation is no longer loaded as open.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from gateway.paging import escalation as engine
from gateway.paging import rows
from gateway.paging.escalation import (
    Acknowledged,
    Escalation,
    OriginateResult,
    OriginateSent,
    Person,
    Rules,
    Tick,
)
from storage.db import Database
from storage.paging import Escalation as EscalationRow
from storage.paging import PageAttempt
from storage.states import AttemptResult, EscalationState

RULES = Rules()
NIGHT = datetime(2026, 11, 21, 17, 30, tzinfo=UTC)
CHAIN = (Person("带班领导", "王处长", "13700001111"), Person("主任", "李主任", "13700003333"))


def stored_again(database: Database, value: Escalation) -> Escalation:
    rows.store(database, value)
    with database.read() as session:
        row = session.get(EscalationRow, value.id)
        assert row is not None
        return rows.escalation_value(row)


def test_every_step_of_a_page_reads_back_as_it_was_stored(database: Database) -> None:
    value, (first,) = engine.open_escalation(1, [3, 4], CHAIN, NIGHT, RULES)
    assert isinstance(first, engine.PlaceCall)
    value = engine.with_page_token(value, first.key, "tok-1")
    steps = [value]
    first_call: list[engine.Event] = [
        OriginateSent(first.key, NIGHT),
        OriginateResult(first.key, 3, "PJSIP/13700001111@trunk", NIGHT + timedelta(seconds=30)),
    ]
    for event in first_call:
        value, _ = engine.handle(value, event, RULES)
        steps.append(value)
    value, _ = engine.handle(value, Tick(NIGHT + timedelta(seconds=60)), RULES)
    second = value.attempts[-1]
    value = engine.with_page_token(value, second.key, "tok-2")
    second_call: list[engine.Event] = [
        OriginateSent(second.key, NIGHT + timedelta(seconds=60)),
        OriginateResult(second.key, 4, "PJSIP/trunk-0000001b", NIGHT + timedelta(seconds=65)),
        Acknowledged(second.key, "1", None, NIGHT + timedelta(seconds=70)),
    ]
    for event in second_call:
        value, _ = engine.handle(value, event, RULES)
        steps.append(value)
    for step in steps:
        assert stored_again(database, step) == step
    assert value.state == EscalationState.ACKNOWLEDGED and len(value.attempts) == 2
    assert [a.result for a in value.attempts] == [AttemptResult.NO_ANSWER, AttemptResult.ACKNOWLEDGED]
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(PageAttempt)) == 2


def test_only_open_escalations_are_loaded_to_resume(database: Database) -> None:
    open_one, _ = engine.open_escalation(1, [3], CHAIN, NIGHT, RULES)
    empty, _ = engine.open_escalation(2, [4], (), NIGHT, RULES)  # no chain: exhausted at once
    for value in (open_one, empty):
        rows.store(database, value)
    assert empty.state == EscalationState.EXHAUSTED
    assert rows.load_open(database) == [open_one]
