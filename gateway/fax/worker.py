"""OCR where a stuck engine can be killed: warm worker processes with a per-page watchdog.

Renderers (ghostscript, PDFium, libtiff) and engines (RapidOCR, Tesseract) run in a child
process that leads its own process group and keeps its models loaded between faxes. It
reports the page it is on before each page; when one page takes longer than
``ocr.page_timeout_seconds`` of CPU time (the process group's: a ghostscript or tesseract
child counts; a machine busy with other work does not) the whole group is killed (a ghostscript or tesseract child
with it), a fresh worker starts loading its models at once, and the job fails with a
reason for the register. A poison fax (``%!PS {} loop``) costs seconds, never the queue.

``ThreadWorker`` runs a reader object in a thread instead, for tests that bring their own
reader: the same jobs, without the watchdog (a thread cannot be killed).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the OCR package loads in the worker process, not where jobs are queued
    from gateway.fax.filing import Reader
    from ocr.reader import FaxReading, HeaderReading

log = logging.getLogger("dutygw.fax.worker")

TICK_S = 0.25
"""How often the watchdog looks at the worker's CPU time."""
WALL_FACTOR = 6
"""A page also fails after this many times its CPU limit in wall time (a worker stuck asleep)."""
READY_TIMEOUT_S = 300.0
"""Loading the models on a busy machine; not counted against any page."""
HEADER_PAGES = 2
"""The header pass needs page 1, and page 2 when page 1 is a cover sheet."""
DECODING, FIELDS = 0, -1
"""Steps the worker reports besides page numbers."""
HEADER_DECODE_LIMIT_S = 5.0
"""CPU seconds to decode or render the header pass's two pages (a fax page takes well
under one): a PostScript program that never ends is stopped here."""
BODY_DECODE_PAGES = 3
"""A body's decoding (all its pages at once) may take this many page limits."""

ReaderFactory = Callable[[], "Reader"]


@dataclass(frozen=True)
class Document:
    path: str
    content_type: str | None
    max_pages: int
    max_pixels: int


@dataclass(frozen=True)
class HeaderJob:
    """Page 1's urgency decision (and a cover's page 2): ahead of every body."""

    document: Document


@dataclass(frozen=True)
class BodyJob:
    """The other pages and the register fields, after the header pass."""

    document: Document
    header: HeaderReading
    """What the header pass returned."""


@dataclass(frozen=True)
class BodyDone:
    reading: FaxReading
    read: int
    total: int


Job = HeaderJob | BodyJob


class ReadFailed(Exception):
    """The document could not be read; ``reason`` (Chinese) goes into the register."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def perform(reader: Reader, job: Job,
            on_page: Callable[[int], None] | None = None) -> HeaderReading | BodyDone:
    """Do one job with ``reader`` in this process: a ``HeaderReading`` or a ``BodyDone``."""
    from ocr.pages import load_pages

    doc = job.document
    header = isinstance(job, HeaderJob)
    if on_page is not None:
        on_page(DECODING)
    pages = load_pages(Path(doc.path), content_type=doc.content_type,
                       max_pages=min(HEADER_PAGES, doc.max_pages) if header else doc.max_pages,
                       max_pixels=doc.max_pixels, count_pages=not header)
    if isinstance(job, HeaderJob):
        return reader.read_header(pages, on_page=on_page)
    reading = reader.read_rest(pages, job.header, on_page=on_page)
    return BodyDone(reading, len(pages), pages[0].total_pages)


class Worker(Protocol):
    def start(self) -> None: ...

    async def ready(self) -> None: ...

    async def run(self, job: Job) -> Any: ...

    def close(self) -> None: ...


# --- the child process -----------------------------------------------------------------------

def _child(conn: Connection, factory: ReaderFactory, body_nice: int) -> None:
    """Runs in the worker process: build the reader once, then do jobs until told to stop."""
    os.setpgrp()  # ghostscript and tesseract are killed with us
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon decides when we stop
    _die_with_parent()
    try:
        reader = factory()
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which files the fax
        conn.send(("broken", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        _set_nice(body_nice if isinstance(job, BodyJob) else 0)
        conn.send(_outcome(reader, job, lambda n: conn.send(("page", n))))


def _die_with_parent() -> None:
    """Linux: SIGKILL us when the daemon dies (kill -9), instead of reading on unwatched."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _set_nice(nice: int) -> None:
    """Bodies at a lower CPU priority than header passes. On Linux a nice value belongs to a
    thread, so every thread of the process is set, onnxruntime's (started with the models)
    included. Going back up needs privilege (root, or systemd's ``LimitNICE=``); without it
    the worker stays at the lower one."""
    for task in Path("/proc/self/task").iterdir():
        try:
            os.setpriority(os.PRIO_PROCESS, int(task.name), nice)
        except (PermissionError, ProcessLookupError):
            pass  # not allowed back up, or the thread is gone


def _outcome(reader: Reader, job: Job, on_page: Callable[[int], None]) -> tuple[str, Any]:
    from ocr.errors import UnreadableDocument

    try:
        return "done", perform(reader, job, on_page)
    except UnreadableDocument as exc:
        return "failed", f"附件无法读取：{exc}"
    except Exception as exc:  # noqa: BLE001 - the engine broke, not the fax
        return "failed", f"识别程序出错：{type(exc).__name__}: {exc}"


# --- the parent's handle on one child ------------------------------------------------------------

class ProcessWorker:
    """One warm worker process, restarted when it is killed or dies."""

    def __init__(self, factory: ReaderFactory, page_timeout_s: float, *, name: str, nice: int = 10) -> None:
        """``nice``: the CPU priority of body jobs (header passes run at the normal one)."""
        self._factory, self._timeout, self.name, self._nice = factory, page_timeout_s, name, nice
        self._process: Any = None
        self._conn: Connection | None = None
        self._ready = False

    def start(self) -> None:
        """Start the process now, so its models load before the first fax."""
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(target=_child, args=(child, self._factory, self._nice),
                                        name=self.name, daemon=True)
        self._process.start()
        child.close()
        self._conn, self._ready = parent, False

    async def ready(self) -> None:
        """Wait until the models are loaded, so no job waits for that while another worker is free."""
        if self._process is None or not self._process.is_alive():
            self.close()
            self.start()
        if not self._ready:
            await self._wait_ready()

    async def run(self, job: Job) -> Any:
        await self.ready()
        assert self._conn is not None
        self._conn.send(job)
        step = DECODING
        while True:
            limit = self._limit(step, job)
            message = await self._receive(limit, watch=True)
            if message is None:
                self._restart()
                raise ReadFailed(f"{_step_name(step)}超过{limit:g}秒（处理器时间）仍未完成，已中止识别，请查看原件")
            kind, value = message
            if kind == "page":
                step = value
            elif kind == "done":
                return value
            elif kind == "failed":
                raise ReadFailed(value)
            else:
                self._restart()
                raise ReadFailed(f"识别进程在{_step_name(step)}时意外退出（{value}），请查看原件")

    def _limit(self, step: int, job: Job) -> float:
        if step != DECODING:
            return self._timeout
        if isinstance(job, HeaderJob):
            return min(HEADER_DECODE_LIMIT_S, self._timeout)
        return BODY_DECODE_PAGES * self._timeout

    async def _wait_ready(self) -> None:
        message = await self._receive(READY_TIMEOUT_S)
        if message is not None and message[0] == "ready":
            self._ready = True
            return
        why = "timed out loading" if message is None else message[1]
        self._restart()
        raise ReadFailed(f"识别引擎无法启动（{why}），请查看原件")

    async def _receive(self, timeout: float, *, watch: bool = False) -> tuple[str, Any] | None:
        """The next message; None when ``timeout`` passed (CPU seconds of the process group
        when ``watch``, else wall time); ``("dead", …)`` when the process is gone."""
        conn, process = self._conn, self._process
        assert conn is not None

        def wait() -> tuple[str, Any] | None:
            start_cpu, start = group_cpu_seconds(process.pid), time.monotonic()
            try:
                while not conn.poll(TICK_S):
                    wall = time.monotonic() - start
                    used = group_cpu_seconds(process.pid) - start_cpu if watch else wall
                    if used > timeout or wall > WALL_FACTOR * timeout:
                        return None
                message: tuple[str, Any] = conn.recv()
                return message
            except (EOFError, OSError):
                process.join(1)
                return "dead", f"exit code {process.exitcode}"

        return await asyncio.to_thread(wait)

    def _restart(self) -> None:
        log.warning("OCR worker %s killed; starting a fresh one", self.name)
        self.close()
        self.start()

    def close(self) -> None:
        """Kill the process group at once: whatever it was reading is abandoned."""
        process, self._process = self._process, None
        if process is not None and process.pid is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                process.kill()
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _step_name(step: int) -> str:
    return {DECODING: "解码附件", FIELDS: "提取登记字段"}.get(step, f"第{step}页识别")


def group_cpu_seconds(pgid: int) -> float:
    """CPU time of every process in group ``pgid`` (Linux ``/proc``), children waited for included."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == pgid:  # field 5 of stat, counted after the ")" of the name
            ticks += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


class ThreadWorker:
    """A reader object used in a thread (tests): no watchdog, the same outcomes."""

    def __init__(self, factory: ReaderFactory) -> None:
        self._factory = factory
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="fax-ocr")

    def start(self) -> None:
        pass

    async def ready(self) -> None:
        pass

    async def run(self, job: Job) -> Any:
        loop = asyncio.get_running_loop()
        kind, value = await loop.run_in_executor(self._executor, lambda: _outcome(self._factory(), job, lambda n: None))
        if kind == "failed":
            raise ReadFailed(value)
        return value

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
