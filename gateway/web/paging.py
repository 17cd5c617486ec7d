"""紧急呼叫: each escalation as a timeline (who was called when, each result, the deadline)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.web.accounts import Account
from gateway.web.app import Console, page
from storage.faxes import Receipt
from storage.paging import Escalation

STATE_LABELS = {"open": "呼叫中", "acknowledged": "已确认", "exhausted": "无人确认", "cancelled": "已停止"}
RESULT_LABELS = {
    "planned": "待拨", "sent": "已拨出", "answered": "已接听", "acknowledged": "已按1确认",
    "not_acknowledged": "接听未确认", "no_answer": "无人接听", "busy": "占线", "failed": "呼叫失败",
}


def routes(console: Console) -> list[Route]:
    async def timeline(request: Request, account: Account) -> Response:
        rows, numbers = await console.read(_escalations)
        return console.render(request, "paging.html", account, rows=rows, numbers=numbers,
                              states=STATE_LABELS, results=RESULT_LABELS)

    return [Route("/pages", page(console, timeline))]


def _escalations(session: Session) -> tuple[list[Escalation], dict[int, str]]:
    rows = list(session.scalars(select(Escalation).options(selectinload(Escalation.attempts))
                                .order_by(Escalation.opened_at.desc()).limit(30)))
    ids = {int(i) for e in rows for i in e.receipt_ids}
    numbers: dict[int, Any] = {}
    if ids:
        numbers = {r.id: r.receipt_no for r in session.scalars(select(Receipt).where(Receipt.id.in_(ids)))}
    return rows, numbers
