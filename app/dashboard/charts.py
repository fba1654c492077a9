"""Charts drawn as SVG on the server: no script library to ship, and the page is readable without JS.

Each series is one element carrying `data-series` (and `data-kind` for bars), so tests and assistive
tools can tell what is drawn; every mark has a <title> tooltip. Colours are the Okabe-Ito palette,
distinguishable with the common colour-vision deficiencies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#8C6D1F")
NICE_BUCKETS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
TARGET_POINTS = 240
"""Points per series by default: a one-hour video in 15 s buckets, a few kB of SVG per line."""


def default_bucket(extent_s: float) -> float:
    """The smallest round bucket that keeps a timeline at or under TARGET_POINTS points."""
    for bucket in NICE_BUCKETS:
        if extent_s / bucket <= TARGET_POINTS:
            return float(bucket)
    return float(NICE_BUCKETS[-1])


def clock(seconds: float) -> str:
    """h:mm:ss or m:ss; tenths only where a short span needs them."""
    if seconds < 20 and seconds != int(seconds):
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole >= 3600:
        return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
    return f"{whole // 60}:{whole % 60:02d}"


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    step = 10.0 ** math.floor(math.log10(value))
    for multiple in (1, 2, 2.5, 5, 10):
        if value <= multiple * step:
            return min(multiple * step, 1.0) if value <= 1 else multiple * step
    return value


def _svg(kind: str, width: int, height: int, label: str, *, scaled: bool = True) -> list[str]:
    """A chart's opening: the <svg> element named by its label, and the label as its <title>."""
    scaling = ' preserveAspectRatio="xMidYMid meet"' if scaled else ""
    return [
        f'<svg class="chart {kind}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}"{scaling}>',
        f"<title>{escape(label)}</title>",
    ]


_TICK_ANCHORS = ("start", "middle", "middle", "middle", "end")


def _time_tick(i: int, x: float, at: float, height: int) -> str:
    """The i-th of a time axis' 5 labels (at 0, 1/4, ... of it), the outer two kept inside the chart."""
    return f'<text class="tick" x="{x:.1f}" y="{height - 8}" text-anchor="{_TICK_ANCHORS[i]}">{clock(at)}</text>'


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]
    """(time in seconds, value), time ascending."""


def line_chart(series: Sequence[Series], *, label: str, width: int = 720, height: int = 260) -> Markup:
    left, right, top, bottom = 44, 12, 10, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    times = [t for s in series for t, _ in s.points]
    t_max = max(times, default=1.0) or 1.0
    t_min = min(times, default=0.0)
    span = (t_max - t_min) or 1.0
    y_max = _nice_ceiling(max((v for s in series for _, v in s.points), default=1.0))

    def x(t: float) -> float:
        return left + (t - t_min) / span * plot_w

    def y(v: float) -> float:
        return top + plot_h - v / y_max * plot_h

    parts = _svg("line", width, height, label)
    for i in range(5):
        value = y_max * i / 4
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}"/>'
            f'<text class="tick" x="{left - 4}" y="{y(value) + 4:.1f}" text-anchor="end">{value:.2g}</text>'
        )
        parts.append(_time_tick(i, x(t_min + span * i / 4), t_min + span * i / 4, height))
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in s.points)
        parts.append(
            f'<polyline data-series="{escape(s.name)}" data-points="{len(s.points)}" fill="none"'
            f' stroke="{colour}" stroke-width="2" points="{coords}"><title>{escape(s.name)}</title></polyline>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  # every text put in above went through escape()


def bar_chart(rows: Sequence[tuple[str, float, float]], *, label: str, width: int = 720) -> Markup:
    """Horizontal bars, two per emotion: mean (solid) and max (light), on one 0..1 scale."""
    left, right, row_h = 150, 48, 26
    height = row_h * len(rows) + 8
    plot_w = width - left - right
    parts = _svg("bars", width, height, label, scaled=False)
    for i, (name, mean, peak) in enumerate(rows):
        y0 = 4 + i * row_h
        parts.append(
            f'<text class="tick" x="{left - 6}" y="{y0 + 16}" text-anchor="end">{escape(name)}</text>'
            f'<rect data-series="{escape(name)}" data-kind="max" x="{left}" y="{y0 + 2}" height="20"'
            f' width="{max(peak, 0) * plot_w:.1f}" fill="#9ecae1"><title>{escape(name)} max {peak:.3f}</title></rect>'
            f'<rect data-series="{escape(name)}" data-kind="mean" x="{left}" y="{y0 + 7}" height="10"'
            f' width="{max(mean, 0) * plot_w:.1f}" fill="#08519c"><title>{escape(name)} mean {mean:.3f}</title></rect>'
            f'<text class="tick" x="{left + max(peak, 0) * plot_w + 4:.1f}" y="{y0 + 16}">{mean:.2f}/{peak:.2f}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  # every text put in above went through escape()


def stacked_bars(
    columns: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], *, label: str, unit: str,
    width: int = 720, height: int = 280,
) -> Markup:  # fmt: skip
    """Vertical bars, one per column (a day), stacked by series (a tenant): `series` holds one value per column.
    Columns are labelled below (at most about 12 labels, evenly spaced); each segment's <title> names its
    series, column and value."""
    left, right, top, bottom = 56, 12, 10, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(values[i] for _, values in series) for i in range(len(columns))]
    y_max = _nice_ceiling(max(totals, default=1.0))
    slot = plot_w / max(1, len(columns))
    bar_w = max(1.0, slot * 0.8)

    def y(v: float) -> float:
        return top + plot_h - v / y_max * plot_h

    parts = _svg("stacked", width, height, label)
    for i in range(5):
        value = y_max * i / 4
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}"/>'
            f'<text class="tick" x="{left - 4}" y="{y(value) + 4:.1f}" text-anchor="end">{value:.3g}</text>'
        )
    every = max(1, math.ceil(len(columns) / 12))
    for c, column in enumerate(columns):
        if c % every == 0:
            parts.append(
                f'<text class="tick" x="{left + slot * (c + 0.5):.1f}" y="{height - 8}" text-anchor="middle">'
                f"{escape(column)}</text>"
            )
    for s, (name, values) in enumerate(series):
        colour = PALETTE[s % len(PALETTE)]
        rects = []
        for c, value in enumerate(values):
            if value <= 0:
                continue
            below = sum(series[k][1][c] for k in range(s))
            x0 = left + slot * c + (slot - bar_w) / 2
            tip = f"{escape(name)}, {escape(columns[c])}: {value:.3f} {escape(unit)}"
            rects.append(
                f'<rect x="{x0:.1f}" y="{y(below + value):.1f}" width="{bar_w:.1f}"'
                f' height="{value / y_max * plot_h:.1f}" fill="{colour}"><title>{tip}</title></rect>'
            )
        parts.append(f'<g data-series="{escape(name)}" data-bars="{len(rects)}">{"".join(rects)}</g>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  # every text put in above went through escape()


@dataclass(frozen=True)
class Lane:
    name: str
    spans: Sequence[tuple[float, float | None, float]]
    """(start s, end s or None when Hume gave no end, probability), times from the recording's start."""


def span_lanes(
    lanes: Sequence[Lane], *, extent_s: float, cuts: Sequence[float], label: str, width: int = 720
) -> Markup:
    """One horizontal lane per question, each span a bar whose opacity is its probability (a span without an end
    a thin mark at its start); the windows' cuts as dashed lines, so a span is read against the window that
    answered it. Each lane is a <g data-series>, each bar a <rect data-kind="span"> with its times in a <title>."""
    left, right, top, lane_h = 150, 12, 6, 26
    height = top + lane_h * len(lanes) + 24
    plot_w = width - left - right
    extent = extent_s or 1.0

    def x(t: float) -> float:
        return left + min(max(t, 0.0), extent) / extent * plot_w

    parts = _svg("spans", width, height, label)
    for i in range(5):
        parts.append(_time_tick(i, x(extent * i / 4), extent * i / 4, height))
    for i, lane in enumerate(lanes):
        y0 = top + i * lane_h
        colour = PALETTE[i % len(PALETTE)]
        rects = []
        for start, end, probability in lane.spans:
            x0 = x(start)
            span_w = max(2.0, x(end) - x0) if end is not None else 2.0
            until = clock(end) if end is not None else "end not given"
            tip = f"{escape(lane.name)}: {clock(start)} to {until}, probability {probability:.2f}"
            rects.append(
                f'<rect data-kind="span" x="{x0:.1f}" y="{y0 + 4}" width="{span_w:.1f}" height="{lane_h - 8}"'
                f' fill="{colour}" fill-opacity="{max(0.15, min(probability, 1.0)):.2f}"><title>{tip}</title></rect>'
            )
        parts.append(
            f'<text class="tick" x="{left - 6}" y="{y0 + lane_h / 2 + 4:.1f}" text-anchor="end">{escape(lane.name)}'
            f'</text><g data-series="{escape(lane.name)}" data-spans="{len(rects)}">{"".join(rects)}</g>'
        )
    bottom = top + lane_h * len(lanes)
    for cut in cuts:  # over the bars, so a span running across a cut shows it
        parts.append(
            f'<line data-kind="window" x1="{x(cut):.1f}" x2="{x(cut):.1f}" y1="{top}" y2="{bottom}" stroke="#333"'
            ' stroke-dasharray="3 3"/>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  # every text put in above went through escape()
