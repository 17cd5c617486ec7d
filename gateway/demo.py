"""``dutygw demo``: a recorded night through the real daemon, with no PBX.

The daemon runs as in production, on a scratch database, over real sockets. A stand-in
PBX first replays recorded AMI streams of calls on the duty number (one per connection,
as Asterisk across restarts), then answers the gateway's Originate the way the recorded
PBX did. Faxes reach the SMTP intake through the dialplan's own fax-mail script, as
Asterisk's ``ReceiveFAX`` hangup handler sends them. The urgent one pages the leadership;
the deputy director does not answer, the director presses 1. Then the morning report of
that night is written. The clock is the real one moved to the night of the recording.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

import dialplan
from gateway.ami.peer import ANSWER_ACK, NO_ANSWER, AmiPeer
from gateway.ami.replay import Recording, ReplayServer, load_recording, offset_to
from gateway.clock import SHANGHAI, ShiftedClock
from gateway.config import Config, load_config
from gateway.daemon import Daemon
from gateway.errors import GatewayError
from storage.db import Database
from storage.faxes import Receipt
from storage.paging import Escalation

SAMPLES = Path(__file__).with_name("samples")
CALL_STREAMS = ("answered_r2", "missed_abandon", "answered_r5_late", "busy", "anonymous",
                "missed_timeout", "callback", "fax_in")
FAXES = (("fax_008.tif", "0710-2345678"), ("fax_002.tif", "0710-8765432"))
SHIFT_KEY = "2026-11-21/night"
CALLS_START = datetime(2026, 11, 21, 22, 30, tzinfo=SHANGHAI)
FAXES_START = datetime(2026, 11, 21, 23, 0, tzinfo=SHANGHAI)
CLOCK_START = datetime(2026, 11, 21, 22, 58, tzinfo=SHANGHAI)
DEPUTY, DIRECTOR = "13900000001", "13900000002"
WAIT_SECONDS = 300.0

CONFIG = """\
# Written by `dutygw demo`: the example PBX, on scratch ports and a scratch database.
[duty]
numbers = ["02787654321"]
extensions = ["8001", "8002"]
fax_numbers = ["02787654329"]
room_phone = "027-87654321"

[ami]
port = {ami}
user = "gateway"
secret = "demo"
reconnect_max_seconds = 2

[paths]
data_dir = "{data}"
phonebook = "{phonebook}"

[smtp]
port = {smtp}

[paging]
agi_port = {agi}
attempts_per_person = 1
attempt_interval_seconds = 5
chain = [
  {{ role = "带班领导", number = "roster" }},
  {{ role = "办公室分管主任", name = "王副主任", number = "{deputy}" }},
  {{ role = "办公室主任", name = "陈主任", number = "{director}" }},
]
"""


@dataclass(frozen=True)
class DemoResult:
    folder: Path
    report_files: tuple[Path, ...]
    calls: int
    receipts: int
    acknowledged_by: str | None


def main(out: Path | None) -> int:
    folder = out or Path("var") / "demo" / time.strftime("%Y%m%d-%H%M%S")
    result = asyncio.run(run_demo(folder))
    _print(result)
    return 0


async def run_demo(folder: Path) -> DemoResult:
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    config = _write_config(folder)
    stop = asyncio.Event()
    daemon = Daemon(config, ShiftedClock(CLOCK_START))
    replay = ReplayServer(_recordings(), port=config.ami.port, offset=_offset())
    await replay.start()
    running = asyncio.create_task(daemon.run(stop))
    try:
        await _until(daemon.ready.wait(), running)
        await _until(replay.wait_closed(), running)
        peer = AmiPeer.from_fixtures(SAMPLES / "ami", behaviours={DEPUTY: NO_ANSWER, DIRECTOR: ANSWER_ACK},
                                     port=config.ami.port)
        await peer.start()
        try:
            await _mail_faxes(config)
            assert daemon.db is not None
            await _until(_settled(daemon.db), running)
        finally:
            stop.set()
            await running
            await peer.stop()
        return await asyncio.to_thread(_report, daemon.db, config, folder)
    finally:
        stop.set()
        if not running.done():
            await running


def _write_config(folder: Path) -> Config:
    ami, smtp, agi = _free_ports(3)
    path = folder / "dutygw.toml"
    text = CONFIG.format(ami=ami, smtp=smtp, agi=agi, data=folder / "var", phonebook=SAMPLES / "phonebook.csv",
                         deputy=DEPUTY, director=DIRECTOR)
    path.write_text(text, encoding="utf-8")
    return load_config(path, env={})


def _recordings() -> list[Recording]:
    return [load_recording(SAMPLES / "ami" / f"{name}.ami") for name in CALL_STREAMS]


def _offset() -> Decimal:
    return offset_to(load_recording(SAMPLES / "ami" / f"{CALL_STREAMS[0]}.ami"), CALLS_START)


async def _mail_faxes(config: Config) -> None:
    """Send each sample fax the way the dialplan's ReceiveFAX hangup handler does."""
    script = Path(dialplan.__file__).with_name("agi") / "dutygw_fax_mail.py"
    for minute, (name, station) in enumerate(FAXES):
        received = FAXES_START.timestamp() + 60 * minute
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(script), "--file", str(SAMPLES / "fax" / name), "--status", "SUCCESS",
            "--pages", "1", "--station", station, "--callerid", station.replace("-", ""),
            "--received", f"{received:.0f}", "--smtp-port", str(config.smtp.port), "--retry-seconds", "30",
        )
        if await process.wait() != 0:
            raise GatewayError(f"demo: the fax-mail script failed for {name}")


async def _settled(db: Database) -> None:
    """Until every fax is filed and the page is closed (acknowledged or given up)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        with db.session() as session:
            receipts = session.scalars(select(Receipt)).all()
            escalations = session.scalars(select(Escalation)).all()
        filed = len(receipts) == len(FAXES) and all(r.status != "reading" for r in receipts)
        if filed and escalations and all(e.state != "open" for e in escalations):
            return
        await asyncio.sleep(0.5)
    raise GatewayError(f"demo: the night did not settle within {WAIT_SECONDS:.0f} s")


def _report(db: Database | None, config: Config, folder: Path) -> DemoResult:
    from gateway.report.publish import publish
    from storage.calls import Call

    assert db is not None
    published = publish(db, config, SHIFT_KEY, datetime.now(SHANGHAI), send=False, folder=folder / "report")
    with db.session() as session:
        calls = len(session.scalars(select(Call)).all())
        receipts = len(session.scalars(select(Receipt)).all())
        ack = session.scalars(select(Escalation.acknowledged_by)).first()
    files = tuple(published.files.folder / name for name in published.files.names)
    return DemoResult(folder, files, calls, receipts, ack)


async def _until(waitable: Awaitable[object], running: asyncio.Task[None]) -> None:
    """Wait for ``waitable``, but stop at once if the daemon itself ends (its error surfaces)."""
    task = asyncio.ensure_future(waitable)
    done, _ = await asyncio.wait({task, running}, return_when=asyncio.FIRST_COMPLETED)
    if running in done and task not in done:
        task.cancel()
        running.result()
        raise GatewayError("demo: the daemon stopped early")
    task.result()


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _print(result: DemoResult) -> None:
    print(f"\n演示完成：{result.calls} 通电话，{result.receipts} 份传真，"
          f"紧急传真已由 {result.acknowledged_by or '（无人）'} 按1确认。")
    print(f"Demo folder (configuration, database, spool): {result.folder}")
    print("Morning report of the night shift 2026-11-21/night:")
    for path in result.report_files:
        print(f"  {path}")
