"""Every recorded scenario through the pure tracker: the whole story equals the ground truth.

Table-driven over ``manifest.json``: a capture added there is covered without a new test.
Calls of kind ``originate`` are the paging engine's (the gateway's own Originates) and
must not appear as duty-line calls at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import pytest

from gateway.ami.framing import iter_messages
from gateway.ami.message import AmiMessage
from gateway.calls.tracker import OUTCOMES, CallRecord, CallTracker
from gateway.clock import utc_from_epoch
from gateway.config import DutyConfig
from tests.conftest import AMI_FIXTURES

MANIFEST = json.loads((AMI_FIXTURES / "manifest.json").read_text(encoding="utf-8"))
SCENARIOS = MANIFEST["scenarios"]
DUTY = DutyConfig(
    numbers=[MANIFEST["duty_number"]],
    extensions=list(MANIFEST["duty_phones"]),
    fax_numbers=[MANIFEST["fax_number"]],
)
RULE_RINGS = 3
HALF_SECOND = timedelta(seconds=0.5)

# The manifest's words for outcomes, where they differ from the tracker's.
OUTCOME_NAMES = {
    "busy": "missed_busy",
    "missed_timeout": "missed_no_answer",
    "fax_received": "fax",
    "lost_in_restart": "unknown",
}


def scenario_bytes(name: str) -> list[bytes]:
    return [(AMI_FIXTURES / f).read_bytes() for f in SCENARIOS[name]["files"]]


def expected_calls(name: str) -> list[dict[str, Any]]:
    return [c for c in SCENARIOS[name]["calls"] if c["kind"] != "originate"]


def last_time(messages: Iterable[AmiMessage]) -> datetime | None:
    times = [m.time for m in messages if m.time is not None]
    return max(times) if times else None


def feed_all(tracker: CallTracker, messages: Iterable[AmiMessage]) -> list[CallRecord]:
    return [record for message in messages for record in tracker.feed(message)]


def cut_then_next(tracker: CallTracker, data: bytes, cut: int, next_data: bytes) -> list[CallRecord]:
    """The connection lost after ``cut`` bytes of ``data`` (the tracker told so at the last
    time it saw), then a new connection carrying ``next_data``."""
    first = list(iter_messages(data[:cut]))
    records = feed_all(tracker, first)
    lost_at = last_time(first)
    if lost_at is not None:
        records += tracker.connection_lost(lost_at)
    return records + feed_all(tracker, list(iter_messages(next_data)))


def run_connections(tracker: CallTracker, streams: list[list[AmiMessage]]) -> list[CallRecord]:
    """Feed each connection's messages as the daemon would: the connection is lost after
    every stream but the last one, and rebuilt (with no channels) on the next connect."""
    records: list[CallRecord] = []
    for index, messages in enumerate(streams):
        if index:
            records += tracker.rebuild([], last_time(messages) or last_time(streams[index - 1]))
        for message in messages:
            records += tracker.feed(message)
        if index < len(streams) - 1:
            lost_at = last_time(messages)
            assert lost_at is not None
            records += tracker.connection_lost(lost_at)
    return records


def track(name: str) -> list[CallRecord]:
    streams = [list(iter_messages(data)) for data in scenario_bytes(name)]
    return run_connections(CallTracker(DUTY), streams)


def finals(records: list[CallRecord]) -> dict[str, CallRecord]:
    out: dict[str, CallRecord] = {}
    for record in records:
        if record.complete:
            assert record.linkedid not in out, f"two final records for {record.linkedid}"
            out[record.linkedid] = record
    return out


def expected_outcome(call: dict[str, Any]) -> str:
    return OUTCOME_NAMES.get(call["outcome"], call["outcome"])


def expected_rule_met(call: dict[str, Any]) -> bool | None:
    if call["direction"] != "in" or expected_outcome(call) == "fax":
        return None  # the fax line is not the duty line: no 3-ring figure
    rings, outcome = call["rings_cn_cadence"], expected_outcome(call)
    if outcome == "answered":
        return rings <= RULE_RINGS
    if outcome == "unknown":
        return None if rings <= RULE_RINGS else False
    return False


def assert_matches(record: CallRecord, call: dict[str, Any]) -> None:
    assert record.outcome == expected_outcome(call)
    assert record.outcome in OUTCOMES
    assert record.direction == call["direction"]
    assert record.caller == call["caller_number"]
    assert record.dialed == call["dialed_number"]
    assert record.answered_by == call["answered_by"]
    assert record.rings == call["rings_cn_cadence"]
    assert record.rule_met == expected_rule_met(call)
    assert record.ring_seconds == pytest.approx(call["ring_seconds"], abs=0.5)
    assert record.arrived_at is not None
    assert abs(record.arrived_at - utc_from_epoch(call["start"])) <= HALF_SECOND
    if call["answer"] is None:
        assert record.answered_at is None
        assert record.talk_seconds is None
    else:
        assert record.answered_at is not None
        assert abs(record.answered_at.timestamp() - call["answer"]) <= 0.5
        assert record.talk_seconds == pytest.approx(call["talk_seconds"], abs=0.5)
    assert record.hangup_cause == call["hangup_cause"]
    assert record.time_source == "pbx"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_gives_one_record_per_call_matching_ground_truth(name: str) -> None:
    records = track(name)
    expected = {c["pbx_linkedid"]: c for c in expected_calls(name)}
    final = finals(records)
    assert set(final) == set(expected), "exactly the duty-line calls, one record each"
    assert {r.linkedid for r in records} == set(expected), "no record for a paging call or a leg"
    for linkedid, call in expected.items():
        assert_matches(final[linkedid], call)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_call_tells_its_story_in_order(name: str) -> None:
    """First seen (incomplete), then answered if it was, then exactly one final record last."""
    records = track(name)
    for call in expected_calls(name):
        story = [r for r in records if r.linkedid == call["pbx_linkedid"]]
        assert not story[0].complete
        assert story[-1].complete and not any(r.complete for r in story[:-1])
        if call["answer"] is not None:
            answered = [r for r in story if r.answered_at is not None and not r.complete]
            assert answered, "an update when the call is answered, before it ends"


def test_caller_name_survives_from_utf8() -> None:
    (record,) = finals(track("answered_cn_name_chanvars")).values()
    assert record.caller_name == "张三"


def test_withheld_caller_is_marked() -> None:
    (record,) = finals(track("anonymous")).values()
    assert record.caller_withheld
    assert record.caller_name is None


def test_restart_mid_call_is_unknown_not_absent() -> None:
    (record,) = finals(track("restart_midcall")).values()
    assert record.outcome == "unknown"
    assert record.answered_at is None
    assert record.note and "restart" in record.note


def test_fax_call_is_kept_out_of_the_three_ring_rule() -> None:
    (record,) = finals(track("fax_in")).values()
    assert record.outcome == "fax" and record.rings == 1
    assert record.rule_met is None, "a fax answered by the PBX is no duty-line answer within 1 ring"


def test_nothing_stays_in_flight_after_every_call_ended() -> None:
    for name in SCENARIOS:
        tracker = CallTracker(DUTY)
        run_connections(tracker, [list(iter_messages(data)) for data in scenario_bytes(name)])
        assert tracker.in_flight == 0, name
