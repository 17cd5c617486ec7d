"""``dutygw demo``: a recorded night through the real daemon, with no PBX.

The daemon runs as in production, on a scratch database, over real sockets, with a clock
moved to Saturday night 2026-11-21 and running at real speed. One stand-in PBX serves the
whole night over one AMI connection (no listener gap): first the recorded calls on the
duty number (22:30–22:34, their own PBX timestamps), then, at 22:35 by the gateway's
clock, two faxes reach the SMTP intake through the dialplan's own fax-mail script, as
Asterisk's ``ReceiveFAX`` hangup handler sends them. The urgent one pages the leadership:
the shift's 带班领导 from the roster does not answer, the office director presses 1 (the
recorded calls, at their real length). Then the morning report of that night is written.
Progress is printed as it happens; at the end, the night's figures (the report's own) and
the commands to look at the data. Then, on a terminal or with ``--console``, the console
stays up on the scratch database with a demo account (``gateway.demo_console``).
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import socket
import sys
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

import dialplan
from gateway import demo_console, terms
from gateway.ami.message import AmiMessage
from gateway.ami.peer import ANSWER_ACK, NO_ANSWER, AmiPeer
from gateway.ami.replay import load_recording, offset_to, shift_message
from gateway.clock import SHANGHAI, ShiftedClock, as_utc
from gateway.config import Config, load_config
from gateway.daemon import Daemon
from gateway.errors import GatewayError
from gateway.report.figures import ShiftFigures
from storage.calls import Call
from storage.db import Database, open_database
from storage.faxes import Receipt
from storage.paging import Escalation, PageAttempt
from storage.states import ReceiptStatus

SAMPLES = Path(__file__).with_name("samples")
CALL_STREAMS = ("answered_r2", "missed_abandon", "answered_r5_late", "busy", "anonymous",
                "missed_timeout", "callback", "fax_in")
FAXES = (("fax_008.tif", "0710-2345678"), ("fax_002.tif", "0710-8765432"))
SHIFT_KEY = "2026-11-21/night"
SHIFT_START = datetime(2026, 11, 21, 19, 0, tzinfo=SHANGHAI)
"""The demo's gateway has watched since the shift began, so the report covers all of it."""
CALLS_START = datetime(2026, 11, 21, 22, 30, tzinfo=SHANGHAI)
CLOCK_START = datetime(2026, 11, 21, 22, 34, 50, tzinfo=SHANGHAI)
"""Just after the last recorded call event (22:34:35): the faxes and the page come after."""
DEPUTY, DIRECTOR = "13900000001", "13900000002"
ROSTER = (
    "日期,班次,带班领导,领导电话,值班人员\n"
    f"2026-11-21,夜班,王副主任,{DEPUTY},李明、张华\n"
)
PAGE_PACE = 1.0
"""The stand-in PBX plays the recorded page calls at their real length (a 30-s ring)."""
WAIT_SECONDS = 600.0

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

[web]
port = {web}

[paging]
agi_port = {agi}
attempts_per_person = 1
attempt_interval_seconds = 5
chain = [
  {{ role = "带班领导", number = "roster" }},
  {{ role = "办公室主任", name = "陈主任", number = "{director}" }},
]
"""


@dataclass(frozen=True)
class DemoResult:
    folder: Path
    config: Path
    report_files: tuple[Path, ...]
    figures: ShiftFigures
    acknowledged: str | None


def main(out: Path | None, console: bool | None = None) -> int:
    """The night, its report, then (``console``, or by default on a terminal) the console until Ctrl-C."""
    folder = out or Path("var") / "demo" / time.strftime("%Y%m%d-%H%M%S")
    return asyncio.run(_night_then_console(folder, demo_console.wanted(console, sys.stdout)))


async def _night_then_console(folder: Path, stay: bool) -> int:
    clock = ShiftedClock(CLOCK_START)
    result = await run_demo(folder, clock)
    _print(result)
    if not stay:
        return 0
    return await demo_console.serve(result.config, clock)


async def run_demo(folder: Path, clock: ShiftedClock) -> DemoResult:
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    config = _write_config(folder)
    db = open_database(config.database_url)
    _prepare(db, config)
    _say(f"演示开始：{CLOCK_START:%Y年%m月%d日} 夜班，网关时钟 {CLOCK_START:%H:%M:%S}；数据在 {folder}")
    stop = asyncio.Event()
    # the console comes after the night, with its account: the night's daemon serves none
    daemon = Daemon(replace(config, web=replace(config.web, enabled=False)), clock, db=db)
    peer = _NightPbx.from_fixtures(SAMPLES / "ami", behaviours={DEPUTY: NO_ANSWER, DIRECTOR: ANSWER_ACK},
                                   port=config.ami.port, pace=PAGE_PACE, now=lambda: clock.now().timestamp())
    await peer.start()
    running = asyncio.create_task(daemon.run(stop))
    progress = Progress(db, config)
    watching = asyncio.create_task(progress.watch())
    try:
        await _until(daemon.ready.wait(), running)
        await _until(peer.logged_in(), running)
        calls = _night_calls()
        _say(f"回放录制的来电：{len(_linkedids(calls))} 通（22:30 起，同一条 AMI 连接）")
        await peer.play(calls)
        await _until(_calls_recorded(db, _linkedids(calls)), running)
        _say(f"{clock.now().astimezone(SHANGHAI):%H:%M:%S} 传真机收到 {len(FAXES)} 份传真，送入网关")
        await _mail_faxes(config, clock)
        await _until(_settled(db), running)
    finally:
        stop.set()
        await asyncio.gather(running, return_exceptions=True)
        await peer.stop()
        progress.stopped.set()
        await watching
    if running.exception() is not None:
        raise running.exception()  # type: ignore[misc]
    _say("生成夜班报告……")
    result = await asyncio.to_thread(_report, db, config, folder)
    db.dispose()
    return result


class _NightPbx(AmiPeer):
    """The stand-in PBX, also serving the recorded calls on its one connection."""

    async def logged_in(self) -> None:
        while not self._sessions:
            await asyncio.sleep(0.05)

    async def play(self, messages: list[AmiMessage]) -> None:
        for index, message in enumerate(messages):
            self._broadcast(message)
            if index % 20 == 0:
                await asyncio.sleep(0)


def _write_config(folder: Path) -> Config:
    ami, smtp, agi = _free_ports(3)
    path = folder / "dutygw.toml"
    text = CONFIG.format(ami=ami, smtp=smtp, agi=agi, web=demo_console.preferred_port(), data=folder / "var",
                         phonebook=SAMPLES / "phonebook.csv",
                         deputy=DEPUTY, director=DIRECTOR)
    path.write_text(text, encoding="utf-8")
    return load_config(path, env={})


def _prepare(db: Database, config: Config) -> None:
    """The night's roster, and a gateway that has watched the PBX since the shift began."""
    from gateway.report.query import mark_watching_since
    from gateway.shifts.roster import parse_roster, store_roster

    rows = parse_roster(ROSTER.encode("utf-8"), "demo roster", config.calendar)
    with db.session() as session:
        store_roster(session, rows, SHIFT_START)
    mark_watching_since(config, SHIFT_START)


def _night_calls() -> list[AmiMessage]:
    """Every recorded call's events, moved to 22:30 and in the order the PBX sent them."""
    recordings = [load_recording(SAMPLES / "ami" / f"{name}.ami") for name in CALL_STREAMS]
    offset = offset_to(recordings[0], CALLS_START)
    events = [shift_message(m, offset) for r in recordings for m in r.messages]
    return sorted(events, key=lambda m: Decimal(m.get("Timestamp") or 0))


def _linkedids(messages: list[AmiMessage]) -> set[str]:
    return {m["Linkedid"] for m in messages if m.get("Linkedid")}


async def _calls_recorded(db: Database, linkedids: set[str]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        ended = await db.run(_ended_calls, db)
        if linkedids <= ended:
            return
        await asyncio.sleep(0.2)
    raise GatewayError(f"demo: the calls were not all recorded within {WAIT_SECONDS:.0f} s")


def _ended_calls(db: Database) -> set[str]:
    with db.session() as session:
        return set(session.scalars(select(Call.linkedid).where(Call.ended_at.is_not(None))))


async def _mail_faxes(config: Config, clock: ShiftedClock) -> None:
    """Send each sample fax the way the dialplan's ReceiveFAX hangup handler does, received now."""
    script = Path(dialplan.__file__).with_name("agi") / "dutygw_fax_mail.py"
    for name, station in FAXES:
        received = clock.now().timestamp()
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(script), "--file", str(SAMPLES / "fax" / name), "--status", "SUCCESS",
            "--pages", "1", "--station", station, "--callerid", station.replace("-", ""),
            "--received", f"{received:.0f}", "--smtp-port", str(config.smtp.port), "--retry-seconds", "30",
            "--to", config.smtp.recipients[0],
        )
        if await process.wait() != 0:
            raise GatewayError(f"demo: the fax-mail script failed for {name}")


async def _settled(db: Database) -> None:
    """Until every fax is filed and the page is closed (acknowledged or given up)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if await db.run(_is_settled, db):
            return
        await asyncio.sleep(0.5)
    raise GatewayError(f"demo: the night did not settle within {WAIT_SECONDS:.0f} s")


def _is_settled(db: Database) -> bool:
    with db.session() as session:
        receipts = session.scalars(select(Receipt)).all()
        escalations = session.scalars(select(Escalation)).all()
    filed = len(receipts) == len(FAXES) and all(r.status != ReceiptStatus.READING for r in receipts)
    return filed and bool(escalations) and all(e.state != "open" for e in escalations)


@dataclass
class Progress:
    """Prints, as they happen, the calls recorded, the fax pages read and the page calls."""

    db: Database
    config: Config
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    _seen: set[tuple[str, object, object]] = field(default_factory=set)

    async def watch(self) -> None:
        while True:
            for line in await self.db.run(self._news):
                _say(line)
            if self.stopped.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopped.wait(), 0.3)

    def _news(self) -> list[str]:
        zone = self.config.zone
        lines: list[str] = []
        with self.db.session() as session:
            for call in session.scalars(select(Call).where(Call.ended_at.is_not(None)).order_by(Call.arrived_at)):
                if self._new(("call", call.linkedid, None)):
                    lines.append("  " + _call_line(call, zone))
            for receipt in session.scalars(select(Receipt).order_by(Receipt.id)):
                if self._new(("receipt", receipt.id, None)):
                    lines.append(f"  识别传真 {receipt.receipt_no}（{_hms(receipt.received_at, zone)} 收到，"
                                 f"来自 {receipt.station or receipt.sender_number or '未知'}）……")
                for page in receipt.page_texts:
                    if self._new(("page", receipt.id, page.page_no)):
                        lines.append(f"    {receipt.receipt_no} 第 {page.page_no}/{receipt.pages or '?'} 页已识别")
                if receipt.status != ReceiptStatus.READING and self._new(("filed", receipt.id, receipt.status)):
                    urgent = "紧急" if receipt.is_urgent else "普通"
                    lines.append(f"  {receipt.receipt_no} {terms.word(terms.RECEIPT_STATUS, receipt.status)}："
                                 f"{urgent}，{receipt.issuer or '来文单位未识别'}《{receipt.title or '标题未识别'}》")
            for attempt in session.scalars(select(PageAttempt).order_by(PageAttempt.id)):
                who = f"{attempt.role} {attempt.name}".strip()
                if attempt.sent_at is not None and self._new(("dial", attempt.id, None)):
                    lines.append(f"  {_hms(attempt.sent_at, zone)} 电话通知 {who}（{attempt.number}）……")
                if attempt.result not in ("planned", "sent", "answered") and \
                        self._new(("result", attempt.id, attempt.result)):
                    at = attempt.ended_at or attempt.answered_at or attempt.sent_at
                    lines.append(f"  {_hms(at, zone)} {who}：{terms.word(terms.ATTEMPT_RESULT, attempt.result)}")
        return lines

    def _new(self, key: tuple[str, object, object]) -> bool:
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


def _call_line(call: Call, zone: ZoneInfo) -> str:
    number = terms.WITHHELD if call.caller_withheld else (call.caller or "")
    who = f"（{call.caller_name}）" if call.caller_name and call.direction == "in" else ""
    rings = f"，振铃 {call.rings} 声" if call.rings is not None and call.outcome != "fax" else ""
    if call.direction == "out":
        return f"{_hms(call.arrived_at, zone)} 去电 {call.dialed}（{call.caller} 回拨）{terms.word(terms.CALL_OUTCOME, call.outcome)}"
    return (f"{_hms(call.arrived_at, zone)} 来电 {number}{who} → {call.dialed}："
            f"{terms.word(terms.CALL_OUTCOME, call.outcome, default=terms.IN_PROGRESS)}{rings}")


def _hms(instant: datetime | None, zone: ZoneInfo) -> str:
    return "--:--:--" if instant is None else f"{as_utc(instant).astimezone(zone):%H:%M:%S}"


def _say(line: str) -> None:
    print(line, flush=True)


def _report(db: Database, config: Config, folder: Path) -> DemoResult:
    from gateway.report.publish import publish

    published = publish(db, config, SHIFT_KEY, datetime.now(SHANGHAI), send=False, folder=folder / "report")
    files = tuple(published.files.folder / name for name in published.files.names if name in READABLE)
    with db.session() as session:
        escalation = session.scalars(select(Escalation)).first()
        acknowledged = None
        if escalation is not None and escalation.acknowledged_at is not None:
            acknowledged = (f"{escalation.acknowledged_by} 于 "
                            f"{_hms(escalation.acknowledged_at, config.zone)} 按1确认")
    assert config.source is not None
    return DemoResult(folder, config.source, files, published.figures, acknowledged)


READABLE = ("report.pdf", "report.html", "calls.xlsx")
"""The files to open: not mail.html, whose charts are parts of the e-mail (cid:)."""


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
    f = result.figures
    print(f"\n演示完成（{SHIFT_KEY} 夜班，带班领导 {f.shift.leader or '未录入'}）：")
    print(f"  来电 {f.calls_in} 通（已接 {f.answered}，未接 {f.missed_calls}，{f.answer_within_rings}声内接听 "
          f"{f.rule_met}），去电 {len(f.outbound)} 通；收传真 {len(f.faxes)} 份，其中紧急 {len(f.urgent_faxes)} 份；"
          f"监听中断 {len(f.gaps)} 次")
    print(f"  紧急传真电话通知：{result.acknowledged or '无人确认'}")
    print("夜班报告：")
    for path in result.report_files:
        print(f"  {path}")
    config = shlex.quote(str(result.config))
    print("查看这一夜的数据：")
    for command in ("calls", "faxes", "fax show 1", f"report --shift {SHIFT_KEY} --format json"):
        print(f"  dutygw -c {config} {command}")
