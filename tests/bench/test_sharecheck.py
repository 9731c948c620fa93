"""Each share of a level checked on its own records, shown and kept per worker: for
``--workers`` processes here (``--cluster`` in test_cluster_run.py), against the mock."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import WriteProfiles
from rich.console import Console
from test_bench_cli import invoke

from llmcli.bench.sharecheck import CLUSTER, PROCESSES, share_tables
from llmcli.mock import MockConfig, MockServerThread


def render(environment: dict[str, object]) -> str:
    console = Console(width=200, record=True, color_system=None)
    for table in share_tables(environment):
        console.print(table)
    return console.export_text()


def test_the_table_neutralises_what_workers_say_and_shows_clocks_for_a_cluster() -> None:
    worker = {
        "worker": "tcp://127.0.0.1:1", "hostname": "evil\x1b]0;owned\x07host",
        "requests": 3, "token_frames": 30, "frames_read_together": 2,
        "read_lag_p99_s": 0.0012, "read_lag_max_s": 0.002,
        "clock_offset_s": -0.0004, "clock_uncertainty_s": 0.0005,
    }  # fmt: skip
    level = {"profile": "mock", "load": "concurrency 2", "workers": [worker]}
    text = render({CLUSTER: {"scheduler": "tcp://127.0.0.1:9", "levels": [level]}})
    assert "cluster tcp://127.0.0.1:9: each worker's share" in text
    assert "\x1b" not in text and "\x07" not in text and "owned" in text
    assert "clock offset ms" in text and "-0.40 ± 0.50" in text
    assert "1.20" in text and "2.00" in text  # read lag p99 and max, ms
    processes = render({PROCESSES: {"processes": 2, "levels": [level]}})
    assert "--workers: each process's share" in processes
    assert "clock offset" not in processes  # one machine, one clock
    assert render({}) == ""


def test_workers_report_each_process_share(write_profiles: WriteProfiles, tmp_path: Path) -> None:
    out = tmp_path / "w.json"
    with MockServerThread(MockConfig(ttft=0.01, itl=0.002)) as server:
        write_profiles(
            f'[profiles.mock]\nbase_url = "{server.base_url}"\ndialect = "zen"\n'
            'model = "big-pickle"\n'
        )
        args = ["bench", "-p", "mock", "--concurrency", "1,4", "--requests", "9", "--warmup",
                "2", "--max-tokens", "5", "--workers", "2", "--out", str(out)]  # fmt: skip
        shown = invoke(*args)
        as_json = invoke(*args, "--json")
    assert shown.exit_code == 0, shown.stderr
    assert "--workers: each process's share" in shown.stdout
    assert as_json.exit_code == 0, as_json.stderr
    levels = json.loads(as_json.stdout)[PROCESSES]["levels"]
    assert [entry["load"] for entry in levels] == ["concurrency 1", "concurrency 4"]
    # concurrency 1 is one share, in one process; concurrency 4 is split over both
    assert [len(entry["workers"]) for entry in levels] == [1, 2]
    for entry in levels:
        assert sum(w["measured"] for w in entry["workers"]) == 9
        assert sum(w["requests"] for w in entry["workers"]) == 11  # warm-ups included
        assert sum(w["token_frames"] for w in entry["workers"]) == 11 * 5
        assert all(w["worker"].startswith("pid ") for w in entry["workers"])
    assert len({w["worker"] for w in levels[1]["workers"]}) == 2  # two processes
    saved = json.loads(out.read_text())
    assert saved["environment"][PROCESSES]["levels"] == levels
    assert CLUSTER not in saved["environment"]


def test_rows_mark_a_cut_level_and_never_show_a_negative_zero() -> None:
    from llmcli.bench.sharecheck import share_rows

    worker = {"worker": "tcp://127.0.0.1:1", "hostname": "vm", "requests": 2,
              "clock_offset_s": -0.000004, "clock_uncertainty_s": 0.0004}  # fmt: skip
    whole = {"profile": "mock", "load": "concurrency 1", "workers": [worker]}
    cut = {"profile": "mock", "load": "concurrency 4", "workers": [worker],
           "incomplete": "worker tcp://127.0.0.1:2 left"}  # fmt: skip
    lost = {"profile": "mock", "load": "concurrency 8", "workers": [], "incomplete": "pool died"}
    heads, rows = share_rows({"levels": [whole, cut, lost]}, clocks=True)
    assert heads[-1] == "clock offset ms" and all(len(row) == len(heads) for row in rows)
    assert rows[0][-1] == "0.00 ± 0.40"  # -0.004 ms rounds to zero, shown without a sign
    assert [row[:3] for row in rows[2:]] == [
        ["", "", "incomplete: worker tcp://127.0.0.1:2 left"],  # under its worker's row
        ["mock", "concurrency 8", "incomplete: pool died"],  # no worker sent anything
    ]
    text = render({CLUSTER: {"scheduler": "s", "levels": [whole, cut, lost]}})
    assert "-0.00" not in text and "incomplete: pool died" in text
