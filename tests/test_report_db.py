"""A night of real captures in a database: the report's figures equal what the tables say.

The AMI streams in the shared fixtures are replayed (moved into the night of 2026-11-21)
through the real tracker and recorder; every figure is then recounted here with plain
queries, independently of ``gateway.report``.
"""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from gateway.config import Config
from gateway.shifts.config import CalendarConfig, ShiftConfig
from gateway.shifts.calendar import shift_by_key
from gateway.report.figures import summary
from gateway.report.make import write_report
from gateway.report.query import shift_figures
from storage.calls import Call, ListenerGap
from storage.db import Database
from storage.faxes import Receipt
from storage.paging import Escalation
from tests.report_night import NIGHT, fill_night, local, night_config

MISSED = ("missed_abandoned", "missed_no_answer", "missed_busy", "failed")


@pytest.fixture
def night(any_database: Database, tmp_path: Path) -> tuple[Database, Config]:
    config = night_config(tmp_path / "var")
    fill_night(any_database, config)
    return any_database, config


def recount(db: Database, start: datetime, end: datetime) -> dict[str, int]:
    """The headline figures straight from the tables."""
    def count(model: type, *where: object) -> int:
        with db.session() as s:
            return s.scalar(select(func.count()).select_from(model).where(*where)) or 0

    in_shift = (Call.arrived_at >= start, Call.arrived_at < end)
    voice_in = (*in_shift, Call.direction == "in", Call.outcome != "fax")
    escalations = (Escalation.opened_at >= start, Escalation.opened_at < end)
    return {
        "calls_in": count(Call, *voice_in),
        "answered": count(Call, *voice_in, Call.outcome == "answered"),
        "rule_met": count(Call, *voice_in, Call.outcome == "answered", Call.rule_met.is_(True)),
        "late": count(Call, *voice_in, Call.outcome == "answered", Call.rule_met.is_not(True)),
        "missed": count(Call, *voice_in, Call.outcome.in_(MISSED)),
        "missed_open": count(Call, *voice_in, Call.outcome.in_(MISSED), Call.closed_by_call_id.is_(None)),
        "outbound": count(Call, *in_shift, Call.direction == "out"),
        "unknown": count(Call, *voice_in, Call.outcome == "unknown"),
        "faxes": count(Receipt, Receipt.received_at >= start, Receipt.received_at < end),
        "urgent_faxes": count(Receipt, Receipt.received_at >= start, Receipt.received_at < end,
                              Receipt.is_urgent.is_(True)),
        "pages": count(Escalation, *escalations),
        "pages_acknowledged": count(Escalation, *escalations, Escalation.acknowledged_at < end),
        "deadline_met": count(Escalation, *escalations, Escalation.deadline_met.is_(True)),
        "listener_gaps": count(ListenerGap, ListenerGap.lost_at < end, ListenerGap.lost_at >= start),
    }


def test_the_night_figures_equal_the_database(night: tuple[Database, Config]) -> None:
    db, config = night
    shift = shift_by_key(NIGHT, config.calendar, config.zone)
    figures = summary(shift_figures(db, config, NIGHT), config.zone)
    expected = recount(db, shift.start, shift.end)
    assert {key: figures[key] for key in expected} == expected
    # the night as replayed: the fixtures' ground truth, not only self-consistency
    assert (figures["calls_in"], figures["answered"], figures["late"], figures["missed"]) == (10, 5, 1, 4)
    assert (figures["missed_open"], figures["outbound"], figures["unknown"]) == (2, 1, 1)
    assert figures["leader"] == "王局长"


def test_every_missed_call_appears_once_and_the_callback_closes_its_own(night: tuple[Database, Config]) -> None:
    db, config = night
    figures = shift_figures(db, config, NIGHT)
    listed = [c.linkedid for g in figures.missed for c in g.calls]
    assert len(listed) == len(set(listed)) == figures.missed_calls == 4
    by_caller = {g.caller: g for g in figures.missed}
    called_back = by_caller["13911112222"]
    assert len(called_back.calls) == 2 and not called_back.open  # rang twice, one callback settles both
    assert all(c.called_back_by == "8001" and c.callback_connected for c in called_back.calls)
    assert by_caller["13500003333"].open and by_caller["13500005555"].open
    timeout = by_caller["13500003333"].calls[0]
    assert (timeout.caller_name, timeout.caller_unit) == ("周九", "市水务局")  # phonebook read at report time
    assert [c.caller for c in figures.missed_open] == ["13500005555", "13500003333"]


def test_the_call_ringing_across_the_boundary_stays_in_the_day_shift(night: tuple[Database, Config]) -> None:
    db, config = night
    day = shift_figures(db, config, "2026-11-21/day")
    (boundary,) = day.calls
    assert boundary.arrived_at < day.shift.end <= boundary.answered_at  # type: ignore[operator]
    assert boundary.outcome == "answered"
    assert boundary.linkedid not in {c.linkedid for c in shift_figures(db, config, NIGHT).calls}


def test_the_files_say_the_same(night: tuple[Database, Config], tmp_path: Path) -> None:
    db, config = night
    figures = shift_figures(db, config, NIGHT)
    files = write_report(figures, config, tmp_path / "out")
    text = subprocess.run(["pdftotext", "-layout", str(files.path("report.pdf")), "-"],
                          capture_output=True, text=True, check=True).stdout
    for heading in ("值班报告", "一、班次", "二、来电情况", "四、未接来电", "七、来文（传真）",
                    "八、紧急来文电话通知", "九、交接班事项", "王局长", "赵六、钱七"):
        assert heading in text
    assert "来电总数：10" in text and "已接：5" in text and "未接：4" in text
    assert "3声内接听：4（占来电 40.0%）" in text
    assert "13911112222" in text and "已回拨，已接通" in text
    assert "传真〔2026〕0137号" in text and "关于做好寒潮天气防范工作的紧急通知" in text
    assert "关于重点区域人员调度的通报" not in text  # 机密: title hidden
    html = files.path("report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in html and "关于重点区域人员调度的通报" not in html
    assert 'src="cid:hourly"' in files.path("mail.html").read_text(encoding="utf-8")
    sheet = load_workbook(files.path("calls.xlsx")).active
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert len(rows) == len(figures.calls) == 12  # 10 voice + fax + callback
    arrived = [c.arrived_at.astimezone(config.zone).replace(tzinfo=None) for c in figures.calls]
    assert all(abs((r[1] - a).total_seconds()) < 0.001 for r, a in zip(rows, arrived, strict=True))  # Excel: ms
    for chart in ("hourly.png", "rings.png"):
        png = files.path(chart).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000


HOLIDAY_CALENDAR = CalendarConfig(holiday_shifts=[
    ShiftConfig("day", "白班", *(datetime(2000, 1, 1, h).time() for h in (9, 21))),
    ShiftConfig("night", "夜班", *(datetime(2000, 1, 1, h).time() for h in (21, 9))),
])


@pytest.mark.parametrize(("key", "start", "end"), [
    ("2026-10-01/night", local(2026, 10, 1, 21), local(2026, 10, 2, 9)),  # 国庆节: rest-day layout
    ("2026-10-09/night", local(2026, 10, 9, 19), local(2026, 10, 10, 8)),  # next morning is 调休上班
    ("2026-10-10/day", local(2026, 10, 10, 8), local(2026, 10, 10, 19)),  # a Saturday worked
    ("2026-10-10/night", local(2026, 10, 10, 19), local(2026, 10, 11, 9)),  # Sunday rests again
])
def test_holidays_and_makeup_days_use_their_own_windows(
    database: Database, tmp_path: Path, key: str, start: datetime, end: datetime
) -> None:
    from dataclasses import replace

    config = replace(night_config(tmp_path), calendar=HOLIDAY_CALENDAR)
    edges = [start - timedelta(seconds=1), start, end - timedelta(seconds=1), end]
    with database.session() as s:
        for n, when in enumerate(edges):
            s.add(Call(linkedid=f"edge.{n}", direction="in", caller=f"1390000000{n}", arrived_at=when,
                       outcome="answered", rings=1, rule_met=True, complete=True))
    figures = shift_figures(database, config, key)
    assert (figures.shift.start, figures.shift.end) == (start, end)
    assert [c.linkedid for c in figures.calls] == ["edge.1", "edge.2"]
    if key == "2026-10-01/night":
        assert figures.shift.rest_day and figures.shift.day_reason == "国庆节"
    if key == "2026-10-10/day":
        assert not figures.shift.rest_day and "调休上班" in (figures.shift.day_reason or "")
