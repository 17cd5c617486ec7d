"""Transfers and pickups in the shift report and the XLSX call log, from the real
deployment-pattern captures recorded into a real database, with the roster naming the
leader on duty (8010)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from openpyxl import load_workbook

from gateway import terms
from gateway.calls.parties import handled_text
from gateway.calls.recorder import CallRecorder
from gateway.config import load_config
from gateway.shifts.roster import parse_roster, store_roster
from gateway.report.make import CALLS_XLSX, write_report
from gateway.report.query import shift_figures
from storage.db import open_database
from tests.test_tracker_patterns import DUTY, TRUTHS, track_pattern

SHIFT = "2026-12-01/night"  # the captures rang at 01:54–01:57 Beijing time on 2 December


def test_report_and_xlsx_show_who_the_call_was_handed_to(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'calls.sqlite'}"
    path = tmp_path / "dutygw.toml"
    path.write_text(f'[duty]\nnumbers = ["02787654321"]\nextensions = ["8001", "8002", "8003"]\n'
                    f'[database]\nurl = "{url}"\n[paths]\ndata_dir = "{tmp_path}"\n', encoding="utf-8")
    config = load_config(path, env={})
    db = open_database(url)
    try:
        recorder = CallRecorder(db, DUTY)
        for name in TRUTHS:
            recorder.apply(track_pattern(name))
        roster = "date,shift,leader,leader_phone\n2026-12-01,night,刘洋,8010\n".encode()
        with db.session() as session:
            store_roster(session, parse_roster(roster, "r.csv", config.calendar), datetime.now(UTC))
        files = write_report(shift_figures(db, config, SHIFT), config, tmp_path / "report")
    finally:
        db.dispose()
    transfers = [line for line in files.text.splitlines() if "转接/代接" in line]
    assert len(transfers) == 3, files.text
    assert sum("8001 接听后转 8010 带班领导" in line for line in transfers) == 2
    assert sum("8003 代接" in line for line in transfers) == 1
    sheet = load_workbook(files.path(CALLS_XLSX)).active
    cells = {str(cell.value) for row in sheet.iter_rows() for cell in row if cell.value is not None}
    assert {"8001 接听后转 8010 带班领导", "8003 代接", "8002", "8001"} <= cells


def test_handled_text_wording() -> None:
    roles = {"8010": "带班领导"}
    assert handled_text("8001", "8010", "8010", None, roles) == "8001 接听后转 8010 带班领导"
    assert handled_text("8003", "8003", None, "8003", roles) == "8003 代接"
    assert handled_text("8003", "8010", "8010", "8003", roles) == "8003 代接后转 8010 带班领导"
    assert handled_text("8002", "8002", None, None, roles) == "8002"
    assert handled_text("pbx", None, None, None) == terms.AUTO_ANSWERED == "传真机自动应答"
    assert handled_text(None, None, None, None) == ""


def test_the_console_says_who_answered_as_the_report_does() -> None:
    """The console's 接听人 is the report's wording: a pickup or a transfer in words, never ``pbx``."""
    from types import SimpleNamespace

    from gateway.web.app import _handled

    def call(answered_by: str | None, final: str | None = None, to: str | None = None,
             picked: str | None = None) -> SimpleNamespace:
        return SimpleNamespace(answered_by=answered_by, final_party=final, transferred_to=to, picked_up_by=picked)

    assert _handled(call("pbx")) == terms.AUTO_ANSWERED
    assert _handled(call("8001", "8010", "8010")) == "8001 接听后转 8010"
    assert _handled(call("8003", "8003", None, "8003")) == "8003 代接"
    assert _handled(call(None)) == ""
