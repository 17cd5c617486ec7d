"""Roster import from the CSVs offices export (UTF-8 with BOM, GB18030), and the CLI around it."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.clock import UTC
from gateway.shifts.config import CalendarConfig, ShiftConfig
from gateway.errors import InputError
from gateway.shifts.roster import OnDuty, normalise_number, on_duty, parse_roster, store_roster
from storage.db import Database, open_database

CALENDAR = CalendarConfig()
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
ENGLISH = (
    "date,shift,leader,leader_phone,officers\n"
    "2026-11-21,day,刘洋,139 0000 1111,赵敏、孙磊\n"
    "2026-11-21,night,张伟,+86 138-0013-8000,李娜、王强\n"
    "\n"
    "2026/11/22,夜班,陈静,,周涛\n"
)
CHINESE = (
    "值班日期,班次,带班领导,联系电话,值班人员\r\n"
    "2026年10月1日,白班,黄磊,13700001234,吴芳 郑凯\r\n"
)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_parse_english_headings_in_each_encoding(encoding: str) -> None:
    rows = parse_roster(ENGLISH.encode(encoding), "roster.csv", CALENDAR)
    assert rows == [
        OnDuty(date(2026, 11, 21), "day", "刘洋", "13900001111", ("赵敏", "孙磊"), "roster.csv, line 2"),
        OnDuty(date(2026, 11, 21), "night", "张伟", "13800138000", ("李娜", "王强"), "roster.csv, line 3"),
        OnDuty(date(2026, 11, 22), "night", "陈静", "", ("周涛",), "roster.csv, line 5"),
    ]


def test_parse_chinese_headings_from_excel() -> None:
    (row,) = parse_roster(b"\xef\xbb\xbf" + CHINESE.encode("utf-8"), "值班表.csv", CALENDAR)
    assert row == OnDuty(date(2026, 10, 1), "day", "黄磊", "13700001234", ("吴芳", "郑凯"), "值班表.csv, line 2")
    (again,) = parse_roster(CHINESE.encode("gb18030"), "值班表.csv", CALENDAR)
    assert again == row


def test_holiday_shift_names_are_known() -> None:
    split = CalendarConfig(holiday_shifts=[ShiftConfig("am", "上午班", time(8), time(13)),
                                           ShiftConfig("pm", "下午班", time(13), time(18)),
                                           ShiftConfig("night", "夜班", time(18), time(8))])
    rows = parse_roster("date,shift,leader\n2026-10-01,上午班,黄磊\n2026-10-01,PM,吴芳\n".encode(), "r.csv", split)
    assert [row.shift for row in rows] == ["am", "pm"]


@pytest.mark.parametrize(("text", "message"), [
    ("date,shift\n2026-11-21,day\n", r"r\.csv, line 1: missing column\(s\) leader"),
    ("date,shift,leader\n2026-11-21,day,刘洋\n2026-11-31,night,张伟\n", r"r\.csv, line 3: '2026-11-31' is not a date"),
    ("date,shift,leader\n2026-11-21,早班,刘洋\n", r"r\.csv, line 2: unknown shift '早班'"),
    ("date,shift,leader\n2026-11-21,day,\n", r"r\.csv, line 2: no leader named"),
    ("date,shift,leader,leader_phone\n2026-11-21,day,刘洋,139-abc\n", r"r\.csv, line 2: phone number '139-abc'"),
    ("date,shift,leader\n2026-11-21,day,刘洋\n2026-11-21,白班,张伟\n", r"r\.csv, line 3: 2026-11-21 day is already given at r\.csv, line 2"),
    ("", r"r\.csv: the roster file is empty"),
])
def test_errors_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_roster(text.encode(), "r.csv", CALENDAR)


def test_not_text_at_all() -> None:
    with pytest.raises(InputError, match="neither UTF-8 nor GB18030"):
        parse_roster(b"date,shift,leader\n\xff\xfe\xff\x80\n", "r.csv", CALENDAR)


@pytest.mark.parametrize(("text", "number"), [
    ("138 0013 8000", "13800138000"), ("+86 138-0013-8000", "13800138000"), ("0086 13800138000", "13800138000"),
    ("027-87654321", "02787654321"), ("(027) 8765 4321", "02787654321"), ("", ""),
])
def test_normalise_number(text: str, number: str) -> None:
    assert normalise_number(text) == number


def test_store_replaces_the_same_shift(any_database: Database) -> None:
    database = any_database
    with database.session() as s:
        assert store_roster(s, parse_roster(ENGLISH.encode(), "a.csv", CALENDAR), NOW) == 3
    fix = "date,shift,leader,leader_phone\n2026-11-21,night,王磊,13511112222\n"
    with database.session() as s:
        store_roster(s, parse_roster(fix.encode(), "b.csv", CALENDAR), NOW)
    with database.session() as s:
        night = on_duty(s, date(2026, 11, 21), "night")
        day = on_duty(s, date(2026, 11, 21), "day")
        assert on_duty(s, date(2026, 11, 23), "day") is None
    assert night == OnDuty(date(2026, 11, 21), "night", "王磊", "13511112222", (), "b.csv, line 2")
    assert day is not None and day.leader == "刘洋"


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("DUTYGW_CONFIG", raising=False)
    path = tmp_path / "dutygw.toml"
    path.write_text(
        '[duty]\nnumbers = ["02787654321"]\nextensions = ["8001"]\n'
        f'[database]\nurl = "sqlite:///{tmp_path / "db.sqlite"}"\n',
        encoding="utf-8",
    )
    return path


def test_cli_import_then_shift(config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    roster = tmp_path / "值班表.csv"
    roster.write_bytes(ENGLISH.encode("gb18030"))
    assert main(["-c", str(config_file), "roster", "import", str(roster)]) == 0
    assert "imported 3 roster entries" in capsys.readouterr().out
    assert main(["-c", str(config_file), "shift", "--at", "2026-11-22T03:00"]) == 0
    out = capsys.readouterr().out
    assert "2026-11-21/night  夜班  2026-11-21 19:00 – 2026-11-22 08:00  休息日（周末）" in out
    assert "带班领导：张伟 13800138000  值班人员：李娜、王强" in out
    assert main(["-c", str(config_file), "shift", "--at", "2026-11-23T10:00+08:00"]) == 0
    assert "带班领导：值班表中无本班记录" in capsys.readouterr().out


def test_cli_bad_roster_fails_with_input_error_and_imports_nothing(
        config_file: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    roster = tmp_path / "bad.csv"
    roster.write_text("date,shift,leader\n2026-11-21,day,刘洋\n2026-11-21,晚班,张伟\n", encoding="utf-8")
    assert main(["-c", str(config_file), "roster", "import", str(roster)]) == InputError.exit_code
    assert f"{roster}, line 3: unknown shift '晚班'" in caplog.text
    db = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        with db.session() as s:
            assert on_duty(s, date(2026, 11, 21), "day") is None
    finally:
        db.dispose()
