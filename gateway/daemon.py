"""The daemon: wires the AMI listener, call tracking, fax intake, paging, mail and reports.

Each part is built here and handed what it needs (config, database, clock); nothing
starts at import time. SIGTERM or SIGINT sets the stop event; parts stop in the reverse
order they started, so a fax being filed or a call being written is flushed first.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.ami.client import AmiClient
from gateway.ami.message import AmiMessage
from gateway.calls.recorder import CallRecorder
from gateway.calls.tracker import CallTracker
from gateway.calls.writer import CallWriter, RecordSink
from gateway.clock import Clock, SystemClock
from gateway.config import Config
from storage.db import Database, open_database

log = logging.getLogger("dutygw.daemon")


class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class CallListener:
    """Glue between the AMI stream and the call records: tracker in the middle, database after."""

    tracker: CallTracker
    recorder: RecordSink
    clock: Clock
    also: list[Callable[[AmiMessage], Any]] = field(default_factory=list)

    def on_message(self, message: AmiMessage) -> None:
        self.recorder.apply(self.tracker.feed(message))
        for listener in self.also:
            listener(message)

    def on_connected(self, channels: list[AmiMessage]) -> None:
        """Every (re)connect: the PBX's channel list is the truth about calls in flight."""
        at = self.clock.now()
        self.recorder.gap_closed(at)
        self.recorder.apply(self.tracker.rebuild(channels, at))

    def on_disconnected(self, gap: Any) -> None:
        self.recorder.apply(self.tracker.connection_lost(gap.lost_at))
        self.recorder.record_gap(gap)


@dataclass
class Daemon:
    config: Config
    clock: Clock = field(default_factory=SystemClock)
    db: Database | None = None
    services: list[Service] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, stop: asyncio.Event) -> None:
        self.db = self.db or open_database(self.config.database_url)
        ami_stop = asyncio.Event()
        listener, ami = self._build_ami()
        self.services = self._build_services(ami, listener)
        started: list[Service] = []
        ami_task: asyncio.Task[None] | None = None
        try:
            for service in self.services:
                await service.start()
                started.append(service)
            ami_task = asyncio.create_task(ami.run(ami_stop), name="ami")
            log.info("duty-gateway running (database %s)", self.db.safe_url)
            self.ready.set()
            await _first_of(stop.wait(), ami_task)
        finally:
            ami_stop.set()
            if ami_task is not None:
                await asyncio.gather(ami_task, return_exceptions=True)
            for service in reversed(started):
                await service.stop()
            log.info("duty-gateway stopped")

    def _build_ami(self) -> tuple[CallListener, AmiClient]:
        assert self.db is not None
        writer = CallWriter(CallRecorder(self.db, self.config.duty), self.db)  # off the event loop
        listener = CallListener(CallTracker(self.config.duty), writer, self.clock)
        client = AmiClient(
            self.config.ami,
            clock=self.clock,
            on_message=listener.on_message,
            on_connected=listener.on_connected,
            on_disconnected=listener.on_disconnected,
        )
        return listener, client

    def _build_services(self, ami: AmiClient, listener: CallListener) -> list[Service]:
        from gateway.fax.service import FaxService
        from gateway.outbox import MailService
        from gateway.paging.outgoing import queue_due_digests
        from gateway.paging.pager import PagingService
        from gateway.report.mail import KIND as REPORT_KIND
        from gateway.report.mail import report_message
        from gateway.report.scheduler import ReportScheduler

        assert self.db is not None
        pager = PagingService(self.config, self.db, self.clock, ami)
        listener.also.append(pager.on_ami_message)
        fax = FaxService(self.config, self.db, self.clock, on_urgency=pager.on_urgent_receipt)
        mail = MailService(self.config, self.db, self.clock, builders={REPORT_KIND: report_message},
                           queuers=[lambda s, now: queue_due_digests(s, self.config, now)])
        pager.on_mail_queued = mail.wake  # an urgent notice (or a page that cannot be placed) goes out now
        reports = ReportScheduler(self.config, self.db, self.clock)
        writer = [listener.recorder] if isinstance(listener.recorder, CallWriter) else []
        # the writer stops last: every record written
        return [*writer, *self._phonebook(), mail, pager, fax, reports, *self._build_console(ami),
                *self._spot_checks(ami, listener, mail)]

    def _build_console(self, ami: AmiClient) -> list[Service]:
        """The console (值班台) on ``[web]`` host and port, sharing this loop and database."""
        if not self.config.web.enabled:
            return []
        from gateway.web.server import WebService

        assert self.db is not None
        return [WebService(self.config, self.db, self.clock, ami)]

    def _spot_checks(self, ami: AmiClient, listener: CallListener, mail: Any) -> list[Service]:
        """The spot-check runner (值班抽查): hears the AMI stream, places due checks, mails the 情况通报."""
        if not self.config.spotcheck.enabled:
            return []
        from gateway.paging.speech import speech_for
        from gateway.spotcheck.runner import SpotCheckRunner

        assert self.db is not None
        runner = SpotCheckRunner(self.config, self.db, self.clock, ami, speech=speech_for(self.config),
                                 on_mail_queued=mail.wake)
        listener.also.append(runner.on_ami_message)
        return [runner]

    def _phonebook(self) -> list[Service]:
        """A phonebook that cannot be read is logged and retried, never a reason to stop."""
        from gateway.phonebook_service import PhonebookService

        assert self.db is not None
        path = self.config.paths.phonebook
        return [] if path is None else [PhonebookService(self.db, path)]


async def _first_of(*waitables: Awaitable[Any]) -> None:
    tasks = [asyncio.ensure_future(w) for w in waitables]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        if not isinstance(task, asyncio.Task) or task.get_name() != "ami":
            task.cancel()
    for task in done:
        task.result()


def run_daemon(config: Config) -> int:
    """Run until SIGTERM/SIGINT; the exit code of ``dutygw run``."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Daemon(config).run(stop)

    asyncio.run(main())
    return 0
