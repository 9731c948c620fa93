"""``llmcli bench`` and ``llmcli mock-server`` through Typer: the mock server for zen's
dialect, the real llama-server for llama.cpp's (with its ``timings`` beside the client's).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from conftest import BENCH_APP, WriteProfiles
from rig import LlamaServer
from typer.testing import CliRunner

from llmcli.commands import bench, mock_server
from llmcli.mock import Faults, MockConfig, MockServerThread
from llmcli.mock.processes import log_entry

# The registration cli.py is to carry, on an app of its own so these tests need no cli.py edit.
app = typer.Typer()
app.add_typer(bench.app, name="bench")
app.command("mock-server")(mock_server.mock_server)

SECRET = "sk-bench-secret-never-written"


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def mock() -> Iterator[MockServerThread]:
    with MockServerThread(MockConfig(ttft=0.01, itl=0.002, tokens_per_chunk=2)) as server:
        yield server


@pytest.fixture
def mock_profiles(write_profiles: WriteProfiles, mock: MockServerThread) -> Path:
    return write_profiles(
        f'[profiles.mock]\nbase_url = "{mock.base_url}"\ndialect = "zen"\n'
        f'model = "big-pickle"\napi_key = "{SECRET}"\n'
        f'[profiles.mock2]\nbase_url = "{mock.base_url}"\ndialect = "zen"\n'
        'model = "big-pickle"\nheaders = { x-secret = "' + SECRET + '" }\n'
    )


def test_two_profiles_side_by_side_with_ratios_and_formulas(
    mock_profiles: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run.json"
    result = invoke(
        "bench", "-p", "mock", "-p", "mock2", "--concurrency", "1,2", "--requests", "4", "--interleave",
        "--max-tokens", "6", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    table = result.stdout
    assert "mock2/mock" in table and "c=1" in table and "c=2" in table
    assert "TTFT p50 ms" in table and "ITL p50 ms" in table
    assert "x" in table  # ratios
    assert "(e2e - TTFT) / (output tokens - 1)" in table  # the formulas under the table
    assert "multi 4" in table  # 2 tokens a chunk: flagged
    assert "prompt tokens mean (usage)" in table
    assert "output tok/s (aggregate)\n" in table and "█" in table  # the chart against load
    assert f"results written to {out}" in result.stderr
    saved = out.read_text()
    assert SECRET not in saved
    data = json.loads(saved)
    assert [p["name"] for p in data["profiles"]] == ["mock", "mock2"]
    level = data["profiles"][0]["levels"][0]
    assert len(level["requests"]) == 4
    first = level["requests"][0]
    assert first["completion_tokens"] == 6 and len(first["chunks"]) == 3
    assert 0 <= first["sent"] < first["chunks"][0][0] <= first["finish"] <= first["closed"]


def test_json_summary_and_compare(mock_profiles: Path, tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.json"
        result = invoke(
            "bench", "-p", "mock", "--requests", "3", "--max-tokens", "4", "--json",
            "--out", str(out),
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        runs.append(out)
        summary = json.loads(result.stdout)
        [profile] = summary["profiles"]
        assert profile["name"] == "mock"
        level = profile["levels"]["c=1"]
        assert (level["requests"], level["ok"], level["failed"]) == (3, 3, 0)
        for metric in ("ttft", "ttfa", "itl", "tpot", "e2e", "output_tps"):
            assert set(level["metrics"][metric]) == {
                "count", "mean", "p50", "p90", "p95", "p99", "max"
            }  # fmt: skip
    compared = invoke("bench", "compare", *map(str, runs))
    assert compared.exit_code == 0, compared.stderr
    assert "b:mock/a:mock" in compared.stdout
    as_csv = invoke("bench", "compare", "--csv", *map(str, runs))
    assert as_csv.stdout.splitlines()[0].startswith("profile,load,metric,count,mean,p50")


def test_bad_options_are_one_line_errors(mock_profiles: Path) -> None:
    for args in (
        ["--concurrency", "0"],
        ["--slo", "latency=3"],
        ["--duration", "soon"],
        ["--arrival", "bursty"],
        ["--workers", "0"],
    ):
        result = invoke("bench", "-p", "mock", *args)
        assert result.exit_code == 2, (args, result.stdout)
        assert result.stderr.startswith("llmcli: error: ") and len(result.stderr.splitlines()) == 1


def test_open_loop_rate(mock_profiles: Path, tmp_path: Path) -> None:
    out = tmp_path / "rate.json"
    result = invoke(
        "bench", "-p", "mock", "--rate", "200", "--arrival", "constant", "--requests", "5",
        "--max-tokens", "2", "--json", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    level = json.loads(out.read_text())["profiles"][0]["levels"][0]
    assert level["load"] == "rate 200/s" and len(level["send_offsets"]) == 5
    assert level["summary"]["target_rate"] == 200
    assert level["actual_send_rate"] > 0
    assert level["summary"]["ok"] == 5


def test_llama_and_mock_side_by_side_with_server_timings(
    write_profiles: WriteProfiles, llama_think: LlamaServer, mock: MockServerThread, tmp_path: Path
) -> None:
    write_profiles(
        f'[profiles.mock]\nbase_url = "{mock.base_url}"\ndialect = "zen"\nmodel = "big-pickle"\n'
        f'[profiles.tiny]\nbase_url = "{llama_think.base_url}"\ndialect = "llamacpp"\n'
    )
    result = invoke(
        "bench", "-p", "tiny", "-p", "mock", "--concurrency", "1,2", "--requests", "4",
        "--max-tokens", "16", "--out", str(tmp_path / "r.json"),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "gen tok/s p50 (client)" in result.stdout
    assert "gen tok/s p50 (server)" in result.stdout
    assert "prompt tokens mean (tokenize)" in result.stdout
    assert "prompt tokens mean (usage)" in result.stdout
    data = json.loads((tmp_path / "r.json").read_text())
    tiny = data["profiles"][0]
    assert tiny["server"]["props"]["total_slots"] >= 1
    assert tiny["server"]["models"][0]["id"] == "tiny"
    assert data["profiles"][1]["server"]["models"][0]["id"] == "big-pickle"
    assert tiny["input_tokens"]["source"] == "tokenize"
    assert abs(tiny["levels"][0]["summary"]["input_tokens_measured"] - 64) <= 2
    for level in tiny["levels"]:
        summary = level["summary"]
        assert summary["ok"] == 4, [r["error"] for r in level["requests"] if r["error"]]
        assert summary["token_sources"] == {"usage": 4}
        assert summary["metrics"]["server_generation_tps"]["count"] == 4
        # The client's own gen tok/s needs its chunks (and the finish) spread over time: the
        # tiny model can write all 16 tokens in well under a millisecond, and a busy client
        # then reads them in one go, all with one arrival time.
        spread = sum(
            1
            for r in level["requests"]
            if len({at for at, _ in r["chunks"]} | {max(r["finish"], r["chunks"][-1][0])}) > 1
        )
        assert summary["metrics"]["generation_tps"]["count"] == spread
        for request in level["requests"]:
            # ignore_eos: the tiny model writes exactly what was asked for.
            assert request["completion_tokens"] == 16
            assert request["timings"]["predicted_n"] == 16


def test_mock_server_command_serves_until_interrupted() -> None:
    code = (
        "import sys, typer\n"
        "from llmcli.commands import mock_server\n"
        "app = typer.Typer()\n"
        "app.command('mock-server')(mock_server.mock_server)\n"
        "app.command('other')(lambda: None)\n"
        "app()\n"
    )
    args = ["mock-server", "--port", "0", "--dialect", "llamacpp", "--ttft", "0.01"]
    with subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            base_url = process.stdout.readline().strip()
            assert base_url.startswith("http://127.0.0.1:")
            health = httpx.get(base_url.removesuffix("/v1") + "/health", timeout=5)
            assert health.status_code == 200
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_check_reads_a_run_against_the_mock_servers_log(
    mock_profiles: Path, mock: MockServerThread, tmp_path: Path
) -> None:
    out = tmp_path / "run.json"
    args = ["--concurrency", "1,2", "--requests", "4", "--warmup", "1", "--max-tokens", "6"]
    assert invoke("bench", "-p", "mock", *args, "--out", str(out)).exit_code == 0
    log = tmp_path / "sent.jsonl"  # the lines mock-server --log writes, from the same records
    log.write_text("".join(json.dumps(log_entry(r, 0, 1)) + "\n" for r in mock.server.requests))
    result = invoke("bench", "check", str(out), str(log), "--json")
    assert result.exit_code == 0, result.stderr
    levels = json.loads(result.stdout)
    assert [(lv["load"], lv["matched"], lv["unmatched"]) for lv in levels] == [
        ("c=1", 4, 0),
        ("c=2", 4, 0),
    ]
    for level in levels:
        assert level["ttft_error"]["count"] == level["e2e_error"]["count"] == 4
        assert level["itl_error"]["count"] == 4 * 2  # 6 tokens, 2 a chunk: 3 chunks, 2 gaps
    table = invoke("bench", "check", str(out), str(log))
    assert table.exit_code == 0 and "TTFT p99" in table.stdout and "c=2" in table.stdout
    # A run of two profiles, the other one another server's: left out, and said so.
    data = json.loads(out.read_text())
    other = json.loads(json.dumps(data["profiles"][0]))
    other["name"] = "elsewhere"
    for level in other["levels"]:
        for request in level["requests"]:
            request["nonce"] = "x" + str(request["nonce"])
    data["profiles"].append(other)
    both = tmp_path / "both.json"
    both.write_text(json.dumps(data))
    mixed = invoke("bench", "check", str(both), str(log), "--json")
    assert mixed.exit_code == 0, mixed.stderr
    assert {lv["profile"] for lv in json.loads(mixed.stdout)} == {"mock"}
    assert "elsewhere: no request of it is in" in mixed.stderr
    unrelated = tmp_path / "other.jsonl"  # another run's log: no prompt of this run in it
    unrelated.write_text(log.read_text().replace('"content": "', '"content": "x'))
    refused = invoke("bench", "check", str(out), str(unrelated))
    assert refused.exit_code == 2 and "no request of" in refused.stderr


def test_mock_server_rejects_unknown_fault() -> None:
    result = invoke("mock-server", "--faults", "gremlins=0.5")
    assert result.exit_code == 2
    assert "unknown fault 'gremlins'" in result.stderr


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--itl", "gauss:0.02", "unknown distribution 'gauss'"),
        ("--ttft", "uniform:0.5,0.1", "LOW <= HIGH"),
        ("--tokens-per-chunk", "2.5", "whole number"),
    ],
)
def test_mock_server_rejects_a_bad_timing_in_one_line(
    option: str, value: str, message: str
) -> None:
    result = invoke("mock-server", option, value)
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


def interrupt_bench(
    args: list[str],
    *,
    group: bool = False,
    timeout: float = 30,
    signum: signal.Signals = signal.SIGINT,
) -> tuple[int, str, str]:
    """Run ``llmcli ARGS`` in a child and Ctrl-C it once requests flow: (code, out, err).

    ``group``: the child leads its own process group and the SIGINT goes to the whole
    group, as a terminal's Ctrl-C does; otherwise to the child alone. ``signum``: another
    signal instead (SIGTERM as ``timeout`` sends it, SIGHUP as a closed terminal does).
    """
    with subprocess.Popen(
        [sys.executable, "-c", BENCH_APP, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=group,
    ) as process:
        assert process.stderr is not None
        assert "running" in process.stderr.readline()  # "running at ...": requests flow
        time.sleep(1.0)
        if group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=timeout)
    return process.returncode, stdout, stderr


def test_ctrl_c_writes_every_finished_request_and_exits_130(
    mock_profiles: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cut.json"
    args = ["bench", "-p", "mock", "--concurrency", "2", "--requests", "100000", "--out", str(out)]
    returncode, stdout, stderr = interrupt_bench(args)
    assert returncode == 130, stderr
    assert "interrupted" in stderr and f"results written to {out}" in stderr
    assert "TTFT p50 ms" in stdout
    data = json.loads(out.read_text())
    assert data["interrupted"] is True
    summary = data["profiles"][0]["levels"][0]["summary"]
    assert summary["ok"] > 0 and summary["failed"] == 0
    requests = data["profiles"][0]["levels"][0]["requests"]
    assert len(requests) == summary["requests"] + summary["cancelled"]


def test_a_json_schema_is_sent_with_every_request(write_profiles: Any, tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text('{"type": "object", "properties": {"a": {"type": "string"}}}')
    with MockServerThread(MockConfig(dialect="llamacpp")) as mock:
        write_profiles(f'[profiles.m]\nbase_url = "{mock.base_url}"\ndialect = "llamacpp"\n')
        result = CliRunner().invoke(
            app,
            [
                "bench",
                "-p",
                "m",
                "--requests",
                "2",
                "--json-schema",
                str(schema),
                "--json",
                "--out",
                str(tmp_path / "r.json"),
            ],
        )
        chats = [r for r in mock.server.requests if r.path.endswith("/chat/completions")]
    assert result.exit_code == 0, result.stderr
    assert len(chats) == 2
    assert all(r.body["json_schema"]["properties"] == {"a": {"type": "string"}} for r in chats)


def test_a_grammar_on_zen_is_refused_before_any_request(tmp_path: Path) -> None:
    grammar = tmp_path / "g.gbnf"
    grammar.write_text('root ::= "x"\n')
    result = CliRunner().invoke(app, ["bench", "-p", "zen", "--grammar", str(grammar)])
    assert result.exit_code == 2
    assert "--grammar needs llama.cpp" in result.stderr


def test_plot_draws_latency_and_throughput_against_load(
    write_profiles: Any, tmp_path: Path
) -> None:
    picture = tmp_path / "bench.png"
    with (
        MockServerThread(MockConfig(ttft=0.01, itl=0.002)) as fast,
        MockServerThread(MockConfig(ttft=0.03, itl=0.004)) as slow,
    ):
        write_profiles(
            f'[profiles.fast]\nbase_url = "{fast.base_url}"\ndialect = "zen"\nmodel = "big-pickle"\n'
            f'[profiles.slow]\nbase_url = "{slow.base_url}"\ndialect = "zen"\nmodel = "big-pickle"\n'
        )
        result = CliRunner().invoke(
            app,
            [
                "bench",
                "-p",
                "fast",
                "-p",
                "slow",
                "--concurrency",
                "1,2",
                "--requests",
                "2",
                "--max-tokens",
                "8",
                "--plot",
                str(picture),
                "--out",
                str(tmp_path / "r.json"),
            ],
        )
    assert result.exit_code == 0, result.stderr
    assert f"plot written to {picture}" in result.stderr
    data = picture.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


@pytest.mark.parametrize(
    ("level", "load"),
    [("c=4", ("concurrency", 4.0)), ("rate 2.5/s", ("request rate /s", 2.5))],
)
def test_load_of_a_level(level: str, load: tuple[str, float]) -> None:
    from llmcli.bench.plot import load_of

    assert load_of(level) == load


def test_a_profile_that_failed_every_request_exits_1_after_the_table(
    write_profiles: WriteProfiles, mock: MockServerThread, tmp_path: Path
) -> None:
    with MockServerThread(MockConfig(faults=Faults(status_500=1.0))) as broken:
        write_profiles(
            f'[profiles.mock]\nbase_url = "{mock.base_url}"\ndialect = "zen"\n'
            'model = "big-pickle"\n'
            f'[profiles.broken]\nbase_url = "{broken.base_url}"\ndialect = "zen"\n'
            'model = "big-pickle"\n'
        )
        out = tmp_path / "run.json"
        result = invoke(
            "bench", "-p", "mock", "-p", "broken", "--requests", "2", "--max-tokens", "2",
            "--out", str(out),
        )  # fmt: skip
    assert result.exit_code == 1, result.stderr
    assert "TTFT p50 ms" in result.stdout and "2/0" in result.stdout and "0/2" in result.stdout
    assert [p["name"] for p in json.loads(out.read_text())["profiles"]] == ["mock", "broken"]
    errors = [line for line in result.stderr.splitlines() if line.startswith("llmcli: error:")]
    assert errors == [
        "llmcli: error: no successful request from profile broken (every request failed; the"
        " errors are in the summary and the results file): check its server and profile"
    ]
    assert result.stderr.endswith(errors[0] + "\n")


def test_json_without_out_leaves_the_working_directory_clean(
    mock_profiles: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = invoke("bench", "-p", "mock", "--requests", "2", "--max-tokens", "2", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["profiles"][0]["levels"]["c=1"]["ok"] == 2
    assert list(work.iterdir()) == []
    [written] = (tmp_path / "data-home" / "llmcli" / "bench").iterdir()  # XDG_DATA_HOME
    assert written.name.startswith("bench-") and written.suffix == ".json"
    assert f"llmcli bench: results written to {written}\n" in result.stderr
    assert json.loads(written.read_text())["profiles"][0]["name"] == "mock"


def test_help_says_where_results_go_and_when_it_exits_1() -> None:
    result = invoke("bench", "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.replace("│", " ").split())
    assert "bench/ folder" in text and "never the working directory" in text
    assert "Exits 1" in text and "no successful request" in text


def test_the_legend_has_no_draft_row_when_no_draft_ran(mock_profiles: Path, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    result = invoke(
        "bench", "-p", "mock", "--requests", "2", "--max-tokens", "2", "--out", str(out)
    )
    assert result.exit_code == 0, result.stderr
    assert "TPOT  (e2e - TTFT) / (output tokens - 1)" in result.stdout  # the legend is there
    assert "draft" not in result.stdout  # neither its row nor its formula: the mock drafts none
    compared = invoke("bench", "compare", str(out))
    assert compared.exit_code == 0, compared.stderr
    assert "TPOT  (e2e - TTFT) / (output tokens - 1)" in compared.stdout
    assert "draft" not in compared.stdout
