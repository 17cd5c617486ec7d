"""Call records to the database off the event loop, in order, never dropped.

The AMI reader runs on the event loop; a database held locked (SQLite's busy timeout is
30 s) must slow the writing of records, never the reading of events. ``CallWriter`` has
the recorder's three methods but only queues their work; one task hands each unit of
work (the records of one AMI event, a gap) to ``await db.run(...)`` in the order they
came. A unit that fails because the database is locked past the timeout or gone is
retried with backoff for as long as it takes, and everything behind it waits: a record is
never written out of order. A unit refused for any other reason (a bug) is tried a few
times, then logged in full as an error, so one bad unit cannot stop all call recording.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy.exc import InterfaceError, OperationalError

from gateway.calls.recorder import CallRecorder, GapLike
from gateway.calls.records import CallRecord
from gateway.logcontext import log_context
from storage.db import Database

log = logging.getLogger("dutygw.calls.writer")

_RETRY_MIN_SECONDS = 0.5
_RETRY_MAX_SECONDS = 30.0
_GIVE_UP_AFTER = 5
"""Tries for a unit refused for a reason other than a lock or a lost connection."""


class RecordSink(Protocol):
    """Where the call listener puts what the tracker says (a recorder or a writer)."""

    def apply(self, records: list[CallRecord]) -> None: ...

    def record_gap(self, gap: GapLike) -> None: ...

    def gap_closed(self, at: Any) -> None: ...


class CallWriter:
    """The recorder's work queued and done on the database's threads, one unit at a time."""

    def __init__(self, recorder: CallRecorder, db: Database) -> None:
        self._recorder = recorder
        self._db = db
        self._queue: asyncio.Queue[tuple[Callable[..., None], tuple[Any, ...]] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def apply(self, records: list[CallRecord]) -> None:
        if records:
            self._queue.put_nowait((self._recorder.apply, (list(records),)))

    def record_gap(self, gap: GapLike) -> None:
        self._queue.put_nowait((self._recorder.record_gap, (gap,)))

    def gap_closed(self, at: Any) -> None:
        self._queue.put_nowait((self._recorder.gap_closed, (at,)))

    @property
    def pending(self) -> int:
        """Units of work queued and not yet written."""
        return self._queue.qsize()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="call-writer")

    async def stop(self) -> None:
        """Write everything queued, then stop."""
        if self._task is None:
            return
        self._queue.put_nowait(None)
        await self._task
        self._task = None

    async def _run(self) -> None:
        while (unit := await self._queue.get()) is not None:
            work, args = unit
            await self._write(work, args)

    async def _write(self, work: Callable[..., None], args: tuple[Any, ...]) -> None:
        with log_context(linkedid=_linkedids(args)):
            await self._write_unit(work, args)

    async def _write_unit(self, work: Callable[..., None], args: tuple[Any, ...]) -> None:
        delay, failures = _RETRY_MIN_SECONDS, 0
        while True:
            try:
                await self._db.run(work, *args)
                return
            except (OperationalError, InterfaceError):  # locked, server gone: it will pass
                log.exception("writing call records failed; retrying in %.1f s (%d more queued)",
                              delay, self._queue.qsize())
            except Exception:  # a unit the database refuses must not stop every later record
                failures += 1
                if failures >= _GIVE_UP_AFTER:
                    log.error("call records dropped after %d failures: %r", failures, args)
                    return
                log.exception("writing call records failed (%d of %d tries)", failures, _GIVE_UP_AFTER)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_SECONDS)


def _linkedids(args: tuple[Any, ...]) -> str | None:
    """The calls a unit of records is about (a gap is about no call)."""
    records = args[0] if args and isinstance(args[0], list) else []
    return ",".join(r.linkedid for r in records if isinstance(r, CallRecord)) or None
