"""Page latency: end of SMTP DATA of an urgent fax → the Originate leaving the gateway.

The fax is ``fax_012`` (3 pages, standard resolution, 加急), mailed exactly as the
dialplan's ``dutygw_fax_mail.py`` mails it, at a night-shift time, to the real
``FaxService`` (SMTP intake, spool, priority queue, warm OCR worker processes, urgency
decision) wired to the real ``PagingService`` and ``AmiClient``, against the AMI peer.

(a) alone: nothing else queued; (b) behind ``--ahead`` ordinary faxes (2- and 3-page
fixtures) mailed first: once their header passes are done, their bodies (the full-page
work) fill the queue while the urgent faxes are sent. The baseline, measured in the same
run: the header pass of page 1 (``FaxReader.read_header``) in this process, which is the
least the urgent path can cost. The figures are p50 and p95 and their ratios to it.

    python benchmarks/bench_page_latency.py [--runs 10] [--ahead 200]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import math
import smtplib
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.ami.client import AmiClient
from gateway.ami.peer import ANSWER_ACK, AmiPeer
from gateway.clock import UTC
from gateway.config import (
    AmiConfig,
    ChainStep,
    Config,
    DutyConfig,
    PagingConfig,
    PathsConfig,
    SmtpConfig,
)
from gateway.fax.service import FaxService
from gateway.paging.pager import PagingService
from gateway.shifts.roster import OnDuty, store_roster
from storage.db import open_database
from storage.faxes import Receipt

SHARED = ROOT.parent / "shared" / "fixtures"
FAX = SHARED / "fax" / "fax_012.tif"
ORDINARY = ["fax_004.tif", "fax_005.tif", "fax_011.tif", "fax_013.tif", "fax_021.tif"]
NIGHT = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 23:00 Shanghai, a workday night
LEADER = "13700003333"


class NightClock:
    """Real time flowing, but starting at 23:00 on a workday night (the paging policy reads it)."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    def now(self) -> datetime:
        return NIGHT + timedelta(seconds=time.monotonic() - self._start)


@dataclass
class Stopwatch:
    originated: list[float]

    def mark(self, _key: str, _when: datetime) -> None:
        self.originated.append(time.perf_counter())

    async def next_originate(self, count: int, timeout: float = 300.0) -> float:
        deadline = time.perf_counter() + timeout
        while len(self.originated) <= count:
            if time.perf_counter() > deadline:
                raise TimeoutError("no Originate")
            await asyncio.sleep(0.002)
        return self.originated[count]


def _fax_mail_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("dutygw_fax_mail", ROOT / "dialplan" / "agi" / "dutygw_fax_mail.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _mail(folder: Path, n: int, source: Path = FAX) -> EmailMessage:
    """The mail Asterisk's hangup handler sends; the TIFF varies by trailing bytes so it is a new document."""
    fax_mail = _fax_mail_module()
    tiff = folder / f"fax-{n}.tif"
    tiff.write_bytes(source.read_bytes() + n.to_bytes(4, "little"))
    args = fax_mail.parse_args(["--file", str(tiff), "--status", "SUCCESS", "--error", "NO_ERROR", "--pages", "3",
                                "--resolution", "8031x3850", "--station", "0566 2432706",
                                "--callerid", "05662432706", "--received", f"{NIGHT.timestamp() + n:.0f}"])
    return fax_mail.build_message(args)  # type: ignore[no-any-return]


async def run(runs: int, ahead: int) -> None:
    header_times = _header_pass_times(runs)
    with tempfile.TemporaryDirectory(prefix="bench-page-") as work:
        folder = Path(work)
        peer = AmiPeer.from_fixtures(SHARED / "ami", behaviours={LEADER: ANSWER_ACK})
        ami_port = await peer.start()
        config = Config(
            duty=DutyConfig(numbers=["02787654321"], extensions=["8001", "8002"], room_phone="027-87654321"),
            ami=AmiConfig(port=ami_port, secret="x"),
            smtp=SmtpConfig(port=_free_port()),
            paths=PathsConfig(data_dir=folder),
            paging=PagingConfig(chain=[ChainStep("带班领导", number="roster")], coalesce_seconds=0.0),
        )
        db = open_database(config.database_url)
        clock = NightClock()
        with db.session() as session:
            store_roster(session, [OnDuty(date(2026, 11, 24), "night", "王局长", LEADER)], NIGHT)
        watch = Stopwatch([])
        holder: list[PagingService] = []
        client = AmiClient(config.ami, clock=clock, on_message=lambda m: holder[0].on_ami_message(m))
        paging = PagingService(config, db, clock, client, on_originate=watch.mark, serve_agi=False)
        holder.append(paging)
        stop = asyncio.Event()
        client_task = asyncio.create_task(client.run(stop))
        await asyncio.wait_for(client.connected.wait(), 10)
        await paging.start()
        fax = FaxService(config, db, clock, on_urgency=paging.on_urgent_receipt)
        await fax.start()
        try:
            alone = await _through_smtp(config, fax, paging, watch, folder, runs, first=0)
            print(f"(a) alone: {', '.join(f'{t:.2f}' for t in alone)} s; "
                  f"header pass in-process: {', '.join(f'{t:.2f}' for t in header_times)} s", flush=True)
            queued = await _queue_ordinary(config, db, folder, ahead)
            behind = await _through_smtp(config, fax, paging, watch, folder, runs, first=10_000, wait_idle=False)
            left = await asyncio.to_thread(_unfiled, db)
        finally:
            await fax.stop()
            await paging.stop()
            stop.set()
            await asyncio.gather(client_task, return_exceptions=True)
            await peer.stop()
            db.dispose()
    _report(header_times, alone, behind, queued, left)


def _header_pass_times(runs: int) -> list[float]:
    """The baseline: page 1's header pass of the same fax, in this process, models warm,
    with the workers' settings."""
    from gateway.fax.service import WORKER_THREADS, build_reader
    from ocr.pages import load_pages

    config = Config(duty=DutyConfig(numbers=["1"], extensions=["1"]))
    reader = build_reader(config, WORKER_THREADS)  # as the workers build it
    times = []
    for n in range(runs + 1):
        start = time.perf_counter()
        pages = load_pages(FAX, max_pages=2, max_pixels=config.ocr.max_pixels, count_pages=False)
        reader.read_header(pages)  # type: ignore[attr-defined]
        if n:
            times.append(time.perf_counter() - start)
    return times


async def _queue_ordinary(config: Config, db, folder: Path, ahead: int) -> int:  # type: ignore[no-untyped-def]
    """Mail ``ahead`` ordinary faxes; return once their header passes are done (bodies queued)."""
    for n in range(ahead):
        raw = _mail(folder, 1000 + n, SHARED / "fax" / ORDINARY[n % len(ORDINARY)])
        await asyncio.to_thread(_send, config, raw)
    started = time.perf_counter()
    while await asyncio.to_thread(_decided, db) < ahead:
        await asyncio.sleep(0.5)
    unfiled = await asyncio.to_thread(_unfiled, db)
    print(f"{ahead} ordinary faxes mailed; their header passes took {time.perf_counter() - started:.0f} s; "
          f"{unfiled} still waiting for their bodies", flush=True)
    return unfiled


def _decided(db) -> int:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return session.query(Receipt).filter(Receipt.urgency_decided_at.is_not(None)).count()  # type: ignore[no-any-return]


def _unfiled(db) -> int:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return session.query(Receipt).filter(Receipt.status == "reading").count()  # type: ignore[no-any-return]


async def _through_smtp(config: Config, fax: FaxService, paging: PagingService, watch: Stopwatch,
                        folder: Path, runs: int, *, first: int, wait_idle: bool = True) -> list[float]:
    totals = []
    for n in range(first, first + runs + 1):  # the first run (cold caches) is a warm-up, not counted
        raw = _mail(folder, n)
        count = len(watch.originated)
        data_end = await asyncio.to_thread(_send, config, raw)
        originated = await watch.next_originate(count)
        if wait_idle:
            await fax.idle()
        await _closed(paging)
        if n > first:
            totals.append(originated - data_end)
    return totals


def _send(config: Config, message: EmailMessage) -> float:
    """Mail it (in a thread: the SMTP server shares this event loop); returns when DATA ended."""
    with smtplib.SMTP(config.smtp.host, config.smtp.port, timeout=60) as smtp:
        smtp.send_message(message)
        return time.perf_counter()



async def _closed(paging: PagingService) -> None:
    """Wait until the page was acknowledged, so the next fax opens a page of its own."""
    while True:
        await paging.idle()
        if not paging.escalations():
            return
        await asyncio.sleep(0.01)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _report(header: list[float], alone: list[float], behind: list[float], queued: int, left: int) -> None:
    base = statistics.median(header)
    print(f"\nurgent 3-page standard fax (fax_012), end of SMTP DATA -> Originate, {len(alone)} runs each, "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"  baseline: header pass of page 1 in-process  p50 {base:6.2f} s  p95 {_p95(header):6.2f} s")
    for name, values in (("(a) alone", alone), (f"(b) {queued} bodies queued ahead", behind)):
        p50, p95 = statistics.median(values), _p95(values)
        print(f"  {name:<34} p50 {p50:6.2f} s  p95 {p95:6.2f} s  "
              f"(x{p50 / base:.2f} / x{p95 / base:.2f} of the baseline)")
    print(f"  (b) / (a) at p95: {_p95(behind) / _p95(alone):.2f}  (goal: p95 (a) <= 3 s, (b) within 1.5x of (a))")
    print(f"  ordinary faxes still unfiled at the end of (b): {left}")
    print(f"  runs (a): {', '.join(f'{t:.2f}' for t in alone)}")
    print(f"  runs (b): {', '.join(f'{t:.2f}' for t in behind)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--ahead", type=int, default=200)
    arguments = parser.parse_args()
    asyncio.run(run(arguments.runs, arguments.ahead))
