"""``dutygw report``: remake a past shift's report, or print its figures as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway import cli
from gateway.config import load_config
from storage.db import open_database
from storage.reports import ReportRun
from tests.report_night import NIGHT, fill_night

CONFIG = """
[duty]
numbers = ["02787654321"]
extensions = ["8001", "8002"]
fax_numbers = ["02787654329"]

[paths]
data_dir = "{data_dir}"

[mail]
report_recipients = ["leaders@duty.local"]
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "dutygw.toml"
    path.write_text(CONFIG.format(data_dir=tmp_path / "var"), encoding="utf-8")
    config = load_config(path)
    db = open_database(config.database_url)
    fill_night(db, config)
    db.dispose()
    return path


def test_json_prints_the_figures(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--config", str(config_file), "report", "--shift", NIGHT, "--format", "json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["shift"] == NIGHT and figures["start"] == "2026-11-21T19:00:00+08:00"
    assert (figures["calls_in"], figures["answered"], figures["rule_met"], figures["missed"]) == (10, 5, 4, 4)
    assert (figures["faxes"], figures["urgent_faxes"], figures["pages"], figures["deadline_met"]) == (3, 2, 2, 1)


def test_out_writes_the_files_there_only(config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "copy"
    assert cli.main(["--config", str(config_file), "report", "--shift", "2026-11-21/day", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    assert {Path(p).name for p in printed} >= {"report.html", "report.pdf", "calls.xlsx", "hourly.png", "rings.png"}
    assert all(Path(p).parent == out and Path(p).stat().st_size > 0 for p in printed)
    db = open_database(load_config(config_file).database_url)
    with db.session() as s:
        assert s.scalars(select(ReportRun)).all() == []
    db.dispose()


def test_remaking_the_shift_folder_remembers_the_run(config_file: Path, tmp_path: Path) -> None:
    assert cli.main(["--config", str(config_file), "report", "--shift", NIGHT]) == 0
    assert (tmp_path / "var" / "reports" / "2026-11-21" / "night" / "report.pdf").is_file()
    db = open_database(load_config(config_file).database_url)
    with db.session() as s:
        assert s.scalars(select(ReportRun.shift_key)).all() == [NIGHT]
    db.dispose()


def test_a_shift_that_does_not_exist_is_an_input_error(config_file: Path) -> None:
    assert cli.main(["--config", str(config_file), "report", "--shift", "2026-11-21/evening"]) == 4
