"""``llmcli bench --html`` end to end: the real llama-server and the mock server (with a
hostile model name) measured side by side, the report written beside the table and the
results file; an unwritable report; ``bench compare --html`` from saved results."""

from __future__ import annotations

import io
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from conftest import WriteProfiles, string_terminal, zen_mock_profile
from rig import LlamaServer
from rig.profiles import make_profile
from test_bench_html import assert_fetches_nothing, parse
from typer.testing import CliRunner

from llmcli.bench.output import BenchOutput
from llmcli.bench.records import BenchRun
from llmcli.bench.report import table_rows
from llmcli.bench.session import Summary, run_session
from llmcli.bench.workload import Settings
from llmcli.commands import bench
from llmcli.endings import SignalEnding
from llmcli.mock import MockConfig, MockServerThread

app = typer.Typer()
app.add_typer(bench.app, name="bench")
app.command("other")(lambda: None)

HOSTILE = "<script>alert(1)</script>\x1b]0;x\x07"
HOSTILE_TOML = "<script>alert(1)</script>\\u001b]0;x\\u0007"
SECRET = "sk-html-secret-never-written"


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def hostile_mock() -> Iterator[MockServerThread]:
    config = MockConfig(models=(HOSTILE,), ttft=0.01, itl=0.002)
    with MockServerThread(config) as server:
        yield server


def test_llama_server_and_mock_report(
    write_profiles: WriteProfiles,
    llama_think: LlamaServer,
    hostile_mock: MockServerThread,
    tmp_path: Path,
) -> None:
    write_profiles(
        f'[profiles.tiny]\nbase_url = "{llama_think.base_url}"\ndialect = "llamacpp"\n'
        f'[profiles.mock]\nbase_url = "{hostile_mock.base_url}"\ndialect = "zen"\n'
        f'model = "{HOSTILE_TOML}"\napi_key = "{SECRET}"\n'
    )
    report, out = tmp_path / "r.html", tmp_path / "r.json"
    result = invoke(
        "bench", "-p", "tiny", "-p", "mock", "--concurrency", "1,2", "--requests", "5",
        "--max-tokens", "8", "--out", str(out), "--html", str(report),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert f"report written to {report}" in result.stderr
    assert "TTFT p50 ms" in result.stdout  # the table is still printed
    text = report.read_text(encoding="utf-8")
    data = json.loads(out.read_text())
    assert [p["name"] for p in data["profiles"]] == ["tiny", "mock"]
    for profile in data["profiles"]:
        assert all(level["summary"]["ok"] == 5 for level in profile["levels"]), profile["name"]
    # The same figures as the terminal table, from the same results.
    columns = [
        (p["name"], {lv["load"]: lv["summary"] for lv in p["levels"]}) for p in data["profiles"]
    ]
    for level, rows in table_rows(columns):
        assert f"<td>{level}</td>" in text
        for metric, cells, _ratios in rows:
            assert f"<td>{metric}</td>" in text
            assert all(cell.replace("<", "&lt;") in text for cell in cells)
    # llama-server's /props and /v1/models, the verdicts, the charts.
    assert "build_info" in text and "model_file" in text and "total_slots" in text
    assert '<td class="better">✓ ' in text or "no clear difference" in text
    assert text.count('<svg class="chart"') == 2 + 3 * 2
    # 3 CDFs a level, and the tok/s line (the latency lines are labelled with their metric)
    assert text.count('<g class="series"><title>tiny</title>') == 3 * 2 + 1
    # The hostile model name: in the header and the server info, escaped and inert.
    assert "<script" not in text and "\x1b" not in text and "\x07" not in text
    assert text.count("&lt;script&gt;alert(1)&lt;/script&gt;␛]0;x␇") >= 2
    assert SECRET not in text and "Authorization" not in text
    assert_fetches_nothing(text)
    assert {tag for tag, _ in parse(text).tags} >= {"table", "svg", "figure", "dl"}


@pytest.fixture
def mock_profiles(write_profiles: WriteProfiles) -> Iterator[None]:
    with MockServerThread(MockConfig(ttft=0.005, itl=0.001)) as server:
        write_profiles(zen_mock_profile(server.base_url))
        yield


@pytest.mark.usefixtures("mock_profiles")
def test_an_unwritable_report_loses_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = invoke(
        "bench", "-p", "mock", "--requests", "3", "--out", str(out), "--html", "/dev/full"
    )
    assert result.exit_code == 2
    assert result.stderr.endswith(
        "llmcli: error: cannot write the report to /dev/full: No space left on device\n"
    )
    assert "Traceback" not in result.stderr
    assert f"results written to {out}" in result.stderr
    assert json.loads(out.read_text())["profiles"][0]["levels"][0]["summary"]["ok"] == 3
    assert "TTFT p50 ms" in result.stdout  # the table came before the error


@pytest.mark.usefixtures("mock_profiles")
def test_a_report_path_in_no_directory_is_refused_before_the_run(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = invoke("bench", "-p", "mock", "--out", str(out), "--html", str(tmp_path / "no/r.html"))
    assert result.exit_code == 2
    assert result.stderr == (
        f"llmcli: error: --html {tmp_path / 'no/r.html'}: give a file in a directory that exists\n"
    )
    assert not out.exists()


@pytest.mark.usefixtures("mock_profiles")
def test_compare_writes_the_report_from_saved_results(tmp_path: Path) -> None:
    first, second = tmp_path / "before.json", tmp_path / "after.json"
    for path in (first, second):
        result = invoke("bench", "-p", "mock", "--requests", "6", "--concurrency", "1,2",
                        "--out", str(path))  # fmt: skip
        assert result.exit_code == 0, result.stderr
    one = tmp_path / "one.html"
    result = invoke("bench", "compare", str(first), "--html", str(one))
    assert result.exit_code == 0, result.stderr
    assert f"report written to {one}" in result.stderr and "before:mock" in result.stdout
    text = one.read_text()
    assert "before:mock" in text and text.count('<svg class="chart"') == 2 + 3 * 2
    assert "<h2>Verdicts</h2>" not in text  # one file, one profile: nothing to pair
    both = tmp_path / "both.html"
    result = invoke("bench", "compare", str(first), str(second), "--html", str(both))
    assert result.exit_code == 0, result.stderr
    text = both.read_text()
    assert (
        "<h2>Verdicts</h2>" in text and "<td>after:mock/before:mock</td>" in text
    )  # A/B as the table reads
    assert "<h3>before</h3>" in text and "<h3>after</h3>" in text  # each file's settings
    assert_fetches_nothing(text)


@pytest.mark.usefixtures("mock_profiles")
def test_json_on_stdout_stays_json_beside_the_report(tmp_path: Path) -> None:
    report = tmp_path / "r.html"
    result = invoke("bench", "-p", "mock", "--requests", "3", "--out", str(tmp_path / "r.json"),
                    "--html", str(report), "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["profiles"][0]["name"] == "mock"
    assert report.read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("writable", [True, False], ids=["report", "unwritable-report"])
def test_an_ending_still_writes_the_report_and_keeps_its_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writable: bool
) -> None:
    async def ended(run: BenchRun, *args: object, **kwargs: object) -> BenchRun:
        raise SignalEnding(signal.SIGTERM)  # as run_until_signalled raises it

    monkeypatch.setattr("llmcli.bench.run.run_bench", ended)
    facts = string_terminal()
    report = tmp_path / "r.html" if writable else Path("/dev/full")
    summary = Summary(BenchOutput(facts), tmp_path / "r.json", html=report)
    profile = make_profile("http://127.0.0.1:9/v1", name="mocky", dialect="zen", model="m")
    with pytest.raises(SignalEnding):  # the ending goes on, whatever became of the report
        run_session(Settings(concurrency=(1,), requests=3), [profile], summary)
    assert isinstance(facts.stderr, io.StringIO)
    notes = facts.stderr.getvalue()
    if writable:
        assert "interrupted run" in report.read_text()
        assert f"report written to {report}" in notes
    else:
        assert "llmcli bench: cannot write the report to /dev/full: No space left" in notes
