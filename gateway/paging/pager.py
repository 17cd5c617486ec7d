"""The paging service: urgent receipts in, AMI Originates out, acknowledgements back.

The edges of the escalation engine: it asks E1's policy whether to page, keeps every
escalation in the database, turns AMI events (``OriginateResponse`` by ActionID,
``UserEvent PageAck`` by PageID, ``DialEnd BUSY`` / ``Hangup`` on the originated
channel) into engine events, and carries out the engine's actions.

It also runs the FastAGI server the dialplan's ``PAGE_AGI`` points at (unless
``[paging] agi_url = "local"``) and renders each page's speech while the phone rings.

Every input goes through one queue and one worker, so events are applied one at a time
in arrival order and no lock is needed. An attempt row is committed (``planned``, with
its ActionID) before its Originate leaves; after a restart ``start`` resumes open
escalations: planned-but-unsent calls are placed, and calls sent without a result count
as no answer once the ring timeout plus a margin has passed. Nobody is called twice for
one attempt. (Were the gateway to die in the instant between the Originate leaving and
its "queued" reply being recorded, the attempt would be placed again on restart: the
only window, and it is milliseconds wide.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.ami.message import AmiMessage
from gateway.clock import Clock
from gateway.config import Config
from gateway.paging import escalation as engine
from gateway.paging.agi import FastAgiServer, PageAck, encode_page_text
from gateway.paging.calendar import Shift, shift_at
from gateway.paging.escalation import (
    Acknowledged,
    CallEnded,
    DialEnded,
    Escalation,
    OriginateResult,
    OriginateSent,
    Person,
    PlaceCall,
    Rules,
    Tick,
    UrgentReceipt,
)
from gateway.paging.mailer import queue_urgent_notice
from gateway.paging.notices import spoken_page_text
from gateway.paging.policy import ReceiptFacts, chain_as_json, decide, resolve_chain
from gateway.paging.roster import on_duty
from gateway.paging.speech import Speech
from storage.db import Database
from storage.faxes import Receipt
from storage.paging import Escalation as EscalationRow
from storage.paging import PageAttempt

log = logging.getLogger("dutygw.paging")

RECENT = timedelta(days=1)
"""How far back a receipt is looked for in earlier escalations (a re-read fax, a restart)."""


class AmiSender(Protocol):
    """What the service needs of ``gateway.ami.client.AmiClient``."""

    connected: asyncio.Event

    async def send_action(self, action: str, *, action_id: str | None = None, timeout: float | None = None,
                          **fields: str | list[str]) -> AmiMessage: ...


@dataclass(frozen=True)
class _Receipt:
    receipt_id: int


@dataclass(frozen=True)
class _Resume:
    pass


@dataclass(frozen=True)
class _Join:
    escalation_id: int
    event: UrgentReceipt


class PagingService:
    def __init__(self, config: Config, db: Database, clock: Clock, ami: AmiSender, *,
                 speech: Speech | None = None, on_mail_queued: Callable[[], None] | None = None,
                 on_originate: Callable[[str, datetime], None] | None = None, tick_seconds: float = 1.0,
                 serve_agi: bool = True) -> None:
        self.config = config
        self.db = db
        self.clock = clock
        self.ami = ami
        self.serve_agi = serve_agi and config.paging.agi_url != "local"
        """Run the FastAGI server the dialplan's ``PAGE_AGI`` points at (off in local-AGI mode)."""
        self.speech = speech if speech is not None or not self.serve_agi else speech_for(config)
        self.on_mail_queued = on_mail_queued
        self.on_originate = on_originate
        """Called with (ActionID, when) as each Originate leaves; for the latency benchmark."""
        self.tick_seconds = tick_seconds
        self.rules = Rules.from_config(config.paging)
        self._open: dict[int, Escalation] = {}
        self._keys: dict[str, int] = {}
        self._channels: dict[str, str] = {}
        self._inbox: asyncio.Queue[object] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._unsent_warned: set[str] = set()
        self._agi: FastAgiServer | None = None
        self._agi_port = config.paging.agi_port
        self._prerendering: set[asyncio.Task[str]] = set()

    # -- lifecycle and inputs -------------------------------------------------------------

    async def start(self) -> None:
        """Load the open escalations and resume them; then run the worker and the timer."""
        with self.db.session() as session:
            rows = session.scalars(select(EscalationRow).where(EscalationRow.state == "open")).all()
            for row in rows:
                self._remember(escalation_value(row))
        if self._open:
            log.info("resuming %d open escalation(s)", len(self._open))
        await self._start_agi()
        self._inbox.put_nowait(_Resume())
        self._tasks = [asyncio.create_task(self._work(), name="paging"),
                       asyncio.create_task(self._tick_forever(), name="paging-timer")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._prerendering, return_exceptions=True)
        self._tasks = []
        if self._agi is not None:
            await self._agi.stop()
            self._agi = None

    async def _start_agi(self) -> None:
        if not self.serve_agi or self.speech is None:
            return
        server = FastAgiServer(self.config.paging.agi_host, self.config.paging.agi_port, self.speech, self.clock,
                               on_ack=self.on_page_ack)
        try:
            self._agi_port = await server.start()
        except OSError as exc:
            log.error("FastAGI cannot listen on %s:%s (%s): page calls fall back to the dialplan's recorded "
                      "prompt; free the port or set [paging] agi_port", self.config.paging.agi_host,
                      self.config.paging.agi_port, exc.strerror or exc)
            return
        self._agi = server

    async def on_urgent_receipt(self, receipt_id: int) -> None:
        """Called by the fax intake once page 1's urgency decision is on the receipt."""
        self._inbox.put_nowait(_Receipt(receipt_id))

    def on_ami_message(self, message: AmiMessage) -> None:
        """Every AMI event; the few about our calls become engine events."""
        event = self._translate(message)
        if event is not None:
            self._inbox.put_nowait(event)

    def on_page_ack(self, ack: PageAck) -> None:
        """A round of the FastAGI dialog (the same news also arrives as a UserEvent)."""
        self._inbox.put_nowait(Acknowledged(ack.page_id, ack.digit, ack.number, ack.at or self.clock.now()))

    async def tick(self) -> None:
        """Let time act now (tests move a FixedClock and call this)."""
        self._inbox.put_nowait(Tick(self.clock.now()))
        await self.idle()

    async def idle(self) -> None:
        """Return when every input so far has been applied."""
        await self._inbox.join()

    def escalations(self) -> list[Escalation]:
        """The open escalations as the engine sees them (immutable values)."""
        return list(self._open.values())

    # -- the worker -----------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            item = await self._inbox.get()
            try:
                await self._apply_input(item)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("paging input %r failed", item)
            finally:
                self._inbox.task_done()

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tick_seconds)
            self._inbox.put_nowait(Tick(self.clock.now()))

    async def _apply_input(self, item: object) -> None:
        if isinstance(item, _Receipt):
            await self._receipt(item.receipt_id)
        elif isinstance(item, _Resume):
            for escalation in list(self._open.values()):
                await self._apply(escalation, *engine.resume(escalation, self.clock.now(), self.rules))
        elif isinstance(item, Tick):
            for escalation in list(self._open.values()):
                await self._step(escalation, item)
        else:
            escalation_id = self._keys.get(str(getattr(item, "key", None) or getattr(item, "page_id", "")))
            if escalation_id is not None and escalation_id in self._open:
                await self._step(self._open[escalation_id], item)

    async def _step(self, escalation: Escalation, event: object) -> None:
        await self._apply(escalation, *engine.handle(escalation, event, self.rules))  # type: ignore[arg-type]

    async def _apply(self, before: Escalation | None, after: Escalation, actions: Sequence[object]) -> None:
        """Commit the new state first, then act: a planned attempt is on disk before it is dialled."""
        if after != before:
            with self.db.session() as session:
                store_escalation(session, after)
            self._remember(after)
        for action in actions:
            if isinstance(action, engine.RecordAttemptResult):
                log.info("page %s: %s", action.key, action.result)
            elif isinstance(action, engine.CloseEscalation):
                self._close(action, after)
            elif isinstance(action, PlaceCall):
                await self._place(action)

    def _remember(self, escalation: Escalation) -> None:
        if escalation.is_open:
            self._open[escalation.id] = escalation
            for attempt in escalation.attempts:
                self._keys[attempt.key] = escalation.id
        else:
            self._open.pop(escalation.id, None)

    def _close(self, action: engine.CloseEscalation, escalation: Escalation) -> None:
        if action.state == "acknowledged":
            log.info("escalation %d acknowledged by %s; deadline %s", action.escalation_id, action.acknowledged_by,
                     "met" if action.deadline_met else "MISSED")
        else:
            log.error("escalation %d %s: nobody acknowledged; mailing the secretariat instead",
                      action.escalation_id, action.state)
            self._mail_instead(escalation)
        for key in [k for k, e in self._keys.items() if e == action.escalation_id]:
            del self._keys[key]

    def _mail_instead(self, escalation: Escalation) -> None:
        """Nobody pressed 1: the urgent notice goes to the secretariat, so it is read at the latest
        when the office opens (E1's notice builder redacts classified faxes)."""
        with self.db.session() as session:
            receipts = session.scalars(select(Receipt).where(Receipt.id.in_(escalation.receipt_ids))
                                       .order_by(Receipt.id)).all()
            if receipts:
                queue_urgent_notice(session, receipts, self.config, self.clock.now())
        if receipts and self.on_mail_queued is not None:
            self.on_mail_queued()

    # -- urgent receipts --------------------------------------------------------------------

    async def _receipt(self, receipt_id: int) -> None:
        now = self.clock.now()
        with self.db.session() as session:
            receipt = session.get(Receipt, receipt_id)
            if receipt is None:
                log.error("urgent receipt %d not found", receipt_id)
                return
            shift = shift_at(now, self.config.calendar, self.config.zone)
            decision = decide(ReceiptFacts.of(receipt), shift, self.config.paging)
            log.info("receipt %s: %s", receipt.receipt_no, "；".join(decision.reasons))
            if decision.notify_now:
                queue_urgent_notice(session, [receipt], self.config, now, shift.key)
            page = self._route(session, receipt_id, now, shift) if decision.page else None
        if decision.notify_now and self.on_mail_queued is not None:
            self.on_mail_queued()
        if isinstance(page, _Join):
            await self._step(self._open[page.escalation_id], page.event)
        elif page is not None:
            await self._apply(None, *page)

    def _route(self, session: Session, receipt_id: int, now: datetime,
               shift: Shift) -> _Join | engine.Step | None:
        """Join the escalation under way (the event to feed it), or open one: its row is
        added to ``session`` and committed with it, before any call is placed."""
        recent = session.scalars(select(EscalationRow).where(EscalationRow.opened_at >= now - RECENT)).all()
        route = engine.route_receipt([escalation_value(r) for r in recent], receipt_id, now, self.rules)
        log.info("receipt %d: %s", receipt_id, route.reason)
        if route.kind == "ignore":
            return None
        if route.kind == "join" and route.join in self._open:
            return _Join(route.join, UrgentReceipt(receipt_id, now))
        members = resolve_chain(self.config.paging, on_duty(session, shift.duty_date, shift.name),
                                room_number=self.config.duty.room_phone.replace("-", ""))
        row = EscalationRow(opened_at=now, deadline_at=now + self.rules.deadline, state="open", shift_key=shift.key,
                            receipt_ids=[receipt_id], chain=chain_as_json(members), not_before=route.not_before)
        session.add(row)
        session.flush()
        people = [Person(m.role, m.name, m.number) for m in members]
        return engine.open_escalation(row.id, [receipt_id], people, now, self.rules, route.not_before)

    # -- placing a call ---------------------------------------------------------------------

    async def _place(self, call: PlaceCall) -> None:
        if not self.ami.connected.is_set():
            if call.key not in self._unsent_warned:
                log.warning("page %s to %s waits: the AMI connection is down", call.key, call.number)
                self._unsent_warned.add(call.key)
            return
        text = self._spoken_text(call.receipt_ids)
        fields = originate_fields(self.config, call, text, self._agi_port)
        sent_at = self.clock.now()
        try:
            response = await self.ami.send_action("Originate", action_id=call.key, **fields)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - the action may have left: never send it again
            log.error("page %s to %s: Originate unconfirmed (%s); waiting for its result", call.key, call.number, exc)
            await self._feed(call.key, OriginateSent(call.key, sent_at))
            return
        if self.on_originate is not None:
            self.on_originate(call.key, sent_at)
        log.info("page %s: calling %s %s (%s), %d receipt(s)", call.key, call.role, call.name, call.number,
                 len(call.receipt_ids))
        await self._feed(call.key, OriginateSent(call.key, sent_at))
        if response.response != "Success":
            detail = f"Originate refused: {response.get('Message') or response.response}"
            await self._feed(call.key, OriginateResult(call.key, None, None, self.clock.now(), detail))
        elif self.speech is not None:  # render while it rings, so the page is ready on answer
            task = asyncio.create_task(asyncio.to_thread(self.speech.prompt, text))
            self._prerendering.add(task)
            task.add_done_callback(self._prerendering.discard)

    async def _feed(self, key: str, event: object) -> None:
        escalation_id = self._keys.get(key)
        if escalation_id is not None and escalation_id in self._open:
            await self._step(self._open[escalation_id], event)

    def _spoken_text(self, receipt_ids: Sequence[int]) -> str:
        with self.db.session() as session:
            receipts = session.scalars(select(Receipt).where(Receipt.id.in_(receipt_ids)).order_by(Receipt.id)).all()
            return spoken_page_text(receipts, room_name=self.config.duty.room_name,
                                    room_phone=self.config.duty.room_phone)

    # -- AMI events -------------------------------------------------------------------------

    def _translate(self, message: AmiMessage) -> object | None:
        """The engine event an AMI message means, if it is about one of our calls."""
        name = message.event
        now = self.clock.now()
        if name == "VarSet" and message.get("Variable") == "PAGE_ID":
            if (message.get("Value") or "") in self._keys:
                self._channels[message.get("Channel") or ""] = message["Value"]
            return None
        if name == "UserEvent" and message.get("UserEvent") == "PageAck":
            page_id = message.get("PageID") or ""
            return Acknowledged(page_id, message.get("Digit") or "", message.get("Number") or None, now)
        if name == "OriginateResponse" and (message.action_id or "") in self._keys:
            return self._originate_response(message, now)
        if name == "DialEnd":
            key = self._channels.get(message.get("DestChannel") or message.get("Channel") or "")
            status = message.get("DialStatus") or ""
            return DialEnded(key, status, now) if key and status != "ANSWER" else None
        if name == "Hangup":
            key = self._channels.pop(message.get("Channel") or "", None)
            if key is None:
                return None
            return DialEnded(key, "BUSY", now) if message.get("Cause") == "17" else CallEnded(key, now)
        return None

    def _originate_response(self, message: AmiMessage, now: datetime) -> OriginateResult:
        key = message.action_id or ""
        channel = message.get("Channel")
        if channel and "@" not in channel:
            self._channels[channel] = key
        try:
            reason: int | None = int(message.get("Reason") or "")
        except ValueError:
            reason = None
        return OriginateResult(key, reason, channel, now)


# -- Originate ------------------------------------------------------------------------------


def agi_url(config: Config, port: int | None = None) -> str:
    """What the dialplan should run on answer; empty for the PBX's local script."""
    paging = config.paging
    if paging.agi_url == "local":
        return ""
    return paging.agi_url or f"agi://{paging.agi_host}:{port or paging.agi_port}/page"


def originate_fields(config: Config, call: PlaceCall, text: str,
                     agi_port: int | None = None) -> dict[str, str | list[str]]:
    """The Originate into ``[paging] ack``; the text rides along base64-encoded (commas split
    ``Variable`` values on AMI)."""
    paging = config.paging
    variables = [
        f"PAGE_ID={call.key}",
        f"PAGE_ATTEMPT={call.key}",
        f"PAGE_ESCALATION={call.escalation_id}",
        f"PAGE_NUMBER={call.number}",
        f"PAGE_TEXT_B64={encode_page_text(text)}",
    ]
    url = agi_url(config, agi_port)
    if url:
        variables.append(f"PAGE_AGI={url}")
    return {
        "Channel": paging.channel.format(number=call.number),
        "Context": paging.context,
        "Exten": paging.exten,
        "Priority": "1",
        "Async": "true",
        "Timeout": str(int(paging.ring_timeout_seconds * 1000)),
        "CallerID": paging.caller_id,
        "Variable": variables,
    }


# -- rows <-> values ----------------------------------------------------------------------


def escalation_value(row: EscalationRow) -> Escalation:
    """The engine's value of a stored escalation."""
    chain = tuple(Person(p.get("role", ""), p.get("name", ""), p.get("number", "")) for p in row.chain or [])
    attempts = tuple(
        engine.Attempt(
            key=a.action_id, step=a.step, round=a.round, try_no=a.try_no, person=Person(a.role, a.name, a.number),
            planned_at=a.planned_at, due_at=a.due_at or a.planned_at, receipt_ids=tuple(a.receipt_ids or ()),
            sent_at=a.sent_at, answered_at=a.answered_at, ended_at=a.ended_at, result=a.result,
            channel=a.channel, detail=a.detail,
        )
        for a in row.attempts
    )
    return Escalation(
        id=row.id, opened_at=row.opened_at, deadline_at=row.deadline_at, chain=chain,
        receipt_ids=tuple(row.receipt_ids or ()), attempts=attempts, state=row.state, not_before=row.not_before,
        acknowledged_at=row.acknowledged_at, acknowledged_by=row.acknowledged_by,
        acknowledged_number=row.acknowledged_number, deadline_met=row.deadline_met, closed_at=row.closed_at,
    )


def store_escalation(session: Session, value: Escalation) -> EscalationRow:
    """Write the engine's value over its row (attempts matched by ActionID)."""
    row = session.get(EscalationRow, value.id)
    if row is None:
        row = EscalationRow(id=value.id)
        session.add(row)
    for name in ("opened_at", "deadline_at", "state", "not_before", "acknowledged_at", "acknowledged_by",
                 "acknowledged_number", "deadline_met", "closed_at"):
        setattr(row, name, getattr(value, name))
    row.receipt_ids = list(value.receipt_ids)
    row.chain = [{"role": p.role, "name": p.name, "number": p.number} for p in value.chain]
    stored = {a.action_id: a for a in row.attempts}
    for attempt in value.attempts:
        target = stored.get(attempt.key)
        if target is None:
            target = PageAttempt(action_id=attempt.key)
            row.attempts.append(target)
        _copy_attempt(attempt, target)
    return row


def _copy_attempt(attempt: engine.Attempt, row: PageAttempt) -> None:
    row.step, row.round, row.try_no = attempt.step, attempt.round, attempt.try_no
    row.role, row.name, row.number = attempt.person.role, attempt.person.name, attempt.person.number
    row.planned_at, row.due_at, row.receipt_ids = attempt.planned_at, attempt.due_at, list(attempt.receipt_ids)
    row.sent_at, row.answered_at, row.ended_at = attempt.sent_at, attempt.answered_at, attempt.ended_at
    row.result, row.channel, row.detail = attempt.result, attempt.channel, attempt.detail


# -- wiring for the daemon ----------------------------------------------------------------


def speech_for(config: Config) -> Speech:
    """The prompt renderer: ``[paging] sounds_dir`` (default ``<data_dir>/sounds``)."""
    folder = config.paging.sounds_dir or config.paths.data_dir / "sounds"
    return Speech(folder, config.paging.pbx_sounds_dir)
