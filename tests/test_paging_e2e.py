"""Paging end to end: PagingService ↔ AmiClient ↔ the AMI peer replaying the real PBX captures.

The receipts are written as the fax intake files them and handed to ``on_urgent_receipt``
(what ``FaxService`` calls after page 1's urgency decision); the time is a FixedClock at
night in Shanghai, moved by hand.
"""

from __future__ import annotations

import asyncio
import importlib.util
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
from gateway.paging.roster import OnDuty, store_roster
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
        await peer.settle()
        await asyncio.sleep(0.05)
        writer.close()
        data = await reader.read()
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
