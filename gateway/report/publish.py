"""Making a shift's report and handing it on: files in its folder, a remembered run, a queued mail.

The ``ReportRun`` row and the mail row are written in one transaction, after the files
exist, so a crash leaves either nothing (the scheduler makes it again) or a complete run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from gateway.config import Config
from gateway.report.figures import ShiftFigures, summary
from gateway.report.mail import queue_report
from gateway.report.make import ReportFiles, write_report
from gateway.report.query import shift_figures
from storage.db import Database
from storage.reports import ReportRun


@dataclass(frozen=True)
class Published:
    figures: ShiftFigures
    files: ReportFiles
    mail_id: int | None


def report_folder(config: Config, shift_key: str) -> Path:
    """``<data_dir>/reports/2026-11-21/night``."""
    return config.paths.data_dir / "reports" / shift_key


def publish(db: Database, config: Config, shift_key: str, now: datetime, *, send: bool = True,
            folder: Path | None = None) -> Published:
    """Make (or make again) the report of ``shift_key``; queue it to the report recipients."""
    figures = shift_figures(db, config, shift_key)
    files = write_report(figures, config, folder or report_folder(config, shift_key))
    recipients = config.mail.report_recipients
    with db.session() as session:
        mail = queue_report(session, files, shift_key, recipients, now) if send and recipients else None
        session.flush()
        run = session.scalar(select(ReportRun).where(ReportRun.shift_key == shift_key))
        if run is None:
            run = ReportRun(shift_key=shift_key)
            session.add(run)
        run.made_at, run.directory, run.files = now, str(files.folder), list(files.names)
        run.summary = summary(figures, config.zone)
        run.mail_id = mail.id if mail is not None else run.mail_id
        return Published(figures, files, mail.id if mail is not None else None)


def made_since(db: Database, since: datetime) -> set[str]:
    """Shift keys whose report was made at or after ``since``."""
    with db.session() as session:
        return set(session.scalars(select(ReportRun.shift_key).where(ReportRun.made_at >= since)))
