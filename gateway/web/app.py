"""The console's web application: Starlette routes, Jinja2 pages, sign-in and the guards.

``Console`` holds what every page needs (configuration, database, clock, the AMI sender
for callbacks, the change hub). Each feature module adds its routes with ``routes(console)``.
Every handler runs its database work through ``await db.run(...)``: the console shares the
daemon's event loop with the AMI reader and the SMTP intake.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import terms
from gateway.ami.message import AmiMessage
from gateway.clock import Clock
from gateway.config import Config
from gateway.web import accounts
from gateway.web.accounts import Account
from gateway.web.live import ChangeHub
from storage.console import ROLE_LABELS, display_names, person
from storage.db import Database

log = logging.getLogger("dutygw.web")
HERE = Path(__file__).parent
SESSION_COOKIE = "dutygw_session"
LOGIN_CSRF_COOKIE = "dutygw_login_csrf"
FAILED_LOGIN_DELAY = 1.0
"""Seconds every wrong password waits before its answer (a lockout follows repeated ones)."""

Handler = Callable[[Request, Account], Awaitable[Response]]


class AmiSender(Protocol):
    async def send_action(self, action: str, *, action_id: str | None = None, timeout: float | None = None,
                          **fields: str | list[str]) -> AmiMessage: ...


@dataclass
class Console:
    config: Config
    db: Database
    clock: Clock
    ami: AmiSender | None = None

    def __post_init__(self) -> None:
        self.hub = ChangeHub(self.db, self.config.web.poll_seconds)
        self.templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape())
        self.templates.filters["local"] = self.local
        self.templates.filters["person"] = _person
        self.templates.globals["ROLE_LABELS"] = ROLE_LABELS
        self.templates.globals["word"] = terms.word  # one vocabulary (gateway/terms.py)
        self.templates.globals["terms"] = terms
        self.templates.globals["handled"] = _handled

    def local(self, instant: datetime | None, fmt: str = "%m-%d %H:%M:%S") -> str:
        return "" if instant is None else instant.astimezone(self.config.zone).strftime(fmt)

    def now(self) -> datetime:
        return self.clock.now()

    def render(self, request: Request, name: str, account: Account | None, status: int = 200,
               **context: Any) -> HTMLResponse:
        people = getattr(request.state, "people", {})
        html = self.templates.get_template(name).render(request=request, me=account, config=self.config,
                                                        now=self.now(), people=people, **context)
        return HTMLResponse(html, status_code=status)

    def may_see_classified(self, account: Account) -> bool:
        return account.role in self.config.web.classified_roles

    async def work(self, fn: Callable[..., Any], *args: Any) -> Any:
        """One unit of work on the database's threads (never a session on the loop)."""
        def unit() -> Any:
            with self.db.session() as session:
                return fn(session, *args)
        return await self.db.run(unit)

    async def read(self, fn: Callable[..., Any], *args: Any) -> Any:
        """A read-only unit of work (polls, pages): no write lock, so it never queues behind the recorder."""
        def unit() -> Any:
            with self.db.read() as session:
                return fn(session, *args)
        return await self.db.run(unit)


def page(console: Console, handler: Handler, roles: Sequence[str] | None = None) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler: signed in, of an allowed role, and a POST must carry the session's CSRF token."""
    async def endpoint(request: Request) -> Response:
        account, request.state.people = await console.read(_whoami, request.cookies.get(SESSION_COOKIE),
                                                           console.now())
        if account is None:
            if request.method == "GET":
                return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
            return PlainTextResponse("请先登录", status_code=401)
        if roles is not None and account.role not in roles:
            return console.render(request, "error.html", account, 403, message="您的角色无权进行此操作。")
        if request.method == "POST":
            form = await request.form()
            if not secrets.compare_digest(str(form.get("csrf_token", "")), account.csrf_token):
                return console.render(request, "error.html", account, 403,
                                      message="表单已失效（缺少或错误的安全令牌），请刷新页面后重试。")
        return await handler(request, account)
    return endpoint


def _whoami(session: Any, token: str | None, now: datetime) -> tuple[Account | None, dict[str, str]]:
    """The signed-in account, and every login's display name for the page to show people by."""
    account = accounts.account_for(session, token, now)
    return account, display_names(session) if account is not None else {}


def _handled(call: Any) -> str:
    """Who answered, as the report says it: 8001, 8003 代接, 8001 接听后转 8010; never ``pbx``."""
    from gateway.calls.parties import handled_text

    return handled_text(call.answered_by, call.final_party, call.transferred_to, call.picked_up_by)


@pass_context
def _person(context: Any, login: str | None) -> str:
    """``{{ sheet.outgoing_by|person }}``: 王芳, not wangfang, wherever staff read who did it."""
    return person(context.get("people") or {}, login)


async def uploaded(request: Request, field: str = "file", default_name: str = "upload.csv") -> tuple[bytes, str]:
    """An uploaded file's bytes and name; the form is closed so its spooled temporary file goes."""
    form = await request.form()
    try:
        upload = form.get(field)
        data = await upload.read() if upload is not None and hasattr(upload, "read") else b""
        return data, getattr(upload, "filename", "") or default_name
    finally:
        await form.close()


def address_of(request: Request) -> str:
    return request.client.host if request.client else ""


def auth_routes(console: Console) -> list[Route]:
    async def login_form(request: Request) -> Response:
        token = secrets.token_urlsafe(24)
        response = console.render(request, "login.html", None, csrf=token, next=request.query_params.get("next", "/"))
        _cookie(console, response, LOGIN_CSRF_COOKIE, token, 600)
        return response

    async def login(request: Request) -> Response:
        form = await request.form()
        name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not expected or not secrets.compare_digest(str(form.get("csrf_token", "")), expected):
            return console.render(request, "error.html", None, 403, message="登录表单已失效，请刷新页面后重试。")
        now = console.now()
        wait = await console.read(accounts.lockout_left, name, now)
        if wait is not None:
            return _login_again(console, request, 429, f"登录失败次数过多，请 {int(wait.total_seconds()) + 1} 秒后再试。")
        user = await console.work(accounts.check_password, name, password, now, address_of(request))
        if user is None:
            await asyncio.sleep(FAILED_LOGIN_DELAY)
            return _login_again(console, request, 401, "用户名或密码错误。")
        token = await console.work(_open, user.id, now, console.config.web.session_hours, address_of(request))
        target = str(form.get("next", "/"))
        response = RedirectResponse(target if target.startswith("/") and not target.startswith("//") else "/", 303)
        _cookie(console, response, SESSION_COOKIE, token, int(console.config.web.session_hours * 3600))
        response.delete_cookie(LOGIN_CSRF_COOKIE)
        return response

    async def logout(request: Request, account: Account) -> Response:
        token = request.cookies.get(SESSION_COOKIE, "")
        await console.work(accounts.close_session, token)
        response = RedirectResponse("/login", 303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    return [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", page(console, logout), methods=["POST"]),
    ]


def _open(session: Any, user_id: int, now: datetime, hours: float, address: str) -> str:
    from storage.console import User

    return accounts.open_session(session, session.get(User, user_id), now, hours, address)


def _login_again(console: Console, request: Request, status: int, message: str) -> Response:
    token = secrets.token_urlsafe(24)
    response = console.render(request, "login.html", None, status, csrf=token, error=message, next="/")
    _cookie(console, response, LOGIN_CSRF_COOKIE, token, 600)
    return response


def _cookie(console: Console, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict",
                        secure=console.config.web.secure_cookies, path="/")


def event_route(console: Console) -> Route:
    async def events(request: Request, account: Account) -> Response:
        async def stream() -> Any:
            async for version in console.hub.stream():
                if await request.is_disconnected():
                    return
                yield f"event: change\ndata: {version}\n\n"
        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    return Route("/events", page(console, events))


class Guard:
    """Pure ASGI middleware: the allowed networks, and headers every answer carries."""

    def __init__(self, app: ASGIApp, networks: Sequence[str]) -> None:
        self.app = app
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client") or ("", 0)
        if self.networks and not self._allowed(client[0]):
            await PlainTextResponse("此地址不在值班台允许访问的网络内。", status_code=403)(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"same-origin"),
                            (b"content-security-policy", b"default-src 'self'; img-src 'self' data:")]
                message = {**message, "headers": headers}
            await send(message)
        await self.app(scope, receive, with_headers)

    def _allowed(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


def shift_window(console: Console, instant: datetime) -> Any:
    from gateway.shifts.calendar import shift_at

    return shift_at(instant, console.config.calendar, console.config.zone)


def since_days(console: Console, days: float) -> datetime:
    return console.now() - timedelta(days=days)
