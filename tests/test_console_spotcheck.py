"""值班抽查 in the console, in a real Chromium, against the real daemon whose one AMI connection
goes to the AMI peer that replays the recorded PBX's Originates (``page_*.ami``).

The secretariat imports the unit list (a bad file is refused whole, its lines named), runs
"check now" for a group, the running daemon places the calls, and the page shows each try;
a reviewer's note is the only change a check takes; the 情况通报 downloads as PDF and XLSX.
Screenshots at 1366×768 go to $TEST_DUTYGW_SHOTS (default /tmp/dutygw-console-shots).
"""

from __future__ import annotations

import asyncio
import io
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from gateway.ami.peer import ANSWER_ACK, ANSWER_NO_KEY, BUSY, NO_ANSWER, UNREACHABLE, AmiPeer
from gateway.clock import SystemClock
from gateway.config import (
    AmiConfig,
    Config,
    DutyConfig,
    MailConfig,
    PagingConfig,
    PathsConfig,
    SmtpConfig,
    SpotCheckConfig,
    WebConfig,
)
from gateway.daemon import Daemon
from gateway.spotcheck.commands import make_plan
from gateway.spotcheck.figures import labels
from gateway.web.accounts import add_user
from storage.console import AuditEntry
from storage.db import Database, open_database
from storage.spotcheck import SpotCheck, SpotNote, SpotPlan, SpotUnit
from tests.conftest import AMI_FIXTURES
from tests.console_harness import PASSWORD, Browser, free_port, start_browser, wait_for

USERS = (("chenjing", "secretariat", "陈静"), ("wangfang", "officer", "王芳"))
GOOD_CSV = ("单位名称,分组,值班电话,联系人\n"
            "武汉市司法局,市州司法局,027-8555-0001,张科长\n"
            "黄石市司法局,市州司法局,0714-6660002,李科长\n"
            "襄阳市司法局,市州司法局,137 0000 1111,王科员\n"
            "省监狱管理局,厅直属单位,02788880004,赵处长\n"
            "省戒毒管理局,厅直属单位,+86 139 0000 2222,钱处长\n")
BAD_CSV = ("单位名称,分组,值班电话,联系人\n"
           "武汉市司法局,市州司法局,027-8555-0001,张科长\n"
           "黄石市司法局,市州司法局,0714-666,李科长\n"
           ",市州司法局,13700001111,王科员\n"
           "武汉市司法局,厅直属单位,02788880004,赵处长\n")
PHONES = {"02785550001": ANSWER_ACK, "07146660002": BUSY, "13700001111": NO_ANSWER,
          "02788880004": ANSWER_NO_KEY, "13900002222": UNREACHABLE}


@dataclass
class SpotRoom:
    web: str
    config: Config
    db: Database
    peer: AmiPeer


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpotRoom]:
    folder = tmp_path_factory.mktemp("console-spot")
    web = free_port()
    started = threading.Event()
    failed: list[BaseException] = []
    held: dict[str, Any] = {}

    async def serve() -> None:
        peer = AmiPeer.from_fixtures(AMI_FIXTURES, behaviours=PHONES)
        config = Config(
            duty=DutyConfig(numbers=["02787654321"], extensions=["8001", "8002"], room_name="省司法厅值班室"),
            ami=AmiConfig(port=await peer.start(), secret="x", reconnect_min_seconds=0.05),
            paths=PathsConfig(data_dir=folder), smtp=SmtpConfig(port=free_port()),
            mail=MailConfig(relay_port=free_port()),
            paging=PagingConfig(agi_port=free_port(), sounds_dir=folder / "sounds"),
            web=WebConfig(port=web, poll_seconds=0.2),
            spotcheck=SpotCheckConfig(busy_tries=2, retry_gap_seconds=1.0, auto_report=False))
        db = open_database(config.database_url)
        with db.session() as session:
            for name, role, display in USERS:
                add_user(session, name, role, PASSWORD, SystemClock().now(), display_name=display, actor="test")
        daemon = Daemon(config, db=db)
        stop = asyncio.Event()
        held.update(loop=asyncio.get_running_loop(), stop=stop, room=SpotRoom(f"http://127.0.0.1:{web}", config,
                                                                               db, peer))
        task = asyncio.create_task(daemon.run(stop))
        try:
            await asyncio.wait_for(daemon.ready.wait(), 60)
            started.set()
            await task
        finally:
            await peer.stop()
            db.dispose()

    def thread_main() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # reported by the fixture below
            failed.append(exc)
            started.set()

    thread = threading.Thread(target=thread_main, name="dutygw-daemon", daemon=True)
    thread.start()
    assert started.wait(90), "the daemon did not start"
    assert not failed, failed
    try:
        yield held["room"]
    finally:
        held["loop"].call_soon_threadsafe(held["stop"].set)
        thread.join(60)
        assert not thread.is_alive(), "the daemon did not stop"
        assert not failed, failed


@pytest.fixture(scope="module")
def browser(room: SpotRoom) -> Iterator[Browser]:
    yield from start_browser(room.web)


def _upload(page: Any, tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> None:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    page.set_input_files("#import-form input[type=file]", str(path))
    page.click("#import-units")
    page.wait_for_load_state()


def _units(room: SpotRoom) -> list[SpotUnit]:
    with room.db.read() as session:
        return list(session.scalars(select(SpotUnit).where(SpotUnit.active.is_(True)).order_by(SpotUnit.id)))


def _import_if_needed(room: SpotRoom, browser: Browser, tmp_path: Path) -> None:
    if len(_units(room)) < 5:
        page = browser.signed_in("chenjing")
        page.goto(f"{room.web}/spotcheck")
        _upload(page, tmp_path, "units.csv", GOOD_CSV)
        page.context.close()


def test_a_bad_unit_list_is_refused_whole_with_its_lines_then_a_good_one_is_listed(
        room: SpotRoom, browser: Browser, tmp_path: Path) -> None:
    page = browser.signed_in("chenjing")
    page.goto(f"{room.web}/spotcheck")
    _upload(page, tmp_path, "bad-units.csv", BAD_CSV)
    error = page.inner_text("#import-error")
    assert "未导入任何单位" in error
    for line in ("第3行", "第4行", "第5行"):
        assert line in error, error
    assert "0714-666" in error and "缺少单位名称" in error and "与第2行重复" in error
    assert _units(room) == [], "a bad list left something half-imported"
    browser.shot(page, "spotcheck-import-error")
    _upload(page, tmp_path, "units.csv", GOOD_CSV, encoding="gb18030")  # as Excel saves it
    assert "已导入 5 个单位" in page.inner_text("#notice")
    shown = page.inner_text("#units")
    for unit in _units(room):
        assert unit.name in shown and unit.number in shown
    assert [u.number for u in _units(room)] == list(PHONES)  # dialable digits, as the CLI import stores them
    spot = room.config.spotcheck
    assert f"占线间隔 {spot.retry_gap_seconds:g} 秒重拨，最多拨打 {spot.busy_tries} 次" in page.inner_text("#rules")
    with room.db.read() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "spotcheck.import")).one()
        assert (entry.actor, entry.new["units"]) == ("chenjing", 5)
    page.context.close()


def _checks(room: SpotRoom, plan_id: int) -> list[SpotCheck]:
    from sqlalchemy.orm import selectinload

    with room.db.read() as session:
        return list(session.scalars(select(SpotCheck).where(SpotCheck.plan_id == plan_id)
                                    .options(selectinload(SpotCheck.attempts)).order_by(SpotCheck.id)))


def _check_now(room: SpotRoom, browser: Browser, target: str) -> tuple[Any, int]:
    page = browser.signed_in("chenjing")
    page.goto(f"{room.web}/spotcheck")
    page.select_option("select[name=target]", target)
    page.click("#check-now")
    page.wait_for_url("**/spotcheck?plan=*")
    plan_id = int(page.url.split("plan=")[1].split("&")[0])
    return page, plan_id


def test_check_now_for_a_group_is_placed_by_the_daemon_and_each_try_is_shown(
        room: SpotRoom, browser: Browser, tmp_path: Path) -> None:
    _import_if_needed(room, browser, tmp_path)
    page, plan_id = _check_now(room, browser, "group:市州司法局")
    assert "已安排立即抽查 3 次" in page.inner_text("#notice")
    page.evaluate("window.__sameDocument = true")
    checks = wait_for(lambda: (c := _checks(room, plan_id)) and all(x.state == "done" for x in c) and c,
                      120, "the daemon to place and finish the group's checks")
    # the list follows the daemon live (server-sent events), no reload
    page.wait_for_function("""() => document.querySelectorAll('tr.check-row').length === 3 &&
        document.querySelectorAll('tr.check-row[data-category=planned], tr.check-row[data-category=calling]').length === 0
        && document.querySelectorAll('div.try').length === 4""", timeout=30_000)
    assert page.evaluate("window.__sameDocument") is True
    assert "3/3" in page.inner_text(f"#plans tr[data-plan='{plan_id}']")
    assert sorted(o.number for o in room.peer.originates if o.number in {c.number for c in checks}) == sorted(
        ["02785550001", "07146660002", "07146660002", "13700001111"]), "busy is tried again, once"
    name = labels(room.config.duty.answer_within_rings)
    tries = {"answered": "接听并按键", "busy": "占线", "no_answer": "无人接听"}
    for check in checks:
        row = page.locator(f"tr.check-row[data-check='{check.id}']")
        text = row.inner_text()
        assert check.unit_name in text and check.number in text
        category = "within" if check.outcome == "answered" and check.rule_met else \
            "late" if check.outcome == "answered" else check.outcome
        assert name[str(category)] in text, text
        assert row.locator("div.try").count() == len(check.attempts)
        for attempt, shown in zip(check.attempts, row.locator("div.try").all_inner_texts(), strict=True):
            assert f"第{attempt.try_no}次" in shown and tries[str(attempt.outcome)] in shown
            assert attempt.sent_at.astimezone(room.config.zone).strftime("%H:%M:%S") in shown
        if check.rings is not None:
            assert f"{check.rings}声" in text
    answered = next(c for c in checks if c.outcome == "answered")
    assert answered.digit == "1"
    browser.shot(page, "spotcheck-checks")
    busy = next(c for c in checks if c.outcome == "busy")
    page.goto(f"{room.web}/spotcheck/checks/{busy.id}")
    rows = page.locator("#tries tr.try-row")
    assert rows.count() == 2 and all("占线" in t for t in rows.all_inner_texts())
    for attempt, shown in zip(busy.attempts, rows.all_inner_texts(), strict=True):
        assert attempt.sent_at.astimezone(room.config.zone).strftime("%m-%d %H:%M:%S") in shown
    browser.shot(page, "spotcheck-check-busy")
    with room.db.read() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "spotcheck.now")).one()
        assert entry.actor == "chenjing" and sorted(entry.new["checks"]) == [c.id for c in checks]
    page.context.close()


def test_a_reviewer_note_is_the_only_change_audited_and_needs_its_csrf_token(
        room: SpotRoom, browser: Browser, tmp_path: Path) -> None:
    _import_if_needed(room, browser, tmp_path)
    page, plan_id = _check_now(room, browser, "unit:省监狱管理局")
    (check,) = wait_for(lambda: (c := _checks(room, plan_id)) and c[0].state == "done" and c, 120,
                        "the daemon to finish the check")
    assert check.outcome == "no_key"
    page.goto(f"{room.web}/spotcheck/checks/{check.id}")
    assert "接听未按键" in page.inner_text("#check-result")
    for form in ({"text": "伪造"}, {"text": "伪造", "csrf_token": "forged"}):
        answer = page.request.post(f"{room.web}/spotcheck/checks/{check.id}/note", form=form, max_redirects=0)
        assert answer.status == 403 and "安全令牌" in answer.text()
    page.fill("textarea[name=text]", "接听者未按键，经电话核实为值班员误操作")
    page.click("#add-note")
    page.wait_for_selector("#notice")
    assert "陈静：接听者未按键，经电话核实为值班员误操作" in page.inner_text("#notes")
    browser.shot(page, "spotcheck-note")
    with room.db.read() as session:
        notes = list(session.scalars(select(SpotNote).where(SpotNote.check_id == check.id)))
        assert [(n.reviewer, n.text) for n in notes] == [("陈静", "接听者未按键，经电话核实为值班员误操作")]
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "spotcheck.note")).one()
        assert (entry.actor, entry.target) == ("chenjing", f"spot_check:{check.id}")
        assert session.get_one(SpotCheck, check.id).outcome == "no_key"  # the record itself is unchanged
    officer = browser.signed_in("wangfang")
    officer.goto(f"{room.web}/spotcheck/checks/{check.id}")
    assert "接听者未按键" in officer.inner_text("#notes") and officer.locator("#add-note").count() == 0
    csrf = officer.evaluate("document.querySelector('input[name=csrf_token]').value")
    answer = officer.request.post(f"{room.web}/spotcheck/checks/{check.id}/note",
                                  form={"text": "值班员的意见", "csrf_token": csrf}, max_redirects=0)
    assert answer.status == 403 and "无权" in answer.text()
    officer.goto(f"{room.web}/spotcheck")
    assert officer.locator("#check-now").count() == 0 and officer.locator("#import-units").count() == 0
    browser.shot(officer, "spotcheck-officer")
    with room.db.read() as session:
        assert session.scalar(select(func.count()).select_from(SpotNote).where(SpotNote.check_id == check.id)) == 1
    page.context.close()
    officer.context.close()


def test_a_plan_shows_its_seed_and_its_report_downloads_as_pdf_and_xlsx(
        room: SpotRoom, browser: Browser, tmp_path: Path) -> None:
    _import_if_needed(room, browser, tmp_path)
    today = SystemClock().now().astimezone(room.config.zone).date()
    make_plan(room.db, room.config, today + timedelta(days=30), today + timedelta(days=32), title="测试期间",
              seed=20261001, now=SystemClock().now())
    page, plan_id = _check_now(room, browser, "group:厅直属单位")
    checks = wait_for(lambda: (c := _checks(room, plan_id)) and all(x.state == "done" for x in c) and c, 120,
                      "the daemon to finish the group's checks")
    with room.db.read() as session:
        seeded = session.scalars(select(SpotPlan).where(SpotPlan.seed == 20261001)).one()
    page.goto(f"{room.web}/spotcheck")
    assert "20261001" in page.inner_text(f"#plans tr[data-plan='{seeded.id}']")
    browser.shot(page, "spotcheck-plans")
    with page.expect_download() as pdf_download:
        page.click(f"#plans tr[data-plan='{plan_id}'] a.report-pdf")
    assert pdf_download.value.suggested_filename == f"值班抽查情况通报-{plan_id}.pdf"
    pdf = tmp_path / "report.pdf"
    pdf_download.value.save_as(pdf)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "值班抽查情况的通报" in text and "一、总体情况" in text
    assert f"共抽查2个单位{len(checks)}次" in text.replace(" ", "").replace("\n", "")
    answer = page.request.get(f"{room.web}/spotcheck/plans/{plan_id}/report.xlsx")
    assert answer.status == 200
    book = load_workbook(io.BytesIO(answer.body()))
    detail = [row for row in book["抽查明细"].iter_rows(min_row=2, values_only=True)]
    assert sorted((r[0], r[3]) for r in detail) == sorted((c.id, c.unit_name) for c in checks)
    results = {r[0]: r[8] for r in detail}
    name = labels(room.config.duty.answer_within_rings)
    assert results == {c.id: name[str(c.outcome)] for c in checks}  # no_key and unreachable, as stored
    page.context.close()


def test_a_check_with_a_recorded_name_shows_the_recording_with_the_try(room: SpotRoom, browser: Browser,
                                                                       tmp_path: Path) -> None:
    """Stored as the runner stores a result whose UserEvent named the recording (the AMI peer
    records none): the console shows the file beside the try and the check."""
    from gateway.spotcheck import records
    from gateway.spotcheck.check import CallResult, Outcome
    from gateway.spotcheck.plan import Drawn

    _import_if_needed(room, browser, tmp_path)
    now = SystemClock().now()
    wav = "/var/spool/asterisk/dutygw/spotcheck/spot-test-1.wav"
    with room.db.session() as session:
        unit = session.scalars(select(SpotUnit).where(SpotUnit.name == "武汉市司法局")).one()
        plan = records.create_plan(session, "即时抽查", "now", now.date(), now.date(), (), [unit], [Drawn(unit.id, now)],
                                   checks_per_unit=1, seed=0, spot=room.config.spotcheck, now=now)
        (check,) = plan.checks
        records.start_attempt(session, records.Due(check.id, unit.number, 1), "spot-test-recording", now)
        session.flush()
        records.record_result(session, CallResult(
            "spot-test-recording", unit.number, Outcome.ANSWERED, now, now + timedelta(seconds=1),
            now + timedelta(seconds=9), now + timedelta(seconds=20), 8.0, 2, True, 16, "1", wav, "pbx", "test"),
            room.config.spotcheck, now + timedelta(seconds=20))
        check_id = check.id
    page = browser.signed_in("wangfang")
    page.goto(f"{room.web}/spotcheck/checks/{check_id}")
    assert page.inner_text("#recording") == wav
    row = page.inner_text("#tries tr.try-row")
    assert wav in row and "接听并按键" in row and "2声" in row and "8.0秒" in row
    page.goto(f"{room.web}/spotcheck?plan={plan.id}")
    assert wav in page.inner_text(f"tr.check-row[data-check='{check_id}']")
    page.context.close()
