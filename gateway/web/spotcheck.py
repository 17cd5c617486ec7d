"""值班抽查: the units and their import, the plans with their seeds, each check with its tries,
reviewers' notes, "check now", and the 情况通报 of a plan.

Everyone signed in may look; the leader on duty, the secretariat and the admin may change
things. A finished check is a locked record (``storage.spotcheck``): the only change it takes
here is a reviewer's note, audited like every change made through the console. "Check now"
writes the checks for the running daemon to place, exactly as ``dutygw spotcheck now`` does.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.config import Config
from gateway.errors import InputError
from gateway.spotcheck import plan as drawing
from gateway.spotcheck import records
from gateway.spotcheck.figures import labels
from gateway.spotcheck.report import REPORT_PDF, REPORT_XLSX, check_row, load_figures, write_report
from gateway.spotcheck.units import parse_units, store_units
from gateway.web.accounts import Account
from gateway.web.app import Console, address_of, page, uploaded
from storage import queries
from storage import spotcheck as stored
from storage.spotcheck import SpotCheck

MANAGERS = ("leader", "secretariat", "admin")
TRY_LABELS = {"answered": "接听并按键", "no_key": "接听未按键", "no_answer": "无人接听", "busy": "占线",
              "unreachable": "无法接通", "unknown": "结果不明"}
STATE_LABELS = {"planned": "待抽查", "calling": "呼叫中"}
KIND_LABELS = {"plan": "抽查计划", "now": "即时抽查"}
MESSAGES = {"noted": "审核意见已添加。"}
DOWNLOADS = {"pdf": (REPORT_PDF, "application/pdf"),
             "xlsx": (REPORT_XLSX, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")}


def duration(seconds: float) -> str:
    """Seconds as staff read them: 30 秒, 5 分钟, 1.5 分钟."""
    if seconds < 60:
        return f"{seconds:g} 秒"
    return f"{seconds / 60:.1f}".removesuffix(".0") + " 分钟"


def routes(console: Console) -> list[Route]:
    console.templates.filters["duration"] = duration
    async def overview(request: Request, account: Account) -> Response:
        return await _overview(console, request, account)

    async def fragment(request: Request, account: Account) -> Response:
        """The checks' list alone: redrawn live as the daemon places calls and stores results."""
        raw = request.query_params.get("plan", "")
        plan_id = int(raw) if raw.isdigit() else None
        _, plans, checks = await console.read(_lists, plan_id)
        return console.render(request, "spotcheck_fragment.html", account, plans=plans, checks=checks,
                              plan_id=plan_id, kinds=KIND_LABELS, **_labels(console))

    async def import_units(request: Request, account: Account) -> Response:
        data, name = await uploaded(request, default_name="units.csv")
        try:
            count = await console.work(_import, data, name, account.name, console.now(), address_of(request))
        except InputError as exc:
            return await _overview(console, request, account, 400, import_error=exc.args[0].splitlines())
        return RedirectResponse(f"/spotcheck?msg=imported_{count}", 303)

    async def check_now(request: Request, account: Account) -> Response:
        form = await request.form()
        kind, _, name = str(form.get("target", "")).partition(":")
        names, groups = ([name], []) if kind == "unit" else ([], [name]) if kind == "group" else ([], [])
        try:
            plan_id, count = await console.work(_check_now, console.config, names, groups, account.name,
                                                console.now(), address_of(request))
        except InputError as exc:
            return await _overview(console, request, account, 400, now_error=exc.args[0])
        return RedirectResponse(f"/spotcheck?plan={plan_id}&msg=now_{count}", 303)

    async def detail(request: Request, account: Account) -> Response:
        check = await console.read(stored.check_with_tries, int(request.path_params["check_id"]))
        if check is None:
            return console.render(request, "error.html", account, 404, message="没有这次抽查。")
        return console.render(request, "spotcheck_check.html", account, check=check, **_labels(console),
                              may_change=account.role in MANAGERS,
                              message=MESSAGES.get(request.query_params.get("msg", ""), ""))

    async def note(request: Request, account: Account) -> Response:
        check_id = int(request.path_params["check_id"])
        form = await request.form()
        try:
            await console.work(_note, check_id, account, str(form.get("text", "")), console.now(),
                               address_of(request))
        except InputError as exc:
            return console.render(request, "error.html", account, 400, message=f"无法添加审核意见：{exc.args[0]}")
        return RedirectResponse(f"/spotcheck/checks/{check_id}?msg=noted", 303)

    async def report(request: Request, account: Account) -> Response:
        plan_id, fmt = int(request.path_params["plan_id"]), request.path_params["fmt"]
        if fmt not in DOWNLOADS:
            return Response("没有这种格式", status_code=404, media_type="text/plain; charset=utf-8")
        name, media = DOWNLOADS[fmt]
        try:
            data = await console.read(_report_file, console.config, plan_id, name, console.now())
        except InputError:
            return Response("没有这个抽查计划", status_code=404, media_type="text/plain; charset=utf-8")
        download = quote(f"值班抽查情况通报-{plan_id}.{fmt}")
        return Response(data, media_type=media, headers={"content-disposition": f"attachment; filename*=UTF-8''{download}"})

    return [
        Route("/spotcheck", page(console, overview)),
        Route("/fragment/spotcheck", page(console, fragment)),
        Route("/spotcheck/units", page(console, import_units, MANAGERS), methods=["POST"]),
        Route("/spotcheck/now", page(console, check_now, MANAGERS), methods=["POST"]),
        Route("/spotcheck/checks/{check_id:int}", page(console, detail)),
        Route("/spotcheck/checks/{check_id:int}/note", page(console, note, MANAGERS), methods=["POST"]),
        Route("/spotcheck/plans/{plan_id:int}/report.{fmt}", page(console, report)),
    ]


async def _overview(console: Console, request: Request, account: Account, status: int = 200,
                    **errors: Any) -> Response:
    raw = request.query_params.get("plan", "")
    plan_id = int(raw) if raw.isdigit() else None
    units, plans, checks = await console.read(_lists, plan_id)
    return console.render(request, "spotcheck.html", account, status, units=units, plans=plans, checks=checks,
                          plan_id=plan_id, groups=sorted({u.group_name for u in units if u.active and u.group_name}),
                          may_change=account.role in MANAGERS, message=_message(request.query_params.get("msg", "")),
                          kinds=KIND_LABELS, **_labels(console), **errors)


def _lists(session: Session, plan_id: int | None) -> tuple[Any, Any, Any]:
    return stored.listed_units(session), stored.listed_plans(session), stored.listed_checks(session, plan_id)


def _labels(console: Console) -> dict[str, Any]:
    names = labels(console.config.duty.answer_within_rings)

    def result(check: SpotCheck) -> str:
        category = check_row(check).category
        return names[category] if category else STATE_LABELS.get(check.state, check.state)

    def category(check: SpotCheck) -> str:
        return check_row(check).category or check.state

    return {"result": result, "category": category, "tries": TRY_LABELS}


def _message(code: str) -> str:
    kind, _, count = code.partition("_")
    if kind == "imported" and count.isdigit():
        return f"已导入 {count} 个单位（未列出的单位已停用）。"
    if kind == "now" and count.isdigit():
        return f"已安排立即抽查 {count} 次，由运行中的网关拨打。"
    return ""


def _import(session: Session, data: bytes, name: str, actor: str, now: datetime, address: str) -> int:
    """The CLI's parser and store: every row checked first, so a bad row leaves nothing half-imported."""
    units = parse_units(data, name)
    count = store_units(session, units, name, now)
    queries.audit(session, now, actor, "spotcheck.import", "spot_units", {}, {"file": name, "units": count},
                  address)
    return count


def _check_now(session: Session, config: Config, names: list[str], groups: list[str], actor: str, now: datetime,
               address: str) -> tuple[int, int]:
    """What ``dutygw spotcheck now`` writes: a plan of kind "now" due at once, for the daemon to place."""
    if not names and not groups:
        raise InputError("请选择要立即抽查的单位或分组")
    today = now.astimezone(config.zone).date()
    units = records.units_named(session, names, groups)
    plan = records.create_plan(session, "即时抽查", "now", today, today, (), units,
                               [drawing.Drawn(u.id, now) for u in units], checks_per_unit=1, seed=0,
                               spot=config.spotcheck, now=now)
    queries.audit(session, now, actor, "spotcheck.now", f"spot_plan:{plan.id}", {},
                  {"units": names, "groups": groups, "checks": [c.id for c in plan.checks]}, address)
    return plan.id, len(plan.checks)


def _note(session: Session, check_id: int, account: Account, text: str, now: datetime, address: str) -> None:
    note = records.add_note(session, check_id, account.label, text, now)
    queries.audit(session, now, account.name, "spotcheck.note", f"spot_check:{check_id}", {},
                  {"reviewer": note.reviewer, "text": note.text}, address)


def _report_file(session: Session, config: Config, plan_id: int, name: str, now: datetime) -> bytes:
    """The 情况通报 made afresh from the stored checks, in a folder of its own (two downloads at
    once never share a file; the published copy in the data folder is left as it was mailed)."""
    figures = load_figures(session, plan_id, config.duty.answer_within_rings)
    with tempfile.TemporaryDirectory(prefix="dutygw-spotcheck-") as folder:
        files = write_report(figures, config, Path(folder), now.astimezone(config.zone).date())
        return files.path(name).read_bytes()
