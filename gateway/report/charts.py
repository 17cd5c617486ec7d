"""The report's two pictures as PNG bytes: calls per hour, and rings before answer.

Drawn with matplotlib's object API on an Agg canvas (no pyplot, no global state), in a
Chinese font found through fontconfig so no label comes out as tofu boxes.
"""

from __future__ import annotations

import io
from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo

from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gateway.report.figures import ShiftFigures
from gateway.report.fonts import CHART_FAMILIES, find_face

ANSWERED_COLOUR = "#2e7d32"
MISSED_COLOUR = "#c62828"
LATE_COLOUR = "#ef6c00"
SIZE_INCHES = (7.5, 3.2)
DPI = 120


@cache
def chart_font() -> font_manager.FontProperties:
    face = find_face(CHART_FAMILIES)
    font_manager.fontManager.addfont(str(face.path))
    return font_manager.FontProperties(family=face.family, size=10)


def hourly_png(figures: ShiftFigures, tz: ZoneInfo) -> bytes:
    """Inbound calls per hour of the shift, answered and missed stacked."""
    font = chart_font()
    figure, axes = _canvas()
    labels = [_hour_label(start.astimezone(tz)) for start, _, _ in figures.hourly]
    answered = [a for _, a, _ in figures.hourly]
    missed = [m for _, _, m in figures.hourly]
    axes.bar(labels, answered, color=ANSWERED_COLOUR, label="已接")
    axes.bar(labels, missed, bottom=answered, color=MISSED_COLOUR, label="未接")
    axes.set_title(f"{figures.shift.label}各小时来电（{_window(figures, tz)}）", fontproperties=font)
    axes.set_ylabel("来电数", fontproperties=font)
    _whole_numbers(axes, max((a + m for a, m in zip(answered, missed)), default=0))
    _label_ticks(axes, font)
    axes.legend(prop=font, loc="upper right")
    return _png(figure)


def rings_png(figures: ShiftFigures) -> bytes:
    """How many rings callers heard before an answer, with the rule's limit marked."""
    font = chart_font()
    figure, axes = _canvas()
    limit = figures.answer_within_rings
    top = max([limit + 2] + [rings for rings, _ in figures.rings])
    counts = dict(figures.rings)
    xs = list(range(1, top + 1))
    ys = [counts.get(x, 0) for x in xs]
    colours = [ANSWERED_COLOUR if x <= limit else LATE_COLOUR for x in xs]
    axes.bar([str(x) for x in xs], ys, color=colours)
    axes.axvline(limit - 1 + 0.5, color=MISSED_COLOUR, linestyle="--", linewidth=1.5)
    axes.text(limit - 1 + 0.55, max(ys + [1]) * 0.95, f"{limit}声规定", color=MISSED_COLOUR,
              fontproperties=font, va="top")
    axes.set_title("接听前振铃次数分布", fontproperties=font)
    axes.set_xlabel("振铃次数（声）", fontproperties=font)
    axes.set_ylabel("已接来电数", fontproperties=font)
    _whole_numbers(axes, max(ys, default=0))
    _label_ticks(axes, font)
    return _png(figure)


def _hour_label(start: datetime) -> str:
    return f"{start:%H}时" if start.minute == 0 else f"{start:%H:%M}"


def _canvas() -> tuple[Figure, Axes]:
    figure = Figure(figsize=SIZE_INCHES, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _window(figures: ShiftFigures, tz: ZoneInfo) -> str:
    start, end = figures.shift.start.astimezone(tz), figures.shift.end.astimezone(tz)
    return f"{start:%m-%d %H:%M}—{end:%m-%d %H:%M}"


def _whole_numbers(axes: Axes, highest: int) -> None:
    from matplotlib.ticker import MaxNLocator

    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylim(0, max(1, highest) * 1.15)


def _label_ticks(axes: Axes, font: font_manager.FontProperties) -> None:
    for label in axes.get_xticklabels() + axes.get_yticklabels():
        label.set_fontproperties(font)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
