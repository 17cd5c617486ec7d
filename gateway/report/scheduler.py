"""When reports are due: at the end of every night shift (and day shift, if configured).

``due_reports`` is pure: the shifts that ended within ``catch_up_hours`` before ``now``,
are reported, and are not yet made. ``ReportScheduler`` runs it once a minute in the
daemon; the made shifts are remembered in the database, so a restart never makes the
same shift's report twice, and a daemon that was down catches up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from gateway.clock import Clock
from gateway.config import Config
from gateway.errors import GatewayError
from gateway.shifts.calendar import Shift, shifts_between
from storage.db import Database

log = logging.getLogger("dutygw.report.scheduler")

CHECK_INTERVAL_SECONDS = 60.0


def due_reports(now: datetime, config: Config, made: Collection[str],
                watching_since: datetime | None = None) -> list[str]:
    """Keys of the ended, reported shifts in the catch-up window that have no report yet.

    A shift that ended before the gateway first watched the PBX gets no report: on first
    start there is nothing true to say about it (a shift it began watching halfway is
    reported, and the report says from when)."""
    since = now - timedelta(hours=config.report.catch_up_hours)
    if watching_since is not None:
        since = max(since, watching_since)
    return [
        shift.key
        for shift in shifts_between(since, now, config.calendar, config.zone)
        if shift.end <= now and shift.end > since and _reported(shift, config) and shift.key not in made
    ]


def _reported(shift: Shift, config: Config) -> bool:
    return config.report.night_report if shift.night else config.report.day_report


class ReportScheduler:
    """Makes due reports in the daemon; ``start``/``stop`` from the daemon's lifecycle."""

    def __init__(self, config: Config, db: Database, clock: Clock,
                 interval_seconds: float = CHECK_INTERVAL_SECONDS) -> None:
        self._config, self._db, self._clock = config, db, clock
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._watching_since: datetime | None = None

    async def start(self) -> None:
        from gateway.report.query import mark_watching_since

        self._stop.clear()
        self._watching_since = await asyncio.to_thread(mark_watching_since, self._config, self._clock.now())
        self._task = asyncio.create_task(self._run(), name="report-scheduler")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def run_once(self) -> list[str]:
        """Make every due report; returns the shift keys made. One failure does not stop the rest."""
        from gateway.report.publish import made_since, publish

        now = self._clock.now()
        since = now - timedelta(hours=self._config.report.catch_up_hours + 24)
        made = []
        for key in due_reports(now, self._config, made_since(self._db, since), self._watching_since):
            try:
                await asyncio.to_thread(publish, self._db, self._config, key, now)
            except (GatewayError, OSError, SQLAlchemyError) as exc:
                log.error("report for shift %s not made: %s", key, exc)
                continue
            log.info("report for shift %s made", key)
            made.append(key)
        return made

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.run_once()
            except Exception:  # the daemon's reports must outlive one bad minute
                log.exception("report scheduler: checking for due reports failed; trying again")
            try:
                await asyncio.wait_for(self._stop.wait(), self._interval)
            except TimeoutError:
                pass
