"""Verdicts of a real run against llmcli's mock server: two profiles, clearly different TTFT."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import string_terminal
from rig.profiles import make_profile

from llmcli.bench.output import BenchOutput
from llmcli.bench.session import Summary, run_session
from llmcli.bench.workload import Settings
from llmcli.config.profiles import Profile
from llmcli.mock import MockConfig, MockServerThread
from llmcli.ui.terminal import Terminal


def piped() -> Terminal:
    return string_terminal()


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
    # A/B is the later profile over the first, as the table's "sluggish/quick" column
    assert (ttft["load"], ttft["a"], ttft["b"], ttft["better"]) == (
        "c=1",
        "sluggish",
        "quick",
        "quick",
    )
    low, high = ttft["ci95"]
    assert 1.0 < low <= ttft["ratio"] <= high
    assert ttft["sentence"].startswith("quick reaches the first token")


def test_the_verdicts_ratio_reads_the_way_the_tables_does(
    profiles: list[Profile], tmp_path: Path
) -> None:
    """One direction for both: the table's "sluggish/quick" TTFT ratio and the verdict's
    A/B are the same ratio of medians, not one the inverse of the other."""
    facts = piped()
    run_session(SETTINGS, profiles, Summary(BenchOutput(facts), tmp_path / "run.json"))
    shown = stdout_of(facts)
    assert "sluggish/quick" in shown and "quick/sluggish" not in shown
    data = json.loads((tmp_path / "run.json").read_text())
    ttft = next(v for v in data["verdicts"] if v["metric"] == "ttft")
    medians = [p["levels"][0]["summary"]["metrics"]["ttft"]["p50"] for p in data["profiles"]]
    assert ttft["ratio"] == pytest.approx(medians[1] / medians[0], rel=1e-6)


def compare(*args: str) -> Any:
    from typer.testing import CliRunner

    from llmcli.commands.bench import app

    return CliRunner().invoke(app, ["compare", *args])


def test_compare_pairs_two_one_profile_files_and_gives_the_same_verdict(
    profiles: list[Profile], tmp_path: Path
) -> None:
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    for profile, out in zip(profiles, (before, after), strict=True):
        run_session(SETTINGS, [profile], Summary(BenchOutput(piped()), out, as_json=True))
    shown = compare(str(before), str(after))
    assert shown.exit_code == 0, shown.stderr
    assert "before:quick reaches the first token" in shown.stdout
    assert "✓ before:quick" in shown.stdout
    as_json = compare("--json", str(before), str(after))
    ttft = next(v for v in json.loads(as_json.stdout)["verdicts"] if v["metric"] == "ttft")
    assert (ttft["a"], ttft["b"], ttft["better"]) == (  # after/before, as the table reads
        "after:sluggish",
        "before:quick",
        "before:quick",
    )


def test_compare_pairs_profiles_of_the_same_name(profiles: list[Profile], tmp_path: Path) -> None:
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    for out in (one, two):
        run_session(SETTINGS, profiles, Summary(BenchOutput(piped()), out, as_json=True))
    verdicts = json.loads(compare("--json", str(one), str(two)).stdout)["verdicts"]
    pairs = {(v["a"], v["b"]) for v in verdicts}
    assert pairs == {("two:quick", "one:quick"), ("two:sluggish", "one:sluggish")}
    # The same server against itself: near 1, never the 12x of quick against sluggish
    # (whether the interval spans 1 depends on the machine's noise, so it is not asserted).
    ttft = [v for v in verdicts if v["metric"] == "ttft"]
    assert all(0.5 < v["ratio"] < 2.0 for v in ttft)
