"""``llmcli bench --sweep`` against the mock server, through Typer.

The mock's latency does not grow with load, so where the knee falls is tested on scripted
figures (test_bench_sweep.py); here, that a sweep measures the levels the search asks for,
reports each step and its knee in the table, ``--json`` and the results file, and stops
within its bounds, with an SLO the test sets either side of the mock's fixed TTFT.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from conftest import WriteProfiles
from typer.testing import CliRunner

from llmcli.commands import bench
from llmcli.mock import MockConfig, MockServerThread

app = typer.Typer()
app.add_typer(bench.app, name="bench")


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def mock_profile(write_profiles: WriteProfiles) -> Iterator[Path]:
    # TTFT 50 ms: an SLO of 10 s is always met, one of 1 ms never.
    with MockServerThread(MockConfig(ttft=0.05, itl=0.001)) as server:
        yield write_profiles(
            f'[profiles.mock]\nbase_url = "{server.base_url}"\ndialect = "zen"\n'
            'model = "big-pickle"\napi_key = "sk-x"\n'
        )


def test_a_sweep_that_always_passes_doubles_and_stops_at_its_step_bound(
    mock_profile: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run.json"
    result = invoke(
        "bench", "-p", "mock", "--sweep", "--slo", "ttft=10s", "--sweep-steps", "3",
        "--sweep-max", "64", "--requests", "4", "--max-tokens", "3", "--json", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    sweep = json.loads(result.stdout)["sweep"]
    assert json.loads(out.read_text())["sweep"] == sweep
    assert (sweep["load"], sweep["max_steps"], sweep["target"]) == ("concurrency", 3, 0.9)
    (profile,) = sweep["profiles"]
    assert [s["level"] for s in profile["steps"]] == [1, 2, 4]
    assert all(s["passed"] and s["requests"] == s["within_slo"] == 4 for s in profile["steps"])
    assert profile["knee"]["reason"] == "steps"
    assert profile["knee"]["last_pass"] == 4 and profile["knee"]["first_fail"] is None


def test_a_sweep_that_reaches_its_max_level(mock_profile: Path, tmp_path: Path) -> None:
    result = invoke(
        "bench", "-p", "mock", "--sweep", "--slo", "ttft=10s", "--sweep-max", "3",
        "--requests", "3", "--max-tokens", "3", "--out", str(tmp_path / "run.json"),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "knee search" in result.stdout
    assert "knee: not reached: every level up to 3 met the SLO" in result.stdout
    data = json.loads((tmp_path / "run.json").read_text())
    assert [s["level"] for s in data["sweep"]["profiles"][0]["steps"]] == [1, 2, 3]


def test_a_sweep_whose_first_level_misses_the_slo_stops_there(
    mock_profile: Path, tmp_path: Path
) -> None:
    result = invoke(
        "bench", "-p", "mock", "--sweep", "--slo", "ttft=1ms", "--requests", "3",
        "--max-tokens", "3", "--out", str(tmp_path / "run.json"),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "FAIL" in result.stdout
    assert "knee: below 1: the first level already missed the SLO" in result.stdout
    data = json.loads((tmp_path / "run.json").read_text())
    (step,) = data["sweep"]["profiles"][0]["steps"]
    assert (step["level"], step["within_slo"], step["passed"]) == (1, 0, False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sweep"], "--sweep needs --slo"),
        (["--sweep", "--slo", "ttft=1s", "--concurrency", "1,4"], "one --concurrency start"),
        (["--sweep", "--slo", "ttft=1s", "--sweep-max", "1e9"], "--sweep-max 1e+09"),
        (["--sweep", "--slo", "ttft=1s", "--sweep-target", "2"], "--sweep-target 2"),
        (["--sweep", "--slo", "ttft=1s", "--sweep-steps", "0"], "--sweep-steps 0"),
        (["--sweep", "--slo", "ttft=1s", "--interleave"], "leave out --interleave"),
        (["--sweep-max", "8"], "--sweep-max needs --sweep"),
    ],
)
def test_bad_sweep_options_are_one_line_errors(
    mock_profile: Path, args: list[str], message: str
) -> None:
    result = invoke("bench", "-p", "mock", *args)
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_open_loop_sweep_searches_the_rate(mock_profile: Path, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    result = invoke(
        "bench", "-p", "mock", "--sweep", "--slo", "ttft=10s", "--rate", "20", "--arrival",
        "constant", "--sweep-max", "40", "--requests", "3", "--max-tokens", "3", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    sweep = json.loads(out.read_text())["sweep"]
    assert sweep["load"] == "requests_per_second"
    assert "requests/s" in result.stdout
    levels = json.loads(out.read_text())["profiles"][0]["levels"]
    assert [s["level"] for s in sweep["profiles"][0]["steps"]] == [20, 40]
    assert [level["rate"] for level in levels] == [20, 40]
