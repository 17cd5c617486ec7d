"""交接班: the current shift's sheet, the outgoing officer's notes, and both signatures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.shifts.calendar import shift_at, shift_by_key
from gateway.web.accounts import Account
from gateway.web.app import Console, address_of, page
from storage import handover
from storage.console import HandoverSheet

SIGNERS = ("officer", "leader")


def routes(console: Console) -> list[Route]:
    def key_of(request: Request) -> str:
        key = request.query_params.get("shift") or request.path_params.get("shift", "")
        if key:
            return shift_by_key(key, console.config.calendar, console.config.zone).key
        return shift_at(console.now(), console.config.calendar, console.config.zone).key

    async def view(request: Request, account: Account) -> Response:
        key = key_of(request)
        found = await console.read(_view, key, console.now(), console.config.zone)
        shift = shift_by_key(key, console.config.calendar, console.config.zone)
        return console.render(request, "handover.html", account, shift=shift, **found,
                              message=request.query_params.get("msg"))

    async def save(request: Request, account: Account) -> Response:
        key = key_of(request)
        form = await request.form()
        todo = [line.strip() for line in str(form.get("todo", "")).splitlines() if line.strip()]
        done = {str(v) for v in form.getlist("done")}
        try:
            await console.work(handover.save_notes, key, str(form.get("notes", "")), str(form.get("log_entries", "")),
                               todo, done, account.name, console.now(), address_of(request))
        except PermissionError:
            return RedirectResponse(f"/handover?shift={key}&msg=locked", 303)
        return RedirectResponse(f"/handover?shift={key}&msg=saved", 303)

    async def sign(request: Request, account: Account) -> Response:
        key = key_of(request)
        try:
            who = await console.work(handover.sign, key, account.name, console.now(), console.config.zone,
                                     address_of(request))
        except PermissionError as exc:
            msg = "same_person" if "someone else" in str(exc) else "locked"
            return RedirectResponse(f"/handover?shift={key}&msg={msg}", 303)
        return RedirectResponse(f"/handover?shift={key}&msg=signed_{who}", 303)

    return [
        Route("/handover", page(console, view)),
        Route("/handover/save", page(console, save, SIGNERS), methods=["POST"]),
        Route("/handover/sign", page(console, sign, SIGNERS), methods=["POST"]),
    ]


def _view(session: Session, key: str, now: datetime, zone: Any) -> dict[str, Any]:
    row = handover.sheet(session, key)
    signed = row is not None and row.outgoing_by is not None
    items = row.items if signed and row is not None else handover.live_items(session, key, now, zone)
    awaiting = list(session.scalars(select(HandoverSheet).where(HandoverSheet.outgoing_by.is_not(None),
                                                              HandoverSheet.incoming_by.is_(None))))
    return {"sheet": row, "items": items, "signed": signed, "awaiting": awaiting}
