"""The deployment patterns on damaged input: streams cut at random points, split into
random TCP chunks, attached mid-call. No crash, every call seen ends exactly once, no
leg is kept as a call of its own, and the call after the damage still comes out right.
"""

from __future__ import annotations

import random

import pytest

from gateway.ami.framing import iter_messages
from gateway.ami.message import AmiMessage
from gateway.calls.tracker import CallRecord, CallTracker
from tests.test_tracker import cut_then_next, feed_all
from tests.test_tracker_patterns import (
    DUTY,
    PATTERNS,
    TRUTHS,
    assert_matches_truth,
    final_party,
    kept_finals,
    track_pattern,
)

NAMES = sorted(TRUTHS)


def _data(name: str) -> bytes:
    return (PATTERNS / TRUTHS[name]["file"]).read_bytes()


def _follower(name: str) -> str:
    return "xfer_attended_to_leader" if name != "xfer_attended_to_leader" else "pickup_by_third_phone"



def _every_seen_call_ends_once(records: list[CallRecord]) -> None:
    ended: dict[str, int] = {}
    for record in records:
        if record.complete:
            ended[record.linkedid] = ended.get(record.linkedid, 0) + 1
    assert {r.linkedid for r in records} == set(ended), "a call seen is never silently absent"
    assert all(count == 1 for count in ended.values()), ended


def _follower_right(records: list[CallRecord], follower: str) -> None:
    truth = TRUTHS[follower]
    assert_matches_truth(kept_finals(records)[truth["linkedid"]], truth)


@pytest.mark.parametrize("name", NAMES)
def test_random_tcp_chunks_give_the_same_records(name: str) -> None:
    data = _data(name)
    rng = random.Random(name)
    cuts = sorted(rng.sample(range(1, len(data)), 60))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    assert feed_all(CallTracker(DUTY), list(iter_messages(chunks))) == track_pattern(name)


@pytest.mark.parametrize("name", NAMES)
def test_stream_cut_at_random_points_then_the_next_connection(name: str) -> None:
    data, follower = _data(name), _follower(name)
    allowed = {TRUTHS[name]["linkedid"], TRUTHS[follower]["linkedid"]}
    for cut in random.Random(f"cut-{name}").sample(range(1, len(data)), 12):
        tracker = CallTracker(DUTY)
        records = cut_then_next(tracker, data, cut, _data(follower))
        _every_seen_call_ends_once(records)
        _follower_right(records, follower)
        assert set(kept_finals(records)) <= allowed, "no leg kept as a call of its own"
        assert tracker.in_flight == 0


def _decisive_index(messages: list[AmiMessage], linkedid: str) -> int:
    """The caller's first DialEnd: from there on the first answer cannot be told."""
    for index, message in enumerate(messages):
        if message.get("Uniqueid") == linkedid and message.event in ("DialEnd", "Hangup"):
            return index
    return len(messages)


@pytest.mark.parametrize("name", NAMES)
def test_attach_mid_call_with_first_events_dropped(name: str) -> None:
    truth, follower = TRUTHS[name], _follower(name)
    messages = list(iter_messages(_data(name)))
    following = list(iter_messages(_data(follower)))
    decisive = _decisive_index(messages, truth["linkedid"])
    for dropped in range(len(messages) + 1):
        tracker = CallTracker(DUTY)
        records = feed_all(tracker, messages[dropped:] + following)
        _every_seen_call_ends_once(records)
        _follower_right(records, follower)
        kept = kept_finals(records)
        assert set(kept) <= {truth["linkedid"], TRUTHS[follower]["linkedid"]}
        if dropped <= decisive:
            record = kept.get(truth["linkedid"])
            assert record is not None, f"call lost when attaching after {dropped} messages"
            assert record.outcome == truth["outcome"]
            assert record.caller == truth["caller_number"]
            assert record.answered_by == truth["first_answer"]["extension"], dropped
            assert record.final_party == final_party(truth), dropped
            assert record.arrived_at is not None
            assert abs(record.arrived_at.timestamp() - truth["arrival"]) < 1.0, "arrival from the Linkedid"
        assert tracker.in_flight == 0
