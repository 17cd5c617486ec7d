"""Live updates: one poller per console process watches a cheap change mark in the database.

The database is the only thing the daemon and a standalone console (``dutygw web``)
share, so both learn of a new AMI write, filed fax or page attempt the same way: the
poller reads ``storage.queries.change_mark`` every ``poll_seconds`` and wakes every
open event stream when it differs. The browser then fetches the part of the page that
changed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from storage.db import Database
from storage.queries import change_mark

log = logging.getLogger("dutygw.web.live")
KEEPALIVE_SECONDS = 15.0


class ChangeHub:
    def __init__(self, db: Database, poll_seconds: float) -> None:
        self._db = db
        self._poll = poll_seconds
        self._mark: Any = None
        self.version = 0
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        self._mark = await self._db.run(self._read)
        self._task = asyncio.create_task(self._watch(), name="web-changes")

    async def stop(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        async with self._changed:
            self._changed.notify_all()

    async def stream(self) -> AsyncIterator[int]:
        """Versions as they change; a keep-alive repeat of the current one now and then."""
        seen = self.version
        yield seen
        while not self._closed:
            async with self._changed:
                try:
                    await asyncio.wait_for(self._changed.wait_for(lambda: self.version != seen or self._closed),
                                           KEEPALIVE_SECONDS)
                except TimeoutError:
                    pass
            if self._closed:
                return
            seen = self.version
            yield seen

    def _read(self) -> Any:
        with self._db.read() as session:
            return change_mark(session)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._poll)
            try:
                mark = await self._db.run(self._read)
            except Exception as exc:  # a locked or restarting database: try again next round
                log.warning("console cannot read the change mark: %s", exc)
                continue
            if mark != self._mark:
                self._mark = mark
                async with self._changed:
                    self.version += 1
                    self._changed.notify_all()
