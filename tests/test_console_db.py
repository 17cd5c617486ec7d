"""The console's read-only unit of work: readers beside a held write lock, writes refused."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from gateway.errors import StorageError
from storage.db import Database, open_database
from storage.faxes import Receipt


def _count(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(Receipt)) or 0)


def test_a_read_completes_while_another_connection_holds_the_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "dutygw.sqlite"
    db = open_database(f"sqlite:///{path}")
    with db.session() as session:
        session.add(Receipt(year=2026, seq=1, received_at=datetime(2026, 12, 1, 12, tzinfo=UTC)))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("DELETE FROM receipts")  # uncommitted: readers still see the row
    read: list[int] = []
    written = threading.Event()

    def write() -> None:
        with db.session() as session:
            session.add(Receipt(year=2026, seq=3, received_at=datetime(2026, 12, 1, 12, 10, tzinfo=UTC)))
        written.set()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    reader = threading.Thread(target=lambda: read.append(_count(db)), daemon=True)
    reader.start()
    reader.join(timeout=10)  # the busy timeout is 30 s: a reader that queued for the lock would still wait
    try:
        assert not reader.is_alive(), "the read-only unit of work waited for the write lock"
        assert read == [1], "the reader sees the last committed snapshot, not the open transaction"
        assert not written.is_set(), "a write went through while another connection held the lock"
    finally:
        holder.execute("COMMIT")
        holder.close()
    assert written.wait(30), "the write did not go through once the lock was released"
    writer.join(timeout=30)
    assert _count(db) == 1  # the holder's delete, then the waiting writer's row
    db.dispose()


def test_a_read_only_unit_of_work_refuses_to_write(any_database: Database) -> None:
    with pytest.raises(StorageError, match="read-only"), any_database.read() as session:
        session.add(Receipt(year=2026, seq=9, received_at=datetime(2026, 12, 1, tzinfo=UTC)))
        session.flush()
    assert _count(any_database) == 0


def test_raw_sql_in_a_read_only_unit_of_work_is_never_kept(any_database: Database) -> None:
    """PostgreSQL refuses it (READ ONLY); on SQLite the unit of work rolls back, never commits."""
    with any_database.engine.begin() as connection:
        connection.execute(text("CREATE TABLE scratch_marks (n INTEGER)"))
    insert = text("INSERT INTO scratch_marks (n) VALUES (7)")
    if any_database.engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="read-only transaction"), any_database.read() as session:
            session.execute(insert)
    else:
        with any_database.read() as session:
            session.execute(insert)
    with any_database.read() as session:
        assert session.scalar(text("SELECT count(*) FROM scratch_marks")) == 0
    with any_database.session(readonly=True) as session:
        assert session.info.get("dutygw_read_only") is True


def test_rows_read_stay_usable_after_the_unit_of_work(database: Database) -> None:
    arrived = datetime(2026, 12, 1, 12, tzinfo=UTC)
    with database.session() as session:
        session.add(Receipt(year=2026, seq=4, received_at=arrived))
    with database.read() as session:
        row = session.scalars(select(Receipt)).one()
    assert row.received_at == arrived and row.receipt_no == "传真〔2026〕0004号"


READ_ONLY_PAGES = ("/", "/fragment/board", "/calls", "/faxes", "/pages", "/handover", "/spotcheck",
                   "/fragment/spotcheck", "/reports")


def test_the_consoles_pages_and_its_poll_read_only_beside_a_held_write_lock(any_database: Database,
                                                                            tmp_path: Path) -> None:
    """The console's read-only pages and its change-mark poll go through ``db.read()``. On SQLite,
    with another connection holding BEGIN IMMEDIATE, they still answer (a write would wait 30 s);
    on PostgreSQL they run in READ ONLY transactions, so none of them writes."""
    import asyncio
    import contextlib
    import re

    import httpx

    from gateway.clock import SystemClock
    from gateway.config import Config, DutyConfig, PathsConfig, WebConfig
    from gateway.web.accounts import add_user
    from gateway.web.app import Console
    from gateway.web.site import build_app

    db = any_database
    config = Config(duty=DutyConfig(numbers=["02787654321"], extensions=["8001"]),
                    paths=PathsConfig(data_dir=tmp_path), web=WebConfig(poll_seconds=0.2))
    with db.session() as session:
        add_user(session, "wangfang", "officer", "correct-horse-7", SystemClock().now(), display_name="王芳")
    console = Console(config, db, SystemClock())

    @contextlib.contextmanager
    def write_lock_held() -> Iterator[None]:
        if db.engine.dialect.name != "sqlite":
            yield
            return
        holder = sqlite3.connect(db.engine.url.database or "", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()

    async def scenario() -> dict[str, int]:
        transport = httpx.ASGITransport(app=build_app(console), client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
            form = await client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert token is not None
            signed = await client.post("/login", data={"name": "wangfang", "password": "correct-horse-7",
                                                       "csrf_token": token.group(1), "next": "/"})
            assert signed.status_code == 303
            statuses = {}
            with write_lock_held():
                for url in READ_ONLY_PAGES:
                    answer = await asyncio.wait_for(client.get(url), 10)
                    statuses[url] = answer.status_code
                    assert ("<html" not in answer.text or "王芳（值班员" in answer.text), url
                await asyncio.wait_for(db.run(console.hub._read), 10)
            return statuses

    statuses = asyncio.run(scenario())
    assert statuses == dict.fromkeys(READ_ONLY_PAGES, 200), statuses
