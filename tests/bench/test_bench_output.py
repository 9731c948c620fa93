"""llmcli.bench.output: where the bench draws, decided by the one Terminal it is given."""

from __future__ import annotations

import io

import pytest
from conftest import string_terminal
from rich.table import Table

from llmcli.bench.metrics import RequestEnd
from llmcli.bench.output import PIPED_WIDTH, BenchOutput
from llmcli.bench.progress import LineProgress, LiveProgress
from llmcli.ui.terminal import Terminal


def terminal(*, stdout_isatty: bool = False, stderr_isatty: bool = False) -> Terminal:
    return string_terminal(stdout_isatty=stdout_isatty, stderr_isatty=stderr_isatty)


def wide_table() -> Table:
    table = Table("metric", "value")
    table.add_row("x" * 60, "y" * 60)  # wider than 80 columns, narrower than PIPED_WIDTH
    return table


def printed(stream: object) -> str:
    assert isinstance(stream, io.StringIO)
    return stream.getvalue()


@pytest.fixture(autouse=True)
def eighty_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # rich's own width, whatever runs the tests


def test_a_piped_table_is_never_wrapped() -> None:
    piped = terminal()
    BenchOutput(piped).show(wide_table())
    rows = [line for line in printed(piped.stdout).splitlines() if "x" * 60 in line]
    assert len(rows) == 1 and "y" * 60 in rows[0]
    assert max(len(line) for line in printed(piped.stdout).splitlines()) <= PIPED_WIDTH


def test_a_terminal_table_keeps_the_terminals_width() -> None:
    screen = terminal(stdout_isatty=True)
    BenchOutput(screen).show(wide_table())
    assert "x" * 60 not in printed(screen.stdout)  # squeezed into rich's 80 columns


def test_json_and_csv_go_to_stdout_as_given_and_notes_to_stderr() -> None:
    facts = terminal()
    output = BenchOutput(facts)
    output.line('{"a": 1}')
    output.write("a,b\n1,2\n")
    output.note("results written to run.json")
    assert printed(facts.stdout) == '{"a": 1}\na,b\n1,2\n'
    assert printed(facts.stderr) == "llmcli bench: results written to run.json\n"


def test_piped_stderr_gets_plain_progress_lines() -> None:
    facts = terminal()
    with BenchOutput(facts).tracker() as tracker:
        assert isinstance(tracker, LineProgress)
        tracker.level_started("mock", "concurrency 2", 10)
        tracker.level_finished(10, 1)
    assert printed(facts.stderr) == (
        "llmcli bench: mock: running at concurrency 2\n"
        "llmcli bench: mock: concurrency 2: 10 requests, 1 failed\n"
    )


def test_a_terminal_stderr_gets_the_live_display() -> None:
    facts = terminal(stderr_isatty=True)
    with BenchOutput(facts).tracker() as tracker:
        assert isinstance(tracker, LiveProgress)
        tracker.level_started("mock", "concurrency 2", 10)
        tracker.request_done(RequestEnd(ok=True, ttft=0.25, tokens=8, start=1.0, end=3.0))
        tracker.level_finished(1, 0)
    assert "mock concurrency 2" in printed(facts.stderr)
    assert "TTFT p50 250.0 ms" in printed(facts.stderr) and "4.0 tok/s" in printed(facts.stderr)
    assert printed(facts.stdout) == ""
