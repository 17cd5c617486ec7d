"""The tracker on damaged, partial and odd input: no crash, and the calls after the damage
still come out right (each damaged stream is followed by an intact one and checked).
"""

from __future__ import annotations

import random
import re
from datetime import timedelta

import pytest

from gateway.ami.framing import iter_messages
from gateway.ami.message import AmiMessage
from gateway.calls.tracker import CallRecord, CallTracker
from tests.test_tracker import (
    DUTY,
    SCENARIOS,
    assert_matches,
    cut_then_next,
    expected_calls,
    expected_outcome,
    feed_all,
    finals,
    last_time,
    scenario_bytes,
    track,
)

NAMES = sorted(SCENARIOS)
SINGLE = [n for n in NAMES if len(SCENARIOS[n]["files"]) == 1]
WITH_CALLS = [n for n in SINGLE if expected_calls(n)]


def _follower(name: str) -> str:
    """An intact scenario (other than ``name``) fed after the damaged one."""
    return "overlap" if name != "overlap" else "answered_r2"


def _assert_follower_right(records: list[CallRecord], follower: str) -> None:
    final = finals(records)
    for call in expected_calls(follower):
        assert_matches(final[call["pbx_linkedid"]], call)



def _every_seen_call_ends_once(records: list[CallRecord]) -> None:
    final = finals(records)
    assert {r.linkedid for r in records} == set(final), "a call seen is never silently absent"


@pytest.mark.parametrize("name", SINGLE)
def test_random_tcp_chunks_give_the_same_records(name: str) -> None:
    (data,) = scenario_bytes(name)
    rng = random.Random(name)
    cuts = sorted(rng.sample(range(1, len(data)), 40))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
    tracker = CallTracker(DUTY)
    assert feed_all(tracker, list(iter_messages(chunks))) == track(name)


@pytest.mark.parametrize("name", SINGLE)
def test_stream_cut_at_random_points_then_the_next_connection(name: str) -> None:
    (data,) = scenario_bytes(name)
    follower = _follower(name)
    rng = random.Random(f"cut-{name}")
    for cut in rng.sample(range(1, len(data)), 8):
        tracker = CallTracker(DUTY)
        (next_data,) = scenario_bytes(follower)
        records = cut_then_next(tracker, data, cut, next_data)
        _every_seen_call_ends_once(records)
        _assert_follower_right(records, follower)
        expected = {c["pbx_linkedid"] for c in expected_calls(name)}
        assert {r.linkedid for r in records} <= expected | {c["pbx_linkedid"] for c in expected_calls(follower)}


@pytest.mark.parametrize("name", SINGLE)
def test_cut_mid_message_and_glued_to_the_next_stream(name: str) -> None:
    """The harshest splice: one framer sees half a message, then another PBX stream."""
    (data,) = scenario_bytes(name)
    follower = _follower(name)
    (next_data,) = scenario_bytes(follower)
    rng = random.Random(f"glue-{name}")
    for cut in rng.sample(range(1, len(data)), 8):
        tracker = CallTracker(DUTY)
        records = feed_all(tracker, list(iter_messages(data[:cut] + next_data)))
        _assert_follower_right(records, follower)


_JUNK = [
    b"garbage without any colon",
    b"Event: \xff\xfe\xfd",
    b"Response: Follows\r\nPrivilege: Command\r\n--END COMMAND--",
    b"Event: Hangup\r\nLinkedid: 999.9\r\nUniqueid: 999.9\r\nCause: 16",
    b"Event: DialEnd\r\nLinkedid: \r\nDialStatus: ANSWER",
    b"Event: Newchannel\r\nTimestamp: not-a-number\r\nLinkedid: 5.5\r\nUniqueid: 5.5",
    b":::",
]


def _with_garbage(data: bytes, rng: random.Random) -> bytes:
    greeting, _, rest = data.partition(b"\r\n")
    blocks = rest.split(b"\r\n\r\n")
    out = [greeting + b"\r\n"]
    for block in blocks:
        if rng.random() < 0.3:
            noise = bytes(rng.choice(range(0x20, 0x100)) for _ in range(rng.randint(1, 60)))
            out.append(rng.choice([noise, *_JUNK]) + b"\r\n\r\n")
        out.append(block + b"\r\n\r\n")
    return b"".join(out)


@pytest.mark.parametrize("name", SINGLE)
def test_garbage_between_messages_changes_nothing(name: str) -> None:
    (data,) = scenario_bytes(name)
    tracker = CallTracker(DUTY)
    records = feed_all(tracker, list(iter_messages(_with_garbage(data, random.Random(name)))))
    final = finals(records)
    assert set(final) == {c["pbx_linkedid"] for c in expected_calls(name)}
    for call in expected_calls(name):
        assert_matches(final[call["pbx_linkedid"]], call)


def _decisive_index(messages: list[AmiMessage], linkedid: str) -> int:
    """Where the call's fate starts to show: its first DialEnd, PBX answer or shutdown."""
    for index, message in enumerate(messages):
        if message.get("Linkedid") != linkedid:
            continue
        if message.event in ("DialEnd", "SoftHangupRequest", "Hangup"):
            return index
        if message.event == "Newstate" and message.get("ChannelStateDesc") in ("Up", "Busy"):
            return index
    return len(messages)


@pytest.mark.parametrize("name", SINGLE)
def test_attach_mid_call_with_first_events_dropped(name: str) -> None:
    (data,) = scenario_bytes(name)
    messages = list(iter_messages(data))
    follower = _follower(name)
    (next_data,) = scenario_bytes(follower)
    following = list(iter_messages(next_data))
    for dropped in range(len(messages) + 1):
        tracker = CallTracker(DUTY)
        records = feed_all(tracker, messages[dropped:] + following)
        _every_seen_call_ends_once(records)
        _assert_follower_right(records, follower)
        final = finals(records)
        for call in expected_calls(name):
            record = final.get(call["pbx_linkedid"])
            if dropped <= _decisive_index(messages, call["pbx_linkedid"]):
                assert record is not None, f"call lost when attaching after {dropped} messages"
                assert record.outcome == expected_outcome(call)
                assert record.answered_by == call["answered_by"]
                assert record.caller == call["caller_number"]
                assert record.arrived_at is not None
                assert abs(record.arrived_at.timestamp() - call["start"]) < 1.0, "arrival from the Linkedid"
        assert tracker.in_flight == 0


ZHANG_SAN = "张三"


def test_gbk_caller_name() -> None:
    (data,) = scenario_bytes("answered_cn_name_chanvars")
    gbk = data.replace(ZHANG_SAN.encode("utf-8"), ZHANG_SAN.encode("gbk"))
    assert gbk != data
    tracker = CallTracker(DUTY)
    (record,) = finals(feed_all(tracker, list(iter_messages(gbk)))).values()
    assert record.caller_name == ZHANG_SAN
    (call,) = expected_calls("answered_cn_name_chanvars")
    assert_matches(record, call)


def _with_chanvariables(data: bytes) -> bytes:
    """Every event carries ChanVariable/DestChanVariable headers, some with misleading values."""
    extra = (b"\r\nChanVariable: CALLERID(name)=\xe6\x9d\x8e\xe5\x9b\x9b\r\nChanVariable: DIALSTATUS=BUSY"
             b"\r\nDestChanVariable: CALLERID(num)=anonymous\r\nChanVariable(PJSIP/8001-0): Linkedid=1.1")
    return re.sub(rb"(Event: [^\r]+)", lambda m: m.group(1) + extra, data)


@pytest.mark.parametrize("name", SINGLE)
def test_chanvariable_headers_everywhere_change_nothing(name: str) -> None:
    (data,) = scenario_bytes(name)
    tracker = CallTracker(DUTY)
    records = feed_all(tracker, list(iter_messages(_with_chanvariables(data))))
    final = finals(records)
    assert set(final) == {c["pbx_linkedid"] for c in expected_calls(name)}
    for call in expected_calls(name):
        assert_matches(final[call["pbx_linkedid"]], call)


def _renumbered(data: bytes, run: int) -> bytes:
    """The same stream as a different set of calls (new Linkedids and Uniqueids)."""
    return re.sub(rb"((?:Linkedid|Uniqueid): )(\d+\.\d+)", lambda m: m.group(1) + b"r%d-" % run + m.group(2), data)


def test_memory_stays_flat_over_many_calls() -> None:
    tracker = CallTracker(DUTY, remember=50)
    streams = [scenario_bytes(n)[0] for n in SINGLE]
    for run in range(40):
        for data in streams:
            feed_all(tracker, list(iter_messages(_renumbered(data, run))))
        assert tracker.in_flight == 0
        assert tracker.remembered <= 50


# ------------------------------------------------------------------ gaps and rebuilds


def core_show_channels(messages: list[AmiMessage], at_index: int) -> list[AmiMessage]:
    """The ``CoreShowChannel`` list the PBX would give just after ``messages[:at_index]``."""
    channels: dict[str, dict[str, str]] = {}
    born: dict[str, float] = {}
    for message in messages[:at_index]:
        name, uniqueid = message.get("Channel"), message.get("Uniqueid")
        if not name or not uniqueid:
            continue
        if message.event == "Hangup":
            channels.pop(name, None)
            continue
        if message.event == "Newchannel":
            born[name] = float(message["Timestamp"])
        state = channels.setdefault(name, {"Application": "", "ApplicationData": ""})
        for key in ("Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
                    "ConnectedLineNum", "ConnectedLineName", "Context", "Exten", "Uniqueid", "Linkedid"):
            if message.get(key) is not None:
                state[key] = message[key]
        if message.event == "Newexten":
            state["Application"], state["ApplicationData"] = message["Application"], message["AppData"]
    now = float(messages[at_index - 1]["Timestamp"])
    out = []
    for name, state in channels.items():
        seconds = int(now - born.get(name, now))
        duration = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        headers = {"Event": "CoreShowChannel", "ActionID": "dutygw-2", **state, "Duration": duration}
        out.append(AmiMessage(tuple(headers.items())))
    return out


def _index_after(messages: list[AmiMessage], event: str, state: str | None = None) -> int:
    for index, message in enumerate(messages):
        if message.event == event and (state is None or message.get("ChannelStateDesc") == state):
            return index + 1
    raise AssertionError(event)


def _ringing_split(name: str) -> tuple[list[AmiMessage], int]:
    (data,) = scenario_bytes(name)
    messages = list(iter_messages(data))
    return messages, _index_after(messages, "Newstate", "Ringing") + 2


def test_connection_lost_mid_call_gives_unknown_then_reconciles() -> None:
    messages, split = _ringing_split("answered_r2")
    (call,) = expected_calls("answered_r2")
    tracker = CallTracker(DUTY)
    before = feed_all(tracker, messages[:split])
    lost_at = last_time(messages[:split])
    assert lost_at is not None
    (lost,) = tracker.connection_lost(lost_at)
    assert lost.complete and lost.outcome == "unknown"
    assert lost.note and "connection lost" in lost.note
    assert tracker.in_flight == 0
    rebuilt = tracker.rebuild(core_show_channels(messages, split), lost_at + timedelta(seconds=1))
    assert [r.outcome for r in rebuilt] == [None] and not rebuilt[0].complete
    after = feed_all(tracker, messages[split:])
    final = finals(after)
    assert_matches(final[call["pbx_linkedid"]], call)
    assert "reconciled" in (final[call["pbx_linkedid"]].note or "")
    assert before[0].arrived_at == final[call["pbx_linkedid"]].arrived_at


def test_lost_call_not_shown_after_reconnect_stays_unknown() -> None:
    messages, split = _ringing_split("missed_abandon")
    tracker = CallTracker(DUTY)
    feed_all(tracker, messages[:split])
    lost_at = last_time(messages[:split])
    assert lost_at is not None
    (lost,) = tracker.connection_lost(lost_at)
    assert lost.outcome == "unknown"
    assert tracker.rebuild([], lost_at + timedelta(seconds=2)) == []
    assert feed_all(tracker, messages[split:]) == [], "its stragglers are not a new call"
    assert tracker.remembered == 1 and tracker.in_flight == 0


def test_call_never_seen_is_rebuilt_from_core_show_channels() -> None:
    messages, split = _ringing_split("answered_r5_late")
    (call,) = expected_calls("answered_r5_late")
    tracker = CallTracker(DUTY)
    at = messages[split - 1].time
    assert at is not None
    (first,) = tracker.rebuild(core_show_channels(messages, split), at)
    assert first.direction == "in" and first.caller == call["caller_number"]
    assert first.ringing_at is not None and first.outcome is None
    assert "CoreShowChannels" in (first.note or "")
    final = finals(feed_all(tracker, messages[split:]))[call["pbx_linkedid"]]
    assert final.outcome == "answered" and final.answered_by == call["answered_by"]
    assert final.answered_at is not None and abs(final.answered_at.timestamp() - call["answer"]) <= 0.5
    assert final.rings == call["rings_cn_cadence"]


def test_answered_call_rebuilt_after_the_gap_knows_who_answered() -> None:
    (data,) = scenario_bytes("overlap")
    messages = list(iter_messages(data))
    split = _index_after(messages, "BridgeEnter") + 1
    tracker = CallTracker(DUTY)
    at = messages[split - 1].time
    assert at is not None
    (record,) = tracker.rebuild(core_show_channels(messages, split), at)
    assert record.outcome == "answered" and record.answered_by == "8001"
    assert record.answered_at is None and record.rule_met is None
    assert "answer time unknown" in (record.note or "")


def test_shutdown_event_ends_calls_in_flight_as_unknown() -> None:
    messages, split = _ringing_split("missed_timeout")
    tracker = CallTracker(DUTY)
    feed_all(tracker, messages[:split])
    shutdown = AmiMessage.of(Event="Shutdown", Timestamp=messages[split - 1]["Timestamp"], Restart="True")
    (record,) = tracker.feed(shutdown)
    assert record.outcome == "unknown" and record.complete and record.ended_at is not None
    assert tracker.in_flight == 0
