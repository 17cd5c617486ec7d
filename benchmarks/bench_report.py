"""Report time for one night shift: a database holding that night only versus a whole year.

The report must cost what the shift holds, not what the history holds: every query is
bounded by an indexed instant. Both databases hold the very same night; the year one adds
~200,000 calls and ~10,000 faxes around it (synthetic rows, bulk-inserted with
executemany). Prints the median times and the ratio year/night (≈1 is the goal).

    python benchmarks/bench_report.py [--calls 200000] [--faxes 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert

from gateway.clock import SHANGHAI, UTC
from gateway.config import Config, DutyConfig, PathsConfig
from gateway.report.make import write_report
from gateway.report.query import shift_figures
from storage.calls import Call
from storage.db import Database, open_database
from storage.faxes import Receipt
from storage.paging import Escalation

SHIFT = "2026-11-21/night"
NIGHT_START = datetime(2026, 11, 21, 19, tzinfo=SHANGHAI).astimezone(UTC)
NIGHT = timedelta(hours=13)
YEAR = timedelta(days=365)
NIGHT_CALLS, NIGHT_FAXES = 550, 27
"""A busy night: a year's 200,000 calls and 10,000 faxes spread evenly."""
OUTCOMES = ["answered"] * 8 + ["missed_abandoned", "missed_no_answer", "missed_busy", "unknown"]


def calls(start: datetime, span: timedelta, count: int, rng: random.Random, tag: str) -> Iterator[dict]:
    for n in range(count):
        arrived = start + span * rng.random()
        outcome = rng.choice(OUTCOMES)
        rings = rng.randint(1, 6) if outcome == "answered" else rng.randint(1, 13)
        yield {
            "linkedid": f"{tag}.{n}", "direction": "out" if n % 15 == 0 else "in",
            "caller": f"139{rng.randint(0, 99_999_999):08d}", "caller_withheld": False,
            "dialed": "02787654321", "arrived_at": arrived, "ringing_at": arrived,
            "answered_at": arrived + timedelta(seconds=5 * rings - 3) if outcome == "answered" else None,
            "ended_at": arrived + timedelta(seconds=90), "ring_seconds": 5.0 * rings - 3, "rings": rings,
            "rule_met": outcome == "answered" and rings <= 3, "answered_by": "8001" if outcome == "answered" else None,
            "talk_seconds": 60.0 if outcome == "answered" else None, "outcome": outcome,
            "time_source": "pbx", "complete": True,
        }


def receipts(start: datetime, span: timedelta, count: int, first_seq: int, rng: random.Random) -> Iterator[dict]:
    for n in range(count):
        yield {
            "year": 2026, "seq": first_seq + n, "received_at": start + span * rng.random(), "pages": rng.randint(1, 9),
            "issuer": "市政府办公室", "doc_number": f"武政办〔2026〕{n}号", "title": "关于做好有关工作的通知",
            "is_urgent": n % 10 == 0, "urgency": "特急" if n % 10 == 0 else None, "status": "filed",
            "possibly_urgent": False, "urgency_reasons": [], "review_reasons": [], "received_time_source": "mail",
        }


def escalations(start: datetime, span: timedelta, count: int, rng: random.Random) -> Iterator[dict]:
    for _ in range(count):
        opened = start + span * rng.random()
        yield {"opened_at": opened, "deadline_at": opened + timedelta(minutes=10), "state": "acknowledged",
               "receipt_ids": [], "chain": [], "acknowledged_at": opened + timedelta(minutes=3),
               "acknowledged_by": "王局长", "deadline_met": True}


def fill(db: Database, *, history_calls: int, history_faxes: int) -> None:
    """The same night in both databases (same seed), plus history when asked."""
    rng = random.Random(7)
    with db.session() as s:
        s.execute(insert(Call), list(calls(NIGHT_START, NIGHT, NIGHT_CALLS, rng, "night")))
        s.execute(insert(Receipt), list(receipts(NIGHT_START, NIGHT, NIGHT_FAXES, 1, rng)))
        s.execute(insert(Escalation), list(escalations(NIGHT_START, NIGHT, 3, rng)))
    if not history_calls:
        return
    history = random.Random(11)
    begin = NIGHT_START + NIGHT - YEAR  # the night is the year's last: the rest is history
    before = NIGHT_START - begin
    with db.session() as s:
        s.execute(insert(Call), list(calls(begin, before, history_calls, history, "before")))
        s.execute(insert(Receipt), list(receipts(begin, before, history_faxes, 1000, history)))
        s.execute(insert(Escalation), list(escalations(begin, before, 300, history)))


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    action()  # warm caches and fonts once
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(db: Database, config: Config, out: Path, repeat: int) -> tuple[float, float]:
    figures_time = median_seconds(lambda: shift_figures(db, config, SHIFT), repeat)
    full_time = median_seconds(lambda: write_report(shift_figures(db, config, SHIFT), config, out), repeat)
    return figures_time, full_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--faxes", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        config = Config(duty=DutyConfig(numbers=["02787654321"], extensions=["8001", "8002"]),
                        paths=PathsConfig(data_dir=root))
        results = {}
        for name, history in (("one night", (0, 0)), ("one year", (args.calls, args.faxes))):
            db = open_database(f"sqlite:///{root / name.replace(' ', '_')}.sqlite")
            started = time.perf_counter()
            fill(db, history_calls=history[0], history_faxes=history[1])
            print(f"{name}: filled in {time.perf_counter() - started:.1f} s")
            results[name] = measure(db, config, root / f"out_{name.replace(' ', '_')}", args.repeat)
            db.dispose()
        night, year = results["one night"], results["one year"]
        print(f"figures (queries + counting): night {night[0] * 1000:.1f} ms, year {year[0] * 1000:.1f} ms, "
              f"ratio {year[0] / night[0]:.2f}")
        print(f"whole report (+ charts, PDF, XLSX, HTML): night {night[1] * 1000:.0f} ms, "
              f"year {year[1] * 1000:.0f} ms, ratio {year[1] / night[1]:.2f}")


if __name__ == "__main__":
    main()
