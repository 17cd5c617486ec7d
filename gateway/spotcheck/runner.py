"""The spot-check service: places due checks (AMI ``Originate``) and stores what the PBX reports.

Every ``tick``: results that came in are stored, then the due checks are placed, at most
``[spotcheck] max_concurrent`` on the trunk at once. While an urgent page is open (a
small query of open escalations, so this never depends on the pager's internals) no check
is placed: the due ones are moved by ``postpone_seconds``, never dropped, and the page
has the trunk. A try is written to the database before its Originate leaves.

AMI events reach ``on_ami_message`` from the daemon's listener and go through the pure
``CheckTracker``; the database is only touched through ``db.run``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from gateway.ami.client import AmiError
from gateway.ami.message import AmiMessage
from gateway.clock import Clock
from gateway.config import Config
from gateway.paging.speech import Speech
from gateway.spotcheck import records
from gateway.spotcheck.check import CallResult, CheckTracker, Rules
from gateway.spotcheck.report import publish
from gateway.spotcheck.sounds import (
    FALLBACK_PROMPT,
    FALLBACK_PROMPT_NAME,
    FALLBACK_THANKS,
    THANKS_TEXT,
)
from storage.db import Database

log = logging.getLogger("dutygw.spotcheck")
T = TypeVar("T")



class AmiSender(Protocol):
    connected: asyncio.Event

    async def send_action(self, action: str, *, action_id: str | None = None, timeout: float | None = None,
                          **fields: str | list[str]) -> AmiMessage: ...


def rules_of(config: Config) -> Rules:
    spot = config.spotcheck
    return Rules(key=spot.key, cadence=config.duty.ring_cadence_seconds,
                 answer_within_rings=config.duty.answer_within_rings, ring_limit_seconds=spot.ring_limit_seconds,
                 result_margin_seconds=spot.result_margin_seconds, max_call_seconds=spot.max_call_seconds)


def prompt_text(config: Config) -> str:
    spot = config.spotcheck
    template = spot.prompt_with_name if spot.record_name else spot.prompt
    return template.format(room=config.duty.room_name, key=spot.key)


def originate_fields(config: Config, action_id: str, number: str, prompts: dict[str, str]) -> dict[str, str | list[str]]:
    """The Originate into ``[dutygw-spotcheck]``; what the dialplan reads is in channel variables."""
    spot = config.spotcheck
    variables = [
        f"SPOT_ID={action_id}",
        f"SPOT_NUMBER={number}",
        f"SPOT_KEY={spot.key}",
        f"SPOT_PROMPT={prompts.get('prompt', '')}",
        f"SPOT_THANKS={prompts.get('thanks', '')}",
        f"SPOT_RECORD={'1' if spot.record_name else '0'}",
        f"SPOT_RECORD_SECONDS={spot.record_seconds}",
    ]
    return {
        "Channel": spot.channel.format(number=number),
        "Context": spot.context,
        "Exten": spot.exten,
        "Priority": "1",
        "Async": "true",
        "Timeout": str(int(spot.ring_limit_seconds * 1000)),
        "CallerID": spot.caller_id,
        "Variable": variables,
    }


class SpotCheckRunner:
    def __init__(self, config: Config, db: Database, clock: Clock, ami: AmiSender, *,
                 speech: Speech | None = None, tick_seconds: float = 5.0,
                 on_mail_queued: Callable[[], None] | None = None) -> None:
        self.config = config
        self.db = db
        self.clock = clock
        self.ami = ami
        self.speech = speech
        self.tick_seconds = tick_seconds
        self.on_mail_queued = on_mail_queued
        self.tracker = CheckTracker(rules_of(config))
        self._results: list[CallResult] = []
        self._prompts: dict[str, str] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.most_in_flight = 0
        """The largest number of checks this runner had on the trunk at once (for tests, audits)."""

    async def start(self) -> None:
        resumed = await self._db(records.resume, self.clock.now())
        if resumed:
            log.warning("spot checks: %d call(s) interrupted by a restart will be placed again", resumed)
        self._prompts = await asyncio.to_thread(self._render_prompts)
        self._task = asyncio.create_task(self._tick_forever(), name="spotcheck")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._store_results()

    def on_ami_message(self, message: AmiMessage) -> None:
        """From the AMI listener: pure tracking now, storing on the next pass."""
        self._results += self.tracker.feed(message, self.clock.now())

    async def tick(self) -> None:
        """One pass: store results, move checks out of an urgent page's way, place due checks."""
        async with self._lock:
            now = self.clock.now()
            self._results += self.tracker.expire(now)
            await self._store_results()
            due = await self._db(records.due_checks, now)
            paging: bool = bool(due) and await self._db(records.trunk_taken_by_paging)
            if paging:
                until = now + timedelta(seconds=self.config.spotcheck.postpone_seconds)
                await self._db(records.postpone, [d.check_id for d in due], until,
                                  records.POSTPONED_FOR_PAGING)
                log.info("spot checks: %d moved to %s, an urgent page has the trunk", len(due), until.isoformat())
                return
            free = self.config.spotcheck.max_concurrent - self.tracker.in_flight()
            for item in due[:max(free, 0)]:
                await self._place(item)
            await self._reports_due(now)

    async def idle(self) -> None:
        """Store every result heard so far (tests)."""
        async with self._lock:
            await self._store_results()

    # -- inside ---------------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        while not self._stopping.is_set():
            await asyncio.sleep(self.tick_seconds)
            try:
                await self.tick()
            except Exception:
                log.exception("spot-check pass failed; trying again next tick")

    async def _place(self, due: records.Due) -> None:
        if not self.ami.connected.is_set():
            return
        now = self.clock.now()
        action_id = f"spot-{due.check_id}-{due.try_no}"
        await self._db(records.start_attempt, due, action_id, now)
        fields = originate_fields(self.config, action_id, due.number, self._prompts)
        self.tracker.sent(action_id, due.number, str(fields["Channel"]).split("/", 1)[-1], now)
        self.most_in_flight = max(self.most_in_flight, self.tracker.in_flight())
        try:
            response = await self.ami.send_action("Originate", action_id=action_id, **fields)  # type: ignore[arg-type]
        except (AmiError, OSError) as exc:  # unconfirmed: its events (or the expiry) still tell the result
            log.error("spot check %s: Originate to %s unconfirmed (%s)", action_id, due.number, exc)
            return
        if (response.response or "").lower() != "success":
            result = self.tracker.refused(action_id, self.clock.now(), response.get("Message") or "")
            if result is not None:
                self._results.append(result)
        log.info("spot check %s: calling %s", action_id, due.number)

    async def _store_results(self) -> None:
        results, self._results = self._results, []
        for result in results:
            await self._db(records.record_result, result, self.config.spotcheck,
                              self.clock.now())
            log.info("spot check %s: %s (%s rings)", result.action_id, result.outcome, result.rings)

    async def _reports_due(self, now: datetime) -> None:
        """On a plan's last day, once its last check is done: the 情况通报, written and mailed."""
        if not self.config.spotcheck.auto_report:
            return
        today = now.astimezone(self.config.zone).date()
        for plan_id in await self._db(records.plans_to_report, today):
            files = await self._db(publish, self.config, plan_id, now)
            log.info("spot-check plan %s: 情况通报 written to %s and queued for mail", plan_id, files.folder)
            if self.on_mail_queued is not None:
                self.on_mail_queued()

    async def _db(self, work: Callable[..., T], *args: object) -> T:
        """``work(session, *args)`` as one unit of work, off the event loop (``db.run``)."""
        def unit() -> T:
            with self.db.session() as session:
                return work(session, *args)

        return await self.db.run(unit)

    def _render_prompts(self) -> dict[str, str]:
        """Render the spoken prompt once (the same speech path as paging); fallbacks if it cannot."""
        name = FALLBACK_PROMPT_NAME if self.config.spotcheck.record_name else FALLBACK_PROMPT
        if self.speech is None:
            return {"prompt": name, "thanks": FALLBACK_THANKS}
        return {"prompt": self.speech.prompt(prompt_text(self.config), name),
                "thanks": self.speech.prompt(THANKS_TEXT, FALLBACK_THANKS)}
