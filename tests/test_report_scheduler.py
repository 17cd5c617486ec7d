"""When reports are made, that each shift is reported once, and how the mail goes out."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
from dataclasses import replace
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from gateway.clock import FixedClock
from gateway.config import Config, MailConfig
from gateway.outbox import MailService
from gateway.report.mail import KIND as REPORT_KIND
from gateway.report.mail import report_message
from gateway.report.query import mark_watching_since, shift_figures, watching_since
from gateway.report.scheduler import ReportScheduler, due_reports
from storage.db import Database
from storage.paging import OutboundMail
from storage.reports import ReportRun
from storage.states import MailState
from tests.report_night import NIGHT, fill_night, local, night_config

CONFIG = night_config(Path("var"))
WITH_DAY = night_config(Path("var"), day_report=True)


@pytest.mark.parametrize(("config", "now", "made", "due"), [
    (CONFIG, local(2026, 11, 22, 7, 59, 59), set(), ["2026-11-20/night"]),  # the night is not over yet
    (CONFIG, local(2026, 11, 22, 8, 0), set(), ["2026-11-20/night", NIGHT]),
    (CONFIG, local(2026, 11, 22, 8, 0), {"2026-11-20/night"}, [NIGHT]),
    (CONFIG, local(2026, 11, 22, 8, 1), {"2026-11-20/night", NIGHT}, []),
    (WITH_DAY, local(2026, 11, 21, 19, 0, 30), {"2026-11-20/night"},
     ["2026-11-19/night", "2026-11-20/day", "2026-11-21/day"]),  # 36 h back
    (WITH_DAY, local(2026, 11, 21, 19, 0, 30), {"2026-11-19/night", "2026-11-20/day", "2026-11-20/night"},
     ["2026-11-21/day"]),
    (CONFIG, local(2026, 11, 21, 19, 0, 30), {"2026-11-19/night", "2026-11-20/night"}, []),  # no day reports
    (CONFIG, local(2026, 11, 23, 20, 0), set(), ["2026-11-22/night"]),  # catch-up is 36 h
])
def test_due_reports(config: Config, now: datetime, made: set[str], due: list[str]) -> None:
    assert due_reports(now, config, made) == due


def test_the_scheduler_makes_each_report_once_and_queues_its_mail(database: Database, tmp_path: Path) -> None:
    config = night_config(tmp_path / "var", catch_up_hours=6.0)
    fill_night(database, config)
    clock = FixedClock(local(2026, 11, 22, 8, 0, 30))

    async def two_runs() -> tuple[list[str], list[str]]:
        scheduler = ReportScheduler(config, database, clock)
        first = await scheduler.run_once()
        clock.advance(60)
        restarted = ReportScheduler(config, database, clock)  # a restarted daemon remembers
        return first, await restarted.run_once()

    first, second = asyncio.run(two_runs())
    assert (first, second) == ([NIGHT], [])
    folder = tmp_path / "var" / "reports" / "2026-11-21" / "night"
    assert {"report.html", "report.pdf", "calls.xlsx", "hourly.png", "rings.png"} <= {p.name for p in folder.iterdir()}
    with database.session() as s:
        (run,) = s.scalars(select(ReportRun)).all()
        (mail,) = s.scalars(select(OutboundMail).where(OutboundMail.kind == "report")).all()
        assert run.shift_key == NIGHT and run.mail_id == mail.id and run.summary["calls_in"] == 10
        assert mail.recipients == ["leaders@duty.local"] and mail.state == "pending"
        assert mail.shift_key == NIGHT and "值班报告" in mail.subject and "来电总数：10" in mail.body
        message = report_message(mail, "dutygw@duty.local")
    parts = {part.get_content_type(): part for part in message.walk()}
    assert "text/plain" in parts and "text/html" in parts
    assert 'src="cid:hourly"' in parts["text/html"].get_content()
    inline = {part["Content-ID"] for part in message.walk() if part.get_content_type() == "image/png"}
    assert inline == {"<hourly>", "<rings>"}
    assert {part.get_filename() for part in message.iter_attachments()} >= {"report.pdf", "calls.xlsx"}


def test_a_report_not_sent_shows_in_the_next_one(database: Database, tmp_path: Path) -> None:
    config = night_config(tmp_path / "var", catch_up_hours=6.0)
    fill_night(database, config)
    clock = FixedClock(local(2026, 11, 22, 8, 0, 30))
    asyncio.run(ReportScheduler(config, database, clock).run_once())
    with database.session() as s:
        mail = s.scalars(select(OutboundMail).where(OutboundMail.kind == "report")).one()
        mail.tries, mail.last_error = 3, "ConnectionRefusedError: [Errno 111] Connection refused"
    following = shift_figures(database, config, "2026-11-22/night")
    assert [u.shift_key for u in following.unsent_reports] == [NIGHT]
    with database.session() as s:
        s.scalars(select(OutboundMail)).one().state = MailState.SENT
    assert shift_figures(database, config, "2026-11-22/night").unsent_reports == ()


def test_no_recipients_means_files_but_no_mail(database: Database, tmp_path: Path) -> None:
    config = replace(night_config(tmp_path / "var", catch_up_hours=6.0), mail=MailConfig())
    clock = FixedClock(local(2026, 11, 22, 8, 0, 30))
    assert asyncio.run(ReportScheduler(config, database, clock).run_once()) == [NIGHT]
    with database.session() as s:
        assert s.scalars(select(OutboundMail)).all() == []
        assert s.scalars(select(ReportRun.mail_id)).one() is None


def test_start_and_stop(database: Database, tmp_path: Path) -> None:
    config = night_config(tmp_path / "var", catch_up_hours=6.0)
    clock = FixedClock(local(2026, 11, 22, 8, 0, 30))

    mark_watching_since(config, local(2026, 11, 21, 18, 0))  # a gateway watching since before the night

    async def lifecycle() -> None:
        scheduler = ReportScheduler(config, database, clock, interval_seconds=0.05)
        await scheduler.start()
        for _ in range(200):
            await asyncio.sleep(0.05)
            if (tmp_path / "var" / "reports" / "2026-11-21" / "night" / "report.pdf").exists():
                break
        await scheduler.stop()

    asyncio.run(lifecycle())
    with database.session() as s:
        assert s.scalars(select(ReportRun.shift_key)).all() == [NIGHT]


def test_on_first_start_no_report_for_a_shift_it_never_watched(database: Database, tmp_path: Path) -> None:
    config = night_config(tmp_path / "var", catch_up_hours=36.0)
    fill_night(database, config)  # calls exist (imported), but this gateway was not watching then
    clock = FixedClock(local(2026, 11, 22, 8, 0, 30))

    async def first_start() -> list[str]:
        scheduler = ReportScheduler(config, database, clock)
        await scheduler.start()
        await scheduler.stop()
        return await scheduler.run_once()

    assert asyncio.run(first_start()) == []
    with database.session() as s:
        assert s.scalars(select(ReportRun)).all() == []
    assert watching_since(config) == local(2026, 11, 22, 8, 0, 30)
    assert due_reports(local(2026, 11, 23, 8, 0, 30), config, set(), watching_since(config)) == ["2026-11-22/night"]


def test_a_shift_watched_from_halfway_says_so(database: Database, tmp_path: Path) -> None:
    config = night_config(tmp_path / "var", catch_up_hours=6.0)
    fill_night(database, config)
    mark_watching_since(config, local(2026, 11, 21, 22, 0))
    clock = FixedClock(local(2026, 11, 22, 8, 0, 30))

    async def started() -> list[str]:
        scheduler = ReportScheduler(config, database, clock)
        await scheduler.start()
        await scheduler.stop()
        return await scheduler.run_once()

    assert asyncio.run(started()) == [NIGHT]
    figures = shift_figures(database, config, NIGHT)
    assert figures.covered_from == local(2026, 11, 21, 22, 0)
    html = (tmp_path / "var" / "reports" / "2026-11-21" / "night" / "report.html").read_text(encoding="utf-8")
    assert "网关于 11月21日 22:00 开始监听" in html
    assert shift_figures(database, config, "2026-11-22/night").covered_from is None  # watched all of it


class Relay:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.messages.append(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_report_the_relay_refused_is_retried_and_arrives_as_html(database: Database, tmp_path: Path) -> None:
    port = free_port()
    base = night_config(tmp_path / "var", catch_up_hours=6.0)
    config = replace(base, mail=replace(base.mail, relay_port=port, retry_minutes=10.0))
    fill_night(database, config)
    clock = FixedClock(local(2026, 11, 22, 8, 0, 30))
    asyncio.run(ReportScheduler(config, database, clock).run_once())
    service = MailService(config, database, clock, builders={REPORT_KIND: report_message})  # as the daemon does
    assert asyncio.run(service.mailer.send_due()) == 0  # nobody listens on the relay port yet
    assert [u.shift_key for u in shift_figures(database, config, "2026-11-22/night").unsent_reports] == [NIGHT]

    relay = Relay()
    controller = Controller(relay, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        clock.advance(10 * 60)
        assert asyncio.run(service.mailer.send_due()) == 1
    finally:
        controller.stop()
    (raw,) = relay.messages
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert "值班报告" in message["Subject"]
    html_body = message.get_body(("html",))
    assert html_body is not None and "来电总数：10" in html_body.get_content()
    images = [p for p in message.walk() if p.get_content_type() == "image/png"]
    assert sorted(p["Content-ID"] for p in images) == ["<hourly>", "<rings>"]
    assert {a.get_filename() for a in message.iter_attachments()} >= {"report.pdf", "calls.xlsx"}
    assert shift_figures(database, config, "2026-11-22/night").unsent_reports == ()
