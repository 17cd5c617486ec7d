"""The running fax intake: an SMTP listener plus one worker that files spooled mails in order.

The event loop only accepts mail (disk and database writes go to a thread, so a slow
fsync never stalls other senders). OCR runs in a worker thread, one fax at a time, oldest
first. ``start`` first queues whatever a previous run accepted but did not file; ``stop``
lets the fax being read finish and leaves the rest spooled for the next start.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from aiosmtpd.smtp import Envelope

from gateway.clock import Clock
from gateway.config import Config
from gateway.fax.filing import Filer, FilingResult, Reader
from gateway.fax.smtp import FaxIntakeHandler, make_smtp
from gateway.fax.spool import Arrival, Spool, accept
from storage.db import Database

log = logging.getLogger("dutygw.fax.service")

ReaderFactory = Callable[[], Reader]


def default_reader_factory(config: Config) -> ReaderFactory:
    """The configured OCR reader, built once on first use (loading models takes seconds)."""
    built: list[Reader] = []

    def factory() -> Reader:
        if not built:
            built.append(build_reader(config))
        return built[0]

    return factory


def build_reader(config: Config) -> Reader:
    from ocr.engines import make_engine
    from ocr.reader import FaxReader

    second = config.ocr.header_second_reader
    header_reader = None if second == "none" else make_engine(second)
    reader: Reader = FaxReader(make_engine(config.ocr.engine), header_reader, config.urgency)
    return reader


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
        self._config = config
        self._db = db
        self._clock = clock
        self._on_urgency = on_urgency
        self._spool = Spool(config.paths.data_dir / "spool")
        self._reader_factory = reader_factory or default_reader_factory(config)
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._server: asyncio.AbstractServer | None = None
        self._worker: asyncio.Task[None] | None = None
        self._busy: asyncio.Future[FilingResult] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
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
        self._loop = asyncio.get_running_loop()
        filer = self._filer()
        for leftover in self._spool.discard_leftovers():
            log.info("removed unfinished spool write %s (never acknowledged)", leftover.name)
        for mail_id in await asyncio.to_thread(filer.pending):
            self._queue.put_nowait(mail_id)
        if self._queue.qsize():
            log.info("%d spooled mail(s) from before the restart queued for filing", self._queue.qsize())
        handler = FaxIntakeHandler(self._config.smtp, self._store)
        smtp = self._config.smtp
        self._server = await self._loop.create_server(
            lambda: make_smtp(handler, smtp), host=smtp.host, port=smtp.port)
        self._worker = asyncio.create_task(self._work(filer), name="fax-filing")
        log.info("fax intake listening on %s:%d", smtp.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        if self._busy is not None and not self._busy.done():
            log.info("waiting for the fax being read to be filed")
            await asyncio.gather(self._busy, return_exceptions=True)
        self._server = self._worker = self._busy = None

    async def idle(self) -> None:
        """Return once every accepted mail has been filed (for tests and ``ingest``)."""
        await self._queue.join()

    async def ingest(self, raw: bytes, suffix: str, arrival: Arrival) -> int:
        """Accept a message or document handed over other than by SMTP; returns the mail id."""
        mail_id = await asyncio.to_thread(accept, self._db, self._spool, raw, arrival, suffix)
        self._queue.put_nowait(mail_id)
        return mail_id

    async def _store(self, raw: bytes, envelope: Envelope, peer: str) -> int:
        arrival = Arrival(self._clock.now(), envelope.mail_from or "", tuple(envelope.rcpt_tos), peer)
        return await self.ingest(raw, ".eml", arrival)

    async def _work(self, filer: Filer) -> None:
        while True:
            mail_id = await self._queue.get()
            try:
                self._busy = asyncio.ensure_future(asyncio.to_thread(filer.file, mail_id))
                result = await asyncio.shield(self._busy)
                self.last_results.append(result)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("filing mail %d failed; it stays spooled for the next start", mail_id)
            finally:
                self._queue.task_done()

    def _filer(self) -> Filer:
        return Filer(self._config, self._db, self._clock, self._reader_factory,
                     on_urgency=self._urgency_from_thread)

    def _urgency_from_thread(self, receipt_id: int) -> None:
        """Called in the OCR thread: hand the news to the event loop without waiting for it."""
        if self._on_urgency is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._deliver_urgency, receipt_id)

    def _deliver_urgency(self, receipt_id: int) -> None:
        assert self._on_urgency is not None
        try:
            outcome = self._on_urgency(receipt_id)
        except Exception:
            log.exception("on_urgency failed for receipt %d", receipt_id)
            return
        if inspect.isawaitable(outcome):
            task = asyncio.ensure_future(outcome)
            self._callbacks.add(task)  # keep a reference until it is done
            task.add_done_callback(self._callbacks.discard)
