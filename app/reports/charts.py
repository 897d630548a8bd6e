"""Horizontal bar charts as plain geometry, drawn as inline SVG by the templates.

No script and no outside request: the page carries the chart. Colours come from classes in
``app/static/app.css`` (``.chart .k-<key>``), never from inline styles. Each row has its
label above the bar, so a chart stays readable when a 360-pixel phone scales it down; the
figures are always in a table next to the chart as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 400
LABEL_HEIGHT = 18
BAR_HEIGHT = 16
ROW_GAP = 12
#: Room to the right of the longest bar for its figure.
VALUE_SPACE = 86
MAX_LABEL = 52
#: A bar that is not zero is at least this wide, so that it can be seen.
MIN_WIDTH = 2.0


@dataclass(frozen=True)
class Segment:
    key: str  # colour: the class ``k-<key>``
    label: str  # what the segment counts, for its tooltip
    value: int
    x: float
    width: float


@dataclass(frozen=True)
class ChartRow:
    label: str
    value_text: str
    label_y: float
    bar_y: float
    value_x: float
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    bar_height: int
    rows: tuple[ChartRow, ...]


@dataclass(frozen=True)
class Part:
    key: str
    label: str
    value: int


@dataclass(frozen=True)
class Bar:
    label: str
    parts: Sequence[Part]
    value_text: str


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


def bar_chart(bars: Sequence[Bar]) -> BarChart:
    """One row per bar; a bar of several parts is stacked left to right. Bar lengths are
    proportional to the largest bar's total."""
    largest = max((sum(p.value for p in b.parts) for b in bars), default=0)
    room = WIDTH - VALUE_SPACE
    rows: list[ChartRow] = []
    y = 0.0
    for bar in bars:
        label_y = y + LABEL_HEIGHT - 5
        bar_y = y + LABEL_HEIGHT
        x = 0.0
        segments: list[Segment] = []
        for part in bar.parts:
            if part.value <= 0 or largest <= 0:
                continue
            width = max(MIN_WIDTH, round(room * part.value / largest, 2))
            segments.append(Segment(part.key, part.label, part.value, round(x, 2), width))
            x += width
        rows.append(
            ChartRow(
                label=_short(bar.label),
                value_text=bar.value_text,
                label_y=label_y,
                bar_y=bar_y,
                value_x=round(x + 6, 2),
                segments=tuple(segments),
            )
        )
        y = bar_y + BAR_HEIGHT + ROW_GAP
    height = int(y - ROW_GAP + 2) if rows else 0
    return BarChart(width=WIDTH, height=height, bar_height=BAR_HEIGHT, rows=tuple(rows))
