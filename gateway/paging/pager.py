"""The paging service: urgent receipts in, AMI Originates out, acknowledgements back.

The edges of the escalation engine: it asks E1's policy whether to page, keeps every
escalation in the database, hands AMI events to ``ami_events.PageCalls`` (which turns
``OriginateResponse`` by ActionID, ``UserEvent PageAck`` by page token, ``DialEnd BUSY`` /
``Hangup`` on the originated channel into engine events), and carries out the engine's actions.

It also runs the FastAGI server the dialplan's ``PAGE_AGI`` points at (unless
``[paging] agi_url = "local"``) and tells it which sessions are real: a session is
served only for a live attempt's page token (``secrets.token_urlsafe``, made per attempt
and stored with it), on a channel this gateway's own Originate created (as the AMI
events ``VarSet PAGE_ID`` and ``OriginateResponse`` showed it). The text the call speaks
is built from the receipts when the call is answered, so it says the best reading of
the fax at that moment; it is never taken from the AGI peer.

Every input goes through one queue and one worker, so events are applied one at a time
in arrival order and no lock is needed. Database work runs through ``db.run``, never on
the event loop, so a database held locked slows the worker and never the AMI reader or
the FastAGI server. An attempt row is committed (``planned``, with its ActionID and
token) before its Originate leaves; after a restart ``start`` resumes open escalations:
planned-but-unsent calls are placed, and calls sent without a result count as no answer
once the ring timeout plus a margin has passed. Nobody is called twice for one attempt.
(Were the gateway to die in the instant between the Originate leaving and its "queued"
reply being recorded, the attempt would be placed again on restart: the only window, and
it is milliseconds wide.)

A call that cannot be placed (AMI down, ``Originate`` refused) stays planned and is
tried again; the secretariat is mailed at once and an error is logged. The hand-off from
the fax intake is durable: besides the in-memory callback (the fast path), a sweep at
start and every ``sweep_seconds`` picks up every recent receipt that should have been
paged or mailed and was not (``dutygw fax ingest``, a crash between decision and page).

An Originate that never left (the connection dropped before its bytes were written:
``AmiNotSent``) is a call not placed, as above; one whose reply was lost after it was
written (``AmiConnectionLost``) may be ringing, so it waits for its result like any call.

The leader on duty steps in from the console through the database (``paging_requests``,
because the console may be another process): every tick the pending requests are
carried out through the engine (``Stopped``, ``PageNow``; a page now of a receipt with no
open escalation opens one, whatever the policy said) and their outcome is written back.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gateway.ami.client import AmiNotSent
from gateway.ami.message import AmiMessage
from gateway.clock import Clock
from gateway.config import Config
from gateway.logcontext import log_context
from gateway.outbox import queued_with_key
from gateway.paging import escalation as engine
from gateway.paging import rows
from gateway.paging.agi import FastAgiServer, LivePage, PageAck
from gateway.paging.ami_events import PageCalls
from gateway.paging.escalation import (
    Acknowledged,
    Escalation,
    OriginateSent,
    PageNow,
    Person,
    PlaceCall,
    PlaceFailed,
    Rules,
    Stopped,
    Tick,
    UrgentReceipt,
)
from gateway.paging.notices import URGENT_NOTICE, spoken_page_text
from gateway.paging.originate import originate_fields
from gateway.paging.outgoing import escalation_notice_key, queue_urgent_notice, receipt_notice_key
from gateway.paging.policy import ReceiptFacts, chain_as_json, decide, resolve_chain
from gateway.paging.speech import Speech, speech_for
from gateway.shifts.calendar import Shift, shift_at
from gateway.shifts.roster import on_duty
from storage.db import Database
from storage.faxes import Receipt
from storage.paging import Escalation as EscalationRow
from storage.paging import OutboundMail, PagingRequest
from storage.states import AttemptResult, EscalationState

log = logging.getLogger("dutygw.paging")

RECENT = timedelta(days=1)
"""How far back a receipt is looked for in earlier escalations (a re-read fax, a restart)."""
SWEEP_SECONDS = 15.0
"""How often (clock time) the database is swept for urgent receipts nobody handed over."""
SWEEP_GRACE = timedelta(seconds=5)
"""A periodic sweep leaves a decision this fresh to the fast path (its callback may be queued)."""
REFUSED_RETRY = timedelta(seconds=30)
"""How long after a refused ``Originate`` the call is tried again."""
AGI_WAIT_SECONDS = 3.0
"""How long a FastAGI session waits for the AMI events that prove its channel is ours."""
TOKEN_BYTES = 18
HANGUP_TIMEOUT = 3.0
"""Seconds the worker waits for the PBX to confirm hanging up a call a stop caught ringing."""
REFUSALS = {
    "closed": "该呼叫已结束。",
    "call_in_progress": "正在通话或振铃中，未重复拨打；本次通话结束后将按顺序继续呼叫。",
    "no_receipt": "没有这份来文。",
    "no_chain": "呼叫顺序中没有可拨打的号码。",
}
"""Why a console request was not carried out, in words for the leader on duty."""


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
class _Sweep:
    pass


@dataclass(frozen=True)
class ConsoleRequest:
    """A pending ``paging_requests`` row, as a value."""

    id: int
    kind: str
    escalation_id: int | None
    receipt_id: int | None
    reason: str
    by: str


@dataclass(frozen=True)
class _Outcome:
    state: str
    detail: str
    escalation_id: int | None = None


@dataclass(frozen=True)
class _Join:
    escalation_id: int
    event: UrgentReceipt


def new_page_token() -> str:
    """A PAGE_ID nobody can guess (144 random bits, URL-safe: fits a channel variable)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


class PagingService:
    def __init__(self, config: Config, db: Database, clock: Clock, ami: AmiSender, *,
                 speech: Speech | None = None, on_mail_queued: Callable[[], None] | None = None,
                 on_originate: Callable[[str, datetime], None] | None = None, tick_seconds: float = 1.0,
                 serve_agi: bool = True, sweep_seconds: float = SWEEP_SECONDS) -> None:
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
        self.sweep_interval = timedelta(seconds=sweep_seconds)
        self.rules = Rules.from_config(config.paging)
        self._open: dict[int, Escalation] = {}
        self._calls = PageCalls()
        """Which attempt a key, a page token or a channel belongs to, and what AMI said of it."""
        self._seen_changed = asyncio.Event()
        self._placed_text: dict[str, str] = {}
        self._unplaced: set[str] = set()
        self._inbox: asyncio.Queue[object] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._agi: FastAgiServer | None = None
        self._agi_port = config.paging.agi_port
        self._prerendering: set[asyncio.Task[str]] = set()
        self._next_sweep: datetime | None = None

    # -- lifecycle and inputs -------------------------------------------------------------

    async def start(self) -> None:
        """Load the open escalations and resume them; sweep; then run the worker and the timer."""
        for value in await self.db.run(rows.load_open, self.db):
            self._remember(value)
        if self._open:
            log.info("resuming %d open escalation(s)", len(self._open))
        await self._start_agi()
        self._inbox.put_nowait(_Resume())
        self._inbox.put_nowait(_Sweep())
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
                               authorise=self.authorise, on_ack=self.on_page_ack)
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
        sightings = self._calls.sightings
        event = self._calls.feed(message, self.clock.now())
        if self._calls.sightings != sightings:  # wake the FastAGI sessions waiting for their channel
            self._seen_changed.set()
            self._seen_changed = asyncio.Event()
        if event is not None:
            self._inbox.put_nowait(event)

    def on_page_ack(self, ack: PageAck) -> None:
        """A round of the FastAGI dialog (the same news also arrives as a UserEvent)."""
        key = self._calls.page_key(ack.page_id, "FastAGI PageAck")
        if key is None:
            return
        self._inbox.put_nowait(Acknowledged(key, ack.digit, ack.number, ack.at or self.clock.now()))

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

    # -- the FastAGI side -------------------------------------------------------------------

    async def authorise(self, token: str, channel: str, uniqueid: str) -> LivePage | None:
        """The page a FastAGI session may run, or None: a live attempt's token, on our own channel.

        The AMI events naming the channel normally precede the AGI (the dialplan answers and
        waits first); a session that arrives before them waits up to ``AGI_WAIT_SECONDS``.
        """
        key = self._calls.live_attempt(token)
        if key is None:
            return None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + AGI_WAIT_SECONDS
        while not self._calls.is_our_channel(key, channel, uniqueid):
            remaining = deadline - loop.time()
            if remaining <= 0 or not self._calls.is_placed(key):
                return None
            try:
                await asyncio.wait_for(self._seen_changed.wait(), remaining)
            except TimeoutError:
                return None
        attempt = self._attempt(key)
        if attempt is None or attempt.result not in (AttemptResult.SENT, AttemptResult.ANSWERED):
            return None
        return LivePage(token, attempt.person.number, await self._answer_text(attempt))

    def _attempt(self, key: str) -> engine.Attempt | None:
        escalation_id = self._calls.escalation_of(key)
        escalation = self._open.get(escalation_id) if escalation_id is not None else None
        return escalation.attempt(key) if escalation is not None else None

    async def _answer_text(self, attempt: engine.Attempt) -> str:
        """The page as the receipts read now; the text of when it was dialled if the database lags."""
        try:
            return await asyncio.wait_for(self.db.run(self._spoken_text, attempt.receipt_ids), AGI_WAIT_SECONDS)
        except Exception as exc:  # noqa: BLE001 - a locked or failing database must not silence the call
            log.warning("page %s: reading the receipts at answer failed (%s); speaking the text of the dial",
                        attempt.key, type(exc).__name__)
            return self._placed_text.get(attempt.key, "")

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
        elif isinstance(item, _Sweep):
            await self._sweep()
        elif isinstance(item, Tick):
            for escalation in list(self._open.values()):
                await self._step(escalation, item)
            await self._console_requests()
            if self._next_sweep is None or item.now >= self._next_sweep:
                await self._sweep(grace=SWEEP_GRACE)
        else:
            escalation_id = self._calls.escalation_of(str(getattr(item, "key", None) or getattr(item, "page_id", "")))
            if escalation_id is not None and escalation_id in self._open:
                await self._step(self._open[escalation_id], item)

    async def _step(self, escalation: Escalation, event: object) -> None:
        await self._apply(escalation, *engine.handle(escalation, event, self.rules))  # type: ignore[arg-type]

    async def _apply(self, before: Escalation | None, after: Escalation, actions: Sequence[object]) -> None:
        with log_context(escalation=after.id):
            await self._apply_step(before, after, actions)

    async def _apply_step(self, before: Escalation | None, after: Escalation, actions: Sequence[object]) -> None:
        """Commit the new state first, then act: a planned attempt (and its token) is on disk
        before it is dialled."""
        after = _with_tokens(after, actions)
        if after != before:
            await self.db.run(rows.store, self.db, after)
            self._remember(after)
        for action in actions:
            if isinstance(action, engine.RecordAttemptResult):
                log.info("page %s: %s", action.key, action.result)
            elif isinstance(action, engine.CloseEscalation):
                await self._close(action, after)
            elif isinstance(action, engine.FallBack):
                await self._fall_back(action)
            elif isinstance(action, PlaceCall):
                await self._place(action, after)

    def _remember(self, escalation: Escalation) -> None:
        if escalation.is_open:
            self._open[escalation.id] = escalation
        else:
            self._open.pop(escalation.id, None)
        for attempt in self._calls.remember(escalation):
            self._placed_text.pop(attempt.key, None)
            self._unplaced.discard(attempt.key)

    async def _close(self, action: engine.CloseEscalation, escalation: Escalation) -> None:
        if action.state == EscalationState.ACKNOWLEDGED:
            log.info("escalation %d acknowledged by %s; deadline %s", action.escalation_id, action.acknowledged_by,
                     "met" if action.deadline_met else "MISSED")
        elif action.state == EscalationState.STOPPED:
            log.warning("escalation %d stopped from the console by %s (%s); nobody else is called",
                        action.escalation_id, escalation.stopped_by, escalation.stop_reason)
            await self._hang_up(escalation)
        else:
            log.error("escalation %d %s: nobody acknowledged; mailing the secretariat instead",
                      action.escalation_id, action.state)
            await self._mail_secretariat(escalation.id, escalation.receipt_ids)
        self._calls.close(action.escalation_id)

    async def _hang_up(self, escalation: Escalation) -> None:
        """End the call a stop caught ringing: nobody should pick up a page already called off.

        Its channel is known from the ``VarSet PAGE_ID`` event the call's creation raised."""
        stopped = {a.key for a in escalation.attempts if a.result == "stopped" and a.sent_at is not None}
        for channel in self._calls.channels_of(stopped):
            try:
                response = await self.ami.send_action("Hangup", Channel=channel, Cause="16", timeout=HANGUP_TIMEOUT)
                detail = "" if response.response == "Success" else response.get("Message") or response.response or ""
            except Exception as exc:  # noqa: BLE001 - the call then rings until its own timeout
                detail = str(exc) or type(exc).__name__
            if detail:
                log.warning("escalation %d: the PBX did not hang up %s after the stop (%s); it rings until its "
                            "timeout (the AMI user needs write = call for Hangup)", escalation.id, channel, detail)
            else:
                log.info("escalation %d: hung up %s after the stop", escalation.id, channel)

    async def _fall_back(self, action: engine.FallBack) -> None:
        """The chain cannot be placed: the secretariat hears now, and the calls go on being tried."""
        if await self._mail_secretariat(action.escalation_id, action.receipt_ids):
            log.error("escalation %d: the page cannot be placed (%s); the secretariat is mailed now and the "
                      "calls keep being retried", action.escalation_id, action.detail)

    async def _mail_secretariat(self, escalation_id: int, receipt_ids: Sequence[int]) -> bool:
        """Queue the urgent notice (once per escalation and set of receipts); True if it is new.

        E1's notice builder redacts classified faxes."""
        queued = await self.db.run(self._queue_escalation_notice, escalation_id, tuple(receipt_ids),
                                   self.clock.now())
        if queued and self.on_mail_queued is not None:
            self.on_mail_queued()
        return queued

    def _queue_escalation_notice(self, escalation_id: int, receipt_ids: tuple[int, ...], now: datetime) -> bool:
        key = escalation_notice_key(escalation_id, receipt_ids)
        with self.db.session() as session:
            if queued_with_key(session, key) is not None:
                return False
            receipts = session.scalars(select(Receipt).where(Receipt.id.in_(receipt_ids)).order_by(Receipt.id)).all()
            if not receipts:
                return False
            queue_urgent_notice(session, receipts, self.config, now, key=key)
            return True

    # -- urgent receipts --------------------------------------------------------------------

    async def _receipt(self, receipt_id: int) -> None:
        with log_context(receipt=receipt_id):
            await self._receipt_in_context(receipt_id)

    async def _receipt_in_context(self, receipt_id: int) -> None:
        notified, page = await self.db.run(self._receipt_work, receipt_id, self.clock.now(), frozenset(self._open))
        if notified and self.on_mail_queued is not None:
            self.on_mail_queued()
        if isinstance(page, _Join):
            if page.escalation_id in self._open:
                await self._step(self._open[page.escalation_id], page.event)
        elif page is not None:
            await self._apply(None, *page)

    def _receipt_work(self, receipt_id: int, now: datetime,
                      open_ids: frozenset[int]) -> tuple[bool, _Join | engine.Step | None]:
        """Decide about one receipt; the notice and a new escalation commit together."""
        with self.db.session() as session:
            receipt = session.get(Receipt, receipt_id)
            if receipt is None:
                log.error("urgent receipt %d not found", receipt_id)
                return False, None
            shift = shift_at(now, self.config.calendar, self.config.zone)
            decision = decide(ReceiptFacts.of(receipt), shift, self.config.paging)
            log.info("receipt %s: %s", receipt.receipt_no, "；".join(decision.reasons))
            notified = decision.notify_now and queued_with_key(session, receipt_notice_key(receipt_id)) is None
            if notified:
                queue_urgent_notice(session, [receipt], self.config, now, shift.key)
            page = self._route(session, receipt_id, now, shift, open_ids) if decision.page else None
        return notified, page

    def _route(self, session: Session, receipt_id: int, now: datetime, shift: Shift,
               open_ids: frozenset[int]) -> _Join | engine.Step | None:
        """Join the escalation under way (the event to feed it), or open one: its row is
        added to ``session`` and committed with it, before any call is placed."""
        recent = session.scalars(select(EscalationRow).where(EscalationRow.opened_at >= now - RECENT)).all()
        route = engine.route_receipt([rows.escalation_value(r) for r in recent], receipt_id, now, self.rules)
        log.info("receipt %d: %s", receipt_id, route.reason)
        if route.kind == "ignore":
            return None
        if route.kind == "join" and route.join in open_ids:
            return _Join(route.join, UrgentReceipt(receipt_id, now))
        return self._new_escalation(session, [receipt_id], now, shift, route.not_before)

    def _new_escalation(self, session: Session, receipt_ids: Sequence[int], now: datetime, shift: Shift,
                        not_before: datetime | None = None) -> engine.Step:
        """A new escalation row (flushed in ``session``, committed with it) and its first step."""
        members = resolve_chain(self.config.paging, on_duty(session, shift.duty_date, shift.name),
                                room_number=self.config.duty.room_phone.replace("-", ""))
        row = EscalationRow(opened_at=now, deadline_at=now + self.rules.deadline, state=EscalationState.OPEN,
                            shift_key=shift.key, receipt_ids=list(receipt_ids), chain=chain_as_json(members),
                            not_before=not_before)
        session.add(row)
        session.flush()
        people = [Person(m.role, m.name, m.number) for m in members]
        return engine.open_escalation(row.id, receipt_ids, people, now, self.rules, not_before)

    async def _sweep(self, grace: timedelta = timedelta(0)) -> None:
        """Hand over every recent receipt that should have been paged or mailed and was not
        (at start, every one: callbacks from before a restart are gone)."""
        now = self.clock.now()
        self._next_sweep = now + self.sweep_interval
        for receipt_id in await self.db.run(_unhandled_receipts, self.db, now - RECENT, now - grace):
            log.warning("receipt %d is urgent and was never handed to the pager (filed by hand, or before a "
                        "restart): handling it now", receipt_id)
            await self._receipt(receipt_id)

    # -- the leader on duty's requests from the console ------------------------------------

    async def _console_requests(self) -> None:
        """Carry out the pending 立即呼叫 / 停止呼叫 requests, oldest first, and record each outcome."""
        for request in await self.db.run(_pending_requests, self.db):
            try:
                outcome = await self._carry_out(request)
            except Exception:
                log.exception("console request %d (%s) failed", request.id, request.kind)
                outcome = _Outcome("refused", "处理失败，请重试或直接电话通知。", request.escalation_id)
            log.info("console request %d: %s by %s: %s", request.id, request.kind, request.by, outcome.state)
            await self.db.run(_finish_request, self.db, request.id, outcome, self.clock.now())

    async def _carry_out(self, request: ConsoleRequest) -> _Outcome:
        now = self.clock.now()
        if request.kind == "stop":
            escalation = self._open.get(request.escalation_id or -1)
            if escalation is None:
                return _Outcome("refused", REFUSALS["closed"], request.escalation_id)
            await self._step(escalation, Stopped(request.by, request.reason, now))
            return _Outcome("done", "已停止呼叫。", escalation.id)
        target = self._open.get(request.escalation_id or -1) if request.escalation_id else None
        if target is None and request.receipt_id is not None:
            target = next((e for e in self._open.values() if request.receipt_id in e.receipt_ids), None)
        if target is not None:
            return await self._page_now(target, request.by, now)
        return await self._page_again(request, now)

    async def _page_now(self, escalation: Escalation, by: str, now: datetime) -> _Outcome:
        blocker = engine.page_now_blocker(escalation)
        if blocker is not None:
            return _Outcome("refused", REFUSALS[blocker], escalation.id)
        await self._step(escalation, PageNow(by, now))
        return _Outcome("done", "已立即呼叫。", escalation.id)

    async def _page_again(self, request: ConsoleRequest, now: datetime) -> _Outcome:
        """Page now for receipts with no open escalation: they join the one under way, or a new one opens."""
        receipt_ids = await self.db.run(_request_receipts, self.db, request)
        if not receipt_ids:
            return _Outcome("refused", REFUSALS["no_receipt"], request.escalation_id)
        under_way = max(self._open.values(), key=lambda e: e.opened_at, default=None)
        if under_way is not None:
            for receipt_id in receipt_ids:
                await self._step(self._open[under_way.id], UrgentReceipt(receipt_id, now))
            return await self._page_now(self._open[under_way.id], request.by, now)
        opened, actions = await self.db.run(self._open_for_request, receipt_ids, now)
        log.warning("escalation %d opened from the console by %s for receipt(s) %s", opened.id, request.by,
                    ", ".join(map(str, receipt_ids)))
        await self._apply(None, opened, actions)
        if not opened.chain:  # closed at once as exhausted: the secretariat is mailed instead
            return _Outcome("refused", REFUSALS["no_chain"], opened.id)
        return _Outcome("done", "已开始呼叫。", opened.id)

    def _open_for_request(self, receipt_ids: list[int], now: datetime) -> engine.Step:
        with self.db.session() as session:
            shift = shift_at(now, self.config.calendar, self.config.zone)
            return self._new_escalation(session, receipt_ids, now, shift)

    # -- placing a call ---------------------------------------------------------------------

    async def _place(self, call: PlaceCall, escalation: Escalation) -> None:
        attempt = escalation.attempt(call.key)
        token = attempt.page_token if attempt is not None and attempt.page_token else ""
        if not self.ami.connected.is_set():
            await self._not_placed(call, "not placed: the AMI connection is down", self.clock.now())
            return
        text = await self.db.run(self._spoken_text, call.receipt_ids)
        self._placed_text[call.key] = text
        fields = originate_fields(self.config, call, text, self._agi_port, token)
        sent_at = self.clock.now()
        try:
            response = await self.ami.send_action("Originate", action_id=call.key, **fields)  # type: ignore[arg-type]
        except AmiNotSent as exc:  # the bytes never left: nothing rings, so this is a call not placed
            await self._not_placed(call, f"not placed: {exc}", self.clock.now())
            return
        except Exception as exc:  # noqa: BLE001 - the action may have left: never send it again
            log.error("page %s to %s: Originate unconfirmed (%s); waiting for its result", call.key, call.number, exc)
            await self._feed(call.key, OriginateSent(call.key, sent_at))
            return
        if response.response != "Success":
            detail = f"Originate refused: {response.get('Message') or response.response}"
            await self._not_placed(call, detail, self.clock.now() + REFUSED_RETRY)
            return
        self._unplaced.discard(call.key)
        if self.on_originate is not None:
            self.on_originate(call.key, sent_at)
        log.info("page %s: calling %s %s (%s), %d receipt(s)", call.key, call.role, call.name, call.number,
                 len(call.receipt_ids))
        self._calls.placed(call.key)
        await self._feed(call.key, OriginateSent(call.key, sent_at))
        if self.speech is not None:  # render while it rings, so the page is ready on answer
            task = asyncio.create_task(asyncio.to_thread(self.speech.prompt, text))
            self._prerendering.add(task)
            task.add_done_callback(self._prerendering.discard)

    async def _not_placed(self, call: PlaceCall, detail: str, retry_at: datetime) -> None:
        """Log it (an error the first time), record it on the attempt and fall back to mail."""
        if call.key not in self._unplaced:
            log.error("page %s to %s %s cannot be placed: %s; retrying", call.key, call.role, call.number, detail)
            self._unplaced.add(call.key)
        elif retry_at <= self.clock.now():
            return  # AMI still down: the next tick tries again, nothing new to record
        else:
            log.warning("page %s still cannot be placed: %s", call.key, detail)
        await self._feed(call.key, PlaceFailed(call.key, self.clock.now(), detail, retry_at))

    async def _feed(self, key: str, event: object) -> None:
        escalation_id = self._calls.escalation_of(key)
        if escalation_id is not None and escalation_id in self._open:
            await self._step(self._open[escalation_id], event)

    def _spoken_text(self, receipt_ids: Sequence[int]) -> str:
        with self.db.session() as session:
            receipts = session.scalars(select(Receipt).where(Receipt.id.in_(receipt_ids)).order_by(Receipt.id)).all()
            return spoken_page_text(receipts, room_name=self.config.duty.room_name,
                                    room_phone=self.config.duty.room_phone)


# -- database work (run on the database's threads through db.run) --------------------------


def _pending_requests(db: Database) -> list[ConsoleRequest]:
    with db.session() as session:
        rows = session.scalars(select(PagingRequest).where(PagingRequest.state == "pending")
                               .order_by(PagingRequest.id)).all()
        return [ConsoleRequest(r.id, r.kind, r.escalation_id, r.receipt_id, r.reason, r.requested_by) for r in rows]


def _finish_request(db: Database, request_id: int, outcome: _Outcome, at: datetime) -> None:
    with db.session() as session:
        row = session.get(PagingRequest, request_id)
        if row is not None:
            row.state, row.detail, row.handled_at = outcome.state, outcome.detail, at
            row.result_escalation_id = outcome.escalation_id


def _request_receipts(db: Database, request: ConsoleRequest) -> list[int]:
    """The receipts a page now is about: the one named, or those of the (closed) escalation named."""
    with db.session() as session:
        if request.receipt_id is not None:
            return [request.receipt_id] if session.get(Receipt, request.receipt_id) is not None else []
        row = session.get(EscalationRow, request.escalation_id) if request.escalation_id else None
        return [int(i) for i in row.receipt_ids or []] if row is not None else []


def _with_tokens(escalation: Escalation, actions: Sequence[object]) -> Escalation:
    """Give each attempt about to be dialled its unguessable page id (once: a retry keeps it)."""
    for action in actions:
        if isinstance(action, PlaceCall):
            escalation = engine.with_page_token(escalation, action.key, new_page_token())
    return escalation


def _unhandled_receipts(db: Database, since: datetime, decided_before: datetime) -> list[int]:
    """Recent receipts decided urgent (or possibly) that no escalation carries and no notice names."""
    with db.session() as session:
        candidates = session.scalars(
            select(Receipt.id).where(Receipt.urgency_decided_at >= since,
                                     Receipt.urgency_decided_at <= decided_before,
                                     or_(Receipt.is_urgent.is_(True), Receipt.possibly_urgent.is_(True)))
            .order_by(Receipt.id)).all()
        if not candidates:
            return []
        handled: set[int] = set()
        for ids in session.scalars(select(EscalationRow.receipt_ids).where(EscalationRow.opened_at >= since)):
            handled.update(int(i) for i in ids or [])
        notices = select(OutboundMail.receipt_ids).where(OutboundMail.kind == URGENT_NOTICE,
                                                         OutboundMail.created_at >= since)
        for ids in session.scalars(notices):
            handled.update(int(i) for i in ids or [])
        return [r for r in candidates if r not in handled]
