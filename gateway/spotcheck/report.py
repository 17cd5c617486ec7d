"""The 情况通报 (spot-check write-up) of one plan: figures from the stored checks, as PDF and XLSX.

The layout is the shift report's (``gateway.report.layout`` sections and tables), so the
PDF machinery, the CJK font and the chart font are the same; the text follows the
customary form of a 情况通报 draft: title, 主送, the period and scope, 一、总体情况,
二、各单位抽查情况, 三、存在的问题, 四、有关要求, then the issuing office and the date.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from gateway.config import Config
from gateway.errors import InputError
from gateway.outbox import Attachment, MailNotice, queue_mail
from gateway.report import pdf
from gateway.report.charts import ANSWERED_COLOUR, LATE_COLOUR, MISSED_COLOUR, chart_font
from gateway.report.layout import Document, Section, Table
from gateway.spotcheck.figures import (
    CATEGORIES,
    CheckRow,
    SpotFigures,
    Tally,
    TryRow,
    compute,
    labels,
)
from storage.spotcheck import SpotCheck, SpotPlan

REPORT_PDF = "spotcheck.pdf"
REPORT_XLSX = "spotcheck.xlsx"
CHART_PNG = "spotcheck.png"
MAIL_KIND = "spotcheck"
COLOURS = {"within": ANSWERED_COLOUR, "late": LATE_COLOUR, "no_key": "#8e24aa", "no_answer": MISSED_COLOUR,
           "busy": "#1565c0", "unreachable": "#424242", "unknown": "#9e9e9e"}
REQUIREMENTS = (
    "（一）各单位要进一步提高认识，严格落实24小时专人值班和领导带班制度，确保值班电话随时有人接听。",
    "（二）值班人员要坚守岗位，值班电话须在{rings}声内接听，不得设置呼叫转移、语音信箱或无人值守。",
    "（三）对本次抽查中未接听、超时接听或无法接通的单位，请于3个工作日内查明原因、落实整改，并将整改情况书面报{office}。",
)


@dataclass(frozen=True)
class ReportFiles:
    folder: Path
    title: str
    text: str

    def path(self, name: str) -> Path:
        return self.folder / name


def load_figures(session: Session, plan_id: int, within_rings: int) -> SpotFigures:
    plan = session.get(SpotPlan, plan_id)
    if plan is None:
        raise InputError(f"no spot-check plan {plan_id}", remedy="see 'dutygw spotcheck list --plans'")
    checks = session.scalars(select(SpotCheck).where(SpotCheck.plan_id == plan_id)
                             .options(selectinload(SpotCheck.attempts), selectinload(SpotCheck.notes)))
    return compute(plan.id, plan.title, plan.first_day, plan.last_day, plan.seed, within_rings,
                   [check_row(c) for c in checks])


def check_row(c: SpotCheck) -> CheckRow:
    return CheckRow(
        c.id, c.unit_name, c.group_name, c.number, c.drawn_at, c.due_at, c.moves, c.state, c.outcome, c.tries,
        c.answered_at, c.ended_at, c.ring_seconds, c.rings, c.rule_met, c.digit, c.recording,
        tuple(TryRow(a.try_no, a.sent_at, a.outcome, a.rings) for a in c.attempts),
        tuple(f"{n.reviewer}：{n.text}" for n in c.notes),
    )


def document(figures: SpotFigures, config: Config, issued: date) -> Document:
    spot, tz = config.spotcheck, config.zone
    name = labels(figures.within_rings)
    return Document(
        title=f"关于{figures.title}值班抽查情况的通报（草稿）",
        sections=(
            Section(f"{spot.addressees}：", (_opening(figures, config),)),
            Section("一、总体情况", (_overall(figures, name),), (_group_table(figures, name),), ("spot",)),
            Section("二、各单位抽查情况", (), (_unit_table(figures, name),)),
            Section("三、存在的问题", _problems(figures, name, tz)),
            Section("四、有关要求", tuple(r.format(rings=figures.within_rings, office=spot.office)
                                      for r in REQUIREMENTS)),
            Section(spot.office, (chinese_date(issued), f"（抽查时间由随机种子 {figures.seed} 生成，可复核）")),
            Section("附：抽查明细", (), (_detail_table(figures, name, tz),)),
        ),
    )


def write_report(figures: SpotFigures, config: Config, folder: Path, issued: date) -> ReportFiles:
    doc = document(figures, config, issued)
    png = chart_png(figures)
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, data in ((CHART_PNG, png), (REPORT_PDF, pdf.render(doc, {"spot": png})),
                            (REPORT_XLSX, xlsx_bytes(figures, config.zone))):
        temporary = folder / f"{file_name}.tmp"
        temporary.write_bytes(data)
        temporary.replace(folder / file_name)
    return ReportFiles(folder, doc.title, plain_text(doc))


def publish(session: Session, config: Config, plan_id: int, now: datetime, *, send: bool = True) -> ReportFiles:
    """Write the 情况通报 into the data folder and (``send``) queue it for its recipients."""
    figures = load_figures(session, plan_id, config.duty.answer_within_rings)
    folder = config.paths.data_dir / "spotcheck" / f"plan-{plan_id}"
    files = write_report(figures, config, folder, now.astimezone(config.zone).date())
    plan = session.get_one(SpotPlan, plan_id)
    if send:
        recipients = config.spotcheck.report_recipients or config.mail.report_recipients
        attachments = (Attachment(str(files.path(REPORT_PDF)), REPORT_PDF, "application/pdf"),
                       Attachment(str(files.path(REPORT_XLSX)), REPORT_XLSX,
                                  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))
        queue_mail(session, MailNotice(MAIL_KIND, files.title, files.text, attachments, ()), recipients, now)
        plan.report_sent_at = now
    return files


def plain_text(doc: Document) -> str:
    lines = [doc.title, ""]
    for section in doc.sections[:-1]:
        lines += [section.title, *section.lines, ""]
    lines.append(f"明细见附件 {REPORT_PDF}、{REPORT_XLSX}。")
    return "\n".join(lines)


# -- the text -------------------------------------------------------------------------------


def chinese_date(day: date) -> str:
    """2026年10月1日: the form a 公文 writes dates in."""
    return f"{day.year}年{day.month}月{day.day}日"


def _span(first: date, last: date) -> str:
    if first == last:
        return chinese_date(first)
    tail = f"{last.month}月{last.day}日" if first.year == last.year else chinese_date(last)
    return f"{chinese_date(first)}至{tail}"


def _opening(f: SpotFigures, config: Config) -> str:
    return (f"为检查{f.title}值班工作落实情况，{_span(f.first_day, f.last_day)}，"
            f"{config.duty.room_name}通过值班电话自动抽查，对{f.units}个单位的值班电话进行了随机抽查，"
            f"共抽查{f.total.total}次。现将抽查情况通报如下：")


def _overall(f: SpotFigures, name: dict[str, str]) -> str:
    t = f.total
    percent = "—" if t.passed_percent is None else f"{t.passed_percent:.1f}%"
    text = (f"共抽查{f.units}个单位{t.total}次，其中{name['within']}{t['within']}次（占{percent}），"
            f"{name['late']}{t['late']}次，接听后未按键确认{t['no_key']}次，无人接听{t['no_answer']}次，"
            f"占线{t['busy']}次（均已间隔重拨），无法接通{t['unreachable']}次")
    text += f"，结果不明{t['unknown']}次。" if t["unknown"] else "。"
    if f.pending:
        text += f"另有{f.pending}次抽查尚未完成，未计入。"
    return text


def _problems(f: SpotFigures, name: dict[str, str], tz: ZoneInfo) -> tuple[str, ...]:
    if not f.failed:
        return (f"本次抽查的各单位值班电话均在{f.within_rings}声内接听。",)
    lines = [f"以下{len({r.unit_name for r in f.failed})}个单位共{len(f.failed)}次未达到要求："]
    for number, row in enumerate(f.failed, start=1):
        what = name[row.category or "unknown"]
        if row.category == "late":
            what += f"（第{row.rings}声接听）"
        tries = f"，先后拨打{row.tries}次" if row.tries > 1 else ""
        lines.append(f"{number}. {row.unit_name}（{row.group_name or '未分组'}）："
                     f"{_moment(row.called_at, tz)}抽查，{what}{tries}。")
    return tuple(lines)


def _moment(instant: datetime, tz: ZoneInfo) -> str:
    local = instant.astimezone(tz)
    return f"{local.month}月{local.day}日{local:%H:%M}"


def _row(tally: Tally) -> tuple[str, ...]:
    percent = "—" if tally.passed_percent is None else f"{tally.passed_percent:.1f}%"
    return (str(tally.total), *(str(tally[c]) for c in CATEGORIES), percent)


def _group_table(f: SpotFigures, name: dict[str, str]) -> Table:
    headings = ("分组", "单位数", "抽查次数", *(name[c] for c in CATEGORIES), "达标率")
    rows = tuple((g, str(units), *_row(t)) for g, units, t in f.by_group)
    return Table(headings, rows + (("合计", str(f.units), *_row(f.total)),), "按分组统计")


def _unit_table(f: SpotFigures, name: dict[str, str]) -> Table:
    headings = ("单位", "分组", "抽查次数", *(name[c] for c in CATEGORIES), "达标率")
    return Table(headings, tuple((u, g or "未分组", *_row(t)) for u, g, t in f.by_unit), "按单位统计")


def _detail_table(f: SpotFigures, name: dict[str, str], tz: ZoneInfo) -> Table:
    headings = ("序号", "抽查时间", "单位", "值班电话", "振铃（声）", "结果", "拨打次数", "顺延", "录音", "审核意见")
    rows = tuple(
        (str(i), f"{r.called_at.astimezone(tz):%m-%d %H:%M:%S}", r.unit_name, r.number,
         "" if r.rings is None else str(r.rings), name.get(r.category or "", "未完成"), str(r.tries),
         f"{r.moves}次" if r.moves else "", "有" if r.recording else "", "；".join(r.notes))
        for i, r in enumerate(f.rows, start=1)
    )
    return Table(headings, rows, "每次抽查")


# -- chart and spreadsheet -----------------------------------------------------------------


def chart_png(f: SpotFigures) -> bytes:
    """How the checks came out, one bar per category, in the report's chart font."""
    font = chart_font()
    figure = Figure(figsize=(7.5, 3.2), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    name = labels(f.within_rings)
    counts = [f.total[c] for c in CATEGORIES]
    axes.bar([name[c] for c in CATEGORIES], counts, color=[COLOURS[c] for c in CATEGORIES])
    axes.set_title(f"值班抽查结果（共{f.total.total}次）", fontproperties=font)
    axes.set_ylabel("次数", fontproperties=font)
    axes.set_ylim(0, max(counts + [1]) * 1.2)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    for label in axes.get_xticklabels() + axes.get_yticklabels():
        label.set_fontproperties(font)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def xlsx_bytes(f: SpotFigures, tz: ZoneInfo) -> bytes:
    book = Workbook()
    detail = book.active
    detail.title = "抽查明细"
    name = labels(f.within_rings)
    detail.append(["编号", "抽查时间", "抽取时间", "单位", "分组", "值班电话", "振铃（声）", "振铃秒数", "结果",
                   "按键", "拨打次数", "顺延次数", "接听时间", "结束时间", "录音", "审核意见"])
    for r in f.rows:
        detail.append([r.id, _local(r.called_at, tz), _local(r.drawn_at, tz), r.unit_name, r.group_name, r.number,
                       r.rings, r.ring_seconds, name.get(r.category or "", "未完成"), r.digit or "", r.tries,
                       r.moves, _local(r.answered_at, tz), _local(r.ended_at, tz), r.recording or "",
                       "；".join(r.notes)])
    summary = book.create_sheet("按单位统计")
    summary.append(["单位", "分组", "抽查次数", *(name[c] for c in CATEGORIES)])
    for unit, group, tally in f.by_unit:
        summary.append([unit, group, tally.total, *(tally[c] for c in CATEGORIES)])
    for sheet in (detail, summary):
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _local(instant: datetime | None, tz: ZoneInfo) -> datetime | None:
    return None if instant is None else instant.astimezone(tz).replace(tzinfo=None)

