"""The report as HTML: the body of the morning e-mail, and ``report.html`` on disk.

Charts are referenced, not embedded: the mail uses ``cid:`` parts (Outlook and Gmail block
``data:`` images, but show inline MIME parts), the file on disk uses the PNGs beside it.
Inline CSS only, because mail clients drop ``<style>`` sheets.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from gateway.report.layout import NONE, Document, Section, Table

CHART_ALT = {"hourly": "各小时来电", "rings": "接听前振铃次数分布"}
_CELL = "border:1px solid #999;padding:3px 6px;font-size:13px;vertical-align:top"
_HEAD = _CELL + ";background:#eee;font-weight:bold"
_MARKED = _CELL + ";background:#f8d0d0;font-weight:bold"


def render(doc: Document, chart_src: Mapping[str, str]) -> str:
    """``chart_src`` maps a chart name to its ``src`` (``cid:hourly`` or ``hourly.png``)."""
    body = "".join(_section(section, chart_src) for section in doc.sections)
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{escape(doc.title)}</title></head>"
        '<body style="font-family:\'Noto Sans CJK SC\',\'Microsoft YaHei\',SimSun,sans-serif;color:#222">'
        f"<h1 style=\"font-size:20px\">{escape(doc.title)}</h1>{body}</body></html>"
    )


def _section(section: Section, chart_src: Mapping[str, str]) -> str:
    parts = [f'<h2 style="font-size:16px;margin-top:18px">{escape(section.title)}</h2>']
    parts += [f'<p style="margin:4px 0">{escape(line)}</p>' for line in section.lines]
    parts += [
        f'<p><img src="{escape(chart_src[name])}" alt="{CHART_ALT[name]}" width="720"></p>'
        for name in section.charts if name in chart_src
    ]
    parts += [_table(table) for table in section.tables]
    return "".join(parts)


def _table(table: Table) -> str:
    caption = f'<p style="margin:8px 0 2px;font-weight:bold">{escape(table.caption)}</p>' if table.caption else ""
    if not table.rows:
        return f'{caption}<p style="margin:2px 0;color:#666">{NONE}</p>'
    head = "".join(f'<th style="{_HEAD}">{escape(h)}</th>' for h in table.headings)
    rows = "".join(
        "<tr>" + "".join(f'<td style="{_MARKED if i in table.marked else _CELL}">{escape(cell)}</td>'
                         for cell in row) + "</tr>"
        for i, row in enumerate(table.rows)
    )
    return f'{caption}<table style="border-collapse:collapse;margin:4px 0"><tr>{head}</tr>{rows}</table>'
