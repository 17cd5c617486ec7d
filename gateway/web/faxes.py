"""来文登记: the register, one receipt's pages, text and fields, corrections, 签收 and 分送.

A classified receipt (密级 set) shows its title, text, recipients and page images only to
the roles in ``[web] classified_roles``; everyone else sees that it exists, its number,
its time and its marks, so it can still be signed for and passed on.
"""

from __future__ import annotations

import asyncio
import io
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway import terms
from gateway.web.accounts import Account
from gateway.web.app import Console, address_of, page
from storage import queries
from storage.faxes import Receipt

PAGE_SIZE = 50
HIDDEN = ("title", "recipients")
"""Fields of a classified receipt shown only to the allowed roles (with the text and images)."""
FIELD_LABELS = {
    "doc_number": "文号", "issuer": "发文机关", "title": "标题", "urgency": "紧急程度", "classification": "密级",
    "recipients": "主送", "doc_date": "成文日期", "sender": "发送人",
}
STATUS_LABELS = terms.RECEIPT_STATUS
PAGE_WIDTH = 1000


def routes(console: Console) -> list[Route]:
    async def register(request: Request, account: Account) -> Response:
        offset = max(0, int(request.query_params.get("offset", "0") or 0))
        unsigned = bool(request.query_params.get("unsigned"))
        rows, fixes = await console.read(_register, unsigned, offset)
        return console.render(request, "faxes.html", account, rows=rows, fixes=fixes, offset=offset,
                              unsigned=unsigned, page_size=PAGE_SIZE, may_see=console.may_see_classified(account),
                              status_labels=STATUS_LABELS, effective=queries.effective)

    async def detail(request: Request, account: Account) -> Response:
        found = await console.read(_detail, int(request.path_params["receipt_id"]))
        if found is None:
            return console.render(request, "error.html", account, 404, message="没有这份来文。")
        allowed = console.may_see_classified(account) or not found["receipt"].is_classified
        return console.render(request, "fax.html", account, **found, allowed=allowed, labels=FIELD_LABELS,
                              status_labels=STATUS_LABELS, hidden=HIDDEN, effective=queries.effective,
                              message=request.query_params.get("msg"))

    async def image(request: Request, account: Account) -> Response:
        receipt_id, page_no = int(request.path_params["receipt_id"]), int(request.path_params["page_no"])
        receipt = await console.read(lambda s: s.get(Receipt, receipt_id))
        if receipt is not None and receipt.is_classified and not console.may_see_classified(account):
            return Response("无权查看密件", status_code=403, media_type="text/plain; charset=utf-8")
        if receipt is None or not receipt.original_path:
            return Response("没有这一页", status_code=404, media_type="text/plain; charset=utf-8")
        png = await asyncio.to_thread(render_page, Path(receipt.original_path), receipt.content_type, page_no)
        if png is None:
            return Response("没有这一页", status_code=404, media_type="text/plain; charset=utf-8")
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    async def correct(request: Request, account: Account) -> Response:
        receipt_id = int(request.path_params["receipt_id"])
        form = await request.form()
        receipt = await console.read(lambda s: s.get(Receipt, receipt_id))
        if receipt is None:
            return console.render(request, "error.html", account, 404, message="没有这份来文。")
        if receipt.is_classified and not console.may_see_classified(account):
            return console.render(request, "error.html", account, 403, message="无权修改密件内容。")
        fields = {n: str(form[n]).strip() for n in queries.CORRECTABLE if n in form}
        await console.work(_correct, receipt_id, fields, account.name, console.now(), address_of(request))
        return RedirectResponse(f"/faxes/{receipt_id}?msg=corrected", 303)

    async def sign(request: Request, account: Account) -> Response:
        receipt_id = int(request.path_params["receipt_id"])
        await console.work(queries.sign_receipt, receipt_id, account.name, console.now(), address_of(request))
        return RedirectResponse(f"/faxes/{receipt_id}?msg=signed", 303)

    async def deliver(request: Request, account: Account) -> Response:
        receipt_id = int(request.path_params["receipt_id"])
        recipient = str((await request.form()).get("recipient", "")).strip()
        if recipient:
            await console.work(queries.deliver_receipt, receipt_id, recipient, account.name, console.now(),
                               address_of(request))
        return RedirectResponse(f"/faxes/{receipt_id}?msg=delivered", 303)

    staff = ("officer", "leader", "secretariat", "admin")
    return [
        Route("/faxes", page(console, register)),
        Route("/faxes/{receipt_id:int}", page(console, detail)),
        Route("/faxes/{receipt_id:int}/pages/{page_no:int}.png", page(console, image)),
        Route("/faxes/{receipt_id:int}/correct", page(console, correct, staff), methods=["POST"]),
        Route("/faxes/{receipt_id:int}/sign", page(console, sign, staff), methods=["POST"]),
        Route("/faxes/{receipt_id:int}/deliver", page(console, deliver, staff), methods=["POST"]),
    ]


def _register(session: Session, unsigned: bool, offset: int) -> tuple[list[Receipt], dict[int, Any]]:
    rows = queries.receipt_register(session, unsigned=unsigned, limit=PAGE_SIZE, offset=offset)
    return rows, queries.corrections(session, [r.id for r in rows])


def _detail(session: Session, receipt_id: int) -> dict[str, Any] | None:
    receipt = session.get(Receipt, receipt_id)
    if receipt is None:
        return None
    pages = list(receipt.page_texts)
    return {"receipt": receipt, "pages": pages, "fixes": queries.corrections(session, [receipt_id]).get(receipt_id, {}),
            "deliveries": queries.deliveries(session, receipt_id)}


def _correct(session: Session, receipt_id: int, fields: dict[str, str], actor: str, at: datetime,
             address: str) -> None:
    for name, value in fields.items():
        queries.correct_receipt(session, receipt_id, name, value, actor, at, address)


def render_page(path: Path, content_type: str | None, page_no: int) -> bytes | None:
    """One page of the original as a PNG, square pixels, ``PAGE_WIDTH`` wide."""
    from ocr.pages import load_pages

    try:
        pages = load_pages(path, content_type=content_type, max_pages=page_no, max_pixels=60_000_000)
    except Exception:  # noqa: BLE001 - an original that cannot be read, for any reason, is shown as missing
        return None
    if page_no < 1 or page_no > len(pages):
        return None
    fax = pages[page_no - 1]
    image = fax.image.convert("L")
    x_dpi, y_dpi = fax.dpi
    height = round(image.height * (x_dpi / y_dpi if y_dpi else 1.0) * PAGE_WIDTH / image.width)
    image = image.resize((PAGE_WIDTH, max(1, height)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
