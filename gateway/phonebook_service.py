"""Keeps the phonebook imported while the daemon runs, and never stops the daemon over it.

The phonebook only names callers: call recording and the 24-hour fax intake must run even
when the file is missing, unreadable or in an encoding we cannot read. So a failed import
is an ERROR in the log (loud, with what to do) and is tried again: as soon as the file
changes, and every ``retry_seconds`` regardless. A file edited while the gateway runs is
imported again too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from gateway.errors import GatewayError
from storage.db import Database

log = logging.getLogger("dutygw.phonebook")

POLL_SECONDS = 2.0
"""How often the file's size and time are looked at (one stat call)."""
RETRY_SECONDS = 60.0


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


@dataclass
class PhonebookService:
    db: Database
    path: Path
    retry_seconds: float = RETRY_SECONDS
    poll_seconds: float = POLL_SECONDS
    imported: asyncio.Event = field(default_factory=asyncio.Event)
    """Set after each successful import (tests and the demo wait on it)."""
    _task: asyncio.Task[None] | None = None
    _seen: tuple[int, int] | None = None
    _failed_at: float | None = None

    async def start(self) -> None:
        await self._attempt()
        self._task = asyncio.create_task(self._watch(), name="phonebook")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.poll_seconds)
            changed = _signature(self.path) != self._seen
            due = self._failed_at is not None and loop.time() - self._failed_at >= self.retry_seconds
            if changed or due:
                await self._attempt()

    async def _attempt(self) -> None:
        from gateway.calls.phonebook import import_phonebook

        self._seen = _signature(self.path)
        try:
            if self._seen is None and not self.path.exists():
                raise GatewayError(f"{self.path}: the phonebook file does not exist")
            count = await self.db.run(import_phonebook, self.db, self.path)
        except (GatewayError, OSError, UnicodeError) as exc:
            self._failed_at = asyncio.get_running_loop().time()
            log.error("phonebook NOT imported: %s; calls and faxes are recorded as usual, callers are shown "
                      "without names; trying again when the file changes and every %.0f s "
                      "(save it as CSV, UTF-8 or GB18030: number,name[,unit])", exc, self.retry_seconds)
            return
        self._failed_at = None
        log.info("phonebook %s: %d entries imported", os.fspath(self.path), count)
        self.imported.set()
