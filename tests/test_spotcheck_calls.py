"""Spot checks placed through the real AMI client against the peer that replays the real
Asterisk 22 captures of an Originate: every outcome, rings from the events' own times, a
retry on busy, the collision with an urgent page, and the concurrency limit."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.ami.framing import iter_messages
from gateway.ami.peer import ANSWER_ACK, ANSWER_NO_KEY, BUSY, NO_ANSWER, UNREACHABLE
from gateway.calls.rings import rings_heard
from storage.db import Database
from tests.conftest import AMI_FIXTURES
from tests.spotcheck_rig import NIGHT, rig, run

WUHAN, HUANGSHI, XIANGYANG, PRISON, DRUG = "02785550001", "07146660002", "13700001111", "02788880004", "13900002222"


def _recorded_ring_seconds(name: str) -> tuple[Decimal, Decimal]:
    """From the capture itself: when the far end started ringing, and when it answered (or the end)."""
    messages = [m for m in iter_messages((AMI_FIXTURES / name).read_bytes()) if m.get("Timestamp")]
    ringing = next(Decimal(m["Timestamp"]) for m in messages
                   if m.event == "DialState" and m.get("DialStatus") == "RINGING")
    end = next(Decimal(m["Timestamp"]) for m in messages
               if (m.event == "Newstate" and m.get("ChannelState") == "6") or m.event == "Hangup")
    return ringing, end


@pytest.mark.parametrize(("behaviour", "outcome", "capture", "digit"), [
    (ANSWER_ACK, "answered", "page_ack.ami", "1"),
    (ANSWER_NO_KEY, "no_key", "page_ack.ami", None),
    (NO_ANSWER, "no_answer", "page_noanswer.ami", None),
])
def test_every_outcome_with_rings_from_the_events_times(tmp_path: Path, database: Database, behaviour: str,
                                                        outcome: str, capture: str, digit: str | None) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {WUHAN: behaviour}) as r:
            (check_id,) = r.due_now(WUHAN)
            await r.pass_()
            await r.until(lambda: r.checks([check_id])[0].state == "done")
            (check,) = r.checks([check_id])
            (call,) = r.peer.originates
            assert call.fields["Channel"] == f"PJSIP/{WUHAN}@trunk"
            assert (call.fields["Context"], call.fields["Exten"], call.fields["Timeout"]) == (
                "dutygw-spotcheck", "s", "30000")
            assert call.variables["SPOT_ID"] == call.action_id == check.attempts[0].action_id
            ringing, end = _recorded_ring_seconds(capture)
            seconds = float(end - ringing)
            assert check.outcome == outcome and check.digit == digit and check.tries == 1
            assert check.ring_seconds == pytest.approx(seconds, abs=0.002)
            assert check.rings == rings_heard(seconds) == (2 if behaviour != NO_ANSWER else 7)
            assert check.rule_met is (behaviour == ANSWER_ACK), "a greeting within 3 rings is no person"
            assert check.ringing_at == NIGHT + timedelta(seconds=float(ringing - _first_stamp(capture)))
            assert (check.answered_at is not None) is (behaviour != NO_ANSWER)
            assert check.attempts[0].time_source == "pbx"

    run(scenario)


def _first_stamp(name: str) -> Decimal:
    """The peer starts a call's recorded timeline at the Originate: its first event after "queued"."""
    messages = list(iter_messages((AMI_FIXTURES / name).read_bytes()))
    queued = next(i for i, m in enumerate(messages) if "successfully queued" in (m.get("Message") or ""))
    return next(Decimal(m["Timestamp"]) for m in messages[queued + 1:] if m.get("Timestamp"))


def test_busy_is_tried_again_after_the_gap_and_each_try_is_shown(tmp_path: Path, database: Database) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {HUANGSHI: BUSY}) as r:
            (check_id,) = r.due_now(HUANGSHI)
            await r.pass_()
            await r.until(lambda: len(r.checks([check_id])[0].attempts) == 1
                          and r.checks([check_id])[0].attempts[0].outcome is not None)
            (check,) = r.checks([check_id])
            assert check.state == "planned" and check.outcome is None, "a busy unit is not marked absent at once"
            assert check.due_at == NIGHT + timedelta(seconds=300)
            assert (check.attempts[0].outcome, check.attempts[0].hangup_cause) == ("busy", 17)
            r.later(299)
            await r.pass_()
            assert len(r.peer.originates) == 1, "the retry waits retry_gap_seconds"
            r.peer.behaviours[HUANGSHI] = ANSWER_ACK  # the unit's real call has ended
            r.later(1)
            await r.pass_()
            await r.until(lambda: r.checks([check_id])[0].state == "done")
            (check,) = r.checks([check_id])
            assert [a.outcome for a in check.attempts] == ["busy", "answered"]
            assert (check.outcome, check.tries, check.rings, check.rule_met) == ("answered", 2, 2, True)
            assert [o.number for o in r.peer.originates] == [HUANGSHI, HUANGSHI]
            assert len({o.action_id for o in r.peer.originates}) == 2

    run(scenario)


def test_busy_on_every_try_is_busy(tmp_path: Path, database: Database) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {HUANGSHI: BUSY}, busy_tries=2, retry_gap_seconds=60) as r:
            (check_id,) = r.due_now(HUANGSHI)
            await r.pass_()
            await r.until(lambda: r.checks([check_id])[0].state == "planned"
                          and r.checks([check_id])[0].tries == 1)
            r.later(60)
            await r.pass_()
            await r.until(lambda: r.checks([check_id])[0].state == "done")
            (check,) = r.checks([check_id])
            assert (check.outcome, check.tries, check.rule_met) == ("busy", 2, False)
            assert [a.outcome for a in check.attempts] == ["busy", "busy"]

    run(scenario)


def test_an_unreachable_number_is_unreachable(tmp_path: Path, database: Database) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {PRISON: UNREACHABLE}) as r:
            (check_id,) = r.due_now(PRISON)
            await r.pass_()
            await r.until(lambda: r.checks([check_id])[0].state == "done")
            (check,) = r.checks([check_id])
            assert (check.outcome, check.tries, check.rings, check.rule_met) == ("unreachable", 1, None, False)
            assert check.attempts[0].hangup_cause == 1

    run(scenario)


def test_never_more_checks_at_once_than_configured(tmp_path: Path, database: Database) -> None:
    async def scenario() -> None:
        behaviours = {n: ANSWER_ACK for n in (WUHAN, HUANGSHI, XIANGYANG, PRISON, DRUG)}
        async with rig(tmp_path, database, behaviours, max_concurrent=2) as r:
            ids = r.due_now(WUHAN, HUANGSHI, XIANGYANG, PRISON, DRUG)
            r.peer.holding = True  # the calls ring on: their events are held back
            await r.pass_()
            assert len(r.peer.originates) == 2
            await r.pass_()
            assert len(r.peer.originates) == 2, "two on the trunk: the third waits"
            r.peer.holding = False
            r.peer.release()
            await r.until(lambda: sum(c.state == "done" for c in r.checks(ids)) == 2)
            for _ in range(3):
                r.later(10)  # the first calls' recorded stories last 8.7 s
                await r.pass_()
            await r.until(lambda: all(c.state == "done" for c in r.checks(ids)))
            assert len(r.peer.originates) == 5 and r.runner.most_in_flight == 2
            assert _most_overlapping(r.checks(ids)) <= 2

    run(scenario)


def _most_overlapping(checks: list) -> int:  # type: ignore[type-arg]
    spans = [(a.sent_at, a.ended_at) for c in checks for a in c.attempts]
    return max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)


def test_an_urgent_page_has_the_trunk_and_the_check_is_moved_not_dropped(tmp_path: Path,
                                                                         database: Database) -> None:
    from gateway.config import ChainStep, PagingConfig
    from gateway.paging.pager import PagingService
    from storage.faxes import Receipt

    director = "13900004444"

    async def scenario() -> None:
        async with rig(tmp_path, database, {director: ANSWER_ACK, WUHAN: ANSWER_ACK}) as r:
            config = r.config.__class__(**{**r.config.__dict__, "paging": PagingConfig(
                chain=[ChainStep("办公室主任", name="李主任", number=director)], sounds_dir=tmp_path / "sounds")})
            pager = PagingService(config, database, r.clock, r.client, serve_agi=False)
            r.listeners.append(pager.on_ami_message)
            await pager.start()
            try:
                with database.session() as session:
                    receipt = Receipt(year=2026, seq=1, received_at=r.clock.now(), pages=1, urgency="特急",
                                      is_urgent=True, urgency_decided_at=r.clock.now(), issuer="省应急管理厅",
                                      title="关于防汛的紧急通知", status="reading", sender="值班室")
                    session.add(receipt)
                    session.flush()
                    receipt_id = receipt.id
                (check_id,) = r.due_now(WUHAN)
                r.peer.holding = True  # the leader's phone is still ringing
                await pager.on_urgent_receipt(receipt_id)
                await pager.idle()
                await r.pass_()
                assert [o.number for o in r.peer.originates] == [director], "the page goes first"
                (check,) = r.checks([check_id])
                assert check.state == "planned" and check.moves == 1
                assert check.due_at == NIGHT + timedelta(seconds=300) and check.drawn_at == NIGHT
                assert check.move_reason == "紧急呼叫占用线路，顺延"
                r.peer.holding = False
                r.peer.release()
                await r.settle()
                await pager.idle()
                r.later(300)
                await r.pass_()
                await r.until(lambda: r.checks([check_id])[0].state == "done")
                assert [o.number for o in r.peer.originates] == [director, WUHAN]
                (check,) = r.checks([check_id])
                assert (check.outcome, check.moves, check.drawn_at) == ("answered", 1, NIGHT)
            finally:
                await pager.stop()

    run(scenario)


def test_a_call_cut_off_by_a_restart_is_placed_again_and_both_tries_are_shown(tmp_path: Path,
                                                                             database: Database) -> None:
    from gateway.spotcheck.runner import SpotCheckRunner

    async def scenario() -> None:
        async with rig(tmp_path, database, {WUHAN: ANSWER_ACK}, busy_tries=1) as r:
            (check_id,) = r.due_now(WUHAN)
            r.peer.holding = True
            await r.pass_()
            assert r.checks([check_id])[0].state == "calling"
            await r.runner.stop()  # the gateway goes down with the call ringing
            r.peer.discard_held()
            r.peer.holding = False
            r.runner = SpotCheckRunner(r.config, database, r.clock, r.client, tick_seconds=3600)
            r.listeners[:] = [r.runner.on_ami_message]
            await r.runner.start()
            (check,) = r.checks([check_id])
            assert (check.state, check.attempts[0].outcome, check.tries) == ("planned", "unknown", 0)
            await r.pass_()
            await r.until(lambda: r.checks([check_id])[0].state == "done")
            (check,) = r.checks([check_id])
            assert [a.outcome for a in check.attempts] == ["unknown", "answered"]
            assert [a.action_id for a in check.attempts] == [f"spot-{check_id}-1", f"spot-{check_id}-2"]
            assert (check.outcome, check.tries) == ("answered", 1)

    run(scenario)


def test_a_call_whose_result_never_comes_is_unknown_and_tried_again(tmp_path: Path, database: Database) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {WUHAN: ANSWER_ACK}, busy_tries=2) as r:
            (check_id,) = r.due_now(WUHAN)
            r.peer.holding = True
            await r.pass_()
            r.peer.discard_held()  # the PBX never reports on it (a lost connection, say)
            r.peer.holding = False
            r.later(59)
            await r.pass_()
            assert r.checks([check_id])[0].state == "calling", "ring limit 30 s + margin 30 s not yet over"
            r.later(2)
            await r.pass_()
            (check,) = r.checks([check_id])
            assert (check.state, check.attempts[0].outcome) == ("planned", "unknown")
            assert check.attempts[0].detail == "未收到交换机的呼叫结果"
            r.later(300)
            await r.pass_()
            await r.until(lambda: r.checks([check_id])[0].state == "done")
            assert [a.outcome for a in r.checks([check_id])[0].attempts] == ["unknown", "answered"]

    run(scenario)
