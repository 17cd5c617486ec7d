"""Mail set aside by the fax intake shows in the shift report and the handover, with why."""

from __future__ import annotations

from pathlib import Path

from gateway.report.layout import Style, document
from gateway.report.query import shift_figures
from storage.db import Database
from storage.faxes import InboundMail
from tests.report_night import NIGHT, local, night_config


def mail(when: object, state: str, reason: str) -> InboundMail:
    return InboundMail(received_at=when, spool_path="/var/spool/x.eml", sha256="0" * 64, mail_from="fax@pbx",
                       state=state, reason=reason)


def test_the_report_and_handover_list_mail_set_aside(database: Database, tmp_path: Path) -> None:
    config = night_config(tmp_path / "var")
    with database.session() as session:
        session.add_all([
            mail(local(2026, 11, 21, 23, 10), "quarantined", "邮件中没有传真文件（主题「hello」）"),
            mail(local(2026, 11, 22, 2, 0), "duplicate", "与传真〔2026〕0001号重复（同一传真文件）"),
            mail(local(2026, 11, 22, 9, 0), "quarantined", "the next shift's"),
        ])
    figures = shift_figures(database, config, NIGHT)
    assert [m.kind for m in figures.set_aside] == ["quarantined", "duplicate"]
    sections = {s.title: s for s in document(figures, Style(config.zone)).sections}
    fax = sections["七、来文（传真）"]
    assert any("另有来信 2 封未登记" in line for line in fax.lines)
    (aside,) = [t for t in fax.tables if t.caption == "未登记的来信"]
    assert [row[1] for row in aside.rows] == ["隔离", "重复"] and "没有传真文件" in aside.rows[0][3]
    (handover,) = [t for t in sections["九、交接班事项"].tables if t.caption == "未登记的来信"]
    assert [row[1] for row in handover.rows] == ["隔离"]


def test_a_shift_with_nothing_set_aside_reads_as_before(database: Database, tmp_path: Path) -> None:
    config = night_config(tmp_path / "var")
    sections = document(shift_figures(database, config, NIGHT), Style(config.zone)).sections
    assert all(t.caption != "未登记的来信" for s in sections for t in s.tables)
