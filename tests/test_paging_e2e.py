"""Paging end to end: PagingService ↔ AmiClient ↔ the AMI peer replaying the real PBX captures.

The receipts are written as the fax intake files them and handed to ``on_urgent_receipt``
(what ``FaxService`` calls after page 1's urgency decision); the time is a FixedClock at
night in Shanghai, moved by hand.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import logging
import smtplib
import socket
import wave
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.ami.client import AmiClient
from gateway.ami.framing import iter_messages
from gateway.ami.message import AmiMessage
from gateway.ami.peer import ANSWER_ACK, ANSWER_NO_KEY, ANSWER_ONLY, BUSY, NO_ANSWER, AmiPeer
from gateway.clock import UTC, FixedClock
from gateway.config import (
    AmiConfig,
    ChainStep,
    Config,
    DutyConfig,
    MailConfig,
    PagingConfig,
    PathsConfig,
    SmtpConfig,
)
from gateway.paging.agi import page_text
from gateway.paging.pager import PagingService
from gateway.shifts.roster import OnDuty, store_roster
from storage.db import Database
from storage.faxes import Receipt
from storage.paging import Escalation, OutboundMail, PageAttempt
from tests.conftest import AMI_FIXTURES, FAX_FIXTURES, ROOT
from tests.test_agi import FakeAsterisk, _dial_fastagi

NIGHT = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tuesday 23:00 in Shanghai: a workday night
LEADER, DIRECTOR = "13700003333", "13900004444"
TITLE = "关于做好今冬明春森林防火工作的紧急通知"
ISSUER = "湖北省应急管理厅"
DOC_NO = "鄂应急〔2026〕37号"


def _config(tmp_path: Path, port: int, agi_port: int = 4573) -> Config:
    return Config(
        duty=DutyConfig(numbers=["02787654321"], extensions=["8001", "8002"], room_phone="027-87654321"),
        ami=AmiConfig(port=port, secret="x", reconnect_min_seconds=0.05, reconnect_max_seconds=0.2,
                      ping_interval_seconds=30),
        smtp=SmtpConfig(port=_free_port()),
        paths=PathsConfig(data_dir=tmp_path),
        mail=MailConfig(secretariat=["mishuke@duty.local"]),
        paging=PagingConfig(chain=[ChainStep("带班领导", number="roster"),
                                   ChainStep("办公室主任", name="李主任", number=DIRECTOR)],
                            agi_port=agi_port, sounds_dir=tmp_path / "sounds"),
    )


@dataclass
class Rig:
    config: Config
    db: Database
    clock: FixedClock
    peer: AmiPeer
    client: AmiClient
    service: PagingService
    stop_client: asyncio.Event
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    serve_agi: bool = False

    def receipt(self, seq: int, *, classified: str | None = None) -> int:
        with self.db.session() as session:
            row = Receipt(year=2026, seq=seq, received_at=self.clock.now(), pages=3, urgency="特急",
                          is_urgent=True, urgency_decided_at=self.clock.now(), issuer=ISSUER, title=TITLE,
                          doc_number=DOC_NO, classification=classified, status="reading", sender="值班室")
            session.add(row)
            session.flush()
            return row.id

    async def urgent(self, seq: int, **kwargs: Any) -> int:
        receipt_id = self.receipt(seq, **kwargs)
        await self.service.on_urgent_receipt(receipt_id)
        await self.settle()
        return receipt_id

    async def settle(self) -> None:
        """Let the peer play every scripted call and the service apply what it heard."""
        for _ in range(5):
            await self.service.idle()
            await self.peer.settle()
            await asyncio.sleep(0.05)
        await self.service.idle()

    async def after(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await self.service.tick()
        await self.settle()

    def escalations(self) -> list[Escalation]:
        with self.db.session() as session:
            rows = session.scalars(select(Escalation).order_by(Escalation.id)).all()
            for row in rows:
                list(row.attempts)
            return list(rows)

    def calls(self) -> list[tuple[str, str]]:
        return [(o.number, o.action_id) for o in self.peer.originates]

    async def restart_service(self) -> None:
        await self.service.stop()
        self.service = PagingService(self.config, self.db, self.clock, self.client, serve_agi=self.serve_agi)
        self.client.on_message = self.service.on_ami_message
        await self.service.start()
        await self.settle()


@asynccontextmanager
async def rig(tmp_path: Path, database: Database, behaviours: dict[str, str],
              serve_agi: bool = False) -> AsyncIterator[Rig]:
    clock = FixedClock(NIGHT)
    peer = AmiPeer.from_fixtures(AMI_FIXTURES, behaviours=behaviours, now=lambda: clock.now().timestamp())
    port = await peer.start()
    config = _config(tmp_path, port, agi_port=0 if serve_agi else 4573)
    with database.session() as session:
        store_roster(session, [OnDuty(date(2026, 11, 24), "night", "王局长", LEADER)], NIGHT)
    holder: list[PagingService] = []
    client = AmiClient(config.ami, clock=clock, on_message=lambda m: holder[0].on_ami_message(m))
    service = PagingService(config, database, clock, client, serve_agi=serve_agi)
    holder.append(service)
    stop = asyncio.Event()
    test_rig = Rig(config, database, clock, peer, client, service, stop, serve_agi=serve_agi)
    test_rig.tasks.append(asyncio.create_task(client.run(stop)))
    await asyncio.wait_for(client.connected.wait(), 5)
    await service.start()
    client.on_message = lambda m: test_rig.service.on_ami_message(m)
    try:
        yield test_rig
    finally:
        await test_rig.service.stop()
        stop.set()
        await asyncio.gather(*test_rig.tasks, return_exceptions=True)
        await peer.stop()


def run(test: Callable[[], Any], timeout: float = 60) -> None:
    asyncio.run(asyncio.wait_for(test(), timeout))


def test_urgent_fax_at_23_pages_the_leader_who_presses_1(tmp_path: Path, database: Database) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: ANSWER_ACK}) as r:
            receipt_id = await r.urgent(137)
            (call,) = r.peer.originates
            assert (call.channel, call.number) == (f"PJSIP/{LEADER}@trunk", LEADER)
            token = call.variables["PAGE_ID"]
            assert token != call.action_id and len(token) >= 24, "PAGE_ID is an unguessable token, not the ActionID"
            assert call.fields == {"Channel": f"PJSIP/{LEADER}@trunk", "Context": "paging", "Exten": "ack",
                                   "Priority": "1", "Async": "true", "Timeout": "30000",
                                   "CallerID": "值班室 <02787654321>"}
            assert call.variables["PAGE_AGI"] == "agi://127.0.0.1:4573/page"
            assert call.variables["PAGE_NUMBER"] == LEADER
            spoken = page_text(call.variables["PAGE_TEXT_B64"])
            assert spoken.startswith("这里是政务值班室") and "特急" in spoken and spoken.endswith("按1确认收到，按2重听。")
            (esc,) = r.escalations()
            assert esc.receipt_ids == [receipt_id] and esc.state == "acknowledged" and esc.deadline_met is True
            assert (esc.acknowledged_by, esc.acknowledged_number, esc.acknowledged_at) == ("王局长", LEADER, NIGHT)
            (attempt,) = esc.attempts
            assert (attempt.action_id, attempt.result, attempt.channel) == (call.action_id, "acknowledged",
                                                                           "PJSIP/trunk-00000040")
            assert attempt.page_token == token
            await r.after(600)
            assert len(r.peer.originates) == 1, "an acknowledged receipt is never paged again"
            await r.service.on_urgent_receipt(receipt_id)
            await r.settle()
            assert len(r.peer.originates) == 1

    run(scenario)


def test_no_answer_is_retried_then_the_next_person_is_called(tmp_path: Path, database: Database) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: NO_ANSWER, DIRECTOR: ANSWER_ACK}) as r:
            await r.urgent(140)
            assert [n for n, _ in r.calls()] == [LEADER]
            await r.after(30)
            assert [n for n, _ in r.calls()] == [LEADER], "the retry waits attempt_interval_seconds"
            await r.after(30)
            assert [n for n, _ in r.calls()] == [LEADER, LEADER, DIRECTOR]
            (esc,) = r.escalations()
            assert [a.result for a in esc.attempts] == ["no_answer", "no_answer", "acknowledged"]
            assert esc.state == "acknowledged" and esc.acknowledged_by == "李主任" and esc.deadline_met
            assert len({key for _, key in r.calls()}) == 3

    run(scenario)


@pytest.mark.parametrize("behaviour", [BUSY, ANSWER_NO_KEY])
def test_busy_or_answered_without_1_is_a_failed_attempt(tmp_path: Path, database: Database, behaviour: str) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: behaviour, DIRECTOR: ANSWER_ACK}) as r:
            await r.urgent(141)
            await r.after(60)
            (esc,) = r.escalations()
            expected = "busy" if behaviour == BUSY else "not_acknowledged"
            assert [a.result for a in esc.attempts] == [expected, expected, "acknowledged"]
            assert [n for n, _ in r.calls()] == [LEADER, LEADER, DIRECTOR]

    run(scenario)


def test_restart_mid_escalation_resumes_without_calling_twice(tmp_path: Path, database: Database) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: NO_ANSWER, DIRECTOR: ANSWER_ACK}) as r:
            r.peer.holding = True
            await r.urgent(150)
            assert len(r.calls()) == 1
            # the gateway restarts while the first call rings; its result went to the old gateway
            await r.service.stop()
            r.peer.discard_held()
            r.peer.holding = False
            await r.restart_service()
            assert len(r.calls()) == 1, "the sent attempt is not placed again"
            await r.after(59)
            assert len(r.calls()) == 1
            # 30 s ring + 30 s margin: no answer. The retry falls due with the AMI link down
            # (as the client marks it when the PBX goes away): planned, committed, not sent.
            r.client.connected.clear()
            await r.after(1)
            (esc,) = r.escalations()
            assert [a.result for a in esc.attempts] == ["no_answer", "planned"]
            planned_key = esc.attempts[-1].action_id
            await r.service.stop()
            r.client.connected.set()
            await r.restart_service()
            assert [n for n, _ in r.calls()] == [LEADER, LEADER, DIRECTOR]
            assert r.calls()[1][1] == planned_key, "the planned attempt is sent under its own ActionID"
            keys = [k for _, k in r.calls()]
            assert len(keys) == len(set(keys)), "nobody called twice for the same attempt"
            (esc,) = r.escalations()
            assert [a.result for a in esc.attempts] == ["no_answer", "no_answer", "acknowledged"]
            assert esc.state == "acknowledged"

    run(scenario)


def test_classified_fax_leaves_no_content_in_the_call_or_mail(tmp_path: Path, database: Database) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: ANSWER_ACK}) as r:
            await r.urgent(160, classified="机密")
            (call,) = r.peer.originates
            spoken = page_text(call.variables["PAGE_TEXT_B64"])
            every_variable = "".join(call.variables.values()) + spoken
            for secret in (TITLE, ISSUER, DOC_NO, "森林防火", "应急管理厅", "37号"):
                assert secret not in every_variable
            assert "传真" in spoken and "按1确认收到" in spoken
            with r.db.session() as session:
                for mail in session.scalars(select(OutboundMail)).all():
                    for secret in (TITLE, ISSUER, DOC_NO):
                        assert secret not in mail.subject + mail.body

    run(scenario)


def test_three_urgent_faxes_in_two_minutes_make_one_escalation(tmp_path: Path, database: Database) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: NO_ANSWER, DIRECTOR: ANSWER_ACK}) as r:
            first = await r.urgent(170)
            r.peer.behaviours[LEADER] = ANSWER_ACK
            r.clock.advance(40)
            second = await r.urgent(171)
            r.clock.advance(15)
            third = await r.urgent(172)
            await r.after(5)  # 60 s after the first call: the retry announces all three
            (esc,) = r.escalations()
            assert esc.receipt_ids == [first, second, third]
            assert [a.receipt_ids for a in esc.attempts] == [[first], [first, second, third]]
            assert esc.state == "acknowledged"
            (_, announced) = r.peer.originates
            assert "现有三份紧急传真" in page_text(announced.variables["PAGE_TEXT_B64"])
            assert len(r.peer.originates) == 2, "one call per attempt, not one per fax"

    run(scenario)


def test_burst_right_after_an_acknowledged_page_is_one_more_call(tmp_path: Path, database: Database) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: ANSWER_ACK}) as r:
            await r.urgent(180)
            r.clock.advance(30)
            await r.urgent(181)
            r.clock.advance(60)
            await r.urgent(182)
            assert len(r.peer.originates) == 1, "waits for the coalescing window"
            await r.after(90)  # 180 s after the first page opened
            assert len(r.peer.originates) == 2
            announced = page_text(r.peer.originates[1].variables["PAGE_TEXT_B64"])
            assert "现有两份紧急传真" in announced
            first, second = r.escalations()
            assert (first.state, second.state, len(second.receipt_ids)) == ("acknowledged", "acknowledged", 2)

    run(scenario)


def test_day_shift_urgent_fax_is_mailed_not_paged(tmp_path: Path, database: Database) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: ANSWER_ACK}) as r:
            r.clock.set(datetime(2026, 11, 24, 2, 0, tzinfo=UTC))  # Tuesday 10:00
            await r.urgent(190)
            assert r.peer.originates == [] and r.escalations() == []
            with r.db.session() as session:
                (mail,) = session.scalars(select(OutboundMail)).all()
                assert mail.kind == "urgent_notice" and mail.recipients == ["mishuke@duty.local"]

    run(scenario)


def test_attempt_rows_carry_the_whole_story(tmp_path: Path, database: Database) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: ANSWER_ACK}) as r:
            await r.urgent(200)
            with r.db.session() as session:
                (attempt,) = session.scalars(select(PageAttempt)).all()
                assert (attempt.role, attempt.name, attempt.number, attempt.step, attempt.try_no) == (
                    "带班领导", "王局长", LEADER, 0, 0)
                assert attempt.planned_at == attempt.sent_at == attempt.answered_at == NIGHT
                assert attempt.ended_at == NIGHT and attempt.detail == "pressed 1"

    run(scenario)


def test_deadline_missed_is_recorded(tmp_path: Path, database: Database) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: NO_ANSWER, DIRECTOR: NO_ANSWER}) as r:
            await r.urgent(210)
            for _ in range(12):
                await r.after(60)
            (esc,) = r.escalations()
            assert esc.state == "exhausted" and esc.deadline_met is False
            assert [a.number for a in esc.attempts] == [LEADER, LEADER, DIRECTOR, DIRECTOR] * 2
            assert len(r.peer.originates) == 8
            with r.db.session() as session:
                (mail,) = session.scalars(select(OutboundMail)).all()
                assert (mail.kind, mail.recipients, mail.receipt_ids) == (
                    "urgent_notice", ["mishuke@duty.local"], esc.receipt_ids), "nobody answered: mailed instead"

    run(scenario)



def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _asterisk_fax_mail(tiff: Path, received: datetime) -> EmailMessage:
    """The mail the dialplan's hangup handler sends for a fax ReceiveFAX took in."""
    spec = importlib.util.spec_from_file_location("dutygw_fax_mail", ROOT / "dialplan" / "agi" / "dutygw_fax_mail.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = module.parse_args(["--file", str(tiff), "--status", "SUCCESS", "--error", "NO_ERROR", "--pages", "3",
                              "--station", "0566 2432706", "--callerid", "05662432706",
                              "--received", f"{received.timestamp():.0f}"])
    return module.build_message(args)  # type: ignore[no-any-return]


@pytest.mark.ocr
def test_urgent_fax_mailed_by_the_pbx_at_23_pages_the_leader(tmp_path: Path, database: Database) -> None:
    """The whole path: SMTP DATA → spool → OCR of page 1 → urgency → policy → Originate → press 1."""
    from gateway.fax.service import FaxService

    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: ANSWER_ACK}) as r:
            fax = FaxService(r.config, r.db, r.clock, on_urgency=r.service.on_urgent_receipt)
            await fax.start()
            try:
                message = _asterisk_fax_mail(FAX_FIXTURES / "fax_012.tif", NIGHT)
                await asyncio.to_thread(_send, r.config, message)
                while not r.peer.originates:
                    await asyncio.sleep(0.05)
                await fax.idle()
                await r.settle()
            finally:
                await fax.stop()
            (call,) = r.peer.originates
            assert call.number == LEADER
            spoken = page_text(call.variables["PAGE_TEXT_B64"])
            assert "加急" in spoken and "按1确认收到" in spoken
            (esc,) = r.escalations()
            with r.db.session() as session:
                receipt = session.get(Receipt, esc.receipt_ids[0])
                assert receipt is not None and receipt.is_urgent and receipt.urgency == "加急"
            assert esc.state == "acknowledged" and esc.deadline_met

    run(scenario, timeout=600)


def _send(config: Config, message: EmailMessage) -> None:
    with smtplib.SMTP(config.smtp.host, config.smtp.port, timeout=60) as smtp:
        smtp.send_message(message)


@pytest.mark.parametrize("behaviour", [ANSWER_ACK, ANSWER_NO_KEY, NO_ANSWER, BUSY])
def test_peer_rewrites_every_recorded_name(behaviour: str) -> None:
    """Each scripted story carries the new call's ids only, and ends the way the PBX ends it."""
    from gateway.ami.framing import format_message

    async def scenario() -> list[AmiMessage]:
        peer = AmiPeer.from_fixtures(AMI_FIXTURES, default=behaviour, now=lambda: NIGHT.timestamp())
        port = await peer.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        action = ("Action: Login\r\nActionID: l1\r\nUsername: u\r\nSecret: s\r\n\r\n"
                  "Action: Originate\r\nActionID: dutygw-page-9-1\r\nChannel: PJSIP/18800001111@trunk\r\n"
                  "Variable: PAGE_ID=dutygw-page-9-1,PAGE_NUMBER=18800001111\r\n\r\n")
        writer.write(action.encode())
        await writer.drain()
        while not peer.originates:  # the peer has read the Originate and started its story
            await asyncio.sleep(0.01)
        await peer.settle()  # every scripted event is written; the Logoff reply comes after them
        writer.write(b"Action: Logoff\r\nActionID: bye\r\n\r\n")
        await writer.drain()
        data = await asyncio.wait_for(reader.readuntil(b"Thanks for all the fish.\r\n\r\n"), 30)
        writer.close()
        await peer.stop()
        return list(iter_messages(data))

    messages = asyncio.run(scenario())
    wire = b"".join(format_message(m) for m in messages)
    for old in (b"FAX-20240917-0001", b"13700003333", b"trunk-0000001b", b"1795332880.27", b"page-20240917-0001"):
        assert old not in wire, old
    (response,) = [m for m in messages if m.event == "OriginateResponse"]
    assert response.action_id == "dutygw-page-9-1"
    expected = {ANSWER_ACK: ("Success", "4"), ANSWER_NO_KEY: ("Success", "4"), NO_ANSWER: ("Failure", "3"),
                BUSY: ("Failure", "0")}[behaviour]
    assert (response.response, response.get("Reason")) == expected
    acks = [(m["Digit"], m["PageID"]) for m in messages if m.get("UserEvent") == "PageAck"]
    assert acks == {ANSWER_ACK: [("1", "dutygw-page-9-1")], ANSWER_NO_KEY: [("", "dutygw-page-9-1")] * 3,
                    NO_ANSWER: [], BUSY: []}[behaviour]
    stamps = [float(m["Timestamp"]) for m in messages if m.get("Timestamp")]
    assert stamps == sorted(stamps) and abs(stamps[0] - NIGHT.timestamp()) < 1
    if behaviour == BUSY:
        assert [m.get("DialStatus") for m in messages if m.event == "DialEnd"] == ["BUSY"]
        assert [m.get("Cause") for m in messages if m.event == "Hangup"] == ["17"]


def test_fastagi_mode_the_gateway_speaks_the_page_and_hears_the_1(tmp_path: Path, database: Database) -> None:
    """PAGE_AGI points at the gateway's own FastAGI server; the PBX runs it on answer."""
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: ANSWER_ONLY}, serve_agi=True) as r:
            await r.urgent(220)  # the PBX answers; the dialog is left to the FastAGI session below
            (call,) = r.peer.originates
            port = _agi_port(call)
            (esc,) = r.escalations()
            assert esc.attempts[0].result == "answered"
            pbx = FakeAsterisk(["", "1"], call.variables, env={"agi_channel": esc.attempts[0].channel or ""})
            await asyncio.to_thread(_dial_fastagi, port, pbx)
            await r.settle()
            (esc,) = r.escalations()
            assert esc.state == "acknowledged" and esc.acknowledged_number == LEADER
            page = Path(pbx.played[0] + ".wav")
            assert page.parent == tmp_path / "sounds" and page.stat().st_size > 8000 * 2 * 3
            with wave.open(str(page)) as audio:
                assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (8000, 1, 2)

    run(scenario)


def _agi_port(call: Any) -> int:
    host, port = call.variables["PAGE_AGI"].removeprefix("agi://").removesuffix("/page").split(":")
    assert host == "127.0.0.1" and int(port) != 4573
    return int(port)


# -- a chain that cannot be placed ------------------------------------------------------------


async def _until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll a condition (generous timeout: a loaded machine slows a test, never fails it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def _mails(r: Rig) -> list[OutboundMail]:
    with r.db.session() as session:
        return list(session.scalars(select(OutboundMail).order_by(OutboundMail.id)))


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.ERROR and
            rec.name.startswith("dutygw.paging")]


def test_ami_down_mails_the_secretariat_at_once_and_keeps_retrying_the_call(
        tmp_path: Path, database: Database, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: ANSWER_ACK}) as r:
            port = r.peer.port
            await r.peer.stop()  # the PBX goes away; the client keeps trying to reconnect
            await _until(lambda: not r.client.connected.is_set())
            with caplog.at_level(logging.INFO):
                receipt_id = await r.urgent(230)
            (esc,) = r.escalations()
            (attempt,) = esc.attempts
            assert attempt.result == "planned" and "AMI" in (attempt.detail or "")
            assert esc.fallback_at == NIGHT
            (mail,) = _mails(r)
            assert (mail.kind, mail.recipients, mail.receipt_ids, mail.created_at) == (
                "urgent_notice", ["mishuke@duty.local"], [receipt_id], NIGHT), "mailed at once, not at the deadline"
            assert any("cannot be placed" in m for m in _errors(caplog)), "logged as an error"
            for _ in range(11):  # eleven minutes with the PBX still down
                await r.after(60)
            (esc,) = r.escalations()
            assert esc.state == "open" and esc.deadline_met is False
            assert [a.result for a in esc.attempts] == ["planned"], "the call is still to be placed"
            assert len(_mails(r)) == 1, "one notice, however long it stays down"
            back = AmiPeer.from_fixtures(AMI_FIXTURES, behaviours={LEADER: ANSWER_ACK}, port=port,
                                         now=lambda: r.clock.now().timestamp())
            await back.start()
            r.peer = back
            try:
                await _until(r.client.connected.is_set)
                await r.after(1)
                assert [c.number for c in back.originates] == [LEADER]
                (esc,) = r.escalations()
                assert esc.state == "acknowledged" and esc.deadline_met is False
                assert esc.attempts[0].action_id == back.originates[0].action_id
            finally:
                await back.stop()

    run(scenario)


def test_a_refused_originate_mails_at_once_and_the_call_is_tried_again(
        tmp_path: Path, database: Database, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: ANSWER_ACK}) as r:
            r.peer.refusing = "Permission denied"
            with caplog.at_level(logging.INFO):
                receipt_id = await r.urgent(231)
            assert len(r.peer.refused) == 1 and r.peer.originates == []
            (esc,) = r.escalations()
            assert [a.result for a in esc.attempts] == ["planned"], "a refusal is the PBX's, not the leader's"
            assert "Permission denied" in (esc.attempts[0].detail or "")
            (mail,) = _mails(r)
            assert mail.receipt_ids == [receipt_id] and mail.created_at == NIGHT
            assert any("Permission denied" in m for m in _errors(caplog))
            await r.after(29)
            assert len(r.peer.refused) == 1
            await r.after(1)
            assert len(r.peer.refused) == 2, "tried again 30 s later"
            assert len(_mails(r)) == 1
            r.peer.refusing = ""
            await r.after(30)
            assert [c.number for c in r.peer.originates] == [LEADER]
            (esc,) = r.escalations()
            assert esc.state == "acknowledged" and [a.result for a in esc.attempts] == ["acknowledged"]

    run(scenario)


def test_nobody_reachable_after_a_fallback_is_not_mailed_twice(tmp_path: Path, database: Database) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: NO_ANSWER, DIRECTOR: NO_ANSWER}) as r:
            r.peer.refusing = "Permission denied"
            await r.urgent(232)
            r.peer.refusing = ""
            for _ in range(12):
                await r.after(60)
            (esc,) = r.escalations()
            assert esc.state == "exhausted"
            assert len(_mails(r)) == 1, "the fallback notice already told the secretariat about this fax"

    run(scenario)


# -- FastAGI: only the gateway's own calls ----------------------------------------------------


def test_a_forged_fastagi_session_cannot_acknowledge_a_real_page(tmp_path: Path, database: Database) -> None:
    from gateway.paging.agi import page_text_variables
    from gateway.paging.speech import text_key

    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: ANSWER_ONLY}, serve_agi=True) as r:
            await r.urgent(240)
            (call,) = r.peer.originates
            port = _agi_port(call)
            channel = r.escalations()[0].attempts[0].channel or ""
            lie = "请立即向以下账户转账"
            forged = [
                FakeAsterisk(["1"], {"PAGE_ID": call.action_id, **dict(v.split("=", 1) for v in page_text_variables(lie))},
                             env={"agi_channel": channel}),  # guessed the old-style id
                FakeAsterisk(["1"], {"PAGE_ID": "dutygw-page-1-1"}, env={"agi_channel": channel,
                                                                          "agi_arg_1": "dutygw-page-1-1"}),
                FakeAsterisk(["1"], {**call.variables, **dict(v.split("=", 1) for v in page_text_variables(lie))},
                             env={"agi_channel": "PJSIP/trunk-000000ff", "agi_uniqueid": "1.1"}),  # not our channel
            ]
            for pbx in forged:
                await asyncio.to_thread(_dial_fastagi, port, pbx)
            await r.settle()
            (esc,) = r.escalations()
            assert esc.state == "open" and esc.attempts[0].result == "answered", "nothing acknowledged"
            assert all(p.user_events == [] and p.played == [] for p in forged)
            assert not list((tmp_path / "sounds").glob(f"page-{text_key(lie, r.service.speech.voice)}*"))
            real = FakeAsterisk(["1"], call.variables, env={"agi_channel": channel})
            await asyncio.to_thread(_dial_fastagi, port, real)
            await r.settle()
            (esc,) = r.escalations()
            assert esc.state == "acknowledged"
            assert r.service._agi is not None and r.service._agi.refused == 3

    run(scenario)


def test_the_answered_call_speaks_what_the_receipt_says_by_then(tmp_path: Path, database: Database) -> None:
    """Page 1's urgency decision dials at once; issuer and title read seconds later are spoken."""
    from gateway.paging.speech import text_key

    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: ANSWER_ONLY}, serve_agi=True) as r:
            with r.db.session() as session:
                row = Receipt(year=2026, seq=250, received_at=NIGHT, pages=2, urgency="特急", is_urgent=True,
                              urgency_decided_at=NIGHT, status="reading")
                session.add(row)
                session.flush()
                receipt_id = row.id
            await r.service.on_urgent_receipt(receipt_id)
            await r.settle()
            (call,) = r.peer.originates
            assert "标题未识别" in page_text(call.variables["PAGE_TEXT_B64"])
            with r.db.session() as session:  # the rest of the fax is read while the phone rings
                receipt = session.get_one(Receipt, receipt_id)
                receipt.issuer, receipt.title, receipt.status = ISSUER, TITLE, "filed"
            expected = r.service._spoken_text([receipt_id])
            assert ISSUER in expected and TITLE in expected
            channel = r.escalations()[0].attempts[0].channel or ""
            pbx = FakeAsterisk(["1"], call.variables, env={"agi_channel": channel})
            await asyncio.to_thread(_dial_fastagi, port := _agi_port(call), pbx)
            assert port
            assert Path(pbx.played[0]).name == f"page-{text_key(expected, r.service.speech.voice)}"

    run(scenario)


def test_each_attempt_carries_the_best_reading_at_its_dial(tmp_path: Path, database: Database) -> None:
    """Local-AGI mode speaks PAGE_TEXT_B64: it is rebuilt for every attempt."""
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: NO_ANSWER}) as r:
            with r.db.session() as session:
                row = Receipt(year=2026, seq=251, received_at=NIGHT, pages=2, urgency="特急", is_urgent=True,
                              urgency_decided_at=NIGHT, status="reading")
                session.add(row)
                session.flush()
                receipt_id = row.id
            await r.service.on_urgent_receipt(receipt_id)
            await r.settle()
            with r.db.session() as session:
                session.get_one(Receipt, receipt_id).title = TITLE
            await r.after(60)
            first, second = (page_text(c.variables["PAGE_TEXT_B64"]) for c in r.peer.originates[:2])
            assert TITLE not in first and TITLE in second
            assert [c.number for c in r.peer.originates[:2]] == [LEADER, LEADER]

    run(scenario)


# -- the durable hand-off ----------------------------------------------------------------------


def _filed_without_callback(r: Rig, seq: int) -> int:
    """A receipt as ``dutygw fax ingest`` (another process) or a filer killed after the decision leaves it."""
    return r.receipt(seq)


def test_an_urgent_receipt_nobody_handed_over_is_paged_at_start(tmp_path: Path, database: Database) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: ANSWER_ACK}) as r:
            await r.service.stop()  # the gateway is down (or crashed between decision and page)
            receipt_id = _filed_without_callback(r, 260)
            await r.restart_service()
            assert [c.number for c in r.peer.originates] == [LEADER]
            (esc,) = r.escalations()
            assert esc.receipt_ids == [receipt_id] and esc.state == "acknowledged"
            await r.restart_service()
            await r.after(60)
            assert len(r.peer.originates) == 1, "paged once"

    run(scenario)


def test_a_receipt_filed_by_hand_while_running_is_paged_by_the_sweep(tmp_path: Path, database: Database) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: ANSWER_ACK}) as r:
            await r.after(1)
            receipt_id = _filed_without_callback(r, 261)
            await r.after(15)
            (esc,) = r.escalations()
            assert esc.receipt_ids == [receipt_id] and len(r.peer.originates) == 1

    run(scenario)


def test_a_day_notice_is_mailed_once_across_sweeps_and_restarts(tmp_path: Path, database: Database) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: ANSWER_ACK}) as r:
            r.clock.set(datetime(2026, 11, 24, 2, 0, tzinfo=UTC))  # Tuesday 10:00
            receipt_id = await r.urgent(262)  # the fast path
            await r.after(15)  # and the sweep
            await r.restart_service()  # and a restart
            await r.after(15)
            (mail,) = _mails(r)
            assert mail.receipt_ids == [receipt_id] and mail.dedupe_key == f"receipt:{receipt_id}"
            assert r.peer.originates == []

    run(scenario)


# -- a database held locked ----------------------------------------------------------------------


def test_a_locked_database_does_not_stall_the_press_1_dialog(tmp_path: Path, database: Database) -> None:
    """Another connection holds BEGIN IMMEDIATE: the pager's worker waits, the FastAGI side answers."""
    import sqlite3
    import threading

    path = database.url.removeprefix("sqlite:///")
    held, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        connection = sqlite3.connect(path, timeout=30, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        held.set()
        release.wait(120)
        connection.execute("ROLLBACK")
        connection.close()

    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: ANSWER_ONLY}, serve_agi=True) as r:
            await r.urgent(270)
            (call,) = r.peer.originates
            channel = r.escalations()[0].attempts[0].channel or ""
            second = r.receipt(271)
            locker = threading.Thread(target=hold_lock)
            locker.start()
            try:
                await asyncio.to_thread(held.wait, 30)
                await r.service.on_urgent_receipt(second)  # the worker now waits for the lock
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(r.service.idle()), 0.5)
                pbx = FakeAsterisk(["1"], call.variables, env={"agi_channel": channel})
                await asyncio.wait_for(asyncio.to_thread(_dial_fastagi, _agi_port(call), pbx), 25)
                assert [e.split(",")[2] for e in pbx.user_events] == ["Digit: 1"], "answered while locked"
                assert pbx.played, "the page was spoken (the text of the dial: the database could not be read)"
            finally:
                release.set()
                await asyncio.to_thread(locker.join, 30)
            await r.settle()
            (esc,) = r.escalations()
            assert esc.state == "acknowledged" and esc.receipt_ids == [esc.receipt_ids[0], second]

    run(scenario)


@pytest.mark.ocr
def test_dutygw_fax_ingest_in_another_process_is_handed_to_the_running_pager(
        tmp_path: Path, database: Database) -> None:
    """``dutygw fax ingest`` files with no callback to the daemon: the pager's sweep finds the receipt."""
    import subprocess
    import sys

    from gateway.clock import SystemClock
    from gateway.shifts.calendar import shift_at

    config_file = tmp_path / "dutygw.toml"
    config_file.write_text(f'[duty]\nnumbers = ["02787654321"]\nextensions = ["8001"]\n'
                           f'room_phone = "027-87654321"\n\n[paths]\ndata_dir = "{tmp_path}"\n', encoding="utf-8")

    async def scenario() -> None:
        async with rig(tmp_path, database, {LEADER: ANSWER_ACK}) as r:
            r.clock.set(SystemClock().now())  # the CLI stamps its decision with the real clock
            done = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "gateway.cli", "-c", str(config_file), "fax", "ingest",
                                 str(FAX_FIXTURES / "fax_012.tif")],
                capture_output=True, text=True, timeout=900, env={**os.environ, "PYTHONPATH": str(ROOT)})
            assert done.returncode == 0, done.stderr
            with r.db.session() as session:
                (receipt,) = session.scalars(select(Receipt)).all()
                assert receipt.is_urgent and receipt.urgency_decided_at is not None
                receipt_id = receipt.id
            r.clock.set(SystemClock().now())
            await r.after(15)
            night = shift_at(r.clock.now(), r.config.calendar, r.config.zone).off_hours
            mails = [m for m in _mails(r) if receipt_id in m.receipt_ids]
            if night:
                (esc,) = r.escalations()
                assert esc.receipt_ids == [receipt_id] and len(r.peer.originates) == 1
                assert r.peer.originates[0].number == DIRECTOR, "no roster for today: the director is first"
            else:
                assert len(mails) == 1 and r.peer.originates == []
            await r.after(15)
            assert len([m for m in _mails(r) if receipt_id in m.receipt_ids]) == len(mails), "handled once"

    run(scenario, timeout=900)
