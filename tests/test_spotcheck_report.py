"""The 情况通报: a plan's checks placed against the real captures, then the write-up's figures
recomputed independently from the stored rows, its PDF read back with pdftotext, its XLSX
with openpyxl, and the automatic report on the plan's last day queued for mail."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from gateway.ami.peer import ANSWER_ACK, ANSWER_NO_KEY, BUSY, NO_ANSWER, UNREACHABLE
from gateway.cli import main
from gateway.spotcheck.figures import CheckRow, Tally, compute
from gateway.spotcheck.report import REPORT_PDF, REPORT_XLSX, load_figures
from storage.db import Database
from storage.paging import OutboundMail
from storage.spotcheck import SpotCheck, SpotPlan
from tests.spotcheck_rig import NIGHT, rig, run
from tests.test_spotcheck_calls import DRUG, HUANGSHI, PRISON, WUHAN, XIANGYANG
from tests.test_spotcheck_plan import _env

BEHAVIOURS = {WUHAN: ANSWER_ACK, HUANGSHI: BUSY, XIANGYANG: NO_ANSWER, PRISON: ANSWER_NO_KEY, DRUG: UNREACHABLE}


def _independent_counts(database: Database, plan_id: int) -> Counter[str]:
    """Straight from the rows, not through the report's code: what each category must say."""
    with database.session() as session:
        rows = session.execute(select(SpotCheck.outcome, SpotCheck.rule_met, SpotCheck.state)
                               .where(SpotCheck.plan_id == plan_id)).all()
    counts: Counter[str] = Counter()
    for outcome, rule_met, state in rows:
        assert state == "done"
        counts["checks"] += 1
        counts[("within" if rule_met else "late") if outcome == "answered" else outcome] += 1
    return counts


def test_the_report_holds_what_the_stored_checks_say(tmp_path: Path, database: Database,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    async def scenario() -> int:
        async with rig(tmp_path, database, dict(BEHAVIOURS), busy_tries=2, retry_gap_seconds=60,
                       max_concurrent=5, report_recipients=["bangongshi@duty.local"],
                       addressees="各市州司法局，厅直属各单位", office="省司法厅办公室") as r:
            ids = r.due_now(WUHAN, HUANGSHI, XIANGYANG, PRISON, DRUG, kind="plan")
            await r.pass_()
            await r.until(lambda: sum(c.state == "done" for c in r.checks(ids)) == 4)
            r.later(60)
            await r.pass_()
            await r.until(lambda: all(c.state == "done" for c in r.checks(ids)))
            r.later(5)
            await r.pass_()  # the plan's last day, every check done: the 情况通报 goes out
            with database.session() as session:
                return session.scalars(select(SpotPlan)).first().id  # type: ignore[union-attr]

    plan_id = run(scenario)
    counts = _independent_counts(database, plan_id)
    assert counts == Counter(checks=5, within=1, busy=1, no_answer=1, no_key=1, unreachable=1)
    with database.session() as session:
        figures = load_figures(session, plan_id, 3)
        plan = session.get_one(SpotPlan, plan_id)
        (mail,) = session.scalars(select(OutboundMail)).all()
        assert plan.report_sent_at is not None
    assert (figures.units, figures.total.total, figures.pending) == (5, counts["checks"], 0)
    for category in ("within", "late", "no_key", "no_answer", "busy", "unreachable"):
        assert figures.total[category] == counts[category], category
    assert mail.kind == "spotcheck" and mail.recipients == ["bangongshi@duty.local"]
    assert mail.subject == "关于2026年国庆节期间值班抽查情况的通报（草稿）"
    folder = tmp_path / "spotcheck" / f"plan-{plan_id}"
    assert sorted(a["filename"] for a in mail.attachments) == [REPORT_PDF, REPORT_XLSX]
    text = subprocess.run(["pdftotext", "-layout", str(folder / REPORT_PDF), "-"], capture_output=True,
                          text=True, check=True).stdout
    flat = "".join(text.split())
    for heading in ("关于2026年国庆节期间值班抽查情况的通报（草稿）", "各市州司法局，厅直属各单位：",
                    "一、总体情况", "二、各单位抽查情况", "三、存在的问题", "四、有关要求", "省司法厅办公室",
                    "附：抽查明细"):
        assert heading in flat, heading
    assert (f"共抽查{counts['checks'] and 5}个单位{counts['checks']}次，其中3声内接听{counts['within']}次"
            f"（占{100 * counts['within'] / counts['checks']:.1f}%），超过3声接听{counts['late']}次，"
            f"接听后未按键确认{counts['no_key']}次，无人接听{counts['no_answer']}次，占线{counts['busy']}次") in flat
    assert f"无法接通{counts['unreachable']}次" in flat
    assert "以下4个单位共4次未达到要求" in flat
    checks = {c.unit_name: c for c in _checks(database, plan_id)}
    busy = checks["黄石市司法局"]
    when = busy.attempts[-1].sent_at.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    assert f"黄石市司法局（市州司法局）：{when.month}月{when.day}日{when:%H:%M}抽查，占线，先后拨打2次。" in flat
    assert "为检查2026年国庆节期间值班工作落实情况，2026年10月2日，" in flat
    for unit in ("襄阳市司法局（市州司法局）", "省监狱管理局（厅直属单位）", "省戒毒管理局（厅直属单位）"):
        assert unit in flat
    assert "武汉市司法局（市州司法局）：" not in flat, "a unit that passed is not listed as failing"
    book = load_workbook(folder / REPORT_XLSX)
    detail = list(book["抽查明细"].iter_rows(min_row=2, values_only=True))
    assert sorted(row[0] for row in detail) == sorted(c.id for c in checks.values())
    assert Counter(row[8] for row in detail) == Counter(
        {"3声内接听": 1, "占线": 1, "无人接听": 1, "接听未按键": 1, "无法接通": 1})
    _env(tmp_path, monkeypatch, NIGHT + timedelta(days=1))
    assert main(["spotcheck", "report", "--plan", str(plan_id), "--out", str(tmp_path / "again"),
                 "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert {k: shown[k] for k in counts if k != "checks"} == {k: v for k, v in counts.items() if k != "checks"}
    assert (shown["checks"], shown["units"], shown["pending"]) == (counts["checks"], 5, 0)
    assert (tmp_path / "again" / REPORT_PDF).stat().st_size > 10_000


def _checks(database: Database, plan_id: int) -> list[SpotCheck]:
    from sqlalchemy.orm import selectinload

    with database.session() as session:
        return list(session.scalars(select(SpotCheck).where(SpotCheck.plan_id == plan_id)
                                    .options(selectinload(SpotCheck.attempts))))


def _row(i: int, outcome: str, rule_met: bool | None, group: str = "市州司法局") -> CheckRow:
    return CheckRow(i, f"单位{i}", group, "02700000000", NIGHT, NIGHT + timedelta(minutes=i), 0, "done", outcome,
                    1, None, None, None, 5 if outcome == "answered" and not rule_met else 2, rule_met, None, None)


def test_late_answers_and_groups_are_tallied_apart() -> None:
    rows = [_row(1, "answered", True), _row(2, "answered", False), _row(3, "answered", False, "厅直属单位"),
            _row(4, "no_answer", False, "厅直属单位")]
    figures = compute(1, "测试", NIGHT.date(), NIGHT.date(), 1, 3, rows)
    assert (figures.total["within"], figures.total["late"], figures.total["no_answer"]) == (1, 2, 1)
    assert [(g, n, t.total, t["late"]) for g, n, t in figures.by_group] == [("市州司法局", 2, 2, 1),
                                                                          ("厅直属单位", 2, 2, 1)]
    assert Tally.of(rows).passed_percent == 25.0
    assert [r.id for r in figures.failed] == [2, 3, 4]
