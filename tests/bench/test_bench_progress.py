"""The progress a running bench shows: a live rich display on a terminal, plain lines
on a pipe (the mock server behind both, with faults so errors show)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import pty
import subprocess
import sys
import threading

import pytest
from conftest import BENCH_APP, WriteProfiles, zen_mock_profile
from rich.console import Console
from rig.profiles import make_profile

from llmcli.bench.metrics import request_end, summarise
from llmcli.bench.progress import LineProgress, LiveProgress, RunningFigures
from llmcli.bench.run import new_run, run_bench
from llmcli.bench.workload import Settings
from llmcli.mock import Faults, MockConfig, MockServerThread
from llmcli.mock.timing import parse_chunk_tokens, parse_timing


def test_live_display_shows_each_level_done_total_and_errors() -> None:
    config = MockConfig(ttft=0.005, itl=0.001, faults=Faults(status_500=0.5), seed=4)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    with MockServerThread(config) as server:
        profile = make_profile(server.base_url, name="mocky", dialect="zen", model="big-pickle")
        settings = Settings(concurrency=(1, 3), requests=12, max_tokens=3)
        with LiveProgress(console, auto_refresh=False) as live:
            run = asyncio.run(run_bench(new_run(settings), [profile], progress=live))
    failed = [
        sum(1 for r in level.records if r.error_kind is not None)
        for level in run.profiles[0].levels
    ]
    assert 0 < failed[0] < 12 and 0 < failed[1] < 12
    text = out.getvalue()
    assert "\x1b[" in text  # drawn in place on a terminal, not appended as lines
    final = text.rsplit("\x1b[1A\x1b[2K", 1)[-1]  # the last frame: up one row, redraw both
    assert "mocky concurrency 1" in final and "mocky concurrency 3" in final
    assert final.count("12/12") == 2
    assert f"errors {failed[0]}" in final and f"errors {failed[1]}" in final
    assert "0:00:0" in final  # elapsed
    for level in run.profiles[0].levels:  # the running figures end as the summary's
        summary = summarise(level.records)
        ttft = summary.metrics["ttft"].p50
        tps = summary.output_tokens_per_second
        assert ttft is not None and tps is not None
        assert f"TTFT p50 {ttft * 1000:.1f} ms" in final and f"{tps:,.1f} tok/s" in final


def test_the_running_figures_are_the_summarys_after_every_request() -> None:
    """TTFT p50 and aggregate tok/s kept up request by request, against the summary of the
    same records so far (failed requests widen the window but add no tokens or TTFT)."""
    config = MockConfig(
        ttft=parse_timing("uniform:0.001,0.01"),
        itl=0.0005,
        tokens_per_chunk=parse_chunk_tokens("uniform:1,3"),
        faults=Faults(status_500=0.2, reset=0.1),
        seed=7,
    )
    with MockServerThread(config) as server:
        profile = make_profile(server.base_url, name="m", dialect="zen", model="big-pickle")
        settings = Settings(concurrency=(3,), requests=30, max_tokens=5, warmup=2)
        run = asyncio.run(run_bench(new_run(settings), [profile]))
    records = [r for r in run.profiles[0].levels[0].records if not r.warmup]
    assert any(r.error_kind for r in records) and any(not r.error_kind for r in records)
    figures = RunningFigures()
    assert figures.texts() == ("-", "-")
    for count, record in enumerate(records, start=1):
        figures.add(request_end(record))
        summary = summarise(records[:count])
        assert figures.ttft_p50 == pytest.approx(summary.metrics["ttft"].p50, rel=1e-12)
        tps = summary.output_tokens_per_second
        assert figures.tokens_per_second == pytest.approx(tps, rel=1e-12)


def test_plain_lines_when_not_a_terminal() -> None:
    lines: list[str] = []
    with MockServerThread(MockConfig(ttft=0.005, itl=0.001)) as server:
        profile = make_profile(server.base_url, name="m", dialect="zen", model="big-pickle")
        settings = Settings(concurrency=(2,), requests=5, max_tokens=2, warmup=1)
        asyncio.run(run_bench(new_run(settings), [profile], progress=LineProgress(lines.append)))
    assert lines == ["m: running at concurrency 2", "m: concurrency 2: 5 requests, 0 failed"]


def test_the_cli_draws_the_live_display_on_a_terminal_stderr(
    write_profiles: WriteProfiles,
) -> None:
    with MockServerThread(MockConfig(ttft=0.005, itl=0.001)) as server:
        write_profiles(zen_mock_profile(server.base_url))
        master, slave = pty.openpty()
        args = ["bench", "-p", "mock", "--requests", "6", "--max-tokens", "2", "--json",
                "--out", os.devnull]  # fmt: skip
        with subprocess.Popen(
            [sys.executable, "-c", BENCH_APP, *args],
            stdout=subprocess.PIPE,
            stderr=slave,
            env={**os.environ, "COLUMNS": "100"},
        ) as process:
            os.close(slave)
            seen = bytearray()
            reader = threading.Thread(target=drain, args=(master, seen))
            reader.start()
            stdout, _ = process.communicate(timeout=60)
            reader.join(timeout=10)
        os.close(master)
    assert process.returncode == 0
    assert json.loads(stdout)["profiles"][0]["levels"]["c=1"]["ok"] == 6  # stdout: JSON only
    drawn = seen.decode("utf-8", "replace")
    assert "\x1b[?25l" in drawn  # the cursor hidden: a live display, not lines
    assert "mock concurrency 1" in drawn and "6/6" in drawn
    assert "running at" not in drawn  # no plain lines on a terminal


def drain(fd: int, into: bytearray) -> None:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            return
        if not chunk:
            return
        into.extend(chunk)
