"""The leader on duty's 立即呼叫 / 停止呼叫 through the database, and an Originate that never
left, end to end: PagingService ↔ AmiClient ↔ the AMI peer replaying the real PBX captures.

Requests are written as the console writes them (``gateway.web.paging._request``, with
its audit entry); the pager picks them up on its next tick. The browser side is in
``tests/test_paging_console_e2e.py``.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.ami.peer import ANSWER_ACK, NO_ANSWER, RINGING, AmiPeer
from gateway.report.layout import document
from gateway.report.make import plain_text, style_of
from gateway.report.query import shift_figures
from gateway.web.paging import _request
from storage.console import AuditEntry
from storage.db import Database
from storage.faxes import Receipt
from storage.paging import PagingRequest
from storage.queries import open_items
from tests.conftest import AMI_FIXTURES
from tests.test_paging_e2e import DIRECTOR, LEADER, NIGHT, Rig, _mails, _until, rig, run


def _ask(r: Rig, kind: str, *, escalation_id: int | None = None, receipt_id: int | None = None,
         reason: str = "") -> int:
    with r.db.session() as session:
        assert _request(session, kind, escalation_id, receipt_id, reason, "zhaoling", r.clock.now(), "127.0.0.1")
        return int(session.scalar(select(PagingRequest.id).order_by(PagingRequest.id.desc())) or 0)


def _outcome(r: Rig, request_id: int) -> tuple[str, str | None, int | None]:
    with r.db.session() as session:
        row = session.get(PagingRequest, request_id)
        assert row is not None
        return row.state, row.detail, row.result_escalation_id


def _ordinary_receipt(r: Rig, seq: int) -> int:
    """A fax the machine judged ordinary (no escalation, no notice)."""
    with r.db.session() as session:
        row = Receipt(year=2026, seq=seq, received_at=r.clock.now(), pages=1, urgency=None, is_urgent=False,
                      urgency_decided_at=r.clock.now(), issuer="武汉市应急管理局", title="关于汛情的情况报告",
                      status="filed", sender="值班室")
        session.add(row)
        session.flush()
        return row.id


def test_stop_while_the_call_rings_closes_the_page_and_nobody_is_called_again(
        tmp_path: Path, database: Database) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: NO_ANSWER, DIRECTOR: ANSWER_ACK}) as r:
            r.peer.holding = True  # the leader's phone rings; its result has not come yet
            await r.urgent(301)
            (esc,) = r.escalations()
            request = _ask(r, "stop", escalation_id=esc.id, reason="已电话联系王局长本人")
            await r.after(1)
            assert _outcome(r, request) == ("done", "已停止呼叫。", esc.id)
            (esc,) = r.escalations()
            assert (esc.state, esc.stopped_by, esc.stop_reason, esc.closed_at) == (
                "stopped", "zhaoling", "已电话联系王局长本人", NIGHT + timedelta(seconds=1))
            assert [a.result for a in esc.attempts] == ["stopped"]
            r.peer.release()  # the rung phone's no-answer arrives late: ignored
            for _ in range(12):
                await r.after(60)
            assert [n for n, _ in r.calls()] == [LEADER], "no further Originate after the stop"
            assert _mails(r) == [], "a stop is the leader's decision: no fallback mail"
            with r.db.session() as session:
                (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "page.stop")).all()
                assert (entry.actor, entry.target, entry.new["reason"]) == (
                    "zhaoling", f"escalation:{esc.id}", "已电话联系王局长本人")
            report = plain_text(document(shift_figures(r.db, r.config, "2026-11-24/night"), style_of(r.config)))
            line = next(x for x in report.splitlines() if x.startswith("通知1："))
            assert "人工停止（zhaoling 于 23:00:01，原因：已电话联系王局长本人）" in line, line
            assert "人工停止" in report.split("八、紧急来文电话通知", 1)[1].split("九、", 1)[0]
            handover = report.split("九、交接班事项", 1)[1]
            assert "未确认的电话通知：0 项" in handover, "a stopped page is no open item for the next shift"
            with r.db.session() as session:
                assert open_items(session, r.clock.now()).pages == [], "nor on 值班台"

    run(scenario)


def test_stop_hangs_up_the_call_still_ringing(tmp_path: Path, database: Database) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: RINGING}) as r:
            await r.urgent(306)
            (esc,) = r.escalations()
            assert esc.attempts[0].result == "sent"
            channel = r.peer.originates[0]
            _ask(r, "stop", escalation_id=esc.id, reason="本人已到值班室")
            await r.after(1)
            assert r.escalations()[0].state == "stopped"
            assert len(r.peer.hangups) == 1 and r.peer.hangups[0].startswith("PJSIP/trunk-"), (
                "the ringing channel (named by its VarSet PAGE_ID), not the Originate's dial string")
            assert channel.number == LEADER and len(r.calls()) == 1

    run(scenario)


def test_page_now_places_the_retry_at_once(tmp_path: Path, database: Database) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: NO_ANSWER, DIRECTOR: ANSWER_ACK}) as r:
            await r.urgent(302)
            (esc,) = r.escalations()
            assert [a.result for a in esc.attempts] == ["no_answer", "planned"], "the retry waits 60 s"
            request = _ask(r, "page_now", escalation_id=esc.id)
            await r.after(1)
            assert [n for n, _ in r.calls()][:2] == [LEADER, LEADER], "placed at once, not 59 s later"
            assert _outcome(r, request)[0] == "done"
            (esc,) = r.escalations()
            assert esc.attempts[1].sent_at == NIGHT + timedelta(seconds=1)
            assert [n for n, _ in r.calls()] == [LEADER, LEADER, DIRECTOR], "then the chain goes on"
            assert esc.state == "acknowledged"

    run(scenario)


def test_page_now_while_a_call_rings_is_refused_with_a_reason(tmp_path: Path, database: Database) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: NO_ANSWER}) as r:
            r.peer.holding = True
            await r.urgent(303)
            (esc,) = r.escalations()
            request = _ask(r, "page_now", escalation_id=esc.id)
            await r.after(1)
            state, detail, _ = _outcome(r, request)
            assert state == "refused" and "振铃" in (detail or "")
            assert len(r.calls()) == 1, "one call at a time"

    run(scenario)


def test_page_now_for_a_fax_judged_ordinary_opens_an_escalation(tmp_path: Path, database: Database) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: ANSWER_ACK}) as r:
            receipt_id = _ordinary_receipt(r, 304)
            await r.after(20)  # the sweep leaves an ordinary fax alone
            assert r.calls() == [] and r.escalations() == []
            request = _ask(r, "page_now", receipt_id=receipt_id)
            await r.after(1)
            (esc,) = r.escalations()
            assert _outcome(r, request) == ("done", "已开始呼叫。", esc.id)
            assert esc.receipt_ids == [receipt_id] and [n for n, _ in r.calls()] == [LEADER]
            assert esc.state == "acknowledged" and esc.acknowledged_by == "王局长"
            again = _ask(r, "page_now", escalation_id=esc.id)  # 重新呼叫 of a closed page
            await r.after(1)
            assert _outcome(r, again)[0] == "done" and len(r.escalations()) == 2
            assert len(r.calls()) == 2

    run(scenario)


def test_stop_of_a_page_already_over_is_refused(tmp_path: Path, database: Database) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: ANSWER_ACK}) as r:
            await r.urgent(305)
            (esc,) = r.escalations()
            request = _ask(r, "stop", escalation_id=esc.id, reason="误报")
            await r.after(1)
            assert _outcome(r, request)[0] == "refused"
            assert r.escalations()[0].state == "acknowledged"

    run(scenario)


# -- an Originate that never left vs one whose reply was lost (issue 8, point 5) ---------------


def test_an_originate_that_never_left_falls_back_at_once_and_is_retried(
        tmp_path: Path, database: Database, caplog: pytest.LogCaptureFixture) -> None:
    """The link drops in the instant after the pager saw it up: the client says ``AmiNotSent``.

    Setting ``connected`` while the PBX is gone puts the real client in exactly that
    instant (the pager looked, the socket is gone), deterministically."""
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: ANSWER_ACK}) as r:
            port = r.peer.port
            await r.peer.stop()
            await _until(lambda: not r.client.connected.is_set())
            r.client.connected.set()
            with caplog.at_level(logging.INFO):
                receipt_id = await r.urgent(310)
            r.client.connected.clear()  # what the client knows again
            (esc,) = r.escalations()
            (attempt,) = esc.attempts
            assert attempt.result == "planned" and attempt.sent_at is None, "not waiting 60 s as no answer"
            assert "not sent" in (attempt.detail or "")
            (mail,) = _mails(r)
            assert (mail.receipt_ids, mail.created_at) == ([receipt_id], NIGHT), "the secretariat is mailed at once"
            assert any("cannot be placed" in rec.getMessage() for rec in caplog.records
                       if rec.levelno >= logging.ERROR)
            back = AmiPeer.from_fixtures(AMI_FIXTURES, behaviours={LEADER: ANSWER_ACK}, port=port,
                                         now=lambda: r.clock.now().timestamp())
            await back.start()
            r.peer = back
            try:
                await _until(r.client.connected.is_set)
                await r.after(1)
                assert [c.action_id for c in back.originates] == [attempt.action_id], "retried under its ActionID"
                assert r.escalations()[0].state == "acknowledged"
            finally:
                await back.stop()

    run(scenario)


def test_an_originate_whose_reply_was_lost_waits_for_its_result(tmp_path: Path, database: Database) -> None:
    """The PBX read the Originate and the link died: the phone may ring, so no second call
    now and no fallback; without a result it counts as no answer after ring timeout + margin."""
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: NO_ANSWER, DIRECTOR: ANSWER_ACK}) as r:
            r.peer.dropping = True
            await r.urgent(311)
            r.peer.dropping = False
            (esc,) = r.escalations()
            (attempt,) = esc.attempts
            assert attempt.result == "sent" and len(r.calls()) == 1
            await _until(r.client.connected.is_set)
            await r.after(59)
            assert len(r.calls()) == 1 and _mails(r) == []
            await r.after(1)
            (esc,) = r.escalations()
            assert [a.result for a in esc.attempts][:2] == ["no_answer", "no_answer"]
            assert [n for n, _ in r.calls()] == [LEADER, LEADER, DIRECTOR]

    run(scenario)
