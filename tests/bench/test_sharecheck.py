"""Each share of a level checked on its own records, shown and kept per worker: for
``--workers`` processes here (``--cluster`` in test_cluster_run.py), against the mock."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import WriteProfiles, zen_mock_profile
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
    level = {"profile": "mock", "load": "c=2", "workers": [worker]}
    text = render({CLUSTER: {"scheduler": "tcp://127.0.0.1:9", "levels": [level]}})
    assert "cluster tcp://127.0.0.1:9: each worker's share" in text
    assert "\x1b" not in text and "\x07" not in text and "owned" in text
    assert "clock" in text and "offset ms" in text and "-0.40 ± 0.50" in text
    assert "1.20" in text and "2.00" in text  # read lag p99 and max, ms
    processes = render({PROCESSES: {"processes": 2, "levels": [level]}})
    assert "--workers: each process's share" in processes
    assert "clock offset" not in processes  # one machine, one clock
    assert render({}) == ""


def test_workers_report_each_process_share(write_profiles: WriteProfiles, tmp_path: Path) -> None:
    out = tmp_path / "w.json"
    with MockServerThread(MockConfig(ttft=0.01, itl=0.002)) as server:
        write_profiles(zen_mock_profile(server.base_url))
        args = ["bench", "-p", "mock", "--concurrency", "1,4", "--requests", "9", "--warmup",
                "2", "--max-tokens", "5", "--workers", "2", "--out", str(out)]  # fmt: skip
        shown = invoke(*args)
        as_json = invoke(*args, "--json")
    assert shown.exit_code == 0, shown.stderr
    assert "--workers: each process's share" in shown.stdout
    assert as_json.exit_code == 0, as_json.stderr
    levels = json.loads(as_json.stdout)[PROCESSES]["levels"]
    assert [entry["load"] for entry in levels] == ["c=1", "c=4"]
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
    whole = {"profile": "mock", "load": "c=1", "workers": [worker]}
    cut = {"profile": "mock", "load": "c=4", "workers": [worker],
           "incomplete": "worker tcp://127.0.0.1:2 left"}  # fmt: skip
    lost = {"profile": "mock", "load": "c=8", "workers": [], "incomplete": "pool died"}
    heads, rows = share_rows({"levels": [whole, cut, lost]}, clocks=True)
    assert heads[-1] == "clock offset ms" and all(len(row) == len(heads) for row in rows)
    assert rows[0][-1] == "0.00 ± 0.40"  # -0.004 ms rounds to zero, shown without a sign
    assert [row[:3] for row in rows[2:]] == [
        ["", "", "level incomplete"],  # under its worker's row (why: in the notes)
        ["mock", "c=8", "level incomplete"],  # no worker sent anything
    ]
    text = render({CLUSTER: {"scheduler": "s", "levels": [whole, cut, lost]}})
    assert "-0.00" not in text and text.count("level incomplete") == 2


def test_a_narrow_terminal_never_cuts_a_workers_address_or_its_offset() -> None:
    worker = {"worker": "tcp://127.0.0.1:33613", "hostname": "vm", "requests": 5,
              "token_frames": 320, "frames_read_together": 0, "read_lag_p99_s": 0.00489,
              "read_lag_max_s": 0.00493, "clock_offset_s": -0.00004,
              "clock_uncertainty_s": 0.00054}  # fmt: skip
    level = {"profile": "demo", "load": "c=4", "workers": [worker, worker]}
    environment = {CLUSTER: {"scheduler": "tcp://127.0.0.1:46757", "levels": [level]}}
    for width in (100, 120):
        console = Console(width=width, record=True, color_system=None)
        for table in share_tables(environment):
            console.print(table)
        text = console.export_text()
        # at 120 columns a cluster's table reads whole; at 100 only some heads are cut
        assert text.count("tcp://127.0.0.1:33613") == 2, text
        assert text.count("-0.04 ± 0.54") == 2, text
        assert max(len(line.rstrip()) for line in text.splitlines()) <= width
        assert width == 100 or "…" not in text, text
