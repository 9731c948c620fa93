"""``bench --plot FILE.png``: latency percentiles and throughput against load, as a picture.

matplotlib (the ``plot`` extra) draws it off-screen; it is imported only when a plot is
asked for, so the bench itself never pays for it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llmcli.errors import UsageError

Column = tuple[str, Mapping[str, Mapping[str, Any]]]

# (metric, statistic, line style) drawn on the latency panel.
LATENCY_LINES: tuple[tuple[str, str, str], ...] = (
    ("ttft", "p50", "-o"),
    ("ttft", "p99", "--o"),
    ("itl", "p50", "-s"),
    ("e2e", "p50", ":^"),
)
_LEVEL = re.compile(r"^(?:c=(?P<concurrency>\d+)|rate (?P<rate>[0-9.e+-]+)/s)$")


def load_of(level: str) -> tuple[str, float]:
    """("concurrency", 4.0) for ``c=4``; ("request rate /s", 2.0) for ``rate 2/s``."""
    match = _LEVEL.match(level)
    if match is None:
        raise ValueError(f"not a load level: {level!r}")
    if match["concurrency"] is not None:
        return "concurrency", float(match["concurrency"])
    return "request rate /s", float(match["rate"])


def latency_ms(summary: Mapping[str, Any], metric: str, statistic: str) -> float:
    value = summary.get("metrics", {}).get(metric, {}).get(statistic)
    return float(value) * 1000 if isinstance(value, int | float) else math.nan


def write_plot(columns: Sequence[Column], path: Path, *, title: str = "llmcli bench") -> None:
    """Two panels, one line per profile: latency (ms) and output tokens/s against load."""
    try:
        import matplotlib
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'llmcli[plot]'") from None
    matplotlib.use("Agg")  # no display needed; must precede pyplot
    import matplotlib.pyplot as plt

    figure, (latency, throughput) = plt.subplots(1, 2, figsize=(12, 4.8))
    axis_label = "load"
    ticks: set[float] = set()
    for index, (label, by_level) in enumerate(columns):
        color = f"C{index % 10}"  # one colour a profile; the line style tells the metric
        loads = [load_of(level) for level in by_level]
        axis_label = loads[0][0] if loads else axis_label
        x = [value for _, value in loads]
        ticks.update(x)
        summaries = list(by_level.values())
        for metric, statistic, style in LATENCY_LINES:
            y = [latency_ms(summary, metric, statistic) for summary in summaries]
            latency.plot(x, y, style, color=color, label=f"{label} {metric.upper()} {statistic}")
        rates = [summary.get("output_tokens_per_second") for summary in summaries]
        throughput.plot(
            x,
            [r if isinstance(r, int | float) else math.nan for r in rates],
            "-o",
            color=color,
            label=label,
        )
    for axis, ylabel in ((latency, "latency, ms"), (throughput, "output tokens/s (aggregate)")):
        axis.set_xlabel(axis_label)
        axis.set_xticks(sorted(ticks))
        axis.set_ylabel(ylabel)
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize="small")
    latency.set_yscale("log")
    figure.suptitle(title)
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=110)
    except OSError as error:
        raise UsageError(f"{path}: cannot write the plot: {error.strerror or error}") from None
    finally:
        plt.close(figure)
