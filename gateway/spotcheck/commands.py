"""``dutygw spotcheck import|plan|now|list|note|report``: the spot checks from the command line.

What staff read is Chinese; ``--format json`` is for programs. Checks are placed by the
running daemon (``dutygw run``): ``plan`` and ``now`` put them in the database, the
daemon calls when they are due, and ``now --wait`` waits for the results.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time as wall
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from gateway.calls.commands import display_width, pad
from gateway.cli import config_from_args
from gateway.clock import SystemClock, local_iso
from gateway.config import Config
from gateway.errors import InputError
from gateway.spotcheck import plan as drawing
from gateway.spotcheck import records
from gateway.spotcheck.figures import labels
from gateway.spotcheck.report import check_row, load_figures, publish, write_report
from gateway.spotcheck.units import import_units
from storage.db import Database, open_database
from storage.spotcheck import SpotCheck, SpotPlan, SpotUnit

JSON_FIELDS = ("id", "plan_id", "unit_name", "group_name", "number", "drawn_at", "due_at", "moves", "state",
               "outcome", "tries", "ringing_at", "answered_at", "ended_at", "ring_seconds", "rings", "rule_met",
               "digit", "recording")
_TIMES = {"drawn_at", "due_at", "ringing_at", "answered_at", "ended_at"}


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    spot = subparsers.add_parser("spotcheck", help="spot checks of subordinate units' duty lines (值班抽查)")
    actions = spot.add_subparsers(dest="spot_command", required=True, metavar="ACTION")
    importer = actions.add_parser("import", help="import the units: 单位名称,分组,值班电话,联系人 (CSV)")
    importer.add_argument("file", type=Path, metavar="FILE.csv")
    importer.set_defaults(func=_import)
    planner = actions.add_parser("plan", help="draw a plan's check times over a period (nights, rest-day day shifts)")
    planner.add_argument("--from", dest="first", required=False, metavar="DATE")
    planner.add_argument("--to", dest="last", required=False, metavar="DATE")
    planner.add_argument("--title", default="", help="e.g. 2026年国庆节期间")
    planner.add_argument("--checks", type=int, default=None, help="checks per unit (default [spotcheck])")
    planner.add_argument("--seed", type=int, default=None, help="default: a fresh random seed, recorded")
    _add_selection(planner)
    planner.add_argument("--no-nights", action="store_true", help="leave out the night shifts")
    planner.add_argument("--no-rest-days", action="store_true", help="leave out the day shifts of rest days")
    planner.add_argument("--verify", type=int, metavar="PLAN", help="redraw a stored plan from its seed and compare")
    planner.set_defaults(func=_plan)
    now = actions.add_parser("now", help="check one unit or a group at once (the daemon places the calls)")
    _add_selection(now)
    now.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help="wait for the results")
    now.set_defaults(func=_now)
    lister = actions.add_parser("list", help="the checks and their results (or --units, --plans)")
    lister.add_argument("--plan", type=int)
    lister.add_argument("--units", action="store_true")
    lister.add_argument("--plans", action="store_true")
    lister.add_argument("--format", choices=("table", "json"), default="table")
    lister.set_defaults(func=_list)
    note = actions.add_parser("note", help="add a reviewer's note to a check (the only change a record takes)")
    note.add_argument("check", type=int, metavar="CHECK")
    note.add_argument("text")
    note.add_argument("--by", required=True, metavar="NAME")
    note.set_defaults(func=_note)
    report = actions.add_parser("report", help="write the 情况通报 of a plan (PDF, XLSX)")
    report.add_argument("--plan", type=int, required=True)
    report.add_argument("--out", type=Path, default=None, help="folder (default: <data_dir>/spotcheck/plan-N)")
    report.add_argument("--mail", action="store_true", help="also queue it for [spotcheck] report_recipients")
    report.add_argument("--format", choices=("text", "json"), default="text")
    report.set_defaults(func=_report)


def _add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--unit", action="append", default=[], metavar="NAME", help="a unit (repeatable)")
    parser.add_argument("--group", action="append", default=[], metavar="GROUP", help="a group (repeatable)")


def _with_db(config: Config) -> Database:
    return open_database(config.database_url)


def _import(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    db = _with_db(config)
    try:
        with db.session() as session:
            count = import_units(session, args.file, SystemClock().now())
    finally:
        db.dispose()
    print(f"已导入 {count} 个单位（{args.file}）")
    return 0


def _plan(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    db = _with_db(config)
    try:
        if args.verify is not None:
            return _verify(db, config, args.verify)
        if not args.first or not args.last:
            raise InputError("plan needs --from DATE and --to DATE (or --verify PLAN)")
        first, last = _date(args.first), _date(args.last)
        print(make_plan(db, config, first, last, title=args.title, checks=args.checks, seed=args.seed,
                        names=args.unit, groups=args.group, nights=not args.no_nights,
                        rest_days=not args.no_rest_days, now=SystemClock().now()))
    finally:
        db.dispose()
    return 0


def make_plan(db: Database, config: Config, first: date, last: date, *, title: str = "", checks: int | None = None,
              seed: int | None = None, names: list[str] | None = None, groups: list[str] | None = None,
              nights: bool = True, rest_days: bool = True, now: datetime) -> str:
    """Draw and store a plan; returns what staff read (the plan and its times)."""
    if last < first:
        raise InputError("--to is before --from")
    spot = config.spotcheck
    per_unit = checks or spot.checks_per_unit
    seed = secrets.randbelow(2**31) if seed is None else seed
    windows = drawing.from_now(drawing.windows_for(first, last, config.calendar, config.zone, nights=nights,
                                                   rest_days=rest_days), now)
    with db.session() as session:
        units = records.units_named(session, names or [], groups or [])
        drawn = drawing.draw([u.id for u in units], windows, checks_per_unit=per_unit, seed=seed,
                             max_concurrent=spot.max_concurrent, slot_seconds=spot.slot_seconds)
        plan = records.create_plan(session, title or f"{first:%Y年%m月%d日}至{last:%m月%d日}", "plan", first, last,
                                   windows, units, drawn, checks_per_unit=per_unit, seed=seed, spot=spot, now=now)
        lines = [(f"抽查计划 {plan.id}：{plan.title}，{len(units)} 个单位，每单位 {per_unit} 次，共 {len(drawn)} 次；"
                  f"随机种子 {seed}（可用 dutygw spotcheck plan --verify {plan.id} 复核）"),
                 "抽查时段：" + "；".join(w.label for w in windows)]
        lines += [f"  {c.id:>5}  {_local(c.due_at, config.zone)}  {c.unit_name}  {c.number}" for c in plan.checks]
    return "\n".join(lines)


def _verify(db: Database, config: Config, plan_id: int) -> int:
    with db.session() as session:
        plan = session.get(SpotPlan, plan_id)
        if plan is None:
            raise InputError(f"no spot-check plan {plan_id}")
        windows = [drawing.Window(datetime.fromisoformat(s), datetime.fromisoformat(e), label)
                   for s, e, label in plan.windows]
        stored = [drawing.Drawn(c.unit_id, c.drawn_at) for c in plan.checks]
        same = drawing.verify(stored, list(plan.unit_ids), windows, checks_per_unit=plan.checks_per_unit,
                              seed=plan.seed, max_concurrent=plan.max_concurrent, slot_seconds=plan.slot_seconds)
    print(f"抽查计划 {plan_id}：" + ("抽查时间与随机种子重新生成的结果一致" if same else "抽查时间与随机种子不一致！"))
    return 0 if same else 1


def _now(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    db = _with_db(config)
    try:
        ids = check_now(db, config, args.unit, args.group, SystemClock().now())
        print(f"已安排立即抽查 {len(ids)} 次（由运行中的 dutygw run 拨打）：{', '.join(map(str, ids))}")
        if args.wait > 0:
            _wait(db, config, ids, args.wait)
    finally:
        db.dispose()
    return 0


def check_now(db: Database, config: Config, names: list[str], groups: list[str], now: datetime) -> list[int]:
    if not names and not groups:
        raise InputError("name a unit (--unit) or a group (--group) to check now")
    today = now.astimezone(config.zone).date()
    with db.session() as session:
        units = records.units_named(session, names, groups)
        drawn = [drawing.Drawn(u.id, now) for u in units]
        plan = records.create_plan(session, "即时抽查", "now", today, today, (), units, drawn, checks_per_unit=1,
                                   seed=0, spot=config.spotcheck, now=now)
        return [c.id for c in plan.checks]


def _wait(db: Database, config: Config, ids: list[int], seconds: float) -> None:
    deadline = wall.monotonic() + seconds
    while True:
        with db.session() as session:
            rows = list(session.scalars(select(SpotCheck).where(SpotCheck.id.in_(ids))
                                        .options(selectinload(SpotCheck.attempts), selectinload(SpotCheck.notes))))
            if all(r.state == "done" for r in rows) or wall.monotonic() > deadline:
                print(render_checks(rows, config))
                return
        wall.sleep(1.0)


def _list(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    db = _with_db(config)
    try:
        with db.session() as session:
            if args.units:
                print(_units_table(list(session.scalars(select(SpotUnit).order_by(SpotUnit.group_name, SpotUnit.id)))))
                return 0
            if args.plans:
                print(_plans_table(list(session.scalars(select(SpotPlan).order_by(SpotPlan.id))), config.zone))
                return 0
            query = select(SpotCheck).options(selectinload(SpotCheck.attempts), selectinload(SpotCheck.notes))
            if args.plan is not None:
                query = query.where(SpotCheck.plan_id == args.plan)
            rows = list(session.scalars(query.order_by(SpotCheck.due_at, SpotCheck.id)))
            if args.format == "json":
                print(json.dumps([check_json(r, config.zone) for r in rows], ensure_ascii=False, indent=2))
            else:
                print(render_checks(rows, config))
    finally:
        db.dispose()
    return 0


def check_json(row: SpotCheck, tz: ZoneInfo) -> dict[str, Any]:
    out: dict[str, Any] = {k: local_iso(getattr(row, k), tz) if k in _TIMES else getattr(row, k) for k in JSON_FIELDS}
    out["attempts"] = [{"try": a.try_no, "action_id": a.action_id, "sent_at": local_iso(a.sent_at, tz),
                        "outcome": a.outcome, "rings": a.rings, "hangup_cause": a.hangup_cause} for a in row.attempts]
    out["notes"] = [{"by": n.reviewer, "at": local_iso(n.written_at, tz), "text": n.text} for n in row.notes]
    return out


_HEADINGS = ("编号", "抽查时间", "单位", "值班电话", "振铃", "结果", "拨打", "备注")


def render_checks(rows: list[SpotCheck], config: Config) -> str:
    """The checks as a table for staff, columns padded by display width (CJK takes two)."""
    if not rows:
        return "没有抽查记录"
    lines = [_HEADINGS, *(_check_cells(row, config) for row in rows)]
    widths = [max(display_width(line[i]) for line in lines) for i in range(len(_HEADINGS))]
    return "\n".join("  ".join(pad(cell, w) for cell, w in zip(line, widths)).rstrip() for line in lines)


def _check_cells(row: SpotCheck, config: Config) -> tuple[str, ...]:
    name = labels(config.duty.answer_within_rings)
    category = check_row(row).category
    result = name[category] if category else {"planned": "待抽查", "calling": "呼叫中"}.get(row.state, row.state)
    tries = "、".join(name.get(_try_category(a.outcome), a.outcome or "呼叫中") for a in row.attempts)
    extra = [f"顺延{row.moves}次（{row.move_reason}）" if row.moves else "",
             f"各次：{tries}" if len(row.attempts) > 1 else "", f"录音 {row.recording}" if row.recording else "",
             *(f"审核：{n.reviewer} {n.text}" for n in row.notes)]
    return (str(row.id), _local(row.due_at, config.zone), row.unit_name, row.number,
            f"{row.rings}声" if row.rings is not None else "", result, str(len(row.attempts)),
            "；".join(e for e in extra if e))


def _try_category(outcome: str | None) -> str:
    return "within" if outcome == "answered" else outcome or ""


def _units_table(units: list[SpotUnit]) -> str:
    if not units:
        return "尚未导入单位"
    return "\n".join(f"{u.group_name or '未分组'}  {u.name}  {u.number}  {u.contact}{'' if u.active else '（已停用）'}"
                     for u in units)


def _plans_table(plans: list[SpotPlan], tz: ZoneInfo) -> str:
    if not plans:
        return "没有抽查计划"
    return "\n".join(f"{p.id:>4}  {p.title}  {p.first_day}—{p.last_day}  {len(p.checks)} 次  种子 {p.seed}"
                     f"{'  通报已发 ' + (local_iso(p.report_sent_at, tz) or '') if p.report_sent_at else ''}"
                     for p in plans)


def _note(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    db = _with_db(config)
    try:
        with db.session() as session:
            records.add_note(session, args.check, args.by, args.text, SystemClock().now())
    finally:
        db.dispose()
    print(f"已为抽查 {args.check} 添加审核意见")
    return 0


def _report(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    db = _with_db(config)
    now = SystemClock().now()
    try:
        with db.session() as session:
            if args.out is not None:
                figures = load_figures(session, args.plan, config.duty.answer_within_rings)
                files = write_report(figures, config, args.out, now.astimezone(config.zone).date())
            else:
                files = publish(session, config, args.plan, now, send=args.mail)
            figures = load_figures(session, args.plan, config.duty.answer_within_rings)
    finally:
        db.dispose()
    if args.format == "json":
        print(json.dumps({"plan": args.plan, "folder": str(files.folder), "title": files.title,
                          "units": figures.units, "checks": figures.total.total, "pending": figures.pending,
                          **dict(figures.total.counts)}, ensure_ascii=False, indent=2))
    else:
        print(f"{files.title}\n已写入 {files.folder}（spotcheck.pdf、spotcheck.xlsx）")
    return 0


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{text!r} is not a date (use 2026-10-01)") from None


def _local(instant: datetime | None, tz: ZoneInfo) -> str:
    return "" if instant is None else f"{instant.astimezone(tz):%Y-%m-%d %H:%M:%S}"


