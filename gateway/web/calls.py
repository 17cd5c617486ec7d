"""来电记录: the call log with filters, and completing a call (事由, 处理情况, 领导批示, callback)."""

from __future__ import annotations

import logging
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.ami.client import AmiError
from gateway.calls.phonebook import lookup
from gateway.errors import GatewayError
from gateway.shifts.calendar import shift_by_key
from gateway.web.accounts import Account
from gateway.web.app import Console, address_of, page
from storage import queries
from storage.calls import Call
from storage.console import CallbackRequest

log = logging.getLogger("dutygw.web.calls")
PAGE_SIZE = 50


def routes(console: Console) -> list[Route]:
    async def call_log(request: Request, account: Account) -> Response:
        where, shown = _filter(console, request.query_params)
        offset = max(0, int(request.query_params.get("offset", "0") or 0))
        rows = await console.read(queries.call_log, where, PAGE_SIZE, offset)
        return console.render(request, "calls.html", account, rows=rows, shown=shown, offset=offset,
                              page_size=PAGE_SIZE)

    async def detail(request: Request, account: Account) -> Response:
        call_id = int(request.path_params["call_id"])
        found = await console.read(_detail, call_id)
        if found is None:
            return console.render(request, "error.html", account, 404, message="没有这条来电记录。")
        return console.render(request, "call.html", account, **found, message=request.query_params.get("msg"))

    async def save(request: Request, account: Account) -> Response:
        call_id = int(request.path_params["call_id"])
        form = await request.form()
        values = {f: str(form.get(f, "")).strip() for f in queries.NOTE_FIELDS}
        learn = form.get("learn") == "1"
        await console.work(_save, call_id, values, learn, account.name, console.now(), address_of(request))
        return RedirectResponse(f"/calls/{call_id}?msg=saved", 303)

    async def callback(request: Request, account: Account) -> Response:
        call_id = int(request.path_params["call_id"])
        result = await start_callback(console, call_id, account, address_of(request))
        return RedirectResponse(f"/calls/{call_id}?msg={result}", 303)

    return [
        Route("/calls", page(console, call_log)),
        Route("/calls/{call_id:int}", page(console, detail)),
        Route("/calls/{call_id:int}", page(console, save, ("officer", "leader", "admin")), methods=["POST"]),
        Route("/calls/{call_id:int}/callback", page(console, callback, ("officer", "leader")), methods=["POST"]),
    ]


def _filter(console: Console, params: Any) -> tuple[queries.CallFilter, dict[str, str]]:
    shown = {k: params.get(k, "") for k in ("day", "shift", "missed", "late", "unknown")}
    start = end = None
    if shown["shift"]:
        try:
            shift = shift_by_key(shown["shift"], console.config.calendar, console.config.zone)
            start, end = shift.start, shift.end
        except (ValueError, GatewayError):
            shown["shift_error"] = "班次格式应为 2026-11-21/night"
    elif shown["day"]:
        try:
            day = date.fromisoformat(shown["day"])
            start = datetime.combine(day, time(0), console.config.zone)
            end = start + timedelta(days=1)
        except ValueError:
            shown["day_error"] = "日期格式应为 2026-11-21"
    where = queries.CallFilter(start=start, end=end, missed=bool(shown["missed"]), late=bool(shown["late"]),
                               unknown=bool(shown["unknown"]))
    return where, shown


def _detail(session: Session, call_id: int) -> dict[str, Any] | None:
    call = session.get(Call, call_id)
    if call is None:
        return None
    note = queries.call_notes(session, [call_id]).get(call_id)
    entry = None if call.caller_withheld else lookup(session, call.caller if call.direction == "in" else call.dialed)
    closer = session.get(Call, call.closed_by_call_id) if call.closed_by_call_id else None
    return {"call": call, "note": note, "suggestion": entry, "closer": closer,
            "callbacks": queries.callbacks_of(session, call_id), "history": queries.call_history(session, call_id)}


def _save(session: Session, call_id: int, values: dict[str, str], learn: bool, actor: str, at: datetime,
          address: str) -> None:
    queries.save_call_note(session, call_id, values, actor, at, address)
    call = session.get(Call, call_id)
    if learn and call is not None and not call.caller_withheld and values["caller_name"]:
        queries.learn_contact(session, call.caller, values["caller_name"], values["caller_unit"], actor, at, address)


async def start_callback(console: Console, call_id: int, account: Account, address: str) -> str:
    """AMI Originate: ring the officer's own phone, then dial the caller from the phones' context.

    The missed call is closed by the recorder when the PBX reports the outbound call, as
    for a callback dialled by hand; the request is kept (and audited) either way.
    """
    call = await console.read(lambda s: s.get(Call, call_id))
    if call is None or call.caller_withheld or call.direction != "in":
        return "no_number"
    if not account.extension:
        return "no_extension"
    if console.ami is None:
        return "no_pbx"
    action_id = f"dutygw-callback-{uuid.uuid4().hex[:12]}"
    await console.work(_record_request, call_id, account, call.caller, action_id, console.now(), address)
    web = console.config.web
    try:
        response = await console.ami.send_action(
            "Originate", action_id=action_id, timeout=10.0,
            Channel=web.callback_channel.format(extension=account.extension),
            Context=web.callback_context, Exten=call.caller, Priority="1",
            CallerID=f"回拨 <{call.caller}>", Timeout="30000", Async="true",
            Variable=[f"DUTYGW_CALLBACK={call_id}"],
        )
        ok = (response.get("Response") or "").lower() == "success"
        detail = response.get("Message") or ""
    except (AmiError, OSError, ConnectionError) as exc:
        ok, detail = False, str(exc)
    await console.work(_record_result, action_id, "queued" if ok else "refused", detail)
    log.info("callback of call %s by %s from %s: %s %s", call_id, account.name, account.extension,
             "queued" if ok else "refused", detail)
    return "callback_queued" if ok else "callback_refused"


def _record_request(session: Session, call_id: int, account: Account, number: str, action_id: str,
                    at: datetime, address: str) -> None:
    session.add(CallbackRequest(call_id=call_id, requested_by=account.name, requested_at=at,
                                extension=account.extension or "", number=number, action_id=action_id))
    queries.audit(session, at, account.name, "call.callback", f"call:{call_id}", {},
                  {"extension": account.extension or "", "number": number}, address)


def _record_result(session: Session, action_id: str, result: str, detail: str) -> None:
    from sqlalchemy import select

    row = session.scalar(select(CallbackRequest).where(CallbackRequest.action_id == action_id))
    if row is not None:
        row.result, row.detail = result, detail
