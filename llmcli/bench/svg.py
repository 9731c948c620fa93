"""Line charts as inline SVG text, drawn by hand for the HTML report (``bench --html``).

No plotting library and nothing fetched: a chart is a string of SVG elements that the
report puts inline, so the file shows the same offline, in any browser, years later. Pure
functions; every label passes through :func:`escape` (neutralised, then XML-escaped),
since profile and model names come from files and servers.

Colours are fixed (a palette readable on light and dark pages, one a series); text, axes
and grid take ``currentColor`` and the page's CSS classes, so the report's light and dark
themes both apply.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

from llmcli.ui.sanitize import neutralize

# Tableau 10: distinct at a glance, and each readable on white and on near-black.
PALETTE: tuple[str, ...] = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
DASHES: tuple[str, ...] = ("", "6 4", "2 3", "10 3 2 3")

WIDTH, HEIGHT = 520, 330
_LEFT, _RIGHT, _TOP, _BOTTOM = 66, 16, 12, 50  # plot margins, room for tick labels


def escape(text: object) -> str:
    """Untrusted text made inert for HTML and SVG: controls made visible, then escaped."""
    return html.escape(neutralize(str(text)), quote=True)


def color(index: int) -> str:
    """The palette's colour ``index`` (cycling); a negative index: the text's colour."""
    return "currentColor" if index < 0 else PALETTE[index % len(PALETTE)]


@dataclass(frozen=True, slots=True)
class Series:
    """One line: its points (x, y), its colour index and dash index, its legend label."""

    label: str
    points: Sequence[tuple[float, float]]
    color: int = 0
    dash: int = 0
    step: bool = False  # a CDF: drawn as steps, each value a rise
    markers: bool = True


@dataclass(frozen=True, slots=True)
class Scale:
    """A data range mapped onto a pixel range, linear or base-10 logarithmic."""

    low: float
    high: float
    start: float
    end: float
    log: bool = False

    def __call__(self, value: float) -> float:
        low, high, value = self.low, self.high, value
        if self.log:
            low, high, value = math.log10(low), math.log10(high), math.log10(max(value, self.low))
        share = 0.5 if high == low else (value - low) / (high - low)
        return self.start + share * (self.end - self.start)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering ``low..high``."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        return [low]
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        if value >= low - step * 1e-9:
            ticks.append(round(value, 12))
        value += step
    return ticks


def log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten within ``low..high``; 2 and 5 times them too when the range is short."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    steps = (1.0,) if last - first > 2 else (1.0, 2.0, 5.0)
    ticks = [m * 10.0**e for e in range(first, last + 1) for m in steps]
    inside = [t for t in ticks if low * (1 - 1e-9) <= t <= high * (1 + 1e-9)]
    return inside or [low, high]


def format_tick(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:g}"
    return f"{value:.3g}"


def _bounds(values: Sequence[float], log: bool, from_zero: bool) -> tuple[float, float]:
    low, high = min(values), max(values)
    if log:
        low, high = low / 1.15, high * 1.15
        return (low, high) if high > low else (low / 2, high * 2)
    if from_zero:
        low = min(0.0, low)
    if high == low:
        return low - 1 if low else 0.0, high + 1
    pad = (high - low) * 0.05
    return (low if from_zero and low == 0 else low - pad), high + pad


def wants_log(values: Sequence[float]) -> bool:
    """A log axis when every value is positive and they span more than 30 times."""
    positive = [v for v in values if v > 0]
    return len(positive) == len(values) and bool(positive) and max(positive) > 30 * min(positive)


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    x_log: bool | None = None,
    y_log: bool | None = None,
    y_from_zero: bool = True,
) -> str:
    """An SVG line chart of ``series``; the empty string when no series has a point.

    ``x_log``/``y_log`` ``None``: logarithmic when the values span more than 30 times.
    """
    drawn = [s for s in series if any(_finite(p) for p in s.points)]
    if not drawn:
        return ""
    xs = [x for s in drawn for x, y in s.points if _finite((x, y))]
    ys = [y for s in drawn for x, y in s.points if _finite((x, y))]
    x_log = wants_log(xs) if x_log is None else x_log and min(xs) > 0
    y_log = wants_log(ys) if y_log is None else y_log and min(ys) > 0
    x_low, x_high = _bounds(xs, x_log, from_zero=False)
    y_low, y_high = _bounds(ys, y_log, from_zero=y_from_zero and not y_log)
    sx = Scale(x_low, x_high, _LEFT, WIDTH - _RIGHT, x_log)
    sy = Scale(y_low, y_high, HEIGHT - _BOTTOM, _TOP, y_log)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"'
        f"><title>{escape(title)}</title>",
        _axes(sx, sy, x_label, y_label),
    ]
    for item in drawn:
        parts.append(_series(item, sx, sy))
    parts.append("</svg>")
    return "".join(parts)


def _finite(point: tuple[float, float]) -> bool:
    return math.isfinite(point[0]) and math.isfinite(point[1])


def _axes(sx: Scale, sy: Scale, x_label: str, y_label: str) -> str:
    bottom, top, left, right = sy.start, sy.end, sx.start, sx.end
    out = ['<g class="grid">']
    x_ticks = log_ticks(sx.low, sx.high) if sx.log else nice_ticks(sx.low, sx.high)
    y_ticks = log_ticks(sy.low, sy.high) if sy.log else nice_ticks(sy.low, sy.high)
    for value in x_ticks:
        x = sx(value)
        out.append(f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}"/>')
    for value in y_ticks:
        y = sy(value)
        out.append(f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{right:.1f}" y2="{y:.1f}"/>')
    out.append('</g><g class="axis">')
    out.append(
        f'<path d="M{left:.1f},{top:.1f}V{bottom:.1f}H{right:.1f}" fill="none"'
        ' stroke="currentColor"/>'
    )
    for value in x_ticks:
        out.append(
            f'<text x="{sx(value):.1f}" y="{bottom + 18:.1f}" text-anchor="middle">'
            f"{escape(format_tick(value))}</text>"
        )
    for value in y_ticks:
        out.append(
            f'<text x="{left - 6:.1f}" y="{sy(value) + 4:.1f}" text-anchor="end">'
            f"{escape(format_tick(value))}</text>"
        )
    middle_x, middle_y = (left + right) / 2, (top + bottom) / 2
    out.append(
        f'<text class="label" x="{middle_x:.1f}" y="{HEIGHT - 6}" text-anchor="middle">'
        f"{escape(x_label)}{' (log)' if sx.log else ''}</text>"
        f'<text class="label" x="16" y="{middle_y:.1f}" text-anchor="middle"'
        f' transform="rotate(-90 16 {middle_y:.1f})">'
        f"{escape(y_label)}{' (log)' if sy.log else ''}</text></g>"
    )
    return "".join(out)


def _series(item: Series, sx: Scale, sy: Scale) -> str:
    points = [(sx(x), sy(y)) for x, y in item.points if _finite((x, y))]
    stroke = color(item.color)
    dash = DASHES[item.dash % len(DASHES)]
    path = []
    for index, (x, y) in enumerate(points):
        if index == 0:
            path.append(f"M{x:.1f},{y:.1f}")
        elif item.step:
            path.append(f"H{x:.1f}V{y:.1f}")
        else:
            path.append(f"L{x:.1f},{y:.1f}")
    out = [
        f'<g class="series"><title>{escape(item.label)}</title>'
        f'<path d="{"".join(path)}" fill="none" stroke="{stroke}" stroke-width="2.2"'
        + (f' stroke-dasharray="{dash}"' if dash else "")
        + "/>"
    ]
    if item.markers or len(points) == 1:
        out.extend(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.2" fill="{stroke}"/>' for x, y in points
        )
    out.append("</g>")
    return "".join(out)


def legend(entries: Sequence[tuple[str, int, int]]) -> str:
    """An HTML legend under a chart: (label, colour index, dash index) a line."""
    items = []
    for label, index, dash in entries:
        pattern = DASHES[dash % len(DASHES)]
        swatch = (
            f'<svg class="swatch" viewBox="0 0 28 10" aria-hidden="true"><line x1="1" y1="5"'
            f' x2="27" y2="5" stroke="{color(index)}" stroke-width="3"'
            + (f' stroke-dasharray="{pattern}"' if pattern else "")
            + "/></svg>"
        )
        items.append(f"<li>{swatch}{escape(label)}</li>")
    return f'<ul class="legend">{"".join(items)}</ul>'


def cdf_points(values: Sequence[float], most: int = 400) -> list[tuple[float, float]]:
    """An empirical CDF as (value, share of values <= it), thinned to about ``most`` points
    (every k-th of the sorted values, the last always kept) for a small file."""
    ordered = sorted(v for v in values if math.isfinite(v))
    n = len(ordered)
    if not n:
        return []
    every = max(1, math.ceil(n / most))
    picked = list(range(every - 1, n, every))
    if picked[-1] != n - 1:
        picked.append(n - 1)
    # Starts at (first value, 0) so the first step rises at the smallest value.
    return [(ordered[0], 0.0)] + [(ordered[i], (i + 1) / n) for i in picked]
