"""AMI throughput and memory: the gateway's framing + parsing (+ call tracking) against pyst2.

    python benchmarks/bench_ami.py [--events 1000000] [--speed-events 100000]

A long stream is built from the real captures in ``../shared/fixtures/ami``: every
event of every capture, in time order, copied over and over with the epoch in
``Timestamp``/``Uniqueid``/``Linkedid`` moved on and channel names renumbered per copy,
so calls never collide. Throughput is events per second on one core; pyst2's own
parser (``asterisk.manager.ManagerMsg``) runs on the same messages in the same process
and the ratio is printed. Memory: the stream is generated and fed in chunks (never held
whole) and the resident set size is read at 100,000 and at ``--events`` events.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asterisk.manager import ManagerMsg

from gateway.ami.framing import Framer, parse_message

FIXTURES = Path(os.environ.get("TEST_DUTYGW_SHARED", ROOT.parent / "shared")) / "fixtures" / "ami"
CHUNK = 64 * 1024
_EPOCH = re.compile(rb"(?<![\d.])(1\d{9})\.(\d+)")
_CHANNEL = re.compile(rb"((?:PJSIP|SIP|Local|IAX2)/[\w@.]+-)([0-9a-f]{8})")
_FIRST_STAMP = re.compile(rb"Timestamp: (\d+)")


def _event_blocks(path: Path) -> list[bytes]:
    blocks = path.read_bytes().split(b"\r\n\r\n")
    return [b + b"\r\n\r\n" for b in blocks if b.startswith(b"Event:")]


def template() -> tuple[bytes, int, int]:
    """All captured events, captures in time order; with their count and time span."""
    captures = sorted(FIXTURES.glob("*.ami"), key=lambda p: _FIRST_STAMP.findall(p.read_bytes())[0])
    blocks = [b for path in captures for b in _event_blocks(path)]
    stamps = [int(m.group(1)) for m in map(_FIRST_STAMP.search, blocks) if m]
    return b"".join(blocks), len(blocks), max(stamps) - min(stamps) + 600


def copy_of(base: bytes, k: int, span: int) -> bytes:
    """Copy ``k`` of the template: later in time, its own Uniqueids and channel names."""
    shift = k * span
    data = _EPOCH.sub(lambda m: b"%d.%s" % (int(m.group(1)) + shift, m.group(2)), base)
    return _CHANNEL.sub(lambda m: m.group(1) + b"%08x" % ((int(m.group(2), 16) + k * 0x1000) & 0xFFFFFFFF), data)


def stream(events: int) -> Iterator[bytes]:
    """``events`` events as 64 KiB chunks, generated copy by copy."""
    base, per_copy, span = template()
    k = 0
    while events > 0:
        data = copy_of(base, k, span)
        if events < per_copy:
            data = b"".join(data.split(b"\r\n\r\n")[i] + b"\r\n\r\n" for i in range(events))
        events -= min(events, per_copy)
        k += 1
        for start in range(0, len(data), CHUNK):
            yield data[start:start + CHUNK]


def tracker_factory() -> Callable[[], object] | None:
    """The call tracker, if that module exists yet (it is written in parallel)."""
    try:
        from gateway.calls.tracker import CallTracker
        from gateway.config import DutyConfig
    except ImportError:
        return None
    duty = DutyConfig(numbers=["02787654321"], extensions=["8001", "8002"], fax_numbers=["02787654329"])
    return lambda: CallTracker(duty)


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def timed(work: Callable[[], int]) -> tuple[int, float]:
    started = time.process_time()
    count = work()
    return count, time.process_time() - started


def ours(chunks: list[bytes], tracker: object | None = None) -> int:
    framer, count = Framer(), 0
    feed = getattr(tracker, "feed", None)
    for chunk in chunks:
        for message in framer.feed(chunk):
            if feed is not None:
                feed(message)
            count += 1
    return count


def ours_parse_only(blocks: list[bytes]) -> int:
    for block in blocks:
        parse_message(block)
    return len(blocks)


def pyst2_parse(line_lists: list[list[str]]) -> tuple[int, int]:
    failed = 0
    for lines in line_lists:
        try:
            ManagerMsg(lines)
        except AttributeError:  # dict.has_key on ChanVariable: the defect that kills its reader
            failed += 1
    return len(line_lists), failed


def speed(events: int, make_tracker: Callable[[], object] | None) -> list[tuple[str, int, float]]:
    chunks = list(stream(events))
    data = b"".join(chunks)
    blocks = [b for b in data.split(b"\r\n\r\n") if b]
    line_lists = [[line.decode("utf8", "ignore") + "\r\n" for line in b.split(b"\r\n")] for b in blocks]
    rows = [("ours: framing + parsing", *timed(lambda: ours(chunks)))]
    rows.append(("ours: parsing only (pre-split)", *timed(lambda: ours_parse_only(blocks))))
    failures: list[int] = []

    def run_pyst2() -> int:
        count, failed = pyst2_parse(line_lists)
        failures.append(failed)
        return count

    rows.append(("pyst2 ManagerMsg: parsing only (pre-split, pre-decoded)", *timed(run_pyst2)))
    if make_tracker is not None:
        rows.append(("ours: framing + parsing + CallTracker.feed", *timed(lambda: ours(chunks, make_tracker()))))
    print(f"pyst2 ManagerMsg raised on {failures[0]:,} of {len(line_lists):,} messages (ChanVariable)")
    return rows


def memory(events: int, make_tracker: Callable[[], object] | None) -> list[tuple[int, float]]:
    framer, tracker, seen, marks = Framer(), make_tracker() if make_tracker else None, 0, []
    feed = getattr(tracker, "feed", None)
    checkpoints = sorted({min(100_000, events), events})
    for chunk in stream(events):
        for message in framer.feed(chunk):
            if feed is not None:
                feed(message)
            seen += 1
            if checkpoints and seen == checkpoints[0]:
                marks.append((seen, rss_mib()))
                checkpoints.pop(0)
    return marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="length of the memory run")
    parser.add_argument("--speed-events", type=int, default=100_000, help="length of the speed runs")
    args = parser.parse_args()
    make_tracker = tracker_factory()
    print(f"call tracking included: {'yes (gateway.calls.tracker.CallTracker)' if make_tracker else 'no (module absent)'}")
    rows = speed(args.speed_events, make_tracker)
    baseline = next(seconds for name, _, seconds in rows if name.startswith("pyst2"))
    print(f"\n{'run (one core, CPU time)':58} {'events':>9} {'seconds':>8} {'events/s':>10} {'vs pyst2':>8}")
    for name, count, seconds in rows:
        print(f"{name:58} {count:>9,} {seconds:>8.2f} {count / seconds:>10,.0f} {baseline / seconds:>7.2f}x")
    marks = memory(args.events, make_tracker)
    print(f"\n{'memory (streamed, framing + parsing' + (' + tracking' if make_tracker else '') + ')':58} {'RSS MiB':>9}")
    for seen, mib in marks:
        print(f"{'after ' + format(seen, ',') + ' events':58} {mib:>9.1f}")
    if len(marks) == 2:
        print(f"{'growth from first to last mark':58} {marks[1][1] - marks[0][1]:>+9.1f}")


if __name__ == "__main__":
    main()
