"""Fax intake latency: end of SMTP DATA → page-1 urgency decision recorded, against the
whole fax filed (the baseline, measured in the same run).

A 3-page standard-resolution fax (fax_012 of the shared set, 加急) is mailed over a real
socket to a running ``FaxService`` with the configured OCR reader. The reader is built and
warmed up once first (model loading is not intake latency). Each run uses a fresh data
folder, so the same document is never taken as a duplicate.

    python benchmarks/bench_fax_intake.py [--runs 3] [--fax PATH] [--engine rapidocr]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import smtplib
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.clock import SystemClock
from gateway.config import Config, DatabaseConfig, DutyConfig, OcrConfig, PathsConfig, SmtpConfig
from gateway.fax.service import FaxService, build_reader
from storage.db import open_database
from storage.faxes import Receipt
from tests.fax_mails import asterisk_mail

FAX = ROOT.parent / "shared" / "fixtures" / "fax" / "fax_012.tif"


def config_in(folder: Path, engine: str) -> Config:
    return Config(
        duty=DutyConfig(numbers=["02787654321"], extensions=["8001"]),
        database=DatabaseConfig(url=f"sqlite:///{folder / 'dutygw.sqlite'}"),
        paths=PathsConfig(data_dir=folder),
        smtp=SmtpConfig(port=0),
        ocr=OcrConfig(engine=engine),
    )


def one_run(config: Config, reader: object, raw: bytes) -> tuple[float, float, bool]:
    """(seconds to the page-1 decision, seconds to the whole fax filed, is_urgent)."""
    db = open_database(config.database_url)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    decided = threading.Event()
    stamps: dict[str, float] = {}

    def on_urgency(_receipt_id: int) -> None:
        stamps["urgency"] = time.perf_counter()
        decided.set()

    service = FaxService(config, db, SystemClock(), reader_factory=lambda: reader,  # type: ignore[arg-type,return-value]
                         on_urgency=on_urgency)
    asyncio.run_coroutine_threadsafe(service.start(), loop).result(30)
    try:
        with smtplib.SMTP("127.0.0.1", service.port) as client:
            client.sendmail("fax@pbx", ["fax@duty.local"], raw)
        end_of_data = time.perf_counter()
        asyncio.run_coroutine_threadsafe(service.idle(), loop).result(600)
        filed = time.perf_counter()
        decided.wait(5)
        with db.session() as session:
            receipt = session.query(Receipt).one()
            urgent = bool(receipt.is_urgent or receipt.possibly_urgent)
    finally:
        asyncio.run_coroutine_threadsafe(service.stop(), loop).result(600)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        db.dispose()
    return stamps["urgency"] - end_of_data, filed - end_of_data, urgent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fax", type=Path, default=FAX)
    parser.add_argument("--engine", default="rapidocr", choices=("rapidocr", "tesseract"))
    args = parser.parse_args()
    document = args.fax.read_bytes()
    raw = asterisk_mail(document, station="0431-5550123", pages=3, caller="04315550123",
                        received=datetime(2025, 6, 1, 9, 23, tzinfo=ZoneInfo("Asia/Shanghai")))
    raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    with tempfile.TemporaryDirectory() as scratch:
        base = config_in(Path(scratch) / "warm", args.engine)
        started = time.perf_counter()
        reader = build_reader(base)
        one_run(base, reader, raw)  # warm-up: models loaded, caches filled
        print(f"reader built and warmed up in {time.perf_counter() - started:.1f} s ({args.engine})")
        results = []
        for run in range(args.runs):
            config = dataclasses.replace(base, paths=PathsConfig(data_dir=Path(scratch) / f"run{run}"),
                                         database=DatabaseConfig(
                                             url=f"sqlite:///{Path(scratch) / f'run{run}' / 'dutygw.sqlite'}"))
            results.append(one_run(config, reader, raw))
            print(f"run {run + 1}: page-1 decision {results[-1][0]:.2f} s, whole fax {results[-1][1]:.2f} s,"
                  f" urgent={results[-1][2]}")
    urgency = statistics.median(r[0] for r in results)
    whole = statistics.median(r[1] for r in results)
    print(f"\n{args.fax.name} (3 pages, standard resolution), median of {args.runs} runs, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"  end of DATA → page-1 urgency recorded : {urgency:6.2f} s")
    print(f"  end of DATA → whole fax filed (baseline): {whole:6.2f} s")
    print(f"  ratio urgency / whole                   : {urgency / whole:6.2f}")


if __name__ == "__main__":
    main()
