"""The unit list's import (all bad lines named, nothing half-imported) and the check records
(never edited once finished; a reviewer's note is the only thing added)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.cli import main
from gateway.config import SpotCheckConfig
from gateway.errors import InputError
from gateway.spotcheck.check import CallResult, Outcome
from gateway.spotcheck.records import Due, add_note, record_result, start_attempt
from gateway.spotcheck.units import import_units, parse_units
from storage.db import Database
from storage.spotcheck import RecordLocked, SpotAttempt, SpotCheck, SpotNote, SpotUnit
from tests.spotcheck_rig import NIGHT, UNITS
from tests.test_spotcheck_plan import _env

GOOD = ("单位名称,分组,值班电话,联系人\n"
        "武汉市司法局,市州司法局,027-8555 0001,张科长\n"
        "襄阳市司法局,市州司法局,+86 137 0000 1111,王科员\n"
        "省监狱管理局,厅直属单位,(0278)8880004,赵处长\n")
BAD = ("单位名称,分组,值班电话,联系人\n"
       "武汉市司法局,市州司法局,02785550001,张科长\n"
       "黄石市司法局,市州司法局,,李科长\n"
       "\n"
       "襄阳市司法局,市州司法局,1370000111,王科员\n"
       "武汉市司法局,市州司法局,02785550009,重复\n"
       ",厅直属单位,02788880004,赵处长\n")


def test_units_import_normalises_numbers_and_reads_gb18030(tmp_path: Path, database: Database) -> None:
    path = tmp_path / "units.csv"
    path.write_bytes(GOOD.encode("gb18030"))
    with database.session() as session:
        assert import_units(session, path, NIGHT) == 3
    with database.session() as session:
        rows = {u.name: (u.group_name, u.number, u.contact, u.source) for u in session.scalars(select(SpotUnit))}
    assert rows == {
        "武汉市司法局": ("市州司法局", "02785550001", "张科长", f"{path}, line 2"),
        "襄阳市司法局": ("市州司法局", "13700001111", "王科员", f"{path}, line 3"),
        "省监狱管理局": ("厅直属单位", "02788880004", "赵处长", f"{path}, line 4"),
    }


def test_bad_rows_are_all_reported_with_line_numbers_and_nothing_is_imported(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError) as caught:
        parse_units(BAD.encode(), "units.csv")
    message = str(caught.value)
    assert "4 行有误，未导入任何单位" in message
    lines = ("第3行：黄石市司法局：缺少值班电话", "第5行：襄阳市司法局：值班电话 '1370000111' 不是有效的",
             "第6行：武汉市司法局 与第2行重复", "第7行：缺少单位名称")
    assert [message.index(line) for line in lines] == sorted(message.index(line) for line in lines)
    _env(tmp_path, monkeypatch)
    path = tmp_path / "units.csv"
    path.write_text(BAD, encoding="utf-8")
    assert main(["spotcheck", "import", str(path)]) == 4
    assert "第3行：黄石市司法局：缺少值班电话" in caplog.text
    assert main(["spotcheck", "list", "--units"]) == 0
    assert capsys.readouterr().out.strip() == "尚未导入单位"
    good = tmp_path / "good.csv"
    good.write_text(GOOD, encoding="utf-8")
    assert main(["spotcheck", "import", str(good)]) == 0
    capsys.readouterr()
    assert main(["spotcheck", "list", "--units"]) == 0
    before = capsys.readouterr().out
    assert main(["spotcheck", "import", str(path)]) == 4
    assert main(["spotcheck", "list", "--units"]) == 0
    assert capsys.readouterr().out == before, "a bad file changes nothing of the list already there"
    assert "已停用" not in before and len(before.strip().splitlines()) == 3


def test_a_header_without_the_number_column_is_refused() -> None:
    with pytest.raises(InputError, match="line 1: missing column"):
        parse_units("单位名称,分组\n武汉市司法局,市州司法局\n".encode(), "units.csv")


def _finished_check(database: Database) -> int:
    with database.session() as session:
        from gateway.spotcheck.plan import Drawn
        from gateway.spotcheck.records import create_plan
        from gateway.spotcheck.units import store_units

        store_units(session, UNITS[:1], "units.csv", NIGHT)
        unit = session.scalars(select(SpotUnit)).one()
        plan = create_plan(session, "测试", "now", NIGHT.date(), NIGHT.date(), (), [unit], [Drawn(unit.id, NIGHT)],
                           checks_per_unit=1, seed=0, spot=SpotCheckConfig(), now=NIGHT)
        check_id = plan.checks[0].id
        start_attempt(session, Due(check_id, unit.number, 1), "spot-1-1", NIGHT)
    result = CallResult("spot-1-1", unit.number, Outcome.NO_ANSWER, NIGHT, NIGHT + timedelta(seconds=1), None,
                        NIGHT + timedelta(seconds=31), 30.0, 7, False, 19, None, None, "pbx", "Hangup cause 19")
    with database.session() as session:
        record_result(session, result, SpotCheckConfig(), NIGHT + timedelta(seconds=31))
    return check_id


def test_a_finished_check_cannot_be_edited_or_deleted(any_database: Database) -> None:
    database = any_database
    check_id = _finished_check(database)
    with pytest.raises(RecordLocked), database.session() as session:
        session.get_one(SpotCheck, check_id).outcome = "answered"
    with pytest.raises(RecordLocked), database.session() as session:
        session.scalars(select(SpotAttempt)).one().rings = 2
    with pytest.raises(RecordLocked), database.session() as session:
        session.delete(session.get_one(SpotCheck, check_id))
    with database.session() as session:
        check = session.get_one(SpotCheck, check_id)
        assert (check.outcome, check.rings, check.state) == ("no_answer", 7, "done"), "nothing changed"
    with database.session() as session:
        add_note(session, check_id, "刘处长", "已电话核实，该单位值班员临时离岗", NIGHT + timedelta(hours=1))
    with pytest.raises(RecordLocked), database.session() as session:
        session.scalars(select(SpotNote)).one().text = "改写"
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(SpotNote)) == 1


def test_note_from_the_cli_is_shown_in_the_list(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _env(tmp_path, monkeypatch)
    db = Database(f"sqlite:///{tmp_path / 'dutygw.sqlite'}")
    db.migrate()
    check_id = _finished_check(db)
    db.dispose()
    assert main(["spotcheck", "note", str(check_id), "值班员称在接听另一部电话", "--by", "刘处长"]) == 0
    assert main(["spotcheck", "note", str(check_id), "", "--by", "刘处长"]) == 4
    capsys.readouterr()
    assert main(["spotcheck", "list"]) == 0
    table = capsys.readouterr().out
    assert "武汉市司法局  02785550001" in table and "无人接听" in table and "审核：刘处长 值班员称在接听另一部电话" in table
    assert main(["spotcheck", "list", "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["outcome"], row["rings"], row["rule_met"], row["notes"][0]["by"]) == ("no_answer", 7, False, "刘处长")
    assert row["ended_at"] == "2026-10-02T22:00:31+08:00"


