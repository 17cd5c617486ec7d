"""值班台: the shift at a glance, redrawn whenever the change hub says something moved."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.shifts.calendar import Shift, shift_at
from gateway.shifts.roster import OnDuty, on_duty
from gateway.web.accounts import Account
from gateway.web.app import Console, page
from storage import queries
from storage.calls import Call
from storage.console import CallNote


@dataclass(frozen=True)
class Board:
    shift: Shift
    duty: OnDuty | None
    ringing: list[Call]
    last: list[tuple[Call, CallNote | None]]
    items: queries.OpenItems


def board(session: Session, now: datetime, console: Console) -> Board:
    shift = shift_at(now, console.config.calendar, console.config.zone)
    return Board(
        shift=shift,
        duty=on_duty(session, shift.duty_date, shift.name),
        ringing=queries.ringing_calls(session),
        last=queries.call_log(session, queries.CallFilter(), limit=10),
        items=queries.open_items(session, now),
    )


def routes(console: Console) -> list[Route]:
    async def index(request: Request, account: Account) -> Response:
        return console.render(request, "board.html", account, board=await _board(console))

    async def fragment(request: Request, account: Account) -> Response:
        return console.render(request, "board_fragment.html", account, board=await _board(console))

    return [Route("/", page(console, index)), Route("/fragment/board", page(console, fragment))]


async def _board(console: Console) -> Any:
    now = console.now()
    return await console.read(board, now, console)
