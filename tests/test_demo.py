"""``dutygw demo``: the newcomer's first minute really plays a night through the daemon,
that night is one coherent story a duty room would recognise, and the console is left
running on it (with ``--console``, or on a terminal) until Ctrl-C.

One demo run (a subprocess with ``--console``) serves every test here, in file order: the
night and its report, then a real Chromium on the console, then Ctrl-C.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.cli import main
from gateway.config import load_config
from gateway.config import WebConfig
from gateway.demo_console import preferred_port, wanted
from gateway.report.query import shift_figures
from storage.calls import Call, ListenerGap
from storage.db import open_database
from storage.faxes import Receipt
from storage.paging import Escalation
from storage.reports import ReportRun
from tests.console_harness import SHOTS, dutygw, start_browser, wait_for

BANNER = re.compile(r"值班台（网页控制台）已在本次演示的数据库上运行：(http://127\.0\.0\.1:\d+)/")
ACCOUNT = re.compile(r"用户名 (\S+)  密码 (\S+)（带班领导")
NIGHT_SECONDS = 900.0
"""Generous: the night plays in about a minute, longer on two busy cores."""


@dataclass
class DemoRun:
    folder: Path
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    @property
    def printed(self) -> str:
        return "".join(self.lines)

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    folder = tmp_path_factory.mktemp("demo")
    run = DemoRun(folder, dutygw("demo", "--out", str(folder), "--console"))
    reader = threading.Thread(target=run.read, daemon=True)
    reader.start()
    try:
        wait_for(lambda: ACCOUNT.search(run.printed) or run.process.poll() is not None, NIGHT_SECONDS,
                 "the demo's console and account")
        assert run.process.poll() is None, run.printed
        yield run
    finally:
        if run.process.poll() is None:
            run.process.kill()
        run.process.wait(30)
        wait_for(lambda: not reader.is_alive(), 30, "the demo's output read to its end")
        assert run.process.stdout is not None
        run.process.stdout.close()


def test_the_console_stays_only_when_asked_or_on_a_terminal() -> None:
    controller, terminal = os.openpty()
    reader, writer = os.pipe()
    with open(terminal, "w") as tty, open(writer, "w") as pipe:  # noqa: PTH123 (file descriptors)
        assert wanted(None, tty) and not wanted(None, pipe)  # CI and scripts have no terminal
        assert not wanted(False, tty) and wanted(True, pipe)
    os.close(controller)
    os.close(reader)


def test_the_console_moves_to_a_free_port_when_8080_is_taken() -> None:
    with socket.socket() as holder:
        try:
            holder.bind(("127.0.0.1", WebConfig.port))
        except OSError:
            pass  # already taken by someone else: just as good for this test
        port = preferred_port()
        assert port != WebConfig.port
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # and it is really free


@pytest.mark.ocr
def test_demo_plays_a_night_and_writes_its_report(demo: DemoRun, capsys: pytest.CaptureFixture[str]) -> None:
    tmp_path, printed = demo.folder, demo.printed
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


@pytest.mark.ocr
def test_the_console_shows_the_night_to_the_printed_account(demo: DemoRun) -> None:
    base = BANNER.search(demo.printed)
    account = ACCOUNT.search(demo.printed)
    assert base and account, demo.printed
    name, password = account.groups()
    assert name == "demo" and len(password) >= 8
    for page_name in ("值班台", "来电记录", "来文登记", "紧急呼叫", "交接班", "报告"):
        assert f"    {page_name}  {base.group(1)}/" in demo.printed  # what to look at, with its address
    for browser in start_browser(base.group(1)):
        context = browser.browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        page = context.new_page()
        page.goto(f"{browser.base}/login")
        page.fill("input[name=name]", name)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r".*/$"))

        page.goto(f"{browser.base}/calls")
        calls = page.inner_text("main")
        for caller in ("13800001111", "13911112222", "号码隐藏"):  # answered, abandoned, withheld
            assert caller in calls, calls
        browser.shot(page, "demo-calls")
        page.goto(f"{browser.base}/faxes")
        faxes = page.inner_text("main")
        assert "传真〔2026〕0001号" in faxes and "传真〔2026〕0002号" in faxes, faxes
        browser.shot(page, "demo-faxes")
        page.goto(f"{browser.base}/pages")
        assert "已确认（按1）" in page.inner_text("main")  # the director pressed 1, in the one vocabulary
        context.close()
    assert (SHOTS / "demo-calls.png").stat().st_size > 0


@pytest.mark.ocr
def test_ctrl_c_ends_the_demo_console_cleanly(demo: DemoRun) -> None:
    demo.process.send_signal(signal.SIGINT)
    assert demo.process.wait(60) == 0, demo.printed
    wait_for(lambda: "值班台已停止" in demo.printed, 10, "the goodbye line")
