"""``dutygw demo``: the newcomer's first minute really plays a night through the daemon."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.cli import main
from storage.calls import Call
from storage.db import open_database
from storage.faxes import Receipt
from storage.paging import Escalation


@pytest.mark.ocr
def test_demo_plays_a_night_and_writes_its_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    report = tmp_path / "report"
    assert str(report / "report.pdf") in printed

    db = open_database(f"sqlite:///{tmp_path / 'var' / 'dutygw.sqlite'}")
    with db.session() as session:
        outcomes = sorted(session.scalars(select(Call.outcome)))
        receipts = session.scalars(select(Receipt).order_by(Receipt.seq)).all()
        escalation = session.scalars(select(Escalation)).one()
        attempts = [(a.number, a.result) for a in escalation.attempts]
    db.dispose()
    assert outcomes == sorted(["answered", "answered", "answered", "answered", "missed_abandoned",
                               "missed_no_answer", "missed_busy", "fax"])
    assert [r.is_urgent for r in receipts] == [True, False]
    assert escalation.state == "acknowledged" and escalation.deadline_met
    assert attempts == [("13900000001", "no_answer"), ("13900000002", "acknowledged")]

    text = subprocess.run(["pdftotext", "-layout", str(report / "report.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout
    for heading in ("来电", "传真", "交接"):
        assert heading in text
    assert "13911112222" in text  # the abandoned caller, called back
