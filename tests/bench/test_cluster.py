"""``--cluster``'s pure parts and its refusals: the address, clock offsets, a worker's
self-check, records moved onto the client's clock, and the one-line errors (no Dask, no
scheduler). The runs on real clusters are in test_cluster_run.py."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BENCH_APP, WriteProfiles, zen_mock_profile
from test_bench_cli import invoke

from llmcli.bench import cluster
from llmcli.bench.cluster import best_offset, on_client_clock, parse_cluster
from llmcli.bench.metrics import RequestRecord, TokenChunk, measure
from llmcli.bench.sharecheck import share_check
from llmcli.bench.workers import ClockPair, merge, to_portable
from llmcli.errors import UsageError
from llmcli.mock import MockConfig, MockServerThread


@pytest.mark.parametrize(
    "text",
    ["dask", "tcp://127.0.0.1:8786", "tcp://sched.example:1", "tcp://[::1]:8786", " dask "],
)
def test_good_cluster_addresses(text: str) -> None:
    assert parse_cluster(text) == text.strip()


@pytest.mark.parametrize(
    "text",
    ["", "ray", "Dask", "127.0.0.1:8786", "tcp://127.0.0.1", "tcp://127.0.0.1:0",
     "tcp://127.0.0.1:65536", "tls://127.0.0.1:0", "tcp://host:80/path", "tcp://a b:1"],
)  # fmt: skip
def test_bad_cluster_addresses_are_one_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match=r"--cluster .*use dask .* or tcp://HOST:PORT"):
        parse_cluster(text)


@pytest.mark.parametrize(
    ("samples", "offset", "uncertainty"),
    [
        # (client sent, worker's reading, client got it back): the shortest trip wins
        ([(10.0, 15.004, 10.010), (20.0, 25.0005, 20.001), (30.0, 35.1, 30.2)], 5.0, 0.0005),
        ([(1.0, 0.5, 1.002)], -0.501, 0.001),  # a worker behind the client
        ([(5.0, 5.0, 5.0)], 0.0, 0.0),  # a trip too short to time
    ],
)
def test_clock_offset_is_the_reading_against_the_midpoint_of_the_shortest_trip(
    samples: list[tuple[float, float, float]], offset: float, uncertainty: float
) -> None:
    found = best_offset("tcp://w:1", "w", samples)
    assert found.offset == pytest.approx(offset, abs=1e-9)
    assert found.uncertainty == pytest.approx(uncertainty, abs=1e-9)
    assert found.rtt == pytest.approx(2 * uncertainty, abs=1e-9)
    assert found.as_dict()["worker"] == "tcp://w:1"


def test_no_round_trip_no_offset() -> None:
    with pytest.raises(ValueError):
        best_offset("tcp://w:1", "w", [])


def record(
    sent: float, gaps: list[float], *, warmup: bool = False, lag: float | None = None
) -> RequestRecord:
    at = sent + 0.05
    chunks = []
    for gap in [0.0, *gaps]:
        at += gap
        chunks.append(TokenChunk(at, "content"))
    return RequestRecord(
        index=0, sent_at=sent, warmup=warmup, chunks=chunks, finish_at=at,
        finish_reason="length", completion_tokens=len(chunks), read_lag=lag,
    )  # fmt: skip


def test_a_workers_self_check_counts_its_frames_and_its_read_lag() -> None:
    pair = ClockPair(perf=0.0, wall=1000.0)
    records = [
        record(1.0, [0.01, 0.0, 0.0, 0.02], lag=0.0004),  # two frames read with the one before
        record(2.0, [0.01, 0.01], lag=0.002),
        record(0.5, [0.0], warmup=True),  # a warm-up: its frames count, it is not measured
    ]
    check = share_check([to_portable(r, pair) for r in records])
    assert (check.requests, check.measured) == (3, 2)
    assert check.token_frames == 5 + 3 + 2
    assert check.frames_together == 3
    assert check.read_lag_max == pytest.approx(0.002)
    assert check.read_lag_p99 is not None and 0.0004 < check.read_lag_p99 <= 0.002
    assert check.as_dict()["frames_read_together"] == 3


def test_a_workers_records_move_onto_the_clients_clock_durations_intact() -> None:
    """A worker whose wall clock is 5 s ahead: its sends land where the client saw them."""
    offset = 5.0
    worker = ClockPair(perf=300.0, wall=2_000_005.0)  # its clocks; client wall = 2_000_000
    client = ClockPair(perf=40.0, wall=2_000_000.0)
    original = record(301.0, [0.01, 0.02])  # sent 1 s after the worker's pairing
    [moved] = merge([on_client_clock([to_portable(original, worker)], offset)], client)
    assert moved.sent_at == pytest.approx(41.0)  # 1 s after the client's pairing, not 6 s
    before, after = measure(original), measure(moved)
    assert after.ttft == pytest.approx(before.ttft, abs=1e-9)
    assert after.itl == pytest.approx(before.itl, abs=1e-9)
    [uncorrected] = merge([[to_portable(original, worker)]], client)
    assert uncorrected.sent_at == pytest.approx(46.0)  # what the offset is there to remove


NO_DASK = "import sys\nsys.modules['distributed'] = None  # import distributed fails\n"


def test_without_dask_cluster_says_how_to_install_it() -> None:
    # no profile at all: Dask is checked before any is looked for
    result = subprocess.run(
        [sys.executable, "-c", NO_DASK + BENCH_APP, "bench", "-p", "m", "--cluster", "dask"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "llmcli: error: --cluster needs Dask, an optional extra: pip install 'llmcli[cluster]'"
    ]
    assert result.stdout == ""


def test_bench_help_and_a_plain_run_never_import_dask(write_profiles: WriteProfiles) -> None:
    probe = (
        "import sys\n"
        "try:\n" + "".join("    " + line + "\n" for line in BENCH_APP.splitlines()) +
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))\n"
    )  # fmt: skip
    helped = subprocess.run(
        [sys.executable, "-c", probe, "bench", "--help"], capture_output=True, text=True, timeout=60
    )
    assert "--cluster" in helped.stdout
    assert helped.stdout.rstrip().endswith("[]"), helped.stdout[-300:]
    with MockServerThread(MockConfig()) as server:
        write_profiles(zen_mock_profile(server.base_url))
        ran = subprocess.run(
            [sys.executable, "-c", probe, "bench", "-p", "mock", "--requests", "2", "--json",
             "--workers", "2"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert '"ok": 2' in ran.stdout and ran.stdout.rstrip().endswith("[]"), ran.stdout[-300:]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_no_scheduler_at_the_address_is_one_line_after_the_timeout(
    write_profiles: WriteProfiles, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 1.0)
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    with MockServerThread(MockConfig()) as server:
        write_profiles(zen_mock_profile(server.base_url))
        result = invoke(
            "bench", "-p", "mock", "--cluster", address, "--out", str(tmp_path / "r.json")
        )
    assert result.exit_code == 3
    assert result.stderr.splitlines() == [
        f"llmcli: error: --cluster {address}: no Dask scheduler answered within 1 s; start one"
        " (dask scheduler) or check the address"
    ]


def test_a_task_sent_to_a_worker_never_shows_the_profiles_key_or_headers() -> None:
    """Dask logs a failed task's repr on the worker: it must not hold the key."""
    from rig.profiles import make_profile

    from llmcli.bench.workers import plan
    from llmcli.bench.workload import Settings
    from llmcli.config.frozen import freeze
    from llmcli.config.profiles import Profile

    secret = "sk-cluster-secret-never-shown"
    profile = make_profile(
        "http://127.0.0.1:9/v1", api_key=secret, headers=freeze({"x-token": secret + "-h"})
    )
    [task] = plan(
        profile, Settings(), dialect="zen", prompts=None, prompt_words=None,
        concurrency=1, workers=1, start_wall=0.0,
    )  # fmt: skip
    assert secret not in repr(task) and secret not in str(task)
    rebuilt = Profile(**task.profile_fields)  # the worker still gets what it needs
    assert rebuilt.api_key == secret and dict(rebuilt.headers) == {"x-token": secret + "-h"}
