"""One night of real records for the report tests: the shared AMI captures replayed into a database.

Each capture is moved in time by rewriting its events' ``Timestamp`` headers, so the calls
land at chosen local times of one shift; a capture used twice also gets fresh Linkedids
(the same caller ringing again). The streams go through the real ``CallTracker`` and
``CallRecorder``; receipts, escalations and the roster are written as their own modules
write them.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from gateway.ami.framing import iter_messages
from gateway.ami.message import AmiMessage
from gateway.calls.recorder import CallRecorder, Gap
from gateway.calls.tracker import CallTracker
from gateway.clock import SHANGHAI, UTC
from gateway.config import Config, DutyConfig, MailConfig, PathsConfig
from storage.calls import PhonebookEntry
from storage.db import Database
from storage.faxes import Receipt
from storage.paging import Escalation, PageAttempt
from storage.roster import RosterEntry
from tests.conftest import AMI_FIXTURES

NIGHT = "2026-11-21/night"
_ID_HEADERS = re.compile(r"(Dest)?(Linkedid|Uniqueid)$", re.IGNORECASE)

# (capture, local time of its first event, tag for fresh Linkedids or "")
NIGHT_CALLS = (
    ("anonymous.ami", datetime(2026, 11, 21, 19, 30, tzinfo=SHANGHAI), ""),
    ("answered_cn_name_chanvars.ami", datetime(2026, 11, 21, 20, 10, tzinfo=SHANGHAI), ""),
    ("answered_r5_late.ami", datetime(2026, 11, 21, 21, 40, tzinfo=SHANGHAI), ""),
    ("busy.ami", datetime(2026, 11, 21, 22, 15, tzinfo=SHANGHAI), ""),
    ("missed_abandon.ami", datetime(2026, 11, 21, 23, 5, tzinfo=SHANGHAI), ""),
    ("missed_abandon.ami", datetime(2026, 11, 21, 23, 25, tzinfo=SHANGHAI), "7001"),
    ("missed_timeout.ami", datetime(2026, 11, 22, 0, 20, tzinfo=SHANGHAI), ""),
    ("overlap.ami", datetime(2026, 11, 22, 1, 0, tzinfo=SHANGHAI), ""),
    ("fax_in.ami", datetime(2026, 11, 22, 2, 0, tzinfo=SHANGHAI), ""),
    ("callback.ami", datetime(2026, 11, 22, 3, 10, tzinfo=SHANGHAI), ""),
)
RESTART_AT = datetime(2026, 11, 22, 4, 0, tzinfo=SHANGHAI)
# A call that rings in the last seconds of the day shift and is answered in the night.
BOUNDARY_ARRIVAL = datetime(2026, 11, 21, 18, 59, 58, tzinfo=SHANGHAI)


def night_config(data_dir: Path, **report: object) -> Config:
    from gateway.config import ReportConfig

    return Config(
        duty=DutyConfig(numbers=["02787654321"], extensions=["8001", "8002"], fax_numbers=["02787654329"]),
        paths=PathsConfig(data_dir=data_dir),
        mail=MailConfig(report_recipients=["leaders@duty.local"]),
        report=ReportConfig(**report),  # type: ignore[arg-type]
    )


def capture(name: str, first_at: datetime, tag: str = "") -> list[AmiMessage]:
    """A capture's messages with event times moved so its first event is at ``first_at``."""
    messages = list(iter_messages((AMI_FIXTURES / name).read_bytes()))
    first = next(m.event_time for m in messages if m.event_time is not None)
    return [_moved(m, first_at.astimezone(UTC) - first, tag) for m in messages]


def _moved(message: AmiMessage, offset: timedelta, tag: str) -> AmiMessage:
    headers = []
    for name, value in message.headers:
        if name.lower() == "timestamp" and value:
            value = f"{float(value) + offset.total_seconds():.6f}"
        elif tag and _ID_HEADERS.search(name) and value and value != "<unknown>":
            value = value + tag
        headers.append((name, value))
    return replace(message, headers=tuple(headers))


def replay(db: Database, config: Config, messages: list[AmiMessage]) -> CallRecorder:
    recorder = CallRecorder(db, config.duty)
    tracker = CallTracker(config.duty)
    for message in messages:
        recorder.apply(tracker.feed(message))
    return recorder


def replay_restart(db: Database, config: Config, at: datetime) -> Gap:
    """The PBX restarts mid-call: the listener records the lost call and the gap, as B's listener does."""
    recorder = CallRecorder(db, config.duty)
    tracker = CallTracker(config.duty)
    before = capture("restart_midcall.ami", at)
    for message in before:
        recorder.apply(tracker.feed(message))
    lost_at = max(m.event_time for m in before if m.event_time is not None)
    recorder.apply(tracker.connection_lost(lost_at))
    recorder.record_gap(Gap(lost_at=lost_at, reason="PBX restarted"))
    after = capture("restart_midcall.reconnect.ami", lost_at + timedelta(seconds=1))
    for message in after:
        recorder.apply(tracker.feed(message))
    reconnected = min(m.event_time for m in after if m.event_time is not None)
    gap = Gap(lost_at=lost_at, reason="PBX restarted", reconnected_at=reconnected)
    recorder.record_gap(gap)
    return gap


def fill_night(db: Database, config: Config) -> None:
    """The whole night: calls, a boundary call, a restart, receipts, pages, roster."""
    for name, at, tag in NIGHT_CALLS:
        replay(db, config, capture(name, at, tag))
    replay(db, config, capture("answered_r2.ami", BOUNDARY_ARRIVAL - _lead_in("answered_r2.ami")))
    replay_restart(db, config, RESTART_AT)
    with db.session() as s:
        _receipts_and_pages(s)
        s.add(PhonebookEntry(number="13500003333", name="周九", unit="市水务局"))  # added after the call
        s.add(RosterEntry(duty_date=date(2026, 11, 21), shift="night", leader_name="王局长",
                          leader_number="13700003333", officers=["赵六", "钱七"],
                          imported_at=datetime(2026, 11, 20, tzinfo=UTC)))


def _lead_in(name: str) -> timedelta:
    """Time from a capture's first event to its first call's arrival."""
    messages = list(iter_messages((AMI_FIXTURES / name).read_bytes()))
    first = next(m.event_time for m in messages if m.event_time is not None)
    arrival = next(m.event_time for m in messages if m.event == "Newchannel" and m.event_time)
    return arrival - first


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI).astimezone(UTC)  # type: ignore[misc]


def _receipts_and_pages(session: Session) -> None:
    r1 = Receipt(year=2026, seq=137, received_at=local(2026, 11, 21, 22, 40), pages=3, issuer="省应急管理厅",
                 doc_number="鄂应急电〔2026〕45号", title="关于做好寒潮天气防范工作的紧急通知", urgency="特急",
                 is_urgent=True, status="filed")
    r2 = Receipt(year=2026, seq=138, received_at=local(2026, 11, 22, 2, 1), pages=2, issuer="市政府办公室",
                 doc_number="武政办〔2026〕88号", title="关于重点区域人员调度的通报", urgency="加急",
                 classification="机密", is_urgent=True, status="filed")
    r3 = Receipt(year=2026, seq=139, received_at=local(2026, 11, 22, 6, 30), pages=1, issuer="区政府办公室",
                 doc_number="江政办函〔2026〕12号", title="会议通知", status="signed", signed_by="赵六",
                 signed_at=local(2026, 11, 22, 7, 0))
    before = Receipt(year=2026, seq=136, received_at=local(2026, 11, 21, 18, 59, 59), pages=1,
                     issuer="市委办公厅", title="白班最后一份", status="signed")
    after = Receipt(year=2026, seq=140, received_at=local(2026, 11, 22, 8, 0), pages=1, issuer="市委办公厅",
                    title="白班第一份", status="filed")
    session.add_all([r1, r2, r3, before, after])
    session.flush()
    acked = Escalation(opened_at=local(2026, 11, 21, 22, 41), deadline_at=local(2026, 11, 21, 22, 51),
                       state="acknowledged", shift_key=NIGHT, receipt_ids=[r1.id],
                       acknowledged_at=local(2026, 11, 21, 22, 44), acknowledged_by="王局长",
                       acknowledged_number="13700003333", deadline_met=True)
    acked.attempts = [
        _attempt("a1", 0, "带班领导", "王局长", "13700003333", local(2026, 11, 21, 22, 41), "no_answer"),
        _attempt("a2", 0, "带班领导", "王局长", "13700003333", local(2026, 11, 21, 22, 43), "acknowledged"),
    ]
    missed = Escalation(opened_at=local(2026, 11, 22, 2, 2), deadline_at=local(2026, 11, 22, 2, 12),
                        state="exhausted", shift_key=NIGHT, receipt_ids=[r2.id], deadline_met=False)
    missed.attempts = [
        _attempt("b1", 0, "带班领导", "王局长", "13700003333", local(2026, 11, 22, 2, 2), "no_answer"),
        _attempt("b2", 1, "办公室分管主任", "孙八", "13700004444", local(2026, 11, 22, 2, 4), "busy"),
    ]
    session.add_all([acked, missed])


def _attempt(action: str, step: int, role: str, name: str, number: str, at: datetime, result: str) -> PageAttempt:
    return PageAttempt(step=step, role=role, name=name, number=number, action_id=action, planned_at=at,
                       sent_at=at, result=result)
