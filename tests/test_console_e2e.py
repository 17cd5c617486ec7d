"""The duty officers' console in a real Chromium, against the real daemon fed by
``dutygw replay`` (through a timing proxy) and, for one fax, by its SMTP intake.

Screenshots at 1366×768 go to $TEST_DUTYGW_SHOTS (default /tmp/dutygw-console-shots).
"""

from __future__ import annotations

import re
import signal
import smtplib
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from gateway.clock import UTC
from storage.calls import Call
from storage.console import AuditEntry, CallbackRequest, CallNote, HandoverSheet, ReceiptCorrection
from storage.db import Database, open_database
from storage.faxes import Receipt
from tests.conftest import FAX_FIXTURES
from tests.console_harness import (
    PASSWORD,
    Browser,
    DutyRoom,
    TimingProxy,
    console_answers,
    free_port,
    run_dutygw,
    start_browser,
    start_daemon_with_users,
    wait_for,
    write_config,
)
from tests.fax_mails import asterisk_mail


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DutyRoom]:
    folder = tmp_path_factory.mktemp("console")
    replay_port, smtp, web = free_port(), free_port(), free_port()
    proxy = TimingProxy(replay_port)
    proxy.start()
    config = write_config(folder, ami=proxy.port, smtp=smtp, web=web)
    daemon = start_daemon_with_users(config)
    base = f"http://127.0.0.1:{web}"
    try:
        wait_for(lambda: console_answers(base), 60, "the console to listen")
        yield DutyRoom(folder, config, base, smtp, replay_port, proxy, daemon)
    finally:
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=60)
        proxy.close()
        assert daemon.returncode == 0, output
        assert "duty-gateway stopped" in output


@pytest.fixture(scope="module")
def browser(room: DutyRoom) -> Iterator[Browser]:
    yield from start_browser(room.web)


@pytest.fixture
def db(room: DutyRoom) -> Iterator[Database]:
    database = open_database(room.database_url)
    yield database
    database.dispose()


def _call(db: Database, caller: str, outcome: str | None = None) -> Call | None:
    with db.session() as session:
        query = select(Call).where(Call.caller == caller).order_by(Call.id.desc())
        row = session.scalars(query).first()
        return row if row is not None and (outcome is None or row.outcome == outcome) else None


def test_a_replayed_call_rings_then_is_answered_live_within_a_second(room: DutyRoom, browser: Browser,
                                                                     db: Database) -> None:
    page = browser.signed_in("wangfang")
    page.wait_for_function("document.getElementById('live-state').textContent === '实时'")
    page.evaluate("""() => {
        window.__seen = {};
        const note = () => {
            document.querySelectorAll('.live-call[data-state=ringing]').forEach(() => { window.__seen.ringing ??= Date.now(); });
            document.querySelectorAll('.call-row[data-outcome=answered]').forEach(r => {
                if (r.textContent.includes('13800001111')) window.__seen.answered ??= Date.now(); });
            const rings = document.querySelector('.rings');
            if (rings) window.__seen.maxRing = Math.max(window.__seen.maxRing || 0, parseInt(rings.textContent.slice(1)));
        };
        new MutationObserver(note).observe(document.body, {subtree: true, childList: true, characterData: true});
    }""")
    started = time.time()
    # the PBX's clock is the gateway's (NTP), as in the duty room: the recording is moved to now
    now = datetime.now(UTC).isoformat(timespec="seconds")
    replay = room.replay("answered_r2.ami", speed=1.0, start_at=now)
    page.wait_for_function("window.__seen.ringing", timeout=30_000)
    browser.shot(page, "board-ringing")
    page.wait_for_function("window.__seen.answered", timeout=30_000)
    replay.communicate(timeout=60)
    seen = page.evaluate("window.__seen")
    rang = room.proxy.first_time(b"Event: DialBegin", started)
    answered = room.proxy.first_time(b"DialStatus: ANSWER", started)
    assert rang is not None and answered is not None
    assert 0 <= seen["ringing"] / 1000 - rang < 1.0, (seen, rang)
    assert 0 <= seen["answered"] / 1000 - answered < 1.0, (seen, answered)
    assert 2 <= seen["maxRing"] <= 3  # the count climbed while it rang (answered on ring 2)
    row = wait_for(lambda: _call(db, "13800001111", "answered"), what="the call in the database")
    assert row.rings == 2
    browser.shot(page, "board-answered")
    page.context.close()


def test_matter_of_a_missed_call_and_its_callback_reach_the_report(room: DutyRoom, browser: Browser,
                                                                   db: Database, tmp_path: Path) -> None:
    room.replay("missed_abandon.ami", start_at="2026-11-21T23:10:00").communicate(timeout=60)
    missed = wait_for(lambda: _call(db, "13911112222", "missed_abandoned"), what="the missed call")
    page = browser.signed_in("wangfang")
    page.goto(f"{room.web}/calls?missed=1")
    page.click(f"tr[data-call='{missed.id}'] a")
    page.fill("input[name=caller_name]", "周敏")
    page.fill("input[name=caller_unit]", "双河镇人民政府")
    page.fill("textarea[name=matter]", "报告双河镇山体滑坡，请求派员")
    page.fill("textarea[name=handling]", "已转告带班领导")
    page.click("#save-note")
    page.wait_for_selector("#notice")
    assert "已保存" in page.inner_text("#notice")
    # the callback: the officer's phone (8001) is rung by an Originate; the replay answers
    # every Originate with an error, and says so; then the PBX's recorded callback plays
    began = time.time()
    callback = room.replay("callback.ami", speed=1.0, start_at="2026-11-21T23:15:00")
    wait_for(lambda: room.proxy.first_time(b"Event: ", began), what="the daemon connected to the PBX")
    page.click("#callback-button")
    page.wait_for_selector("#notice")
    callback.communicate(timeout=60)
    with db.session() as session:
        request = session.scalars(select(CallbackRequest).where(CallbackRequest.call_id == missed.id)).one()
        assert (request.extension, request.number, request.requested_by) == ("8001", "13911112222", "wangfang")
        assert request.result == "refused" and "replay" in (request.detail or "")
    closed = wait_for(lambda: (c := _call(db, "13911112222")) and c.closed_by_call_id and c, what="callback closes")
    assert closed.called_back_by == "8001" and closed.callback_connected
    page.reload()
    browser.shot(page, "call-detail")
    assert "已回拨" in page.inner_text("#callback-state")
    out = tmp_path / "report"
    run_dutygw("--config", str(room.config), "report", "--shift", "2026-11-21/night", "--out", str(out))
    html = next(out.rglob("report.html")).read_text(encoding="utf-8")
    assert "报告双河镇山体滑坡，请求派员" in html and "已回拨，已接通" in html
    pdf_text = subprocess.run(["pdftotext", "-layout", str(next(out.rglob("report.pdf"))), "-"],
                              capture_output=True, text=True, check=True).stdout
    assert "报告双河镇山体滑坡" in re.sub(r"\s+", "", pdf_text) and "已回拨" in pdf_text
    sheet = load_workbook(next(out.rglob("calls.xlsx"))).active
    headings = [c.value for c in sheet[1]]
    rows = [dict(zip(headings, r)) for r in sheet.iter_rows(min_row=2, values_only=True)]
    row = next(r for r in rows if r["主叫号码"] == "13911112222")
    assert row["事由"] == "报告双河镇山体滑坡，请求派员" and row["回拨人"] == "8001" and row["回拨接通"] == "是"
    # the recorder replaying the same call again never overwrites what the officer wrote
    with db.session() as session:
        note = session.scalars(select(CallNote).where(CallNote.call_id == missed.id)).one()
        assert note.matter == "报告双河镇山体滑坡，请求派员"
        audits = session.scalars(select(AuditEntry).where(AuditEntry.target == f"call:{missed.id}")).all()
        assert {a.action for a in audits} == {"call.note", "call.callback"}
        assert next(a for a in audits if a.action == "call.note").new["matter"] == note.matter
    page.context.close()


def _receipt(db: Database, *, title: str, classification: str | None = None, minutes_ago: float = 5) -> int:
    with db.session() as session:
        seq = (session.scalar(select(func.max(Receipt.seq))) or 100) + 1
        row = Receipt(year=2026, seq=seq, received_at=datetime.now(UTC) - timedelta(minutes=minutes_ago),
                      pages=1, title=title, issuer="市应急管理局", doc_number=f"应急〔2026〕{seq}号",
                      classification=classification, status="filed", urgency_reasons=[], review_reasons=[])
        session.add(row)
        session.flush()
        return row.id


def test_an_officer_without_the_role_never_sees_a_classified_title(room: DutyRoom, browser: Browser,
                                                                   db: Database) -> None:
    receipt_id = _receipt(db, title="关于边境管控的绝密部署", classification="机密")
    officer = browser.signed_in("lijun")
    officer.goto(f"{room.web}/faxes")
    assert "关于边境管控的绝密部署" not in officer.content()
    assert "无权查看标题" in officer.inner_text(f"tr[data-receipt='{receipt_id}']")
    officer.goto(f"{room.web}/faxes/{receipt_id}")
    assert "关于边境管控的绝密部署" not in officer.content()
    browser.shot(officer, "fax-classified-officer")
    image = officer.request.get(f"{room.web}/faxes/{receipt_id}/pages/1.png")
    assert image.status == 403
    leader = browser.signed_in("zhaoling")
    leader.goto(f"{room.web}/faxes")
    assert "关于边境管控的绝密部署" in leader.inner_text(f"tr[data-receipt='{receipt_id}']")
    officer.context.close()
    leader.context.close()


def test_a_form_posted_without_its_csrf_token_is_refused(room: DutyRoom, browser: Browser, db: Database) -> None:
    receipt_id = _receipt(db, title="普通来文")
    page = browser.signed_in("lijun")
    for form in ({}, {"csrf_token": "forged"}):
        answer = page.request.post(f"{room.web}/faxes/{receipt_id}/sign", form=form, max_redirects=0)
        assert answer.status == 403
        assert "安全令牌" in answer.text()
    with db.session() as session:
        assert session.get(Receipt, receipt_id).status == "filed"
    page.goto(f"{room.web}/faxes/{receipt_id}")
    page.click("#sign-button")
    page.wait_for_selector("#notice")
    with db.session() as session:
        assert session.get(Receipt, receipt_id).signed_by == "lijun"
    assert "李军" in page.inner_text("#receipt-status") and "lijun" not in page.inner_text("#receipt-status")
    page.context.close()


def test_five_wrong_passwords_slow_the_name_down(room: DutyRoom, browser: Browser) -> None:
    context = browser.browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    for attempt in range(5):
        page.goto(f"{room.web}/login")
        page.fill("input[name=name]", "zhaoling")
        page.fill("input[name=password]", f"wrong-{attempt}")
        began = time.monotonic()
        page.click("button[type=submit]")
        page.wait_for_selector("#login-error")
        assert time.monotonic() - began >= 1.0  # every wrong password waits
        assert "用户名或密码错误" in page.inner_text("#login-error")
    page.goto(f"{room.web}/login")
    page.fill("input[name=name]", "zhaoling")
    page.fill("input[name=password]", PASSWORD)  # even the right one must wait now
    page.click("button[type=submit]")
    page.wait_for_selector("#login-error")
    assert "登录失败次数过多" in page.inner_text("#login-error")
    assert page.url.endswith("/login")
    browser.shot(page, "login-throttled")
    context.close()


def test_a_handover_signed_by_two_officers_carries_its_open_items_over(room: DutyRoom, browser: Browser,
                                                                       db: Database, tmp_path: Path) -> None:
    receipt_id = _receipt(db, title="请于明日报送防汛值班表", minutes_ago=1)
    outgoing = browser.signed_in("wangfang")
    outgoing.goto(f"{room.web}/handover")
    shift_key = outgoing.url.split("shift=")[-1] if "shift=" in outgoing.url else None
    outgoing.fill("textarea[name=todo]", "联系市气象局确认降雨预报")
    outgoing.fill("textarea[name=notes]", "夜间平稳")
    outgoing.fill("textarea[name=log_entries]", "21:00 巡检值班设备正常")
    outgoing.click("#save-handover")
    outgoing.wait_for_selector("#notice")
    items = outgoing.inner_text("#handover-items")
    assert "联系市气象局确认降雨预报" in items and "未签收" in items
    outgoing.click("#sign-handover")
    outgoing.wait_for_selector("#notice")
    assert "交班人已签字" in outgoing.inner_text("#notice")
    outgoing.click("#sign-handover")  # the same person cannot also sign for the incoming shift
    outgoing.wait_for_selector("#notice")
    assert "另一名值班人员" in outgoing.inner_text("#notice")
    incoming = browser.signed_in("lijun")
    incoming.goto(f"{room.web}/handover")
    incoming.click("#sign-handover")
    incoming.wait_for_selector("#notice")
    assert "交接完成" in incoming.inner_text("#notice")
    # staff read display names; the sheet keeps the login names as the signatures' identity
    assert incoming.inner_text("#outgoing") == "王芳" and incoming.inner_text("#incoming") == "李军"
    with db.session() as session:
        signed = session.scalars(select(HandoverSheet).where(HandoverSheet.incoming_by.is_not(None))).one()
        assert (signed.outgoing_by, signed.incoming_by) == ("wangfang", "lijun")
    browser.shot(incoming, "handover-signed")
    from gateway.config import load_config
    from gateway.shifts.calendar import shift_at

    config = load_config(room.config)
    now_shift = shift_at(datetime.now(UTC), config.calendar, config.zone)
    shift_key = shift_key or now_shift.key
    after = shift_at(now_shift.end + timedelta(minutes=1), config.calendar, config.zone)
    incoming.goto(f"{room.web}/handover?shift={after.key}")
    carried = incoming.inner_text("#handover-items")
    assert "联系市气象局确认降雨预报" in carried and "上班遗留" in carried
    assert f"{_receipt_no(db, receipt_id)}" in carried
    browser.shot(incoming, "handover-next-shift")
    out = tmp_path / "report"
    run_dutygw("--config", str(room.config), "report", "--shift", now_shift.key, "--out", str(out))
    html = next(out.rglob("report.html")).read_text(encoding="utf-8")
    assert "交班人 王芳" in html and "接班人 李军" in html and "联系市气象局确认降雨预报" in html
    assert "wangfang" not in html and "lijun" not in html
    outgoing.context.close()
    incoming.context.close()


def _receipt_no(db: Database, receipt_id: int) -> str:
    with db.session() as session:
        return session.get(Receipt, receipt_id).receipt_no


@pytest.mark.ocr
def test_a_mailed_fax_is_shown_corrected_and_signed(room: DutyRoom, browser: Browser, db: Database) -> None:
    tiff = (FAX_FIXTURES / "fax_001.tif").read_bytes()
    mail = asterisk_mail(tiff, station="0566-7622930", pages=1, received=datetime.now(UTC))
    with smtplib.SMTP("127.0.0.1", room.smtp_port, timeout=60) as smtp:
        smtp.sendmail("fax@pbx.duty.local", ["fax@duty.local"], mail)
    receipt = wait_for(lambda: _filed(db, "0566"), 600, "the fax to be filed")
    page = browser.signed_in("wangfang")
    page.goto(f"{room.web}/faxes/{receipt.id}")
    page.wait_for_function("document.querySelector('img.fax-page') && document.querySelector('img.fax-page').naturalWidth > 0")
    browser.shot(page, "fax-detail")
    machine = receipt.title
    page.fill("input[name=title]", "双河镇山体滑坡灾情报告")
    page.click("#save-corrections")
    page.wait_for_selector("#notice")
    page.click("#sign-button")
    page.wait_for_selector("#notice")
    assert "已签收" in page.inner_text("#receipt-status")
    with db.session() as session:
        fix = session.scalars(select(ReceiptCorrection).where(ReceiptCorrection.receipt_id == receipt.id)).one()
        assert (fix.field, fix.value, fix.machine_value) == ("title", "双河镇山体滑坡灾情报告", machine)
        stored = session.get(Receipt, receipt.id)
        assert stored.title == machine  # the machine's reading is kept beside the correction
        assert stored.status == "signed" and stored.signed_by == "wangfang"
    page.goto(f"{room.web}/faxes")
    assert "双河镇山体滑坡灾情报告" in page.inner_text(f"tr[data-receipt='{receipt.id}']")
    page.context.close()


def _filed(db: Database, station: str) -> Receipt | None:
    with db.session() as session:
        query = select(Receipt).where(Receipt.station.contains(station), Receipt.status != "reading")
        return session.scalars(query).first()
