"""Drawing a plan over a real holiday period: 2026 National Day (1–7 October) and the 调休
working Saturday that follows (10 October), from chinesecalendar through the shift calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.cli import main
from gateway.clock import FixedClock
from gateway.shifts.config import CalendarConfig
from gateway.errors import InputError
from gateway.spotcheck.plan import draw, most_at_once, windows_for
from storage.db import Database, open_database
from storage.spotcheck import RecordLocked, SpotCheck, SpotPlan
from tests.conftest import ROOT

SHANGHAI = __import__("zoneinfo").ZoneInfo("Asia/Shanghai")
FIRST, LAST = date(2026, 9, 30), date(2026, 10, 10)
BEFORE = datetime(2026, 9, 20, 2, 0, tzinfo=UTC)  # when the office draws the plan


def _windows() -> tuple:  # type: ignore[type-arg]
    return windows_for(FIRST, LAST, CalendarConfig(), SHANGHAI)


def test_windows_are_every_night_and_the_holidays_day_shifts_but_not_the_makeup_saturday() -> None:
    windows = _windows()
    nights = [w for w in windows if "夜班" in w.label]
    days = [w for w in windows if "白班" in w.label]
    assert [w.start.astimezone(SHANGHAI).date() for w in nights] == [FIRST + timedelta(days=i) for i in range(11)]
    assert all(w.start.astimezone(SHANGHAI).hour == 19 and w.end.astimezone(SHANGHAI).hour == 8 for w in nights)
    assert [w.start.astimezone(SHANGHAI).date() for w in days] == [date(2026, 10, d) for d in range(1, 8)]
    assert all(w.start.astimezone(SHANGHAI).hour == 8 and w.end.astimezone(SHANGHAI).hour == 19 for w in days)
    assert days[0].label == "2026-10-01 白班 国庆节"
    saturday = next(w for w in nights if w.start.astimezone(SHANGHAI).date() == date(2026, 10, 10))
    assert saturday.label == "2026-10-10 夜班 调休上班（国庆节）", "a 调休 Saturday is worked: only its night"


def test_the_draw_is_seeded_inside_the_windows_and_never_too_many_at_once() -> None:
    windows = _windows()
    params = {"checks_per_unit": 3, "max_concurrent": 1, "slot_seconds": 120.0}
    first = draw(range(1, 41), windows, seed=20261001, **params)
    assert first == draw(list(reversed(range(1, 41))), windows, seed=20261001, **params), "order of units is irrelevant"
    assert first != draw(range(1, 41), windows, seed=20261002, **params)
    assert len(first) == 120 and sorted(d.unit_id for d in first) == sorted(list(range(1, 41)) * 3)
    for item in first:
        window = next(w for w in windows if w.start <= item.at < w.end)
        assert item.at + timedelta(seconds=120) <= window.end, "a check does not run past its shift"
        assert item.at.microsecond == 0
    assert most_at_once([d.at for d in first], 120.0) == 1
    two = draw(range(1, 41), windows, seed=5, checks_per_unit=3, max_concurrent=2, slot_seconds=120.0)
    assert most_at_once([d.at for d in two], 120.0) <= 2


def test_a_plan_never_holds_a_time_already_past(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    units = tmp_path / "units.csv"
    units.write_text("单位名称,值班电话\n武汉市司法局,02785550001\n", encoding="utf-8")
    midway = datetime(2026, 10, 5, 4, 0, tzinfo=UTC)  # 12:00 on 5 October
    _env(tmp_path, monkeypatch, midway)
    assert main(["spotcheck", "import", str(units)]) == 0
    assert main(["spotcheck", "plan", "--from", "2026-10-01", "--to", "2026-10-07", "--checks", "5"]) == 0
    db = Database(f"sqlite:///{tmp_path / 'dutygw.sqlite'}")
    with db.session() as session:
        times = [c.drawn_at for c in session.scalars(select(SpotCheck))]
    db.dispose()
    assert len(times) == 5 and min(times) >= midway
    _env(tmp_path, monkeypatch, datetime(2026, 10, 9, tzinfo=UTC))
    assert main(["spotcheck", "plan", "--from", "2026-10-01", "--to", "2026-10-07"]) == 4
    assert "no time to draw" in caplog.text


def test_a_plan_too_full_for_its_windows_is_refused() -> None:
    (night,) = windows_for(date(2026, 10, 1), date(2026, 10, 1), CalendarConfig(), SHANGHAI, rest_days=False)
    with pytest.raises(InputError, match="too full"):
        draw(range(1, 500), [night], checks_per_unit=1, seed=1, max_concurrent=1, slot_seconds=120.0)


def test_plan_stored_from_the_cli_is_auditable_and_its_draw_cannot_be_rewritten(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _env(tmp_path, monkeypatch)
    units = tmp_path / "units.csv"
    units.write_text("单位名称,分组,值班电话,联系人\n武汉市司法局,市州司法局,027-85550001,张科长\n"
                     "省监狱管理局,厅直属单位,02788880004,赵处长\n", encoding="utf-8")
    assert main(["spotcheck", "import", str(units)]) == 0
    assert main(["spotcheck", "plan", "--from", "2026-09-30", "--to", "2026-10-10", "--title", "2026年国庆节期间",
                 "--checks", "4", "--seed", "1001"]) == 0
    out = capsys.readouterr().out
    assert "抽查计划 1：2026年国庆节期间，2 个单位，每单位 4 次，共 8 次；随机种子 1001" in out
    assert "2026-10-10 夜班 调休上班（国庆节）" in out and "2026-10-10 白班" not in out
    assert main(["spotcheck", "plan", "--verify", "1"]) == 0
    assert "一致" in capsys.readouterr().out
    db = open_database(f"sqlite:///{tmp_path / 'dutygw.sqlite'}")
    try:
        with db.session() as session:
            plan = session.get_one(SpotPlan, 1)
            assert (plan.seed, plan.checks_per_unit, len(plan.checks), len(plan.windows)) == (1001, 4, 8, 18)
            shown = [line.split()[1:3] for line in out.splitlines() if line.startswith("  ")]
            stored = [f"{c.due_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M:%S}".split() for c in plan.checks]
            assert shown == stored
        with pytest.raises(RecordLocked), db.session() as session:
            check = session.get_one(SpotCheck, 1)
            check.drawn_at = check.drawn_at + timedelta(hours=1)
    finally:
        db.dispose()


def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, now: datetime = BEFORE) -> None:
    """The example configuration on a scratch data folder; the commands' clock set to ``now``."""
    monkeypatch.setattr("gateway.spotcheck.commands.SystemClock", lambda: FixedClock(now))
    monkeypatch.setenv("DUTYGW_CONFIG", str(ROOT / "examples" / "dutygw.toml"))
    monkeypatch.setenv("DUTYGW_PATHS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DUTYGW_DATABASE_URL", raising=False)




@pytest.mark.parametrize(("variable", "value", "message"), [
    ("DUTYGW_SPOTCHECK_MAX_CONCURRENT", "0", "spotcheck.max_concurrent must be at least 1"),
    ("DUTYGW_SPOTCHECK_KEY", "12", "spotcheck.key must be one telephone key"),
    ("DUTYGW_SPOTCHECK_SLOT_SECONDS", "10", "slot_seconds must be at least ring_limit_seconds"),
    ("DUTYGW_SPOTCHECK_RING_LIMIT", "30", "unknown key spotcheck.ring_limit"),
])
def test_a_wrong_spotcheck_setting_names_its_key(variable: str, value: str, message: str) -> None:
    from gateway.config import load_config
    from gateway.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        load_config(ROOT / "examples" / "dutygw.toml", env={variable: value})
