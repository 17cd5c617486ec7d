"""Behaviour the lab's captures do not show, built event by event as Asterisk 13 (chan_sip)
sends it: a phone's own consultation call (its own Linkedid) in an attended transfer, a
mobile reached over the trunk as a ring-group member, a duty phone named by device, and a
queue that answers the caller before ringing the phones.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.ami.message import AmiMessage
from gateway.calls.tracker import CallRecord, CallTracker
from gateway.config import DutyConfig
from tests.test_tracker_patterns import kept_finals

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
DID = "02712345678"
CALL = "pbx1-1796100000.100"


class Script:
    """Events in order, each ``dt`` seconds after the last, with AMI timestamps."""

    def __init__(self) -> None:
        self.at = 0.0
        self.messages: list[AmiMessage] = []

    def __call__(self, event: str, dt: float = 0.01, **headers: str) -> None:
        self.at += dt
        stamp = f"{(T0 + timedelta(seconds=self.at)).timestamp():.6f}"
        self.messages.append(AmiMessage.of(Event=event, Timestamp=stamp, **headers))

    def channel(self, name: str, uid: str, linked: str, exten: str = "s", num: str = "", state: str = "Down") -> None:
        self("Newchannel", Channel=name, Uniqueid=uid, Linkedid=linked, Exten=exten,
             CallerIDNum=num or "<unknown>", ChannelStateDesc=state)

    def state(self, name: str, uid: str, linked: str, state: str, dt: float = 0.01) -> None:
        self("Newstate", dt, Channel=name, Uniqueid=uid, Linkedid=linked, ChannelStateDesc=state)

    def dial(self, src: str, suid: str, dest: str, duid: str, linked: str, dialstring: str, num: str = "") -> None:
        self("DialBegin", Channel=src, Uniqueid=suid, Linkedid=linked, DestChannel=dest, DestUniqueid=duid,
             DestLinkedid=linked, DialString=dialstring, DestCallerIDNum=num or "<unknown>")

    def dial_end(self, src: str, suid: str, dest: str, duid: str, linked: str, status: str, dt: float = 0.01) -> None:
        self("DialEnd", dt, Channel=src, Uniqueid=suid, Linkedid=linked, DestChannel=dest, DestUniqueid=duid,
             DialStatus=status)

    def enter(self, name: str, uid: str, linked: str, bridge: str, swap: str = "") -> None:
        headers = {"SwapUniqueid": swap} if swap else {}
        self("BridgeEnter", Channel=name, Uniqueid=uid, Linkedid=linked, BridgeUniqueid=bridge, **headers)

    def leave(self, name: str, uid: str, linked: str, bridge: str, dt: float = 0.01) -> None:
        self("BridgeLeave", dt, Channel=name, Uniqueid=uid, Linkedid=linked, BridgeUniqueid=bridge)

    def hangup(self, name: str, uid: str, linked: str, dt: float = 0.01) -> None:
        self("Hangup", dt, Channel=name, Uniqueid=uid, Linkedid=linked, Cause="16")

    def run(self, duty: DutyConfig) -> list[CallRecord]:
        tracker = CallTracker(duty)
        records = [r for m in self.messages for r in tracker.feed(m)]
        assert tracker.in_flight == 0
        return records


def _duty(**extra: list[str]) -> DutyConfig:
    return DutyConfig(numbers=[DID], extensions=["201", "202"], **extra)


def _caller_answered_by_201(s: Script, phone: str = "SIP/201-00000002") -> None:
    s.channel("SIP/trunk-00000001", CALL, CALL, DID, "13500001111", "Ring")
    s.channel(phone, "pbx1-1796100000.101", CALL, num="201")
    s.dial("SIP/trunk-00000001", CALL, phone, "pbx1-1796100000.101", CALL, "201", "201")
    s.state(phone, "pbx1-1796100000.101", CALL, "Ringing")
    s.state(phone, "pbx1-1796100000.101", CALL, "Up", dt=7.0)
    s.dial_end("SIP/trunk-00000001", CALL, phone, "pbx1-1796100000.101", CALL, "ANSWER")
    s.enter(phone, "pbx1-1796100000.101", CALL, "B1")
    s.enter("SIP/trunk-00000001", CALL, CALL, "B1")


def test_attended_transfer_with_the_phones_own_consultation_call() -> None:
    s = Script()
    _caller_answered_by_201(s)
    leg1, leg2, consult = "pbx1-1796100000.101", "pbx1-1796100010.110", "pbx1-1796100010.110"
    s("Hold", 5.0, Channel="SIP/201-00000002", Uniqueid=leg1, Linkedid=CALL)
    s.channel("SIP/201-00000005", leg2, consult, "300", "201", "Ring")  # the phone's new INVITE
    s.channel("SIP/300-00000006", "pbx1-1796100010.111", consult, num="300")
    s.dial("SIP/201-00000005", leg2, "SIP/300-00000006", "pbx1-1796100010.111", consult, "300", "300")
    s.state("SIP/300-00000006", "pbx1-1796100010.111", consult, "Up", dt=3.0)
    s.dial_end("SIP/201-00000005", leg2, "SIP/300-00000006", "pbx1-1796100010.111", consult, "ANSWER")
    s.enter("SIP/300-00000006", "pbx1-1796100010.111", consult, "B2")
    s.enter("SIP/201-00000005", leg2, consult, "B2")
    s("AttendedTransfer", 2.0, Result="Success", DestType="Bridge", DestBridgeUniqueid="B1",
      OrigTransfererChannel="SIP/201-00000002", OrigTransfererUniqueid=leg1, OrigTransfererCallerIDNum="201",
      SecondTransfererChannel="SIP/201-00000005", SecondTransfererUniqueid=leg2,
      TransfereeChannel="SIP/trunk-00000001", TransfereeUniqueid=CALL,
      TransferTargetChannel="SIP/300-00000006", TransferTargetUniqueid="pbx1-1796100010.111")
    s.leave("SIP/300-00000006", "pbx1-1796100010.111", consult, "B2")
    s.enter("SIP/300-00000006", "pbx1-1796100010.111", CALL, "B1")  # its Linkedid follows the caller
    s.leave("SIP/201-00000002", leg1, CALL, "B1")
    s.hangup("SIP/201-00000002", leg1, CALL)
    s.hangup("SIP/201-00000005", leg2, consult)
    s.leave("SIP/trunk-00000001", CALL, CALL, "B1", dt=6.0)
    s.hangup("SIP/trunk-00000001", CALL, CALL)
    s.hangup("SIP/300-00000006", "pbx1-1796100010.111", CALL)
    records = s.run(_duty())
    assert {r.linkedid for r in records} == {CALL}, "the consultation never shows as a call"
    (record,) = kept_finals(records).values()
    assert (record.outcome, record.answered_by, record.rings) == ("answered", "201", 2)
    assert (record.final_party, record.transferred_by, record.transferred_to) == ("300", "201", "300")
    assert [(t.party, round(t.seconds or 0)) for t in record.talks] == [("201", 5), ("300", 6)]


def test_mobile_in_the_ring_group_is_a_duty_phone_by_number() -> None:
    s = Script()
    s.channel("SIP/trunk-00000001", CALL, CALL, DID, "13500001111", "Ring")
    local1, local2, out = "pbx1-1796100000.102", "pbx1-1796100000.103", "pbx1-1796100000.104"
    name = "Local/FMGL-13912345678#@from-internal-00000001"
    s.channel(f"{name};1", local1, CALL)
    s.channel(f"{name};2", local2, CALL, state="Ring")
    s("LocalBridge", LocalOneChannel=f"{name};1", LocalOneUniqueid=local1,
      LocalTwoChannel=f"{name};2", LocalTwoUniqueid=local2, LocalOneLinkedid=CALL)
    s.dial("SIP/trunk-00000001", CALL, f"{name};1", local1, CALL, "FMGL-13912345678#@from-internal")
    s.channel("SIP/carrier-00000003", out, CALL)
    s.dial(f"{name};2", local2, "SIP/carrier-00000003", out, CALL, "carrier/013912345678")
    s.state("SIP/carrier-00000003", out, CALL, "Up", dt=12.0)
    s.dial_end(f"{name};2", local2, "SIP/carrier-00000003", out, CALL, "ANSWER")
    s.enter("SIP/carrier-00000003", out, CALL, "B2")
    s.enter(f"{name};2", local2, CALL, "B2")
    s.dial_end("SIP/trunk-00000001", CALL, f"{name};1", local1, CALL, "ANSWER")
    s.enter(f"{name};1", local1, CALL, "B1")
    s.enter("SIP/trunk-00000001", CALL, CALL, "B1")
    s.hangup("SIP/trunk-00000001", CALL, CALL, dt=20.0)
    (record,) = kept_finals(s.run(_duty(phones=["13912345678"]))).values()
    assert (record.answered_by, record.final_party, record.rings) == ("13912345678", "13912345678", 3)
    assert record.talks[0].seconds == pytest.approx(20.0, abs=0.1)


def test_duty_phone_named_by_device() -> None:
    s = Script()
    _caller_answered_by_201(s, phone="SIP/desk-left-00000002")
    s.hangup("SIP/trunk-00000001", CALL, CALL, dt=4.0)
    (record,) = kept_finals(s.run(_duty(phones=["SIP/desk-left=202"]))).values()
    assert (record.answered_by, record.final_party) == ("202", "202")


def test_queue_that_answers_the_caller_first_is_not_answered_by_the_pbx() -> None:
    s = Script()
    s.channel("SIP/trunk-00000001", CALL, CALL, DID, "13500001111", "Ring")
    s.state("SIP/trunk-00000001", CALL, CALL, "Up")  # Queue() answers for music on hold
    s("QueueCallerJoin", Channel="SIP/trunk-00000001", Uniqueid=CALL, Linkedid=CALL, Queue="duty")
    s.channel("SIP/201-00000002", "pbx1-1796100000.101", CALL, num="201")
    s.dial("SIP/trunk-00000001", CALL, "SIP/201-00000002", "pbx1-1796100000.101", CALL, "SIP/201", "201")
    s.state("SIP/201-00000002", "pbx1-1796100000.101", CALL, "Ringing")
    s("QueueCallerAbandon", 9.0, Channel="SIP/trunk-00000001", Uniqueid=CALL, Linkedid=CALL, Queue="duty")
    s.hangup("SIP/201-00000002", "pbx1-1796100000.101", CALL)
    s.hangup("SIP/trunk-00000001", CALL, CALL)
    (record,) = kept_finals(s.run(_duty())).values()
    assert (record.outcome, record.answered_by, record.answered_at) == ("missed_abandoned", None, None)
    assert record.rings == 2 and record.rule_met is False


def test_queue_running_before_it_answers_the_caller_is_no_answer_either() -> None:
    s = Script()
    s.channel("SIP/trunk-00000001", CALL, CALL, DID, "13500001111", "Ring")
    s("Newexten", Channel="SIP/trunk-00000001", Uniqueid=CALL, Linkedid=CALL, Application="Queue",
      AppData="duty")
    s.state("SIP/trunk-00000001", CALL, CALL, "Up")
    s.channel("SIP/201-00000002", "pbx1-1796100000.101", CALL, num="201")
    s.dial("SIP/trunk-00000001", CALL, "SIP/201-00000002", "pbx1-1796100000.101", CALL, "SIP/201", "201")
    s.state("SIP/201-00000002", "pbx1-1796100000.101", CALL, "Up", dt=11.0)
    s("AgentConnect", Channel="SIP/trunk-00000001", Uniqueid=CALL, Linkedid=CALL, Queue="duty",
      DestChannel="SIP/201-00000002", DestUniqueid="pbx1-1796100000.101", Interface="SIP/201")
    s.enter("SIP/201-00000002", "pbx1-1796100000.101", CALL, "B1")
    s.enter("SIP/trunk-00000001", CALL, CALL, "B1")
    s.hangup("SIP/trunk-00000001", CALL, CALL, dt=3.0)
    (record,) = kept_finals(s.run(_duty())).values()
    assert (record.outcome, record.answered_by, record.rings, record.rule_met) == ("answered", "201", 3, True)
    assert record.note and "AgentConnect" in record.note


def test_channels_of_calls_not_ours_stay_bounded() -> None:
    """Other PBX traffic whose hangups are never seen does not grow the tracker's memory."""
    tracker = CallTracker(_duty(), remember=100)
    s = Script()
    for n in range(1000):
        linked = f"pbx1-1796100000.{1000 + 2 * n}"
        s.channel(f"SIP/other-{n:08x}", linked, linked, "9999", "7001", "Ring")
        s.dial(f"SIP/other-{n:08x}", linked, f"SIP/7002-{n:08x}", f"pbx1-1796100000.{1001 + 2 * n}", linked, "7002")
        s.enter(f"SIP/other-{n:08x}", linked, linked, f"bridge-{n}")
    for message in s.messages:
        assert tracker.feed(message) == []
    assert len(tracker.topology.channels) <= 2 * 100 + 2


def test_did_without_area_code_and_named_only_after_the_first_event() -> None:
    """chan_sip trunks may start in ``s`` and carriers drop the area code (87654321)."""
    s = Script()
    s.channel("SIP/trunk-00000001", CALL, CALL, "s", "13500001111", "Ring")
    s("Newexten", Channel="SIP/trunk-00000001", Uniqueid=CALL, Linkedid=CALL, Exten="12345678",
      Application="Dial", AppData="SIP/201")
    s.channel("SIP/201-00000002", "pbx1-1796100000.101", CALL, num="201")
    s.dial("SIP/trunk-00000001", CALL, "SIP/201-00000002", "pbx1-1796100000.101", CALL, "201", "201")
    s.state("SIP/201-00000002", "pbx1-1796100000.101", CALL, "Up", dt=3.0)
    s.dial_end("SIP/trunk-00000001", CALL, "SIP/201-00000002", "pbx1-1796100000.101", CALL, "ANSWER")
    s.hangup("SIP/trunk-00000001", CALL, CALL, dt=2.0)
    (record,) = kept_finals(s.run(_duty())).values()
    assert (record.dialed, record.answered_by, record.rings, record.note) == (DID, "201", 1, None)
    assert record.arrived_at == T0 + timedelta(seconds=0.01), "arrival is the first event, not a guess"


def test_attended_transfer_given_up_gives_the_caller_back_to_the_officer() -> None:
    s = Script()
    _caller_answered_by_201(s)
    leg = "pbx1-1796100000.101"
    s("Hold", 4.0, Channel="SIP/201-00000002", Uniqueid=leg, Linkedid=CALL)
    s.leave("SIP/201-00000002", leg, CALL, "B1")
    s.enter("SIP/201-00000002", leg, CALL, "B9")  # the consultation bridge (no answer there)
    s.leave("SIP/201-00000002", leg, CALL, "B9", dt=8.0)
    s.enter("SIP/201-00000002", leg, CALL, "B1")  # back to the caller, no Unhold sent
    s.leave("SIP/trunk-00000001", CALL, CALL, "B1", dt=5.0)
    s.hangup("SIP/trunk-00000001", CALL, CALL)
    (record,) = kept_finals(s.run(_duty())).values()
    assert (record.final_party, record.transferred_to) == ("201", None)
    assert [(t.party, round(t.seconds or 0)) for t in record.talks] == [("201", 4), ("201", 5)]
    assert record.talk_by_party() == [("201", pytest.approx(9.0, abs=0.1))]


def test_phone_known_only_by_its_caller_id() -> None:
    """chan_sip peers named by account (``SIP/150010002``) that present their extension."""
    s = Script()
    _caller_answered_by_201(s, phone="SIP/150010002-00000002")
    s.hangup("SIP/trunk-00000001", CALL, CALL, dt=4.0)
    (record,) = kept_finals(s.run(_duty())).values()
    assert (record.answered_by, record.final_party) == ("201", "201")


def test_group_pickup_through_a_local_channel_as_asterisk_13_sends_it() -> None:
    """``*8`` from a phone not on the duty list: Pickup, then the ``;2`` half dials the
    picker, and the picker swaps in for ``;1`` in the caller's bridge (its Linkedid moved)."""
    s = Script()
    trunk, one, two, ring = "SIP/carrier-0000000c", "pbx1-1796100000.165", "pbx1-1796100000.167", "pbx1-1796100000.170"
    local = "Local/ID730150@route-00000005"
    picker, own = "SIP/150010002-0000000e", "pbx1-1796100004.172"
    s.channel(trunk, CALL, CALL, "+862712345678", "13500001111", "Ring")
    s.channel(f"{local};1", one, CALL)
    s.channel(f"{local};2", two, CALL, state="Ring")
    s("LocalBridge", LocalOneChannel=f"{local};1", LocalOneUniqueid=one, LocalTwoChannel=f"{local};2",
      LocalTwoUniqueid=two, LocalOneLinkedid=CALL)
    s.dial(trunk, CALL, f"{local};1", one, CALL, "ID730150@route")
    s.channel("SIP/150010001-0000000d", ring, CALL)
    s.dial(f"{local};2", two, "SIP/150010001-0000000d", ring, CALL, "150010001/150010001", "+862712345678")
    s.state("SIP/150010001-0000000d", ring, CALL, "Ringing")
    s.channel(picker, own, own, "*8", "150010002", "Ring")
    s("NewCallerid", Channel=picker, Uniqueid=own, Linkedid=own, CallerIDNum="202")
    s.state(picker, own, own, "Up", dt=6.0)
    s("Pickup", Channel=picker, Uniqueid=own, Linkedid=own, CallerIDNum="202",
      TargetChannel="SIP/150010001-0000000d", TargetUniqueid=ring, TargetLinkedid=CALL)
    s.dial_end(f"{local};2", two, "SIP/150010001-0000000d", ring, CALL, "CANCEL")
    s.dial(f"{local};2", two, picker, own, CALL, "150010001/150010001")
    s.dial_end(f"{local};2", two, picker, own, CALL, "ANSWER")
    s.hangup("SIP/150010001-0000000d", ring, CALL)
    s.dial_end(trunk, CALL, f"{local};1", one, CALL, "ANSWER")
    s.enter(picker, own, own, "B2")
    s.enter(f"{local};2", two, CALL, "B2")
    s.enter(f"{local};1", one, CALL, "B1")
    s.enter(trunk, CALL, CALL, "B1")
    s.leave(picker, own, CALL, "B2")
    s.leave(f"{local};1", one, CALL, "B1")
    s.enter(picker, own, CALL, "B1", swap=one)
    s.hangup(f"{local};2", two, CALL)
    s.hangup(f"{local};1", one, CALL)
    s.leave(trunk, CALL, CALL, "B1", dt=7.0)
    s.hangup(trunk, CALL, CALL)
    s.hangup(picker, own, CALL)
    records = s.run(DutyConfig(numbers=[DID], extensions=["201", "202"]))
    assert {r.linkedid for r in records} == {CALL}
    (record,) = kept_finals(records).values()
    assert (record.outcome, record.answered_by, record.picked_up_by, record.final_party) == \
        ("answered", "202", "202", "202")
    assert record.rings == 2 and record.talks[0].seconds == pytest.approx(7.0, abs=0.2)
