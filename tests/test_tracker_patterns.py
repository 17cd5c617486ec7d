"""The deployment patterns (Local ring group, queue, blind and attended transfer, pickup)
through the pure tracker: each call exactly as its truth file says.

Table-driven over ``patterns/*.truth.json``: a capture added there is covered without a
new test. Duty phones 8001–8003; 8010 is the leader (not a duty phone).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.ami.framing import iter_messages
from gateway.calls.tracker import CallRecord, CallTracker
from gateway.config import DutyConfig
from tests.conftest import AMI_FIXTURES

PATTERNS = AMI_FIXTURES / "patterns"
TRUTHS = {p.name.removesuffix(".truth.json"): json.loads(p.read_text(encoding="utf-8"))
          for p in sorted(PATTERNS.glob("*.truth.json"))}
DUTY = DutyConfig(numbers=["02787654321"], extensions=["8001", "8002", "8003"], fax_numbers=["02787654329"])
HALF_SECOND = 0.5


def pattern_messages(name: str) -> list[Any]:
    return list(iter_messages((PATTERNS / TRUTHS[name]["file"]).read_bytes()))


def track_pattern(name: str, duty: DutyConfig = DUTY) -> list[CallRecord]:
    tracker = CallTracker(duty)
    records = [r for m in pattern_messages(name) for r in tracker.feed(m)]
    assert tracker.in_flight == 0
    return records


def kept_finals(records: list[CallRecord]) -> dict[str, CallRecord]:
    """The final record of each call kept (withdrawn ones, ``merged_into``, removed)."""
    out: dict[str, CallRecord] = {}
    for record in records:
        if record.merged_into:
            out.pop(record.linkedid, None)
        elif record.complete:
            assert record.linkedid not in out, f"two final records for {record.linkedid}"
            out[record.linkedid] = record
    return out


def final_party(truth: dict[str, Any]) -> str:
    transfer = truth.get("transfer")
    return transfer["final_party"] if transfer else truth["talk"][-1]["party"]


def assert_matches_truth(record: CallRecord, truth: dict[str, Any]) -> None:
    assert record.direction == "in"
    assert record.outcome == truth["outcome"]
    assert record.caller == truth["caller_number"]
    assert record.dialed == truth["dialed_number"]
    assert record.arrived_at is not None
    assert abs(record.arrived_at.timestamp() - truth["arrival"]) <= HALF_SECOND
    first = truth["first_answer"]
    assert record.answered_by == first["extension"]
    assert record.answered_at is not None
    assert abs(record.answered_at.timestamp() - first["at"]) <= HALF_SECOND
    assert record.rings == truth["rings_before_first_answer_cn_cadence"]
    assert record.rule_met is (record.rings <= 3)
    assert record.final_party == final_party(truth)
    assert [t.party for t in record.talks] == [t["party"] for t in truth["talk"]]
    for talk, expected in zip(record.talks, truth["talk"], strict=True):
        assert abs(talk.start.timestamp() - expected["start"]) <= HALF_SECOND
        assert talk.seconds == pytest.approx(expected["seconds"], abs=HALF_SECOND)
    transfer = truth.get("transfer")
    assert record.transferred_to == (transfer["to"] if transfer else None)
    assert record.transferred_by == (transfer["by"] if transfer else None)
    pickup = truth.get("pickup")
    assert record.picked_up_by == (pickup["by"] if pickup else None)


@pytest.mark.parametrize("name", sorted(TRUTHS))
def test_pattern_is_one_call_as_its_truth_says(name: str) -> None:
    truth = TRUTHS[name]
    records = track_pattern(name)
    final = kept_finals(records)
    assert set(final) == {truth["linkedid"]}, "one record: no consultation or pickup leg of its own"
    assert_matches_truth(final[truth["linkedid"]], truth)


@pytest.mark.parametrize("name", sorted(TRUTHS))
def test_pattern_story_in_order(name: str) -> None:
    """Seen ringing first, answered before the end, exactly one final record last."""
    story = [r for r in track_pattern(name) if r.linkedid == TRUTHS[name]["linkedid"]]
    assert not story[0].complete and story[0].answered_at is None
    assert story[-1].complete and not any(r.complete for r in story[:-1])
    assert any(r.answered_at is not None for r in story[:-1])


@pytest.mark.parametrize("extensions", [["8001", "8002"], ["8001", "8002", "8003", "8010"]])
@pytest.mark.parametrize("name", sorted(TRUTHS))
def test_pattern_does_not_hang_on_which_phones_are_listed(name: str, extensions: list[str]) -> None:
    """A picker or leader not on the duty list (or on it) changes nothing: the far end is
    followed through the channels, not looked up by name."""
    duty = DutyConfig(numbers=["02787654321"], extensions=extensions, fax_numbers=["02787654329"])
    truth = TRUTHS[name]
    final = kept_finals(track_pattern(name, duty))
    assert set(final) == {truth["linkedid"]}
    assert_matches_truth(final[truth["linkedid"]], truth)
