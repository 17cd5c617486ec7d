"""Page latency: end of SMTP DATA of an urgent fax → the Originate leaving the gateway.

The fax is ``fax_012`` (3 pages, standard resolution, 加急), mailed exactly as the
dialplan's ``dutygw_fax_mail.py`` mails it, at a night-shift time, to the real
``FaxService`` (SMTP intake, spool, OCR of page 1, urgency decision) wired to the real
``PagingService`` and ``AmiClient``, against the AMI peer. Baseline, in the same process:
``on_urgent_receipt`` → Originate for an already-filed urgent receipt (paging alone), so
the ratio says how much of the latency is the fax intake and OCR.

    python benchmarks/bench_page_latency.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
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


def _mail(folder: Path, n: int) -> EmailMessage:
    """The mail Asterisk's hangup handler sends; the TIFF varies by a trailing byte so it is a new document."""
    fax_mail = _fax_mail_module()
    tiff = folder / f"fax-{n}.tif"
    tiff.write_bytes(FAX.read_bytes() + bytes([n]) * (n + 1))
    args = fax_mail.parse_args(["--file", str(tiff), "--status", "SUCCESS", "--error", "NO_ERROR", "--pages", "3",
                                "--resolution", "8031x3850", "--station", "0566 2432706",
                                "--callerid", "05662432706", "--received", f"{NIGHT.timestamp() + n:.0f}"])
    return fax_mail.build_message(args)  # type: ignore[no-any-return]


async def run(runs: int) -> None:
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
            totals = await _through_smtp(config, fax, paging, watch, folder, runs)
            baseline = await _paging_only(db, clock, paging, watch, runs)
        finally:
            await fax.stop()
            await paging.stop()
            stop.set()
            await asyncio.gather(client_task, return_exceptions=True)
            await peer.stop()
            db.dispose()
    _report(totals, baseline)


async def _through_smtp(config: Config, fax: FaxService, paging: PagingService, watch: Stopwatch,
                        folder: Path, runs: int) -> list[float]:
    totals = []
    for n in range(runs + 1):  # the first run loads the OCR models: a warm-up, not counted
        raw = _mail(folder, n)
        count = len(watch.originated)
        data_end = await asyncio.to_thread(_send, config, raw)
        originated = await watch.next_originate(count)
        await fax.idle()
        await _closed(paging)
        if n:
            totals.append(originated - data_end)
    return totals


def _send(config: Config, message: EmailMessage) -> float:
    """Mail it (in a thread: the SMTP server shares this event loop); returns when DATA ended."""
    with smtplib.SMTP(config.smtp.host, config.smtp.port, timeout=60) as smtp:
        smtp.send_message(message)
        return time.perf_counter()


async def _paging_only(db, clock, paging: PagingService, watch: Stopwatch, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for n in range(runs):
        with db.session() as session:
            row = Receipt(year=2026, seq=9000 + n, received_at=clock.now(), pages=3, urgency="加急", is_urgent=True,
                          issuer="白水县人民政府办公室", title="关于做好清明节期间值班工作的通知", status="filed")
            session.add(row)
            session.flush()
            receipt_id = row.id
        count = len(watch.originated)
        start = time.perf_counter()
        await paging.on_urgent_receipt(receipt_id)
        times.append(await watch.next_originate(count) - start)
        await _closed(paging)
    return times


async def _closed(paging: PagingService) -> None:
    """Wait until the page was acknowledged, so the next fax opens a page of its own."""
    while True:
        await paging.idle()
        if not paging.escalations():
            return
        await asyncio.sleep(0.01)


def _report(totals: list[float], baseline: list[float]) -> None:
    total, base = statistics.median(totals), statistics.median(baseline)
    print(f"urgent 3-page standard fax, end of SMTP DATA -> Originate: median {total:.3f} s "
          f"(runs: {', '.join(f'{t:.3f}' for t in totals)})")
    print(f"baseline on_urgent_receipt -> Originate (paging alone): median {base * 1000:.1f} ms")
    print(f"ratio total / paging alone: {total / base:.0f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(run(parser.parse_args().runs))
