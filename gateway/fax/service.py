"""The running fax intake: an SMTP listener, a priority queue of OCR work, warm OCR workers.

The event loop only accepts mail; disk and database work goes through ``db.run``. Every
accepted mail is opened in arrival order (parsed, set aside or numbered), then its reading
is split in two jobs on one priority queue:

1. the header pass (page 1, a cover's page 2, the urgency decision) of every fax comes
   before any other page of any fax; the decision is committed and the pager told at once;
2. the body (the other pages, the register fields), urgent or possibly urgent faxes first.

Jobs run in worker processes (``gateway.fax.worker``) that keep their models loaded and are
killed when a page overruns ``ocr.page_timeout_seconds``; the fax is then filed
``needs_review``. With two or more workers the first takes header passes only, so an
urgent fax never waits behind a body. A database step that fails (locked, disk full) is
retried with backoff while running. ``stop`` abandons what is being read (the worker is
killed); the mail is still ``spooled`` and is read again on the next start.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import inspect
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from aiosmtpd.smtp import Envelope
from sqlalchemy.exc import OperationalError

from gateway.clock import Clock
from gateway.config import Config
from gateway.errors import StorageError
from gateway.fax.filing import Filer, FilingResult, Opened, Reader, page_count_reasons
from gateway.fax.smtp import FaxIntakeHandler, make_smtp
from gateway.fax.spool import Arrival, Spool, accept
from gateway.fax.worker import (
    BodyDone,
    BodyJob,
    Document,
    HeaderJob,
    ProcessWorker,
    ReadFailed,
    ThreadWorker,
    Worker,
)
from storage.db import Database

if TYPE_CHECKING:
    from ocr.reader import FaxReading, HeaderReading

log = logging.getLogger("dutygw.fax.service")

ReaderFactory = Callable[[], Reader]
HEADER, URGENT_BODY, BODY = 0, 1, 2
"""Priorities on the OCR queue (lower first)."""
BODY_NICE = 10
"""Bodies are read at a lower CPU priority than header passes."""
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 60.0
TRANSIENT = (OperationalError, StorageError, OSError)
"""Failures of a filing step worth retrying (a locked database, a full disk)."""


def default_reader_factory(config: Config) -> ReaderFactory:
    """The configured OCR reader, built once on first use (loading models takes seconds)."""
    built: list[Reader] = []

    def factory() -> Reader:
        if not built:
            built.append(build_reader(config))
        return built[0]

    return factory


def build_reader(config: Config, threads: int = 0) -> Reader:
    """``threads``: RapidOCR's threads (0: onnxruntime's choice, one per core)."""
    from ocr.engines import make_engine
    from ocr.reader import FaxReader

    second = config.ocr.header_second_reader
    header_reader = None if second == "none" else make_engine(second)
    options = {"threads": threads} if threads and config.ocr.engine == "rapidocr" else {}
    reader: Reader = FaxReader(make_engine(config.ocr.engine, **options), header_reader, config.urgency)
    return reader


WORKER_THREADS = 2
"""RapidOCR threads per worker process. Their threads sleep while they wait for each other
(``ocr.engines``), so two never cost more CPU than one: on an idle machine a header pass
takes 1.5 s instead of 2.6, and on a busy one no longer than with one thread."""


class FaxService:
    def __init__(
        self,
        config: Config,
        db: Database,
        clock: Clock,
        *,
        reader_factory: ReaderFactory | None = None,
        on_urgency: Callable[[int], Any] | None = None,
    ) -> None:
        """``reader_factory`` (tests) reads in a thread of this process; without it the
        configured reader runs in ``ocr.workers`` killable worker processes."""
        self._config = config
        self._db = db
        self._clock = clock
        self._on_urgency = on_urgency
        self._spool = Spool(config.paths.data_dir / "spool")
        self._reader_factory = reader_factory
        self._arrivals: asyncio.Queue[int] = asyncio.Queue()
        self._jobs: list[tuple[int, int, Opened, HeaderReading | None]] = []
        self._job_added = asyncio.Condition()
        self._order = itertools.count()
        self._open_mails: set[int] = set()
        self._all_filed = asyncio.Event()
        self._all_filed.set()
        self._server: asyncio.AbstractServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._steps: set[asyncio.Task[Any]] = set()
        self._workers: list[Any] = []
        self._callbacks: set[asyncio.Future[Any]] = set()
        self.last_results: deque[FilingResult] = deque(maxlen=100)
        """The most recent outcomes, for ``dutygw status``-style reporting and tests."""

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fax service is not started")
        sockets: Sequence[Any] = getattr(self._server, "sockets", ())
        return int(sockets[0].getsockname()[1])

    async def start(self) -> None:
        quiet_smtp_transcript()
        self._filer = Filer(self._config, self._db, self._clock, self._reader_factory or _read_in_workers)
        for leftover in self._spool.discard_leftovers():
            log.info("removed unfinished spool write %s (never acknowledged)", leftover.name)
        pending = await self._db.run(self._filer.pending)
        for mail_id in pending:
            self._arrived(mail_id)
        if pending:
            log.info("%d spooled mail(s) from before the restart queued for filing", len(pending))
        self._workers = self._make_workers()
        for worker in self._workers:
            worker.start()
        handler = FaxIntakeHandler(self._config.smtp, self._store)
        smtp = self._config.smtp
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: make_smtp(handler, smtp), host=smtp.host, port=smtp.port)
        self._tasks = [asyncio.create_task(self._open_arrivals(), name="fax-intake")]
        self._tasks += [asyncio.create_task(self._work(worker, header_only=index == 0 and len(self._workers) > 1),
                                            name=f"fax-ocr-{index}") for index, worker in enumerate(self._workers)]
        log.info("fax intake listening on %s:%d (%d OCR worker%s)", smtp.host, self.port,
                 len(self._workers), "s" if len(self._workers) > 1 else "")

    async def stop(self) -> None:
        """Stop at once: what is being read is abandoned and read again on the next start."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in [*self._tasks, *self._steps]:
            task.cancel()
        for worker in self._workers:
            worker.close()
        await asyncio.gather(*self._tasks, *self._steps, return_exceptions=True)
        self._server, self._tasks, self._workers = None, [], []

    async def idle(self) -> None:
        """Return once every accepted mail has been filed (for tests and ``ingest``)."""
        await self._all_filed.wait()

    async def ingest(self, raw: bytes, suffix: str, arrival: Arrival) -> int:
        """Accept a message or document handed over other than by SMTP; returns the mail id."""
        mail_id = await self._db.run(accept, self._db, self._spool, raw, arrival, suffix)
        self._arrived(mail_id)
        return mail_id

    async def _store(self, raw: bytes, envelope: Envelope, peer: str) -> int:
        arrival = Arrival(self._clock.now(), envelope.mail_from or "", tuple(envelope.rcpt_tos), peer)
        return await self.ingest(raw, ".eml", arrival)

    def _make_workers(self) -> list[Worker]:
        if self._reader_factory is not None:
            return [ThreadWorker(self._reader_factory)]
        factory = functools.partial(build_reader, self._config, WORKER_THREADS)
        count = max(1, self._config.ocr.workers)
        timeout = self._config.ocr.page_timeout_seconds
        return [ProcessWorker(factory, timeout, name=f"dutygw-ocr-{n}", nice=BODY_NICE) for n in range(count)]

    # --- mails in, jobs out ------------------------------------------------------------------

    def _arrived(self, mail_id: int) -> None:
        self._open_mails.add(mail_id)
        self._all_filed.clear()
        self._arrivals.put_nowait(mail_id)

    def _done(self, result: FilingResult) -> None:
        self.last_results.append(result)
        self._forget(result.mail_id)

    def _forget(self, mail_id: int) -> None:
        """Nothing more happens to this mail in this run (filed, or left for the next start)."""
        self._open_mails.discard(mail_id)
        if not self._open_mails:
            self._all_filed.set()

    async def _open_arrivals(self) -> None:
        """In arrival order (receipt numbers follow it): parse, set aside, or number and queue."""
        while True:
            mail_id = await self._arrivals.get()
            opened = await self._retrying(f"opening mail {mail_id}", self._filer.open, mail_id)
            if opened is None:
                self._forget(mail_id)  # not transient: stays spooled for the next start
                continue
            if isinstance(opened, FilingResult):
                self._done(opened)
            elif opened.document is None:
                self._step(self._file_unread(opened))
            else:
                await self._queue(HEADER, opened, None)

    async def _queue(self, priority: int, opened: Opened, header: HeaderReading | None) -> None:
        heapq.heappush(self._jobs, (priority, next(self._order), opened, header))
        async with self._job_added:
            self._job_added.notify_all()

    async def _next_job(self, header_only: bool
                        ) -> tuple[int, int, Opened, HeaderReading | None]:
        async with self._job_added:
            await self._job_added.wait_for(lambda: bool(self._jobs) and (
                not header_only or self._jobs[0][0] == HEADER))
            return heapq.heappop(self._jobs)

    async def _work(self, worker: Worker, *, header_only: bool) -> None:
        while True:
            try:
                await worker.ready()  # a restarted worker takes no job before its models load
            except ReadFailed as failed:
                log.error("OCR worker cannot start: %s", failed.reason)
                await asyncio.sleep(RETRY_MAX_S)
                continue
            priority, _, opened, header = await self._next_job(header_only)
            log.debug("%s: %s of receipt %d", getattr(worker, "name", "reader"),
                      "header pass" if priority == HEADER else "body", opened.receipt_id)
            if priority == HEADER:
                await self._header_pass(worker, opened)
            else:
                assert header is not None  # a body is queued with its header pass's reading
                await self._body_pass(worker, opened, header)

    def _document(self, opened: Opened) -> Document:
        ocr = self._config.ocr
        assert opened.document is not None
        return Document(opened.document, opened.content_type, ocr.max_pages, ocr.max_pixels)

    async def _header_pass(self, worker: Worker, opened: Opened) -> None:
        try:
            header = await worker.run(HeaderJob(self._document(opened)))
        except ReadFailed as failed:
            log.warning("receipt %d: header pass failed: %s", opened.receipt_id, failed.reason)
            await self._retrying("recording an unreadable fax", self._filer.record_unreadable,
                                 opened.receipt_id, failed.reason)
            self._notify(opened.receipt_id)
            self._step(self._finish(opened, None, None, [failed.reason]))
            return
        await self._retrying("recording the urgency decision", self._filer.record_header,
                             opened.receipt_id, header.decision)
        self._notify(opened.receipt_id)
        await self._queue(URGENT_BODY if header.decision.should_page else BODY, opened, header)

    async def _body_pass(self, worker: Worker, opened: Opened, header: HeaderReading) -> None:
        try:
            done: BodyDone = await worker.run(BodyJob(self._document(opened), header))
        except ReadFailed as failed:
            log.warning("receipt %d: reading the pages failed: %s", opened.receipt_id, failed.reason)
            self._step(self._finish(opened, None, None, [failed.reason]))
            return
        reasons = page_count_reasons(opened.pages_declared, done.read, done.total)
        self._step(self._finish(opened, done.reading, done.total, reasons))

    async def _file_unread(self, opened: Opened) -> None:
        """A mail with no document bytes: a failed-fax report, or an empty attachment."""
        if opened.has_attachment:
            await self._retrying("recording an unreadable fax", self._filer.record_unreadable,
                                 opened.receipt_id, "传真文件为空（0 字节）")
            self._notify(opened.receipt_id)
        await self._finish(opened, None, None, [])

    async def _finish(self, opened: Opened, reading: FaxReading | None, total: int | None,
                      reasons: list[str]) -> None:
        result = await self._retrying(f"filing receipt {opened.receipt_id}", self._filer.finish,
                                      opened, reading, total, list(opened.reasons) + reasons)
        if result is not None:
            self._done(result)
        else:
            self._forget(opened.mail_id)

    def _step(self, work: Awaitable[None]) -> None:
        """Database work that need not hold up the worker (the next job starts at once)."""
        task = asyncio.ensure_future(work)
        self._steps.add(task)
        task.add_done_callback(self._steps.discard)

    async def _retrying(self, what: str, step: Callable[..., Any], *args: Any) -> Any:
        """``await db.run(step, …)``, again with backoff while it fails for a passing reason.

        Anything else is a bug: logged, and the mail stays spooled for the next start."""
        delay = RETRY_FIRST_S
        while True:
            try:
                return await self._db.run(step, *args)
            except TRANSIENT as exc:
                log.warning("%s failed (%s); retrying in %.1f s", what, exc, delay)
            except Exception:
                log.exception("%s failed; the mail stays spooled for the next start", what)
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    # --- the pager -------------------------------------------------------------------------------

    def _notify(self, receipt_id: int) -> None:
        """Tell the pager (a coroutine function is run on this loop) without waiting for it."""
        if self._on_urgency is None:
            return
        try:
            outcome = self._on_urgency(receipt_id)
        except Exception:
            log.exception("on_urgency failed for receipt %d", receipt_id)
            return
        if inspect.isawaitable(outcome):
            task = asyncio.ensure_future(outcome)
            self._callbacks.add(task)  # keep a reference until it is done
            task.add_done_callback(self._callbacks.discard)


def _read_in_workers() -> Reader:
    """The filer's reader when the intake reads in worker processes: the filer never reads."""
    raise RuntimeError("this intake reads faxes in its OCR worker processes, not in the filer")


def quiet_smtp_transcript() -> None:
    """aiosmtpd logs every DATA line at DEBUG (``mail.log``): with ``-v`` a classified fax
    could be rebuilt from the log. Its INFO and above (connections, errors) still show."""
    transcript = logging.getLogger("mail.log")
    if transcript.getEffectiveLevel() < logging.INFO:
        transcript.setLevel(logging.INFO)
