"""紧急呼叫: each escalation as a timeline (who was called when, each result, the deadline),
and the leader on duty's 立即呼叫 / 停止呼叫. States and results are named from
``gateway.terms``, as in the CLI and the reports.

The console may be its own process (``dutygw web``), so a request is not carried out
here: it is written to ``paging_requests`` (with its audit entry, in one transaction) and
the pager, which polls for pending requests every second, carries it out through the
escalation engine and writes the outcome back for this page to show.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway import terms
from gateway.web.accounts import Account
from gateway.web.app import Console, address_of, page
from storage import queries
from storage.faxes import Receipt
from storage.paging import Escalation, PagingRequest

KIND_LABELS = {"page_now": "立即呼叫", "stop": "停止呼叫"}
REQUEST_STATES = {"pending": "等待处理", "done": "已执行", "refused": "未执行"}
MESSAGES = {
    "requested": "请求已提交，呼叫服务将在数秒内处理；刷新本页查看结果。",
    "reason_missing": "停止呼叫须填写原因。",
    "not_found": "没有这条记录。",
}
CONTROL_ROLES = ("leader", "admin")
"""Who may page now or stop paging: the leader on duty (and the admin)."""
UNPAGED_WINDOW = timedelta(days=1)
REASON_LIMIT = 500


def routes(console: Console) -> list[Route]:
    async def timeline(request: Request, account: Account) -> Response:
        found = await console.read(_timeline, console.now())
        return console.render(request, "paging.html", account, **found, states=terms.PAGE_STATE, results=terms.ATTEMPT_RESULT,
                              kinds=KIND_LABELS, request_states=REQUEST_STATES,
                              may_control=account.role in CONTROL_ROLES,
                              may_see=console.may_see_classified(account),
                              message=MESSAGES.get(request.query_params.get("msg", "")))

    async def stop(request: Request, account: Account) -> Response:
        reason = str((await request.form()).get("reason", "")).strip()[:REASON_LIMIT]
        if not reason:
            return RedirectResponse("/pages?msg=reason_missing", 303)
        return await _ask(console, request, account, "stop", escalation_id=int(request.path_params["escalation_id"]),
                          reason=reason)

    async def page_now(request: Request, account: Account) -> Response:
        return await _ask(console, request, account, "page_now",
                          escalation_id=int(request.path_params["escalation_id"]))

    async def page_receipt(request: Request, account: Account) -> Response:
        return await _ask(console, request, account, "page_now", receipt_id=int(request.path_params["receipt_id"]))

    return [
        Route("/pages", page(console, timeline)),
        Route("/pages/{escalation_id:int}/stop", page(console, stop, CONTROL_ROLES), methods=["POST"]),
        Route("/pages/{escalation_id:int}/page-now", page(console, page_now, CONTROL_ROLES), methods=["POST"]),
        Route("/pages/receipts/{receipt_id:int}/page-now", page(console, page_receipt, CONTROL_ROLES),
              methods=["POST"]),
    ]


async def _ask(console: Console, request: Request, account: Account, kind: str, *, escalation_id: int | None = None,
               receipt_id: int | None = None, reason: str = "") -> Response:
    made = await console.work(_request, kind, escalation_id, receipt_id, reason, account.name, console.now(),
                              address_of(request))
    return RedirectResponse(f"/pages?msg={'requested' if made else 'not_found'}", 303)


def _request(session: Session, kind: str, escalation_id: int | None, receipt_id: int | None, reason: str,
             actor: str, at: datetime, address: str) -> bool:
    """The request for the pager and its audit entry, together (False: nothing to act on)."""
    if escalation_id is not None and session.get(Escalation, escalation_id) is None:
        return False
    if receipt_id is not None and session.get(Receipt, receipt_id) is None:
        return False
    row = PagingRequest(kind=kind, escalation_id=escalation_id, receipt_id=receipt_id, reason=reason,
                        requested_by=actor, requested_at=at, state="pending")
    session.add(row)
    session.flush()
    target = f"escalation:{escalation_id}" if escalation_id is not None else f"receipt:{receipt_id}"
    queries.audit(session, at, actor, f"page.{kind}", target, {}, {"request": row.id, "reason": reason}, address)
    return True


def _timeline(session: Session, now: datetime) -> dict[str, Any]:
    rows = list(session.scalars(select(Escalation).options(selectinload(Escalation.attempts))
                                .order_by(Escalation.opened_at.desc()).limit(30)))
    requests = list(session.scalars(select(PagingRequest).order_by(PagingRequest.id.desc()).limit(50)))
    by_escalation: dict[int, list[PagingRequest]] = {}
    for r in requests:
        key = r.result_escalation_id or r.escalation_id
        if key is not None:
            by_escalation.setdefault(key, []).insert(0, r)
    unpaged = _unpaged(session, now)
    ids = {int(i) for e in rows for i in e.receipt_ids} | {r.id for r in unpaged}
    numbers: dict[int, Any] = {}
    if ids:
        numbers = {r.id: r.receipt_no for r in session.scalars(select(Receipt).where(Receipt.id.in_(ids)))}
    pending_receipts = {r.receipt_id for r in requests if r.state == "pending" and r.receipt_id is not None}
    return {"rows": rows, "numbers": numbers, "requests": by_escalation, "unpaged": unpaged,
            "pending_receipts": pending_receipts,
            "loose": [r for r in requests if r.receipt_id is not None and r.result_escalation_id is None]}


def _unpaged(session: Session, now: datetime) -> list[Receipt]:
    """Recent receipts no escalation carries: the leader may judge one urgent the machine did not."""
    since = now - UNPAGED_WINDOW
    paged: set[int] = set()
    for ids in session.scalars(select(Escalation.receipt_ids).where(Escalation.opened_at >= since - UNPAGED_WINDOW)):
        paged.update(int(i) for i in ids or [])
    recent = session.scalars(select(Receipt).where(Receipt.received_at >= since)
                             .order_by(Receipt.received_at.desc()).limit(40)).all()
    return [r for r in recent if r.id not in paged][:20]
