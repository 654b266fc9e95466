"""Charts drawn by the app itself: horizontal bar charts as inline SVG, made on the server.

No script and no chart library: the figure is an ``<svg role="img">`` with its title and a
description that says every value in words, and each bar carries its value as text.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

BAR_HEIGHT = 22
GAP = 10
LABEL_EM = 15  # px per character of a label (CJK characters are about one em wide)
MAX_LABEL_CHARS = 10
VALUE_SPACE = 64
BAR_SPACE = 320
TOP = 8


@dataclass(frozen=True)
class Bar:
    label: str
    value: float


def number(value: float) -> str:
    """A value as people read it: 4, 2.5 (no trailing .0)."""
    return f"{value:g}" if value == int(value) else f"{value:.2f}".rstrip("0").rstrip(".")


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL_CHARS else label[: MAX_LABEL_CHARS - 1] + "…"


def bar_chart(*, chart_id: str, title: str, unit: str, bars: list[Bar]) -> Markup:
    """A horizontal bar chart; every bar is labelled and shows its value in text."""
    label_width = LABEL_EM * max((len(_short(bar.label)) for bar in bars), default=4) + 8
    width = label_width + BAR_SPACE + VALUE_SPACE
    height = TOP * 2 + max(len(bars), 1) * (BAR_HEIGHT + GAP)
    top = max((bar.value for bar in bars), default=0)
    described = "；".join(f"{bar.label} {number(bar.value)} {unit}" for bar in bars)
    parts = [
        f'<svg class="chart" id="{escape(chart_id)}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(described or "暂无数据")}</desc>',
    ]
    if not bars:
        parts.append(f'<text class="chart-label" x="0" y="{TOP + BAR_HEIGHT - 6}">暂无数据</text>')
    for index, bar in enumerate(bars):
        y = TOP + index * (BAR_HEIGHT + GAP)
        length = 0.0 if top <= 0 else BAR_SPACE * max(bar.value, 0) / top
        text_y = y + BAR_HEIGHT - 6
        parts.append(
            f'<g class="chart-row"><text class="chart-label" x="{label_width - 8}" y="{text_y}" '
            f'text-anchor="end">{escape(_short(bar.label))}</text>'
            f'<rect class="chart-bar" x="{label_width}" y="{y}" width="{length:.1f}" '
            f'height="{BAR_HEIGHT}"></rect>'
            f'<text class="chart-value" x="{label_width + length + 6:.1f}" y="{text_y}">'
            f"{escape(number(bar.value))}</text></g>"
        )
    parts.append(
        f'<line class="chart-axis" x1="{label_width}" y1="{TOP - 4}" x2="{label_width}" '
        f'y2="{height - TOP + 4}"></line></svg>'
    )
    # Every value above is escaped or a number of ours.
    return Markup("".join(parts))  # noqa: S704
