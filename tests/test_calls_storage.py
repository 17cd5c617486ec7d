"""Recorder and storage: every recorded call lands as one row, idempotently, named by the phonebook."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select

from gateway.calls.phonebook import import_phonebook, read_csv
from gateway.calls.recorder import CallRecorder, Gap
from gateway.calls.tracker import CallRecord, CallTracker
from gateway.errors import InputError
from storage.calls import Call, ListenerGap, PhonebookEntry
from storage.db import Database
from storage.states import CallOutcome
from tests.test_tracker import DUTY, SCENARIOS, expected_calls, expected_outcome, finals, track
from tests.test_tracker_patterns import DUTY as PATTERN_DUTY
from tests.test_tracker_patterns import TRUTHS, pattern_messages


def _rows(db: Database) -> list[dict[str, Any]]:
    columns = [c.key for c in inspect(Call).columns]
    with db.session() as session:
        return [{c: getattr(row, c) for c in columns} for row in session.scalars(select(Call).order_by(Call.id))]


def _all_records() -> list[list[CallRecord]]:
    return [track(name) for name in sorted(SCENARIOS)]


def test_every_call_becomes_one_row_and_reapplying_changes_nothing(any_database: Database) -> None:
    recorder = CallRecorder(any_database, DUTY)
    batches = _all_records()
    for batch in batches:
        for record in batch:  # one event's records at a time, as the daemon does
            recorder.apply([record])
    rows = _rows(any_database)
    expected = {c["pbx_linkedid"]: c for name in SCENARIOS for c in expected_calls(name)}
    assert {r["linkedid"] for r in rows} == set(expected)
    for row in rows:
        call = expected[row["linkedid"]]
        assert row["outcome"] == expected_outcome(call)
        assert row["answered_by"] == call["answered_by"]
        assert row["complete"] is True
        assert row["arrived_at"].utcoffset() == timedelta(0)
    for batch in batches:
        recorder.apply(list(finals(batch).values()))
    assert _rows(any_database) == rows


def test_a_late_in_flight_record_never_overwrites_the_final_one(database: Database) -> None:
    recorder = CallRecorder(database, DUTY)
    story = track("answered_r2")
    recorder.apply(story)
    before = _rows(database)
    recorder.apply([story[0]])
    assert _rows(database) == before


def test_an_unknown_gap_record_is_corrected_by_a_reconciled_one(database: Database) -> None:
    recorder = CallRecorder(database, DUTY)
    story = track("answered_r2")
    final = story[-1]
    recorder.apply([dataclasses.replace(final, outcome=CallOutcome.UNKNOWN, note="AMI connection lost")])
    recorder.apply([dataclasses.replace(story[1], note="reconciled")])
    recorder.apply([final])
    (row,) = _rows(database)
    assert row["outcome"] == "answered" and row["complete"] is True


CONTACTS = "number,name,unit\n+86 139-1111-2222,李四,江夏区应急管理局\n027-8888 9999,省应急厅值班室,省应急管理厅\n"


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_phonebook_names_the_caller(database: Database, tmp_path: Path, encoding: str) -> None:
    book = tmp_path / "phonebook.csv"
    book.write_bytes(CONTACTS.encode(encoding))
    assert import_phonebook(database, book) == 2
    CallRecorder(database, DUTY).apply(track("missed_abandon") + track("fax_in"))
    by_caller = {row["caller"]: row for row in _rows(database)}
    assert by_caller["13911112222"]["caller_name"] == "李四"
    assert by_caller["13911112222"]["caller_unit"] == "江夏区应急管理局"
    assert by_caller["02788889999"]["caller_unit"] == "省应急管理厅"


def test_phonebook_import_updates_and_normalises(database: Database, tmp_path: Path) -> None:
    book = tmp_path / "book.csv"
    book.write_text(CONTACTS, encoding="utf-8")
    import_phonebook(database, book)
    book.write_text("13911112222,李四,新单位\n", encoding="utf-8")
    import_phonebook(database, book)
    with database.session() as session:
        entries = {e.number: (e.name, e.unit) for e in session.scalars(select(PhonebookEntry))}
    assert entries == {"13911112222": ("李四", "新单位"), "02788889999": ("省应急厅值班室", "省应急管理厅")}


@pytest.mark.parametrize(
    ("text", "line"),
    [("number,name,unit\n13911112222,李四,x\nnot-a-number,王五,y\n", 3),
     ("13911112222,李四\n13800001111\n", 2),
     ("13911112222,,单位\n", 1)],
)
def test_bad_phonebook_row_names_file_and_line(tmp_path: Path, text: str, line: int) -> None:
    book = tmp_path / "bad.csv"
    book.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as error:
        read_csv(book)
    assert str(book) in str(error.value) and f"line {line}" in str(error.value)


def test_gaps_are_recorded_once_and_closed(any_database: Database) -> None:
    recorder = CallRecorder(any_database, DUTY)
    (record,) = finals(track("restart_midcall")).values()
    assert record.ended_at is not None
    lost_at = record.ended_at + timedelta(seconds=1)
    gap = Gap(lost_at, "PBX closed the connection")
    recorder.record_gap(gap)
    recorder.record_gap(gap)
    recorder.gap_closed(lost_at + timedelta(seconds=1.5))
    with any_database.session() as session:
        (row,) = session.scalars(select(ListenerGap)).all()
    assert row.lost_at == lost_at
    assert row.reconnected_at == lost_at + timedelta(seconds=1.5)
    assert row.reason == "PBX closed the connection"


def test_a_leg_found_to_be_part_of_another_call_is_withdrawn(database: Database) -> None:
    """Attached just after the picker's phone went off-hook, its own call is shown (its
    start was not seen), then found to be the caller's: its row goes, the caller's call
    stays, answered by the phone that picked up."""
    truth = TRUTHS["pickup_by_third_phone"]
    messages = pattern_messages("pickup_by_third_phone")
    start = next(i for i, m in enumerate(messages)
                 if m.event == "Newchannel" and (m.get("Channel") or "").startswith("PJSIP/8003")) + 1
    tracker = CallTracker(PATTERN_DUTY)
    records = [r for m in messages[start:] for r in tracker.feed(m)]
    withdrawn = [r for r in records if r.merged_into]
    assert withdrawn and withdrawn[0].merged_into == truth["linkedid"]
    recorder = CallRecorder(database, PATTERN_DUTY)
    for record in records:
        recorder.apply([record])
    with database.session() as session:
        rows = {row.linkedid: row for row in session.scalars(select(Call))}
    assert set(rows) == {truth["linkedid"]}
    assert rows[truth["linkedid"]].answered_by == "8003"
