"""What the printed report and the spreadsheet look like to duty staff: one vocabulary, no
internal values, the urgent fax marked, a page total, signature lines, no stranded heading."""

from __future__ import annotations

import re
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from gateway import terms
from gateway.calls.commands import render_table
from gateway.config import Config
from gateway.report.layout import SIGNATURE_LINES, URGENT_MARK, Document, Section, Table
from gateway.report.make import ReportFiles, write_report
from gateway.report.pdf import render as render_pdf
from gateway.report.query import shift_figures
from storage.calls import Call
from storage.db import Database
from tests.report_night import NIGHT, fill_night, night_config


@pytest.fixture
def night(database: Database, tmp_path: Path) -> tuple[Database, Config, ReportFiles]:
    config = night_config(tmp_path / "var")
    fill_night(database, config)
    return database, config, write_report(shift_figures(database, config, NIGHT), config, tmp_path / "out")


def _pdf_pages(path: Path) -> list[str]:
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True, timeout=120).stdout
    return [page for page in text.split("\f") if page.strip()]


def _sheet_rows(files: ReportFiles) -> tuple[list[str], list[tuple[object, ...]], object]:
    sheet = load_workbook(files.path("calls.xlsx")).active
    rows = list(sheet.iter_rows(values_only=True))
    return [str(h) for h in rows[0]], rows[1:], sheet


def test_spreadsheet_has_a_filter_wide_time_columns_and_no_internal_values(
        night: tuple[Database, Config, ReportFiles]) -> None:
    _, _, files = night
    headings, rows, sheet = _sheet_rows(files)
    assert sheet.auto_filter.ref == f"A1:{chr(ord('A') + len(headings) - 1)}{len(rows) + 1}"
    for index, heading in enumerate(headings):
        column = sheet.cell(row=1, column=index + 1).column_letter
        cells = [sheet.cell(row=r + 2, column=index + 1) for r in range(len(rows))]
        if any(isinstance(c.value, datetime) for c in cells):
            # "2026-11-21 22:30:01" is 19 characters; Excel shows ##### below that
            assert sheet.column_dimensions[column].width >= 19, heading
            assert all(c.number_format == "yyyy-mm-dd hh:mm:ss" for c in cells if isinstance(c.value, datetime))
    values = {str(v) for row in rows for v in row if v is not None}
    assert not {"pbx", "in", "out", "answered", "missed_busy", "unknown"} & values
    assert not any(re.fullmatch(r"\d{10}\.\d+", v) for v in values)  # no Linkedid / Uniqueid
    assert not any(v.isascii() and v.isalpha() for v in values), sorted(v for v in values if v.isascii())
    assert "Linkedid" not in headings and all(not h.isascii() for h in headings)
    assert terms.AUTO_ANSWERED in values  # the fax call is answered by the fax machine, in words


def test_one_word_for_one_thing_in_the_cli_the_spreadsheet_and_the_pdf(
        night: tuple[Database, Config, ReportFiles]) -> None:
    db, config, files = night
    pdf = "".join(_pdf_pages(files.path("report.pdf")))
    html = files.path("report.html").read_text(encoding="utf-8")
    _, rows, _ = _sheet_rows(files)
    sheet = {str(v) for row in rows for v in row if v is not None}
    with db.session() as session:
        cli = render_table(list(session.query(Call).all()), config.zone)
    for word in (terms.WITHHELD, terms.MISSED_OUTCOME["missed_busy"]):
        assert word in cli, (word, "cli")
        assert word in sheet, (word, "sheet")
    busy = terms.MISSED_OUTCOME["missed_busy"]  # the PDF and HTML list missed calls, not the answered withheld one
    assert busy in pdf and busy in html
    for other in ("未显示号码", "未接(占线)", "呼入", "状态不明", "忙线"):
        assert other not in cli + pdf + html and other not in sheet, other


def test_pdf_has_page_totals_signature_lines_and_marks_the_urgent_fax(
        night: tuple[Database, Config, ReportFiles]) -> None:
    _, _, files = night
    pages = _pdf_pages(files.path("report.pdf"))
    total = len(pages)
    assert total >= 2
    for number, page in enumerate(pages, start=1):
        assert f"第{number}页共{total}页" in re.sub(r"\s+", "", page)
    text = "".join(pages)
    for line in SIGNATURE_LINES:
        assert re.sub(r"\s+", "", line) in re.sub(r"\s+", "", text)
    urgent_row = next(line for line in text.splitlines() if "传真〔2026〕0137号" in line)
    assert URGENT_MARK in urgent_row
    ordinary_row = next(line for line in text.splitlines() if "传真〔2026〕0139号" in line)
    assert URGENT_MARK not in ordinary_row
    assert 'background:#f8d0d0' in files.path("report.html").read_text(encoding="utf-8")


HEADING = re.compile(r"^\s*([一二三四五六七八九十]+、|表：)")


@pytest.mark.parametrize("filler", range(38, 50, 2))
def test_no_heading_is_left_alone_at_the_foot_of_a_page(filler: int, tmp_path: Path) -> None:
    lines = tuple(f"第{i}行：交接班记录文字。" for i in range(filler))
    table = Table(("登记号", "状态"), tuple((f"传真〔2026〕{i:04d}号", "已登记") for i in range(12)), "表：未签收的来文")
    doc = Document("值班报告", (Section("一、班次", lines), Section("二、来文", ("收文 12 件。",), tables=(table,)),
                               Section("三、交接班事项", lines)))
    path = tmp_path / "r.pdf"
    path.write_bytes(render_pdf(doc, {}))
    for page in _pdf_pages(path):
        body = [line for line in page.splitlines() if line.strip() and not re.search(r"页\s*共", line)]
        assert not HEADING.match(body[-1]), body[-3:]
