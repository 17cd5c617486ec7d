"""报告: the shift reports already made, with their HTML, PDF and XLSX."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from gateway.web.accounts import Account
from gateway.web.app import Console, page
from storage.reports import ReportRun

MEDIA = {".html": "text/html; charset=utf-8", ".pdf": "application/pdf", ".png": "image/png",
         ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def routes(console: Console) -> list[Route]:
    async def listing(request: Request, account: Account) -> Response:
        runs = await console.read(_runs)
        return console.render(request, "reports.html", account, runs=runs)

    async def file(request: Request, account: Account) -> Response:
        run = await console.read(lambda s: s.get(ReportRun, int(request.path_params["run_id"])))
        name = request.path_params["name"]
        if run is None or name not in run.files:
            return Response("没有这个文件", status_code=404, media_type="text/plain; charset=utf-8")
        path = Path(run.directory) / name
        return FileResponse(path, media_type=MEDIA.get(path.suffix, "application/octet-stream"))

    return [Route("/reports", page(console, listing)), Route("/reports/{run_id:int}/{name}", page(console, file))]


def _runs(session: Session) -> list[ReportRun]:
    return list(session.scalars(select(ReportRun).order_by(ReportRun.made_at.desc()).limit(60)))
