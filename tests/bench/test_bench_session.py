"""llmcli.bench.session: a bench as the command makes it, reached without the CLI."""

from __future__ import annotations

import io
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import string_terminal
from rig.profiles import make_profile

from llmcli.bench.metrics import RequestRecord, TokenChunk
from llmcli.bench.output import BenchOutput
from llmcli.bench.records import BenchRun, LevelResult, ProfileRun
from llmcli.bench.run import new_run
from llmcli.bench.session import (
    DEFAULT_REQUESTS,
    Summary,
    results_dir,
    run_session,
    settings_from_options,
)
from llmcli.bench.workload import Settings
from llmcli.endings import SignalEnding
from llmcli.errors import LlmcliError, UsageError
from llmcli.mock import Faults, MockConfig, MockServerThread
from llmcli.ui.terminal import Terminal

OPTIONS: dict[str, Any] = {
    "concurrency": "1,4",
    "requests": None,
    "duration": None,
    "warmup": 0,
    "input_tokens": 64,
    "max_tokens": 64,
    "model": None,
    "prompts": None,
    "cache": False,
    "rate": None,
    "arrival": "poisson",
    "slo": "ttft=500ms,tpot=50ms",
    "workers": 1,
}


def piped() -> Terminal:
    return string_terminal()


def text(stream: object) -> str:
    assert isinstance(stream, io.StringIO)
    return stream.getvalue()


def test_settings_from_the_option_text() -> None:
    settings = settings_from_options(**OPTIONS)
    assert settings.concurrency == (1, 4)
    assert settings.requests == DEFAULT_REQUESTS
    assert settings.slo.ttft == 0.5 and settings.slo.tpot == 0.05


def test_a_duration_replaces_the_default_request_count() -> None:
    settings = settings_from_options(**{**OPTIONS, "duration": "2m"})
    assert settings.duration == 120.0 and settings.requests is None


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("arrival", "bursty", "--arrival 'bursty': use poisson or constant"),
        ("duration", "soon", "not a duration: 'soon'"),
        ("slo", "latency=1s", "bad SLO 'latency=1s'"),
    ],
)
def test_bad_option_text_is_one_usage_error(option: str, value: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        settings_from_options(**{**OPTIONS, option: value})


def test_an_out_path_that_cannot_be_written_is_refused_before_the_run(tmp_path: Path) -> None:
    output = BenchOutput(piped())
    for out in (tmp_path, tmp_path / "missing" / "run.json"):
        with pytest.raises(UsageError, match="give a file in a directory that exists"):
            Summary(output, out).check_out()
    Summary(output, tmp_path / "run.json").check_out()
    Summary(output).check_out()  # the default name, in the data directory


@pytest.fixture
def mock() -> Iterator[MockServerThread]:
    with MockServerThread(MockConfig(ttft=0.001, itl=0.001)) as server:
        yield server


def test_a_run_writes_its_results_and_the_summary(mock: MockServerThread, tmp_path: Path) -> None:
    facts = piped()
    out = tmp_path / "run.json"
    profile = make_profile(mock.base_url, name="mocky", dialect="zen", model="big-pickle")
    settings = Settings(concurrency=(1,), requests=3, max_tokens=2)
    run = run_session(settings, [profile], Summary(BenchOutput(facts), out, as_json=True))
    assert not run.interrupted
    assert json.loads(out.read_text())["profiles"][0]["name"] == "mocky"
    summary = json.loads(text(facts.stdout))
    assert summary["profiles"][0]["levels"]["c=1"]["ok"] == 3
    assert text(facts.stderr).splitlines() == [
        "llmcli bench: mocky: running at concurrency 1",
        "llmcli bench: mocky: concurrency 1: 3 requests, 0 failed",
        f"llmcli bench: results written to {out}",
    ]


def test_an_ending_still_writes_what_arrived_then_goes_on(
    mock: MockServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def ended(run: BenchRun, *args: object, **kwargs: object) -> BenchRun:
        raise SignalEnding(signal.SIGTERM)  # as run_until_signalled raises it

    monkeypatch.setattr("llmcli.bench.run.run_bench", ended)
    facts = piped()
    out = tmp_path / "cut.json"
    profile = make_profile(mock.base_url, name="mocky", dialect="zen", model="big-pickle")
    settings = Settings(concurrency=(1,), requests=3, max_tokens=2)
    with pytest.raises(SignalEnding):
        run_session(settings, [profile], Summary(BenchOutput(facts), out, as_csv=True))
    assert json.loads(out.read_text())["interrupted"] is True
    assert f"results written to {out} (interrupted run)" in text(facts.stderr)
    assert text(facts.stdout).startswith("profile,")


def test_a_constraint_the_backend_cannot_apply_is_refused_before_any_request(
    mock: MockServerThread, tmp_path: Path
) -> None:
    profile = make_profile(mock.base_url, name="mocky", dialect="zen", model="big-pickle")
    settings = Settings(concurrency=(1,), requests=1, grammar='root ::= "a"')
    out = tmp_path / "never.json"
    with pytest.raises(UsageError):
        run_session(settings, [profile], Summary(BenchOutput(piped()), out))
    assert not out.exists() and not mock.server.requests


def test_without_out_the_results_go_to_the_data_directory_not_the_working_one(
    mock: MockServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMCLI_DATA_DIR", str(tmp_path / "data"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    facts = piped()
    profile = make_profile(mock.base_url, name="mocky", dialect="zen", model="big-pickle")
    settings = Settings(concurrency=(1,), requests=2, max_tokens=2)
    for _ in range(2):  # two runs in one second: two files
        run_session(settings, [profile], Summary(BenchOutput(facts), as_json=True))
    assert results_dir({"LLMCLI_DATA_DIR": str(tmp_path / "data")}) == tmp_path / "data" / "bench"
    written = sorted((tmp_path / "data" / "bench").iterdir())
    assert len(written) == 2 and all(p.name.startswith("bench-") for p in written)
    assert list(work.iterdir()) == []
    notes = [line for line in text(facts.stderr).splitlines() if "results written" in line]
    assert sorted(notes) == [f"llmcli bench: results written to {path}" for path in written]


def test_a_profile_without_a_successful_request_is_an_error_after_the_summary(
    tmp_path: Path,
) -> None:
    facts = piped()
    out = tmp_path / "run.json"
    settings = Settings(concurrency=(1,), requests=3, max_tokens=2)
    with (
        MockServerThread(MockConfig(ttft=0.001, itl=0.001)) as good,
        MockServerThread(MockConfig(faults=Faults(status_500=1.0))) as bad,
    ):
        profiles = [
            make_profile(good.base_url, name="good", dialect="zen", model="big-pickle"),
            make_profile(bad.base_url, name="broken", dialect="zen", model="big-pickle"),
        ]
        with pytest.raises(LlmcliError, match="no successful request from profile broken ") as err:
            run_session(settings, profiles, Summary(BenchOutput(facts), out, as_json=True))
    assert err.value.exit_code == 1 and not isinstance(err.value, UsageError)
    assert "good" not in str(err.value)
    summary = json.loads(text(facts.stdout))  # the summary and the file are still written
    assert [p["levels"]["c=1"]["ok"] for p in summary["profiles"]] == [3, 0]
    assert [p["name"] for p in json.loads(out.read_text())["profiles"]] == ["good", "broken"]


def test_the_tables_legend_lists_draft_acceptance_when_a_draft_ran(tmp_path: Path) -> None:
    run = new_run(Settings(concurrency=(1,), requests=1))
    level = LevelResult(concurrency=1)
    chunks = [TokenChunk(0.1 + 0.01 * i, "content") for i in range(4)]
    timings = {"draft_n": 8, "draft_n_accepted": 6}
    record = RequestRecord(0, 0.0, chunks=chunks, completion_tokens=4, timings=timings)
    level.records.append(record)
    run.profiles.append(ProfileRun("fast", "http://127.0.0.1:9/v1", "llamacpp", "m", [level]))
    facts = piped()
    Summary(BenchOutput(facts), tmp_path / "run.json").write(run)
    table = text(facts.stdout)
    assert "draft acceptance mean" in table
    assert "draft  speculative decoding: timings.draft_n_accepted / timings.draft_n" in table
