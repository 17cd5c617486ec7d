"""A locked database slows the writing of call records, never the reading of AMI events.

Real parts: the deployment-pattern captures served by the replay server over a real
socket to the real AMI client, the real tracker, and a real SQLite file held locked by
another connection (``BEGIN EXCLUSIVE``) while the whole stream is read.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from gateway.ami.client import AmiClient
from gateway.ami.message import AmiMessage
from gateway.ami.replay import ReplayServer, load_recording
from gateway.calls.recorder import CallRecorder
from gateway.calls.records import CallRecord
from gateway.calls.tracker import CallTracker
from gateway.calls.writer import CallWriter
from gateway.clock import FixedClock
from gateway.config import AmiConfig
from gateway.daemon import CallListener
from storage.calls import Call
from storage.db import open_database
from tests.test_tracker_patterns import DUTY, PATTERNS, TRUTHS, track_pattern

TIMEOUT = 60.0


def _ended(seen: list[AmiMessage]) -> set[str]:
    return {m.get("Uniqueid") or "" for m in seen if m.event == "Hangup"}


def test_a_locked_database_does_not_block_the_ami_reader(tmp_path: Path) -> None:
    path = tmp_path / "dutygw.sqlite"
    db = open_database(f"sqlite:///{path}")
    callers = {truth["linkedid"] for truth in TRUTHS.values()}
    recordings = [load_recording(PATTERNS / truth["file"]) for truth in TRUTHS.values()]

    async def scenario() -> tuple[int, int]:
        server = ReplayServer(recordings)
        await server.start()
        writer = CallWriter(CallRecorder(db, DUTY), db)
        await writer.start()
        seen: list[AmiMessage] = []
        every_call_read = asyncio.Event()

        def saw(message: AmiMessage) -> None:
            seen.append(message)
            if callers <= _ended(seen):
                every_call_read.set()

        listener = CallListener(CallTracker(DUTY), writer, FixedClock(datetime(2026, 12, 1, tzinfo=UTC)), [saw])
        config = AmiConfig(port=server.port, user="gateway", secret="x", reconnect_min_seconds=0.05,
                           reconnect_max_seconds=0.1)
        client = AmiClient(config, clock=FixedClock(), on_message=listener.on_message,
                           on_connected=listener.on_connected, on_disconnected=listener.on_disconnected)
        lock = sqlite3.connect(path, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        stop = asyncio.Event()
        reading = asyncio.create_task(client.run(stop))
        try:
            await asyncio.wait_for(every_call_read.wait(), TIMEOUT)  # read to the end while locked
            written_while_locked = lock.execute("SELECT count(*) FROM calls").fetchone()[0]
            queued = writer.pending
        finally:
            lock.execute("ROLLBACK")
            lock.close()
            stop.set()
            await asyncio.wait_for(reading, TIMEOUT)
            await asyncio.wait_for(writer.stop(), TIMEOUT)  # everything queued is written
            await server.close()
        return written_while_locked, queued

    try:
        written_while_locked, queued = asyncio.run(scenario())
        with db.session() as session:
            rows = {row.linkedid: row for row in session.scalars(select(Call))}
    finally:
        db.dispose()
    assert written_while_locked == 0 and queued > 0, "the records waited; the reader did not"
    assert set(rows) == callers
    for truth in TRUTHS.values():
        row = rows[truth["linkedid"]]
        assert row.complete and row.outcome == truth["outcome"]
        assert row.answered_by == truth["first_answer"]["extension"]


class _Flaky(CallRecorder):
    """The real recorder with crashes injected: the first ``locked`` calls raise a lock
    error, every call for ``poison`` raises a refusal."""

    def __init__(self, db: Any, locked: int, poison: str | None) -> None:
        super().__init__(db, DUTY)
        self.locked, self.poison, self.tries = locked, poison, 0

    def apply(self, records: list[CallRecord]) -> None:
        self.tries += 1
        if self.locked > 0:
            self.locked -= 1
            raise OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))
        if self.poison and any(r.linkedid == self.poison for r in records):
            raise ValueError("refused")
        super().apply(records)


def test_a_lock_is_waited_out_and_a_refused_unit_does_not_stop_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway.calls.writer._RETRY_MIN_SECONDS", 0.01)
    db = open_database(f"sqlite:///{tmp_path / 'dutygw.sqlite'}")
    names = sorted(TRUTHS)
    batches = [track_pattern(name) for name in names]
    poison = TRUTHS[names[1]]["linkedid"]
    recorder = _Flaky(db, locked=3, poison=poison)

    async def scenario() -> None:
        writer = CallWriter(recorder, db)
        await writer.start()
        for batch in batches:
            writer.apply(batch)
        await asyncio.wait_for(writer.stop(), TIMEOUT)

    try:
        asyncio.run(scenario())
        with db.session() as session:
            rows = {row.linkedid: row for row in session.scalars(select(Call))}
    finally:
        db.dispose()
    assert set(rows) == {TRUTHS[n]["linkedid"] for n in names} - {poison}
    assert all(row.complete for row in rows.values())
    written = [rows[TRUTHS[n]["linkedid"]].id for n in names if TRUTHS[n]["linkedid"] != poison]
    assert written == sorted(written), "written in the order they came"
    assert recorder.tries == 3 + len(batches) - 1 + 5  # the lock waited out, the refusal tried 5 times
