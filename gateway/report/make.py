"""Making one shift's report files: figures in, a folder of files out.

``<folder>/report.html`` is self-contained (charts as ``data:`` URIs, so it opens anywhere,
also as a mail attachment); ``mail.html`` is the same page referring to its charts by
``cid:`` for the mail body; ``report.pdf`` is for the binder; ``calls.xlsx`` the call log.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from gateway.config import Config
from gateway.errors import ConfigError
from gateway.report import charts, html, pdf, xlsx
from gateway.report.figures import ShiftFigures
from gateway.report.layout import Document, Style, document

REPORT_HTML = "report.html"
MAIL_HTML = "mail.html"
REPORT_PDF = "report.pdf"
CALLS_XLSX = "calls.xlsx"
CHARTS = ("hourly", "rings")


@dataclass(frozen=True)
class ReportFiles:
    folder: Path
    names: tuple[str, ...]
    title: str
    text: str
    """The report as plain text: the mail's text part, for clients that show no HTML."""

    def path(self, name: str) -> Path:
        return self.folder / name


HIDEABLE = frozenset({"title", "issuer", "doc_number"})


def style_of(config: Config) -> Style:
    hidden = frozenset(config.report.classified_hidden_fields)
    if not hidden <= HIDEABLE:
        unknown = ", ".join(sorted(hidden - HIDEABLE))
        raise ConfigError(f"key report.classified_hidden_fields: unknown field {unknown} "
                          f"(choose from {', '.join(sorted(HIDEABLE))})")
    return Style(tz=config.zone, hidden_fields=hidden)


def write_report(figures: ShiftFigures, config: Config, folder: Path) -> ReportFiles:
    """Write every form of the report into ``folder`` (created if missing)."""
    style = style_of(config)
    doc = document(figures, style)
    pngs = {"hourly": charts.hourly_png(figures, style.tz), "rings": charts.rings_png(figures)}
    files = {f"{name}.png": data for name, data in pngs.items()}
    files[REPORT_HTML] = html.render(doc, {n: _data_uri(png) for n, png in pngs.items()}).encode()
    files[MAIL_HTML] = html.render(doc, {n: f"cid:{n}" for n in pngs}).encode()
    files[REPORT_PDF] = pdf.render(doc, pngs)
    files[CALLS_XLSX] = xlsx.render(figures, style)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        _write_atomically(folder / name, data)
    return ReportFiles(folder, tuple(files), doc.title, plain_text(doc))


def plain_text(doc: Document) -> str:
    lines = [doc.title, ""]
    for section in doc.sections:
        lines += [section.title, *section.lines]
        for table in section.tables:
            if table.caption:
                lines.append(f"{table.caption}：{len(table.rows)} 项")
        lines.append("")
    lines.append("详见附件 report.pdf（打印归档）与 calls.xlsx（通话记录）。")
    return "\n".join(lines)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _write_atomically(path: Path, data: bytes) -> None:
    """A reader (or the mailer) never sees half a file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
