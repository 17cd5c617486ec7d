"""管理: users and roles, and the roster and phonebook imports (the CLI's own import code)."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.calls.phonebook import import_phonebook
from gateway.errors import InputError
from gateway.shifts.config import CalendarConfig
from gateway.shifts.roster import parse_roster, store_roster
from gateway.web.accounts import Account, add_user
from gateway.web.app import Console, page, uploaded
from storage import queries
from storage.console import AuditEntry, User

ADMIN = ("admin",)


def routes(console: Console) -> list[Route]:
    async def view(request: Request, account: Account) -> Response:
        users, log = await console.read(_overview)
        return console.render(request, "admin.html", account, users=users, log=log,
                              message=request.query_params.get("msg"), error=request.query_params.get("error"))

    async def new_user(request: Request, account: Account) -> Response:
        form = await request.form()
        try:
            await console.work(lambda s: add_user(
                s, str(form.get("name", "")), str(form.get("role", "")), str(form.get("password", "")), console.now(),
                display_name=str(form.get("display_name", "")), extension=str(form.get("extension", "")) or None,
                actor=account.name))
        except InputError as exc:
            return console.render(request, "error.html", account, 400, message=f"无法添加用户：{exc}")
        return RedirectResponse("/admin?msg=user_added", 303)

    async def roster(request: Request, account: Account) -> Response:
        data, name = await uploaded(request, default_name="roster.csv")
        try:
            count = await console.work(_roster, data, name, account.name,
                                       console.now(), console.config.calendar)
        except InputError as exc:
            return console.render(request, "error.html", account, 400, message=f"值班表导入失败：{exc}")
        return RedirectResponse(f"/admin?msg=roster_{count}", 303)

    async def phonebook(request: Request, account: Account) -> Response:
        data, _ = await uploaded(request, default_name="phonebook.csv")
        try:
            count = await console.db.run(_phonebook, console, data, account.name)
        except InputError as exc:
            return console.render(request, "error.html", account, 400, message=f"通讯录导入失败：{exc}")
        return RedirectResponse(f"/admin?msg=phonebook_{count}", 303)

    return [
        Route("/admin", page(console, view, ADMIN)),
        Route("/admin/users", page(console, new_user, ADMIN), methods=["POST"]),
        Route("/admin/roster", page(console, roster, ADMIN), methods=["POST"]),
        Route("/admin/phonebook", page(console, phonebook, ADMIN), methods=["POST"]),
    ]


def _overview(session: Session) -> tuple[list[User], list[AuditEntry]]:
    users = list(session.scalars(select(User).order_by(User.name)))
    log = list(session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(50)))
    return users, log


def _roster(session: Session, data: bytes, name: str, actor: str, now: datetime, calendar: CalendarConfig) -> int:
    """The CLI's roster parser and store: every row checked before any is written."""
    count = store_roster(session, parse_roster(data, name, calendar), now)
    queries.audit(session, now, actor, "roster.import", "roster", {}, {"file": name, "entries": count})
    return count


def _phonebook(console: Console, data: bytes, actor: str) -> int:
    """The CLI's ``import_phonebook`` on the uploaded bytes (it reads a file, as from Excel)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "phonebook.csv"
        path.write_bytes(data)
        count = import_phonebook(console.db, path)
    with console.db.session() as session:
        queries.audit(session, console.now(), actor, "phonebook.import", "phonebook", {}, {"entries": count})
    return count
