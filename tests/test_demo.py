"""``dutygw demo``: the newcomer's first minute really plays a night through the daemon,
and that night is one coherent story a duty room would recognise."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.cli import main
from gateway.config import load_config
from gateway.report.query import shift_figures
from storage.calls import Call, ListenerGap
from storage.db import open_database
from storage.faxes import Receipt
from storage.paging import Escalation
from storage.reports import ReportRun


@pytest.mark.ocr
def test_demo_plays_a_night_and_writes_its_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    report = tmp_path / "report"
    assert str(report / "report.pdf") in printed and str(report / "calls.xlsx") in printed
    assert "mail.html" not in printed  # its charts only work inside the e-mail

    config = load_config(tmp_path / "dutygw.toml", env={})
    db = open_database(config.database_url)
    with db.session() as session:
        outcomes = sorted(session.scalars(select(Call.outcome)))
        receipts = session.scalars(select(Receipt).order_by(Receipt.seq)).all()
        escalation = session.scalars(select(Escalation)).one()
        attempts = [(a.number, a.result, a.sent_at, a.ended_at or a.answered_at) for a in escalation.attempts]
        gaps = session.scalars(select(ListenerGap)).all()
        runs = session.scalars(select(ReportRun.shift_key)).all()
        last_call = max(session.scalars(select(Call.ended_at)))
    figures = shift_figures(db, config, "2026-11-21/night")
    db.dispose()
    assert outcomes == sorted(["answered", "answered", "answered", "answered", "missed_abandoned",
                               "missed_no_answer", "missed_busy", "fax"])
    assert [r.is_urgent for r in receipts] == [True, False]
    assert escalation.state == "acknowledged" and escalation.deadline_met
    assert [(number, result) for number, result, _, _ in attempts] == [
        ("13900000001", "no_answer"), ("13900000002", "acknowledged")]

    # one story: the calls, then the faxes, then the page about the urgent one, in that order
    assert gaps == [] and figures.gaps == ()  # one AMI connection all night: no 监听中断
    urgent = receipts[0]
    assert last_call < urgent.received_at <= escalation.opened_at < escalation.acknowledged_at
    (_, _, deputy_called, deputy_gave_up), (_, _, director_called, _) = attempts
    assert deputy_called < deputy_gave_up <= director_called < escalation.acknowledged_at
    assert (deputy_gave_up - deputy_called).total_seconds() >= 20  # the deputy's phone really rang
    assert figures.shift.leader == "王副主任"  # the roster names the shift's 带班领导
    assert runs == ["2026-11-21/night"]  # no report for a night the demo's gateway never watched

    # the banner says what the report says
    banner = re.search(r"来电 (\d+) 通（已接 (\d+)，未接 (\d+)，3声内接听 (\d+)），去电 (\d+) 通；"
                       r"收传真 (\d+) 份，其中紧急 (\d+) 份；监听中断 (\d+) 次", printed)
    assert banner, printed
    assert tuple(map(int, banner.groups())) == (
        figures.calls_in, figures.answered, figures.missed_calls, figures.rule_met, len(figures.outbound),
        len(figures.faxes), len(figures.urgent_faxes), len(figures.gaps))

    # progress as it went, in order: calls, fax pages read, the page placed, the report
    assert printed.find("识别传真 传真〔2026〕0001号") < printed.find("传真〔2026〕0001号 第 1/1 页已识别")
    steps = ["回放录制的来电", "来电 13800001111（张三）", "识别传真 传真〔2026〕0001号", "电话通知 带班领导 王副主任",
             "带班领导 王副主任：无人接听", "办公室主任 陈主任：已确认（按1）", "生成夜班报告", "演示完成"]
    positions = [printed.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), list(zip(steps, positions, strict=True))

    # and how to look at the data afterwards: the printed commands work
    commands = re.findall(r"^  dutygw -c (\S+) (.+)$", printed, re.MULTILINE)
    assert [c for _, c in commands][:3] == ["calls", "faxes", "fax show 1"]
    for config_path, command in commands[:3]:
        assert main(["-c", config_path, *command.split()]) == 0
    assert "传真〔2026〕0001号" in capsys.readouterr().out

    text = subprocess.run(["pdftotext", "-layout", str(report / "report.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout
    for heading in ("来电", "传真", "交接", "带班领导：王副主任"):
        assert heading in text
    assert "13911112222" in text  # the abandoned caller, called back
