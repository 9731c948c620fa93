"""The report's hand-drawn SVG charts: scales, ticks, CDFs, and what a chart holds."""

from __future__ import annotations

import itertools
import math
import re

import pytest

from llmcli.bench.svg import (
    HEIGHT,
    WIDTH,
    Scale,
    Series,
    cdf_points,
    escape,
    legend,
    line_chart,
    log_ticks,
    nice_ticks,
    wants_log,
)


@pytest.mark.parametrize(
    ("low", "high", "ticks"),
    [
        (0, 10, [0, 2, 4, 6, 8, 10]),
        (0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1]),
        (3, 7, [3, 4, 5, 6, 7]),
        (0, 730, [0, 200, 400, 600]),
        (5, 5, [5]),
    ],
)
def test_nice_ticks(low: float, high: float, ticks: list[float]) -> None:
    assert nice_ticks(low, high) == pytest.approx(ticks)


def test_log_ticks_decades_and_short_ranges() -> None:
    assert log_ticks(1, 10_000) == [1, 10, 100, 1000, 10_000]
    assert log_ticks(30, 900) == [50, 100, 200, 500]


def test_scales_map_ends_and_log_middles() -> None:
    linear = Scale(0, 10, 100, 200)
    assert (linear(0), linear(5), linear(10)) == (100, 150, 200)
    log = Scale(1, 100, 0, 100, log=True)
    assert log(10) == pytest.approx(50)
    assert Scale(3, 3, 0, 100)(3) == 50  # one value: the middle


def test_wants_log_only_for_wide_positive_ranges() -> None:
    assert wants_log([1, 100]) and not wants_log([1, 20]) and not wants_log([0, 100])


def test_cdf_is_a_step_up_to_one_and_thinned() -> None:
    assert cdf_points([3, 1, 2]) == [(1, 0), (1, 1 / 3), (2, 2 / 3), (3, 1)]
    many = cdf_points(list(range(10_000)), most=100)
    assert len(many) <= 102 and many[-1] == (9999, 1.0)
    assert all(a[1] <= b[1] and a[0] <= b[0] for a, b in itertools.pairwise(many))
    assert cdf_points([]) == [] and cdf_points([math.nan]) == []


def test_a_chart_draws_each_series_inside_its_frame() -> None:
    chart = line_chart(
        "t",
        [Series("a", [(1, 10), (4, 40)], 0), Series("b", [(1, 20), (4, 80)], 1, dash=1)],
        x_label="concurrency",
        y_label="ms",
    )
    assert chart.startswith(f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}"')
    assert chart.count('<g class="series">') == 2 and 'stroke-dasharray="6 4"' in chart
    for x, y in re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)"', chart):
        assert 0 < float(x) < WIDTH and 0 < float(y) < HEIGHT
    assert ">concurrency<" in chart and ">ms<" in chart


def test_log_axis_is_said_and_nan_points_are_skipped() -> None:
    chart = line_chart(
        "t", [Series("a", [(1, 1.0), (2, math.nan), (4, 1000.0)])], x_label="x", y_label="ms"
    )
    assert "ms (log)" in chart and chart.count("<circle") == 2 and "nan" not in chart


def test_nothing_to_draw_is_no_chart() -> None:
    assert line_chart("t", [], x_label="x", y_label="y") == ""
    assert line_chart("t", [Series("a", [(math.nan, 1.0)])], x_label="x", y_label="y") == ""


def test_labels_are_escaped_and_neutralised() -> None:
    name = "<b>x</b>\x1b[2J&"
    assert escape(name) == "&lt;b&gt;x&lt;/b&gt;␛[2J&amp;"
    chart = line_chart(name, [Series(name, [(1, 1)])], x_label=name, y_label=name)
    assert "<b>" not in chart and "\x1b" not in chart and chart.count("&lt;b&gt;") == 4
    assert "<b>" not in legend([(name, 0, 0)])
