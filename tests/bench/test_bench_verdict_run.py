"""Verdicts of a real run against llmcli's mock server: two profiles, clearly different TTFT."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rig.profiles import make_profile

from llmcli.bench.output import BenchOutput
from llmcli.bench.session import Summary, run_session
from llmcli.bench.workload import Settings
from llmcli.config.profiles import Profile
from llmcli.mock import MockConfig, MockServerThread
from llmcli.ui.terminal import Terminal


def piped() -> Terminal:
    return Terminal(
        stdin=io.StringIO(),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
        stdin_isatty=False,
        stdout_isatty=False,
        stderr_isatty=False,
        no_color=True,
        width=80,
    )


def stdout_of(terminal: Terminal) -> str:
    assert isinstance(terminal.stdout, io.StringIO)
    return terminal.stdout.getvalue()


@pytest.fixture
def profiles() -> Iterator[list[Profile]]:
    # TTFT 5 ms against 60 ms: a 12x gap, far outside any scheduling noise on a busy machine.
    with (
        MockServerThread(MockConfig(ttft=0.005, itl=0.001)) as fast,
        MockServerThread(MockConfig(ttft=0.06, itl=0.001)) as slow,
    ):
        yield [
            make_profile(fast.base_url, name="quick", dialect="zen", model="big-pickle"),
            make_profile(slow.base_url, name="sluggish", dialect="zen", model="big-pickle"),
        ]


SETTINGS = Settings(concurrency=(1,), requests=8, max_tokens=4)


def test_the_table_says_which_reaches_the_first_token_sooner(
    profiles: list[Profile], tmp_path: Path
) -> None:
    facts = piped()
    run_session(SETTINGS, profiles, Summary(BenchOutput(facts), tmp_path / "run.json"))
    shown = stdout_of(facts)
    assert "verdicts (median ratio, 95% bootstrap CI)" in shown
    assert "quick reaches the first token" in shown
    assert "sooner than sluggish (95% CI" in shown
    assert "✓ quick" in shown


def test_json_and_the_results_file_carry_the_same_verdicts(
    profiles: list[Profile], tmp_path: Path
) -> None:
    facts = piped()
    out = tmp_path / "run.json"
    run_session(SETTINGS, profiles, Summary(BenchOutput(facts), out, as_json=True))
    printed = json.loads(stdout_of(facts))["verdicts"]
    stored = json.loads(out.read_text())["verdicts"]
    assert printed == stored
    ttft = next(v for v in printed if v["metric"] == "ttft")
    assert (ttft["load"], ttft["a"], ttft["b"], ttft["better"]) == (
        "c=1",
        "quick",
        "sluggish",
        "quick",
    )
    low, high = ttft["ci95"]
    assert low <= ttft["ratio"] <= high < 1.0
    assert ttft["sentence"].startswith("quick reaches the first token")
