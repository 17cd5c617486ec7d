"""立即呼叫 and 停止呼叫 in a real Chromium: the real daemon (``dutygw run``) talks AMI to the
test AMI peer (``gateway.ami.peer``), the leader on duty presses the buttons, and the
Originates (and the Hangup) the peer receives are the proof.

The fax is one the machine judged ordinary (filed, not urgent): the leader judges it
urgent and pages now; the leader's phone rings on and the leader stops the paging: the
ringing call is hung up and no further Originate leaves, though the chain would have rung
the next person once the ring timeout had passed.
"""

from __future__ import annotations

import asyncio
import re
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pytest
from sqlalchemy import select

from gateway import terms
from gateway.ami.peer import RINGING, AmiPeer
from gateway.clock import UTC
from storage.console import AuditEntry
from storage.db import Database, open_database
from storage.faxes import Receipt
from storage.paging import Escalation, PagingRequest
from tests.conftest import AMI_FIXTURES
from tests.console_harness import (
    Browser,
    console_answers,
    free_port,
    start_browser,
    start_daemon_with_users,
    wait_for,
    write_config,
)

LEADER_PHONE, DIRECTOR_PHONE = "13700003333", "13900004444"
RING_SECONDS, MARGIN_SECONDS = 8, 4
"""Unstopped, the next person would be rung RING_SECONDS + MARGIN_SECONDS after the first call."""
PAGING = (
    f"attempts_per_person = 1\nring_timeout_seconds = {RING_SECONDS}\nresult_margin_seconds = {MARGIN_SECONDS}\n"
    f'chain = [{{ role = "带班领导", name = "王局长", number = "{LEADER_PHONE}" }}, '
    f'{{ role = "办公室主任", name = "李主任", number = "{DIRECTOR_PHONE}" }}]\n'
)


class PeerThread:
    """The AMI peer on its own event loop, so the synchronous browser test can run beside it."""

    def __init__(self, peer: AmiPeer) -> None:
        self.peer = peer
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> int:
        self.thread.start()
        return asyncio.run_coroutine_threadsafe(self.peer.start(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.peer.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Room:
    web: str
    database_url: str
    peer: AmiPeer


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Room]:
    folder = tmp_path_factory.mktemp("paging-console")
    peer = AmiPeer.from_fixtures(AMI_FIXTURES, default=RINGING)  # every phone rings on, nobody answers
    running = PeerThread(peer)
    port = running.start()
    web = free_port()
    config = write_config(folder, ami=port, smtp=free_port(), web=web)
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[paging]\n", "[paging]\n" + PAGING, 1), encoding="utf-8")
    daemon = start_daemon_with_users(config)
    base = f"http://127.0.0.1:{web}"
    try:
        wait_for(lambda: console_answers(base), 60, "the console to listen")
        wait_for(lambda: peer._sessions, 30, "the daemon to log in to AMI")
        yield Room(base, f"sqlite:///{folder / 'var' / 'dutygw.sqlite'}", peer)
    finally:
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=60)
        running.stop()
        assert daemon.returncode == 0, output


@pytest.fixture(scope="module")
def browser(room: Room) -> Iterator[Browser]:
    yield from start_browser(room.web)


@pytest.fixture
def db(room: Room) -> Iterator[Database]:
    database = open_database(room.database_url, migrate=False)
    yield database
    database.dispose()


def _ordinary_fax(db: Database, seq: int) -> int:
    now = datetime.now(UTC)
    with db.session() as session:
        row = Receipt(year=now.year, seq=seq, received_at=now, pages=1, is_urgent=False, urgency_decided_at=now,
                      issuer="武汉市应急管理局", title="关于长江武汉段水位超警的情况报告", status="filed",
                      sender="市应急局值班室")
        session.add(row)
        session.flush()
        return row.id


def _post(page: object, url: str, with_token: bool = True) -> int:
    """POST from inside the signed-in page, as a form would (the token read from the page)."""
    return int(page.evaluate(  # type: ignore[attr-defined]
        """async ([url, withToken]) => {
            const body = new URLSearchParams();
            if (withToken) body.set('csrf_token', document.querySelector('input[name=csrf_token]').value);
            const response = await fetch(url, {method: 'POST', body, redirect: 'manual'});
            return response.status || 303;
        }""", [url, with_token]))


def _requests(db: Database) -> list[tuple[str, str, str | None]]:
    with db.session() as session:
        return [(r.kind, r.state, r.requested_by)
                for r in session.scalars(select(PagingRequest).order_by(PagingRequest.id))]


def test_the_leader_pages_an_ordinary_fax_now_then_stops_and_no_call_follows(room: Room, browser: Browser,
                                                                             db: Database) -> None:
    receipt_id = _ordinary_fax(db, 801)

    officer = browser.signed_in("wangfang")
    officer.goto(f"{room.web}/pages")
    officer.wait_for_selector(f"#unpaged-{receipt_id}")
    assert officer.locator("form.page-receipt, form.stop, form.page-now").count() == 0, "no controls for an officer"
    assert _post(officer, f"/pages/receipts/{receipt_id}/page-now") == 403, "an officer may not page"
    assert _requests(db) == [] and room.peer.originates == []

    leader = browser.signed_in("zhaoling")
    leader.goto(f"{room.web}/pages")
    assert _post(leader, f"/pages/receipts/{receipt_id}/page-now", with_token=False) == 403, "CSRF token required"
    assert _requests(db) == []
    pressed = time.monotonic()
    leader.click(f"#unpaged-{receipt_id} form.page-receipt button")
    leader.wait_for_url(re.compile(r".*/pages\?msg=requested$"))
    wait_for(lambda: room.peer.originates, 10, "the Originate of the page now")
    placed = time.monotonic()
    assert placed - pressed < 5.0, f"page now took {placed - pressed:.1f} s to reach the PBX"
    (call,) = room.peer.originates
    assert call.number == LEADER_PHONE

    with db.session() as session:
        (escalation,) = session.scalars(select(Escalation)).all()
        escalation_id = escalation.id
        assert escalation.receipt_ids == [receipt_id]
    leader.goto(f"{room.web}/pages")
    card = f"#page-{escalation_id}"
    leader.wait_for_selector(f"{card}[data-state=open]")
    leader.fill(f"{card} form.stop input[name=reason]", "已电话联系王局长本人，无需再呼")
    browser.shot(leader, "paging-before-stop")
    leader.click(f"{card} form.stop button")
    leader.wait_for_url(re.compile(r".*/pages\?msg=requested$"))

    def stopped() -> bool:
        with db.session() as session:
            row = session.get(Escalation, escalation_id)
            return row is not None and row.state == "stopped"

    wait_for(stopped, 10, "the pager to stop the paging")
    wait_for(lambda: room.peer.hangups, 10, "the Hangup of the ringing call")
    assert [h.startswith("PJSIP/trunk-") for h in room.peer.hangups] == [True]
    with db.session() as session:
        row = session.get(Escalation, escalation_id)
        assert row is not None and (row.stopped_by, row.stop_reason) == ("zhaoling", "已电话联系王局长本人，无需再呼")
        assert [a.result for a in row.attempts] == ["stopped"]
        actions = [(e.action, e.target, e.actor) for e in session.scalars(
            select(AuditEntry).where(AuditEntry.action.like("page.%")).order_by(AuditEntry.id))]
    assert actions == [("page.page_now", f"receipt:{receipt_id}", "zhaoling"),
                       ("page.stop", f"escalation:{escalation_id}", "zhaoling")], "every request audited"
    wait_for(lambda: all(state != "pending" for _, state, _ in _requests(db)), 10, "both outcomes written back")
    assert [(k, s) for k, s, _ in _requests(db)] == [("page_now", "done"), ("stop", "done")]

    leader.goto(f"{room.web}/pages")
    text = leader.inner_text(card)
    # the console names states as the CLI and the reports do (gateway/terms.py)
    assert leader.inner_text(f"{card} h2 .tag") == terms.PAGE_STATE["stopped"]
    assert f"：{terms.ATTEMPT_RESULT['stopped']}" in leader.inner_text(f"{card} ol.timeline li")
    assert "人工停止" in text and "赵岭" in text and "zhaoling" not in text and "已电话联系王局长本人，无需再呼" in text
    assert leader.locator(f"{card} form.stop").count() == 0, "a stopped page offers no stop"
    browser.shot(leader, "paging-stopped")

    # Unstopped, the director would be rung RING + MARGIN seconds after the first call:
    # watch well past that moment.
    quiet_until = placed + RING_SECONDS + MARGIN_SECONDS + 4
    wait_for(lambda: time.monotonic() > quiet_until or len(room.peer.originates) > 1, 60, "the quiet period")
    assert [c.number for c in room.peer.originates] == [LEADER_PHONE], "no Originate after the stop"
