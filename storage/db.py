"""Opening the database: engine, sessions, schema.

SQLite (WAL, foreign keys on) is the embedded default; PostgreSQL is chosen by URL.
A unit of work is ``with db.session() as s: ...``: it commits on success and rolls
back on an exception, so callers never leave a half-written record.

The one rule for code on the event loop (the AMI listener, the SMTP intake, the pager,
the mailer, the console): never open a session there. A service hands its unit of work to
``await db.run(work, *args)``, which runs it on the database's own small thread pool: a
database held locked (SQLite's busy timeout is 30 s) then slows that one unit of work and
never the SMTP greeting, the AMI reader or another service. Threads and CLI commands call
``db.session()`` directly.

A unit of work that only reads (the console's polls and pages) is ``db.read()``: on SQLite
it begins DEFERRED, so under WAL it takes no write lock and never queues behind the call
recorder; on PostgreSQL it is a READ ONLY transaction. It never commits, and a write
attempted in it is refused (``StorageError``) rather than taking the lock after all.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, UOWTransaction, sessionmaker

from gateway.errors import StorageError

MIGRATIONS = Path(__file__).with_name("migrations")
DB_THREADS = 4
"""Units of work in flight at once from the event loop (a few: SQLite has one writer anyway)."""

READ_ONLY = "dutygw_read_only"
"""Execution option on a read-only unit of work's connection (read by the begin hook)."""

P = ParamSpec("P")
T = TypeVar("T")


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readers = sessionmaker(self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False,
                                     info={READ_ONLY: True})
        self._executor: ThreadPoolExecutor | None = None

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        if readonly:
            with self.read() as session:
                yield session
            return
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A unit of work that only reads: no write lock on SQLite, READ ONLY on PostgreSQL."""
        with self._readers() as session:
            session.begin()
            yield session
            # leaving closes the session: the transaction ends without a commit, and the rows
            # read stay usable (detached, not expired) for the page that shows them

    async def run(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``work(*args, **kwargs)`` off the event loop, on the database's threads.

        The work runs in a copy of the caller's context, so its log lines say what they are about.
        """
        if self._executor is None:
            self._executor = ThreadPoolExecutor(DB_THREADS, thread_name_prefix="dutygw-db")
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        return await loop.run_in_executor(self._executor, lambda: context.run(work, *args, **kwargs))

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` (Alembic ``upgrade``; the newest by default)."""
        from alembic import command

        try:
            with self.migrating() as config:
                command.upgrade(config, revision)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot migrate database {self.safe_url}: {exc}") from exc

    @contextmanager
    def migrating(self) -> Iterator[Any]:
        """An Alembic config on one connection in one transaction, for ``alembic.command``.

        On SQLite, foreign keys are off while it runs: a batch migration recreates a table
        (copy, ``DROP``, rename), and a ``DROP`` with them on deletes the rows that refer to
        it (``ON DELETE CASCADE``) or fails. They are checked before it commits instead."""
        with self.engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                _foreign_keys(connection, on=False)
            try:
                with connection.begin():
                    config = alembic_config(self.url)
                    config.attributes["connection"] = connection
                    yield config
                    if sqlite:
                        _refuse_broken_references(connection)
            finally:
                if sqlite:
                    _foreign_keys(connection, on=True)

    @property
    def safe_url(self) -> str:
        """The URL without its password, for logs and errors."""
        return self.engine.url.render_as_string(hide_password=True)

    def dispose(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self.engine.dispose()


def open_database(url: str, *, migrate: bool = True) -> Database:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    db = Database(url)
    if migrate:
        db.migrate()
    return db


def alembic_config(url: str) -> Any:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(url, pool_pre_ping=True)
    event.listen(engine, "begin", _server_begin)
    return engine


@event.listens_for(Session, "before_flush")
def _refuse_writes_when_reading(session: Session, _context: UOWTransaction, _instances: object) -> None:
    if session.info.get(READ_ONLY) and (session.new or session.dirty or session.deleted):
        raise StorageError("a read-only unit of work tried to write (use db.session() for changes)")


def _foreign_keys(connection: Connection, *, on: bool) -> None:
    """A PRAGMA in a transaction does nothing: this one goes to the driver, before BEGIN."""
    driver = connection.connection.driver_connection
    if driver is not None:
        driver.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def _refuse_broken_references(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise StorageError(f"a migration left rows referring to missing ones: {broken[:5]}")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # let "begin" below issue BEGIN itself
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # IMMEDIATE: a unit of work that reads then writes must not fail to upgrade its lock
    # under concurrent writers (the fax worker and the AMI listener write at once).
    # A read-only one begins DEFERRED: under WAL it reads a snapshot beside the writer.
    if connection.get_execution_options().get(READ_ONLY):
        connection.exec_driver_sql("BEGIN DEFERRED")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _server_begin(connection: Any) -> None:
    if connection.get_execution_options().get(READ_ONLY):
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")
