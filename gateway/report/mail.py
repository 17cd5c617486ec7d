"""The report as an e-mail: queued in the ``OutboundMail`` table, retried until sent.

The queued row's body is the plain-text report; its attachments are the PDF, the call
log and the self-contained HTML, which any mailer can send. ``report_message`` builds the
richer form for the mailer to use for ``kind == "report"``: HTML body (``mail.html``) with
the charts as inline ``cid:`` parts, plain text as the alternative, PDF and XLSX attached.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy.orm import Session

from gateway.outbox import Attachment, MailNotice, envelope, queue_mail
from gateway.report.make import CALLS_XLSX, CHARTS, MAIL_HTML, REPORT_HTML, REPORT_PDF, ReportFiles
from storage.paging import OutboundMail

KIND = "report"
CONTENT_TYPES = {
    REPORT_PDF: "application/pdf",
    CALLS_XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    REPORT_HTML: "text/html",
}


def queue_report(session: Session, files: ReportFiles, shift_key: str, recipients: Sequence[str],
                 now: datetime) -> OutboundMail:
    notice = MailNotice(
        kind=KIND, subject=files.title, body=files.text, receipt_ids=(), shift_key=shift_key,
        attachments=tuple(Attachment(str(files.path(name)), name, kind) for name, kind in CONTENT_TYPES.items()),
    )
    return queue_mail(session, notice, recipients, now)


def report_message(row: OutboundMail, sender: str) -> EmailMessage:
    """multipart/mixed: (text | HTML with inline charts) + report.pdf + calls.xlsx."""
    folder = _folder(row)
    message = envelope(row, sender)
    message.set_content(row.body, charset="utf-8")
    page = folder / MAIL_HTML
    if page.is_file():
        message.add_alternative(page.read_text(encoding="utf-8"), subtype="html", charset="utf-8")
        _add_charts(message, folder)
    for name in (REPORT_PDF, CALLS_XLSX):
        path = folder / name
        if path.is_file():
            maintype, _, subtype = CONTENT_TYPES[name].partition("/")
            message.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype, filename=name)
    return message


def _add_charts(message: EmailMessage, folder: Path) -> None:
    """The charts as parts related to the HTML body, which refers to them as ``cid:hourly``…"""
    html_part = message.get_body(("html",))
    if html_part is None:
        return
    for chart in CHARTS:
        png = folder / f"{chart}.png"
        if png.is_file():
            html_part.add_related(png.read_bytes(), maintype="image", subtype="png", cid=f"<{chart}>",
                                  filename=png.name, disposition="inline")


def _folder(row: OutboundMail) -> Path:
    paths = [Path(a["path"]) for a in row.attachments]
    return paths[0].parent if paths else Path(".")
