"""Benchmark: rendering a streamed markdown answer, block-wise versus the naive way.

Generates deterministic markdown answers of 500, 2,000 and 20,000 tokens (headings,
paragraphs, bullet and numbered lists, code fences, tables) and feeds them token by token,
as fast as possible, into:

(a) ``MarkdownStream(live=True)``: finished blocks printed once, the open block redrawn in
    a ``Live`` area by its refresh thread (8 redraws a second at most);
(a*) the same with a redraw forced after every token (``auto_refresh=False`` plus
    ``refresh()``): the worst case, showing that the live window's cost is bounded;
(b) the naive renderer: ``Live(Markdown(""))`` and ``live.update(Markdown(text_so_far),
    refresh=True)`` per token, without Live's own refresh thread. Above 2,000 tokens this
    would take hours, so it is sampled: one update is timed at evenly spaced lengths and
    the samples are integrated; at 2,000 tokens the estimate is printed next to the
    measured total, as a check;
(c) rendering the finished answer once: ``console.print(Markdown(answer))``.

Every console writes to os.devnull with ``force_terminal=True``, width 100, height 25.
A token is a run of whitespace followed by at most 8 other characters, so a typical word
is one token and a long identifier several; joined, the tokens are the answer exactly.
(a) and (c) run alternately, several times; the table shows the fastest run of each,
which is the least disturbed by other work on the machine.

Run: ``python benchmarks/render_markdown.py`` (``--quick`` for a short smoke run).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown

from llmcli.ui.mdstream import MarkdownStream

SIZES = (500, 2_000, 20_000)
NAIVE_MEASURED_UP_TO = 2_000  # above this the naive renderer is sampled, not run
NAIVE_SAMPLES = 24
WIDTH = 100

_TOKEN_RE = re.compile(r"\s*[^\s]{1,8}|\s+")

_PROSE = (
    "the request streams tokens from the backend and each delta carries a few characters "
    "of text so the client renders markdown while it arrives without waiting for the end "
    "latency matters more than throughput here because a person is reading along"
)
_WORDS = _PROSE.split()


def split_tokens(text: str) -> list[str]:
    """Split `text` into tokens of whitespace plus up to 8 other characters."""
    tokens = _TOKEN_RE.findall(text)
    assert "".join(tokens) == text
    return tokens


def _sentence(seed: int, words: int) -> str:
    picked = [_WORDS[(seed * 7 + index * 3) % len(_WORDS)] for index in range(words)]
    picked[0] = picked[0].capitalize()
    if words > 6:
        picked[3] = f"**{picked[3]}**"
        picked[5] = f"`{picked[5]}()`"
    return " ".join(picked) + "."


def _section(number: int) -> str:
    """One section of a made-up answer; sections vary with `number`."""
    paragraph = " ".join(_sentence(number + index, 12 + index % 5) for index in range(4))
    bullets = "\n".join(
        f"- {_sentence(number * 3 + index, 6 + index % 4)}" for index in range(4 + number % 3)
    )
    nested = f"  - {_sentence(number + 11, 5)}\n  - {_sentence(number + 12, 7)}"
    numbered = "\n".join(
        f"{index + 1}. {_sentence(number + index, 8)}" for index in range(3 + number % 4)
    )
    code_lines = [f"def handle_{number}(events, limit={number % 7 + 2}):"]
    code_lines += [
        f'    """Fold {number} events into one summary."""',
        "    total = 0",
        "    for event in events[:limit]:",
        f"        total += len(event.text) * {number % 5 + 1}",
        "        if total > 10_000:",
        "            break",
        "    return total",
    ]
    code = "```python\n" + "\n".join(code_lines) + "\n```"
    table = "| backend | tokens/s | first token |\n|---|---:|---:|\n" + "\n".join(
        f"| model-{number}-{index} | {40 + (number * 13 + index * 7) % 60} | "
        f"{120 + (number * 31 + index) % 300} ms |"
        for index in range(4)
    )
    parts = [f"## Step {number + 1}", paragraph, bullets + "\n" + nested, _sentence(number, 9)]
    parts += [code, numbered]
    if number % 3 == 0:
        parts.append(table)
    parts.append(paragraph)
    return "\n\n".join(parts) + "\n\n"


def make_answer(tokens: int) -> str:
    """A deterministic markdown answer of exactly `tokens` tokens."""
    text = ""
    number = 0
    while len(split_tokens(text)) < tokens:
        text += _section(number)
        number += 1
    return "".join(split_tokens(text)[:tokens])


@contextmanager
def null_console() -> Iterator[Console]:
    """A terminal-like console that writes to os.devnull."""
    with open(os.devnull, "w", encoding="utf-8") as sink:
        yield Console(
            file=sink, force_terminal=True, width=WIDTH, height=25, color_system="truecolor"
        )


def time_stream(tokens: list[str], *, refresh_each_token: bool) -> float:
    """Seconds to feed `tokens` into a live MarkdownStream and finish it."""
    with null_console() as console:
        started = time.perf_counter()
        stream = MarkdownStream(console, live=True, auto_refresh=not refresh_each_token)
        for token in tokens:
            stream.feed(token)
            if refresh_each_token:
                stream.refresh()
        stream.finish()
        return time.perf_counter() - started


def time_render_once(text: str) -> float:
    """Seconds to render the finished answer once."""
    with null_console() as console:
        started = time.perf_counter()
        console.print(Markdown(text))
        return time.perf_counter() - started


def time_naive(tokens: list[str]) -> float:
    """Seconds to feed `tokens` into Live(Markdown(text_so_far)), one update per token."""
    with null_console() as console:
        started = time.perf_counter()
        text = ""
        with Live(Markdown(""), console=console, auto_refresh=False) as live:
            for token in tokens:
                text += token
                live.update(Markdown(text), refresh=True)
        return time.perf_counter() - started


def estimate_naive(tokens: list[str], samples: int = NAIVE_SAMPLES) -> float:
    """Estimate `time_naive` by timing single updates at evenly spaced lengths."""
    prefix = [0]
    for token in tokens:
        prefix.append(prefix[-1] + len(token))
    text = "".join(tokens)
    positions = [round(len(tokens) * (index + 1) / samples) for index in range(samples)]
    costs: list[float] = []
    with null_console() as console, Live(Markdown(""), console=console, auto_refresh=False) as live:
        for position in positions:
            started = time.perf_counter()
            live.update(Markdown(text[: prefix[position]]), refresh=True)
            costs.append(time.perf_counter() - started)
    # Each sample stands for the len(tokens) / samples tokens around it.
    return sum(costs) * len(tokens) / samples


def fastest_alternating(runs: int, *measures: Callable[[], float]) -> list[float]:
    """Run the measures in turn, `runs` times; the fastest time of each."""
    times: list[list[float]] = [[] for _ in measures]
    for _ in range(runs):
        for index, measure in enumerate(measures):
            times[index].append(measure())
    return [min(each) for each in times]


@dataclass(frozen=True, slots=True)
class Row:
    tokens: int
    chars: int
    stream: float
    stream_worst: float
    naive: float
    naive_sampled: bool
    naive_check: float | None
    once: float


def run(sizes: tuple[int, ...], runs: int) -> list[Row]:
    # Warm up: the first render imports lexers and fills rich's caches.
    warm = make_answer(300)
    time_render_once(warm)
    time_stream(split_tokens(warm), refresh_each_token=False)
    rows = []
    for size in sizes:
        text = make_answer(size)
        tokens = split_tokens(text)
        once, stream = fastest_alternating(
            runs,
            partial(time_render_once, text),
            partial(time_stream, tokens, refresh_each_token=False),
        )
        worst = time_stream(tokens, refresh_each_token=True)
        check = None
        if size <= NAIVE_MEASURED_UP_TO:
            naive = time_naive(tokens)
            if size == NAIVE_MEASURED_UP_TO:
                check = estimate_naive(tokens)
        else:
            naive = estimate_naive(tokens)
        rows.append(
            Row(size, len(text), stream, worst, naive, size > NAIVE_MEASURED_UP_TO, check, once)
        )
        print(f"done: {size} tokens", file=sys.stderr)
    return rows


def report(rows: list[Row], out: TextIO) -> None:
    def ms(seconds: float, tokens: int) -> str:
        return f"{seconds * 1000 / tokens:.3f}"

    print(
        "| tokens | chars | (a) stream ms/token | (a) total s | (a*) redraw every token "
        "ms/token | (b) naive ms/token | (b) naive total s | (c) render once s | (a)/(c) |",
        file=out,
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|", file=out)
    for row in rows:
        naive_total = f"{row.naive:.1f}" + (" (sampled)" if row.naive_sampled else "")
        print(
            f"| {row.tokens:,} | {row.chars:,} | {ms(row.stream, row.tokens)} | "
            f"{row.stream:.3f} | {ms(row.stream_worst, row.tokens)} | "
            f"{ms(row.naive, row.tokens)} | {naive_total} | {row.once:.3f} | "
            f"{row.stream / row.once:.2f} |",
            file=out,
        )
    for row in rows:
        if row.naive_check is not None:
            print(
                f"\nSampling check at {row.tokens:,} tokens: naive measured {row.naive:.2f} s, "
                f"estimated from {NAIVE_SAMPLES} samples {row.naive_check:.2f} s.",
                file=out,
            )
    first, last = rows[0], rows[-1]
    growth = (last.stream / last.tokens) / (first.stream / first.tokens)
    print(
        f"\n(a) ms per token at {last.tokens:,} tokens / at {first.tokens:,} tokens: {growth:.2f}",
        file=out,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    args = parser.parse_args()
    sizes = (200, 1_000) if args.quick else SIZES
    runs = 1 if args.quick else 5
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.platform()}",
        file=sys.stderr,
    )
    report(run(sizes, runs), sys.stdout)


if __name__ == "__main__":
    main()
