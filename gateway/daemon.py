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
    recorder: CallRecorder
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
        listener = CallListener(CallTracker(self.config.duty), CallRecorder(self.db, self.config.duty), self.clock)
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
        from gateway.paging.mailer import MailService
        from gateway.paging.pager import PagingService
        from gateway.report.scheduler import ReportScheduler

        assert self.db is not None
        pager = PagingService(self.config, self.db, self.clock, ami)
        listener.also.append(pager.on_ami_message)
        fax = FaxService(self.config, self.db, self.clock, on_urgency=pager.on_urgent_receipt)
        mail = MailService(self.config, self.db, self.clock)
        reports = ReportScheduler(self.config, self.db, self.clock)
        return [*self._phonebook(), mail, pager, fax, reports]

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
