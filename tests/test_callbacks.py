"""Callbacks (回拨): which missed calls a later call settles.

The real pair is ``missed_abandon.ami`` (13911112222 rings 12 s and gives up) followed by
``callback.ami`` (8001 calls 13911112222 back, connected). The table cases vary that
real callback record to cover the rules.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import select

from gateway.calls.callbacks import OpenMissed, closures
from gateway.calls.recorder import CallRecorder
from gateway.calls.tracker import CallRecord
from storage.calls import Call
from storage.db import Database
from storage.states import CallOutcome
from tests.test_tracker import DUTY, finals, track

WINDOW = timedelta(hours=24)


def _only(name: str) -> CallRecord:
    (record,) = finals(track(name)).values()
    return record


MISSED = _only("missed_abandon")
CALLBACK = _only("callback")
ANSWERED_IN = _only("answered_r2")
OPEN = OpenMissed(call_id=1, caller=MISSED.caller, arrived_at=MISSED.arrived_at)  # type: ignore[arg-type]


def _unconnected(record: CallRecord) -> CallRecord:
    return dataclasses.replace(record, outcome=CallOutcome.MISSED_NO_ANSWER, answered_at=None, answered_by=None,
                               talk_seconds=None)


def _later(record: CallRecord, hours: float) -> CallRecord:
    assert record.arrived_at is not None
    return dataclasses.replace(record, arrived_at=record.arrived_at + timedelta(hours=hours))


def test_the_real_callback_matches_the_real_missed_call() -> None:
    assert MISSED.outcome == "missed_abandoned" and CALLBACK.direction == "out"
    assert CALLBACK.dialed == MISSED.caller == "13911112222"
    (closure,) = closures(CALLBACK, 2, [OPEN], WINDOW)
    assert closure.missed_call_id == 1 and closure.closed_by_call_id == 2
    assert closure.called_back_at == CALLBACK.arrived_at
    assert closure.called_back_by == "8001" and closure.callback_connected is True


@pytest.mark.parametrize(
    ("label", "call", "closed", "connected"),
    [
        ("unconnected attempt is recorded but leaves the call open", _unconnected(CALLBACK), False, False),
        ("callback after the window does nothing", _later(CALLBACK, 25), None, None),
        ("callback to another number does nothing", dataclasses.replace(CALLBACK, dialed="13800001111"), None, None),
        ("an unfinished callback does nothing yet", dataclasses.replace(CALLBACK, complete=False), None, None),
        ("the caller getting through closes it",
         dataclasses.replace(_later(ANSWERED_IN, 0.05), caller=MISSED.caller), True, None),
        ("the caller missed again does not close it",
         dataclasses.replace(_later(MISSED, 0.05), caller=MISSED.caller), None, None),
        ("a withheld caller getting through closes nothing",
         dataclasses.replace(_later(ANSWERED_IN, 0.05), caller=MISSED.caller, caller_withheld=True), None, None),
    ],
)
def test_callback_rules(label: str, call: CallRecord, closed: bool | None, connected: bool | None) -> None:
    found = closures(call, 2, [OPEN], WINDOW)
    if closed is None:
        assert found == [], label
        return
    (closure,) = found
    assert (closure.closed_by_call_id == 2) is closed, label
    assert closure.callback_connected is connected, label


def test_one_callback_settles_every_open_missed_call_from_that_number() -> None:
    second = OpenMissed(call_id=5, caller=MISSED.caller, arrived_at=OPEN.arrived_at + timedelta(minutes=1))
    other = OpenMissed(call_id=6, caller="13500003333", arrived_at=OPEN.arrived_at)
    found = closures(CALLBACK, 2, [OPEN, second, other], WINDOW)
    assert sorted(c.missed_call_id for c in found) == [1, 5]


def _missed_row(db: Database) -> Call:
    with db.session() as session:
        return session.scalars(select(Call).where(Call.linkedid == MISSED.linkedid)).one()


def test_recorder_closes_the_real_missed_call(database: Database) -> None:
    recorder = CallRecorder(database, DUTY)
    recorder.apply(track("missed_abandon"))
    assert _missed_row(database).closed_by_call_id is None
    recorder.apply(track("callback"))
    missed = _missed_row(database)
    with database.session() as session:
        callback_id = session.scalars(select(Call.id).where(Call.linkedid == CALLBACK.linkedid)).one()
    assert missed.closed_by_call_id == callback_id
    assert missed.called_back_at == CALLBACK.arrived_at
    assert missed.called_back_by == "8001" and missed.callback_connected is True


def test_connected_callback_beats_unconnected_attempts(database: Database) -> None:
    recorder = CallRecorder(database, DUTY)
    recorder.apply([MISSED])
    first_try = dataclasses.replace(_unconnected(CALLBACK), linkedid="try-1")
    recorder.apply([first_try])
    missed = _missed_row(database)
    assert missed.callback_connected is False and missed.closed_by_call_id is None
    assert missed.called_back_at == first_try.arrived_at
    recorder.apply([_later(CALLBACK, 0.5)])
    assert _missed_row(database).callback_connected is True
    late_try = dataclasses.replace(_later(_unconnected(CALLBACK), 1), linkedid="try-2")
    recorder.apply([late_try])
    missed = _missed_row(database)
    assert missed.callback_connected is True, "a later failed attempt does not reopen it"
    assert missed.called_back_at == _later(CALLBACK, 0.5).arrived_at
