"""Bar charts as inline SVG, for the corpus report (`pipeline.report`).

Written here rather than drawn with a plotting library because the report is made at
the end of every flow run: matplotlib takes ~0.8 s to import and ~45 ms a chart (ten
charts: half a second a run), and browser charting libraries need ~1 MB of script
inlined to work offline. The report needs one kind of chart, bars (grouped or stacked,
upright or lying, one or more series), which is a hundred lines of SVG. Every bar is an
element of class `mark` with a `<title>` (the browser's tooltip gives its value).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["PALETTE", "Series", "bar_chart"]

# Colour-blind safe (Okabe-Ito), then greys for the rest.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000", "#999999")
_WIDTH = 680
_FONT = 'font-family="system-ui, sans-serif" font-size="11"'


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a bar chart: a value per category, and its colour (default: the palette's next)."""

    name: str
    values: Sequence[float]
    color: str | None = None


def _axis(top: float, whole: bool) -> tuple[float, float]:
    """(end, step) of the value axis: a 1, 2 or 5 step giving at most 5 ticks; whole-number steps for counts."""
    if top <= 0:
        return 1.0, 1.0
    power = 10.0 ** math.floor(math.log10(top / 5))
    step = next(float(m * power) for m in (1, 2, 5, 10) if m * power * 5 >= top)
    if whole:
        step = max(step, 1.0)
    return math.ceil(top / step) * step, step


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def bar_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    stacked: bool = True,
    horizontal: bool = False,
    unit: str = "",
) -> str:
    """An SVG bar chart: a bar (or a stack, or a group) per label, one colour per series."""
    colors = [s.color or PALETTE[i % len(PALETTE)] for i, s in enumerate(series)]
    n = len(labels)
    totals = [
        sum(s.values[i] for s in series) if stacked else max((s.values[i] for s in series), default=0) for i in range(n)
    ]
    whole = all(float(v).is_integer() for s in series for v in s.values)
    top, step = _axis(max(totals, default=0), whole)
    ticks = [step * k for k in range(round(top / step) + 1)]
    legend = len(series) > 1
    if horizontal:
        left = min(240, 12 + 6 * max((len(label) for label in labels), default=4))
        band = 18.0
        height = 28 + band * n + (22 if legend else 0) + 20
        plot = (left, 28 + (22 if legend else 0), _WIDTH - left - 60, band * n)
    else:
        band = max(2.0, (_WIDTH - 70) / max(n, 1))
        height = 250 + (22 if legend else 0)
        plot = (56, 16 + (22 if legend else 0), _WIDTH - 70, 180)
    x0, y0, w, h = plot
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {height:.0f}" role="img" {_FONT}>']
    if legend:
        x = 8.0
        for s, color in zip(series, colors, strict=True):
            parts.append(f'<rect x="{x:.0f}" y="8" width="10" height="10" fill="{color}"/>')
            parts.append(f'<text x="{x + 14:.0f}" y="17">{escape(s.name)}</text>')
            x += 24 + 6.5 * len(s.name)
    # Grid and value axis.
    for v in ticks:
        if horizontal:
            gx = x0 + w * v / top
            parts.append(f'<line x1="{gx:.1f}" y1="{y0}" x2="{gx:.1f}" y2="{y0 + h}" stroke="#ddd"/>')
            parts.append(f'<text x="{gx:.1f}" y="{y0 + h + 14}" text-anchor="middle">{_fmt(v)}{unit}</text>')
        else:
            gy = y0 + h - h * v / top
            parts.append(f'<line x1="{x0}" y1="{gy:.1f}" x2="{x0 + w}" y2="{gy:.1f}" stroke="#ddd"/>')
            parts.append(f'<text x="{x0 - 6}" y="{gy + 4:.1f}" text-anchor="end">{_fmt(v)}{unit}</text>')
    # Category labels: every one lying down; upright, at most ~12 spread along the axis.
    every = 1 if horizontal else max(1, math.ceil(n / 12))
    for i, label in enumerate(labels):
        if i % every:
            continue
        if horizontal:
            y = y0 + band * i + band / 2 + 4
            parts.append(f'<text x="{x0 - 6}" y="{y:.1f}" text-anchor="end">{escape(label[:40])}</text>')
        else:
            x = x0 + band * i + band / 2
            parts.append(f'<text x="{x:.1f}" y="{y0 + h + 14}" text-anchor="middle">{escape(label)}</text>')
    # The bars.
    groups = 1 if stacked else len(series)
    for i, label in enumerate(labels):
        base = 0.0
        for j, (s, color) in enumerate(zip(series, colors, strict=True)):
            value = s.values[i]
            if value <= 0:
                continue
            size = value / top
            slot = band * 0.8 / groups
            offset = band * 0.1 + (0 if stacked else j * slot)
            tip = f"{escape(label)}: {escape(s.name)} {_fmt(value)}{unit}"
            if horizontal:
                bx, by, bw, bh = x0 + w * base, y0 + band * i + offset, max(w * size, 1), slot
            else:
                bx, by, bw, bh = x0 + band * i + offset, y0 + h - h * (base + size), max(slot, 1), max(h * size, 1)
            parts.append(
                f'<rect class="mark" x="{bx:.1f}" y="{by:.1f}" width="{bw:.1f}" height="{bh:.1f}" '
                f'fill="{color}"><title>{tip}</title></rect>'
            )
            if stacked:
                base += size
    parts.append(f'<line x1="{x0}" y1="{y0 + h}" x2="{x0 + w}" y2="{y0 + h}" stroke="#888"/>')
    parts.append("</svg>")
    return "".join(parts)
