"""``--workers``: records leave their process as offsets from their own send, are merged
on the parent's clock, and every statistic comes from the merged samples."""

from __future__ import annotations

import asyncio
import json
import pickle
from pathlib import Path

import pytest
from conftest import WriteProfiles, zen_mock_profile
from rig.profiles import make_profile
from test_bench_cli import interrupt_bench, invoke

from llmcli.bench.metrics import (
    RequestEnd,
    RequestRecord,
    TokenChunk,
    describe,
    measure,
    summarise,
)
from llmcli.bench.run import new_run, run_bench
from llmcli.bench.workers import ClockPair, merge, plan, shares, split, to_portable
from llmcli.bench.workload import Settings
from llmcli.config.frozen import freeze
from llmcli.config.profiles import Profile
from llmcli.errors import UsageError
from llmcli.mock import MockConfig, MockServerThread


def test_a_task_carries_the_profiles_params_plain_to_the_worker() -> None:
    """A spawned worker gets its task pickled: the profile's frozen params go as plain JSON."""
    params = {"top_k": 20, "stop": ["</s>"], "chat_template_kwargs": {"thinking": False}}
    profile = make_profile("http://127.0.0.1:9/v1", params=freeze(params))
    settings = Settings(concurrency=(2,), requests=4)
    [task, _] = plan(
        profile, settings, dialect="zen", prompts=None, prompt_words=None,
        concurrency=2, workers=2, start_wall=0.0,
    )  # fmt: skip
    rebuilt = Profile(**pickle.loads(pickle.dumps(task)).profile_fields)
    assert rebuilt.request_params() == params


def test_shares_and_split_add_up() -> None:
    assert shares(5, 2) == [3, 2]
    assert shares(1, 4) == [1]
    assert shares(8, 3) == [3, 3, 2]
    assert split(10, [3, 2]) == [6, 4]
    assert split(7, [3, 3, 2]) == [2, 3, 2]
    assert sum(split(1001, [5, 5, 4, 1])) == 1001
    assert split(0, [2, 2]) == [0, 0]


def record(ttft: float, sent: float, *, tokens: int = 3, gap: float = 0.01) -> RequestRecord:
    chunks = [TokenChunk(sent + ttft + gap * n, "content") for n in range(tokens)]
    return RequestRecord(
        index=0,
        sent_at=sent,
        first_chunk_at=sent + ttft / 2,
        chunks=chunks,
        finish_at=chunks[-1].at,
        finish_reason="length",
        closed_at=chunks[-1].at + 0.002,
        completion_tokens=tokens,
        timings={"predicted_per_second": 100.0},
    )


def test_a_record_crosses_processes_with_its_durations_intact() -> None:
    worker = ClockPair(perf=5_000.0, wall=1_700_000_000.0)  # another process's clocks
    parent = ClockPair(perf=12.5, wall=1_700_000_000.25)
    original = record(0.2, sent=5_001.0)
    original.issued_at = 5_001.0 - 0.0003  # the runner's stamp, before the client built it
    [rebuilt] = merge([[to_portable(original, worker)]], parent, index_from=7)
    assert rebuilt.index == 7
    # sent 1 s after the worker's pairing = wall ...001.0 = 0.75 s after the parent's
    assert rebuilt.sent_at == pytest.approx(12.5 + 0.75)
    assert rebuilt.issued_at == pytest.approx(rebuilt.sent_at - 0.0003, abs=1e-9)
    before, after = measure(original), measure(rebuilt)
    for name in ("ttfb", "ttft", "ttfa", "e2e", "tpot"):
        assert getattr(after, name) == pytest.approx(getattr(before, name), abs=1e-9)
    assert after.itl == pytest.approx(before.itl, abs=1e-9)
    assert rebuilt.closed_at is not None and rebuilt.finish_at is not None
    assert rebuilt.closed_at - rebuilt.finish_at == pytest.approx(0.002, abs=1e-9)
    assert rebuilt.timings == {"predicted_per_second": 100.0}


def test_percentiles_come_from_the_merged_samples_not_averaged() -> None:
    pair = ClockPair(perf=0.0, wall=100.0)
    fast = [record(0.1 + 0.001 * n, sent=float(n)) for n in range(9)]
    slow = [record(1.0 + n, sent=float(n)) for n in range(3)]
    merged = merge([[to_portable(r, pair) for r in part] for part in (fast, slow)], pair)
    assert [r.index for r in merged] == list(range(12))
    assert [r.sent_at for r in merged] == sorted(r.sent_at for r in merged)
    ttft = summarise(merged).metrics["ttft"]
    pooled = describe([0.1 + 0.001 * n for n in range(9)] + [1.0, 2.0, 3.0])
    assert ttft.as_dict() == pytest.approx(pooled.as_dict(), abs=1e-12)
    averaged_p99 = (
        summarise(fast).metrics["ttft"].p99 + summarise(slow).metrics["ttft"].p99  # type: ignore[operator]
    ) / 2
    assert ttft.p99 != pytest.approx(averaged_p99)
    assert ttft.p50 == pytest.approx(0.1055)  # 12 samples: between the 6th and 7th


def test_workers_must_be_one_or_more() -> None:
    with pytest.raises(UsageError, match="--workers"):
        Settings(workers=0)


def test_an_open_loop_schedule_is_dealt_out_to_the_workers_and_kept() -> None:
    """--rate with --workers: one schedule, every Nth request to each, one common start."""
    with MockServerThread(MockConfig(ttft=0.01, itl=0.002)) as server:
        profile = make_profile(server.base_url, dialect="zen", model="big-pickle")
        settings = Settings(
            rate=50.0, arrival="constant", requests=20, warmup=4, max_tokens=4, workers=2
        )
        run = asyncio.run(run_bench(new_run(settings), [profile]))
        assert chats(server) == 24  # 20 measured and 4 warm-up
    [level] = run.profiles[0].levels
    measured = [r for r in level.records if not r.warmup]
    assert len(measured) == 20 and all(r.error_kind is None for r in measured)
    assert sorted(r.index for r in level.records) == list(range(24))
    # The merged sends follow the one schedule (a request every 20 ms from the common
    # start), not two schedules of 10 laid over each other or one after the other.
    offsets = level.send_offsets
    assert len(offsets) == 20 and offsets == sorted(offsets)
    planned = [i / 50.0 for i in range(20)]
    assert max(abs(a - p) for a, p in zip(offsets, planned, strict=True)) < 0.01 + 0.1


def chats(server: MockServerThread) -> int:
    return sum(1 for r in server.server.requests if r.path.endswith("/chat/completions"))


@pytest.mark.parametrize("workers", [1, 2])
def test_same_workload_one_or_two_workers(workers: int) -> None:
    config = MockConfig(ttft=0.05, itl=0.01, tokens_per_chunk=1)
    with MockServerThread(config) as server:
        profile = make_profile(server.base_url, dialect="zen", model="big-pickle")
        settings = Settings(
            concurrency=(1, 4), requests=10, warmup=2, max_tokens=5, workers=workers
        )
        run = asyncio.run(run_bench(new_run(settings), [profile]))
        assert chats(server) == 2 * (10 + 2)
    for level in run.profiles[0].levels:
        summary = summarise(level.records)
        assert (summary.requests, summary.ok) == (10, 10)
        assert sum(r.warmup for r in level.records) == 2
        ttft, e2e = summary.metrics["ttft"], summary.metrics["e2e"]
        # the scripted schedule, never early, and not far late whatever the worker count
        assert ttft.p50 is not None and 0.05 <= ttft.p50 < 0.05 + 0.1
        assert e2e.p50 is not None and 0.09 <= e2e.p50 < 0.09 + 0.15
        assert summary.metrics["itl"].count == 10 * 4
        # merged records sit in the level's window on the parent's clock
        assert all(level.started_at <= r.sent_at <= level.ended_at for r in level.records)
        assert summary.duration > 0 and summary.output_tokens == 50


def test_cli_workers_option(write_profiles: WriteProfiles, tmp_path: Path) -> None:
    with MockServerThread(MockConfig(ttft=0.01, itl=0.002)) as server:
        write_profiles(zen_mock_profile(server.base_url))
        out = tmp_path / "w.json"
        result = invoke(
            "bench", "-p", "mock", "--concurrency", "3", "--requests", "7", "--workers", "2",
            "--max-tokens", "3", "--json", "--out", str(out),
        )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    level = json.loads(result.stdout)["profiles"][0]["levels"]["c=3"]
    assert (level["requests"], level["ok"]) == (7, 7)
    saved = json.loads(out.read_text())
    assert saved["settings"]["workers"] == 2
    assert sorted(r["index"] for r in saved["profiles"][0]["levels"][0]["requests"]) == list(
        range(7)
    )


@pytest.mark.parametrize("to", ["process group", "parent only"])
def test_ctrl_c_with_workers_keeps_what_the_workers_finished(
    write_profiles: WriteProfiles, tmp_path: Path, to: str
) -> None:
    out = tmp_path / "cut.json"
    with MockServerThread(MockConfig(ttft=0.01, itl=0.002)) as server:
        write_profiles(zen_mock_profile(server.base_url))
        args = ["bench", "-p", "mock", "--concurrency", "4", "--requests", "100000",
                "--workers", "2", "--out", str(out)]  # fmt: skip
        # a terminal's Ctrl-C reaches the whole group, workers too; a kill(1) the parent only
        returncode, _stdout, stderr = interrupt_bench(args, group=to == "process group", timeout=60)
    assert returncode == 130, stderr
    level = json.loads(out.read_text())["profiles"][0]["levels"][0]
    summary = level["summary"]
    assert summary["ok"] > 0 and summary["failed"] == 0
    assert len(level["requests"]) == summary["requests"] + summary["cancelled"]
    assert sorted(r["index"] for r in level["requests"]) == list(range(len(level["requests"])))


class Recorder:
    """A tracker that keeps what it is told (a list of events)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def level_started(self, profile: str, load: str, total: int | None) -> None:
        self.events.append(("start", total))

    def request_done(self, end: RequestEnd) -> None:
        self.events.append(("done", end))

    def level_finished(self, done: int, failed: int) -> None:
        self.events.append(("finished", done))


def test_workers_report_request_ends_while_the_level_runs() -> None:
    recorder = Recorder()
    with MockServerThread(MockConfig(ttft=0.02, itl=0.005)) as server:
        profile = make_profile(server.base_url, dialect="zen", model="big-pickle")
        settings = Settings(concurrency=(4,), requests=16, warmup=4, max_tokens=4, workers=2)
        asyncio.run(run_bench(new_run(settings), [profile], progress=recorder))
    kinds = [kind for kind, _ in recorder.events]
    assert kinds[0] == "start" and kinds[-1] == "finished"
    assert recorder.events[-1] == ("finished", 16)
    dones = kinds.count("done")
    # forwarded from the workers' queue during the level (a last few may land after it)
    assert 8 <= dones <= 16
    ends = [value for kind, value in recorder.events if kind == "done"]
    assert all(isinstance(end, RequestEnd) and end.ok and end.tokens == 4 for end in ends)
    # each with its TTFT, and its times on the wall clock, where the workers' clocks meet
    assert all(end.ttft is not None and end.ttft >= 0.02 for end in ends)
    assert all(end.end is not None and end.end > 1e9 for end in ends)  # not since boot
