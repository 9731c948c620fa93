"""llmcli.bench.check: a results file against a mock-server log, on exact made-up times."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmcli.bench.check import ServerTimes, check_run, parse_mock_log
from llmcli.errors import UsageError


def log_line(nonce: str, arrived: float, frames: list[tuple[float, str]], **extra: Any) -> str:
    entry = {
        "status": 200,
        "completed": True,
        "arrived": arrived,
        "body": {"messages": [{"role": "user", "content": f"{nonce} hello there"}]},
        "frames": [[at, kind] for at, kind in frames],
        **extra,
    }
    return json.dumps(entry)


def request(
    nonce: str, sent: float, chunks: list[float], finish: float | None, **extra: Any
) -> Any:
    return {
        "nonce": nonce,
        "warmup": False,
        "error_kind": None,
        "sent": sent,
        "chunks": [[at, "content"] for at in chunks],
        "finish": finish,
        **extra,
    }


def test_the_log_keeps_completed_200_streams_by_nonce_and_their_token_frames() -> None:
    lines = [
        log_line("a", 10.0, [(10.0, "headers"), (10.2, "role"), (10.2, "reasoning"),
                             (10.3, "content"), (10.4, "tool"), (10.5, "finish"), (10.5, "usage")]),
        log_line("b", 11.0, [(11.0, "body")], status=429),
        log_line("c", 12.0, [(12.1, "content")], completed=False),
        "",
    ]  # fmt: skip
    log = parse_mock_log(lines)
    assert log == {"a": ServerTimes(arrived=10.0, tokens=(10.2, 10.3, 10.4), finish=10.5)}
    with pytest.raises(UsageError, match=r"sent\.jsonl:2: not JSON"):
        parse_mock_log([lines[0], "{"], "sent.jsonl")
    for damaged in (
        '{"status": 200, "completed": true, "body": {"messages": [{"content": "n x"}]}}',
        "[1, 2]",
        log_line("d", 1.0, [(1.1, "content")]).replace('"arrived": 1.0', '"arrived": "soon"'),
    ):
        with pytest.raises(UsageError, match=r"sent\.jsonl:1: not a line of a mock-server --log"):
            parse_mock_log([damaged], "sent.jsonl")


def test_a_damaged_results_file_is_a_usage_error() -> None:
    results = {
        "profiles": [
            {
                "name": "m",
                "levels": [
                    {"load": "c=1", "requests": [{"nonce": "a", "sent": 1.0, "chunks": [1.5]}]}
                ],
            }
        ]
    }
    log = {"a": ServerTimes(arrived=0.0, tokens=(0.5,), finish=None)}
    with pytest.raises(UsageError, match="results file is damaged"):
        check_run(results, log)


def test_errors_are_durations_compared_request_by_request() -> None:
    log = parse_mock_log(
        [
            # server: TTFT 0.200, gaps 0.020 0.020, e2e 0.250 (finish frame)
            log_line("n1", 100.0, [(100.2, "content"), (100.22, "content"), (100.24, "content"),
                                   (100.25, "finish")]),
            # no finish frame: e2e ends at the last token frame (0.230)
            log_line("n2", 200.0, [(200.2, "content"), (200.23, "content")]),
            log_line("n3", 300.0, [(300.2, "content"), (300.22, "content"), (300.24, "content")]),
            log_line("n4", 400.0, [(400.2, "content"), (400.21, "content"), (400.3, "finish")]),
        ]
    )  # fmt: skip
    results = {
        "profiles": [
            {
                "name": "mock",
                "levels": [
                    {
                        "load": "c=2",
                        "requests": [
                            # client: TTFT 0.2005, gaps 0.0203 0.0199, e2e 0.2510
                            request("n1", 5.0, [5.2005, 5.2208, 5.2407], 5.251),
                            # two frames read as one, one arrival time: the whole gap
                            request("n2", 6.0, [6.2002, 6.2002], None),
                            # fewer chunks than the log's token frames: gaps not compared
                            request("n4", 9.0, [9.2001], 9.3001),
                            request("n3", 7.0, [7.3], 7.3, warmup=True),  # left out
                            request("n3", 7.0, [], None, error_kind="status_429"),  # left out
                            request("zz", 8.0, [8.2], 8.2),  # not in the log
                        ],
                    }
                ],
            }
        ]
    }
    [level] = check_run(results, log)
    assert (level.profile, level.load, level.matched, level.unmatched) == ("mock", "c=2", 3, 1)
    assert level.ttft.count == 3 and level.ttft.max == pytest.approx(0.0005)
    assert level.ttft.p50 == pytest.approx(0.0002)
    # n1's two gaps (0.3 and 0.1 ms off) and n2's merged one (30 ms off); none of n4's
    assert level.itl.count == 3 and level.itl.max == pytest.approx(0.03)
    assert level.itl.p50 == pytest.approx(0.0003)
    assert level.e2e.count == 3
    assert level.e2e.max == pytest.approx(abs(0.2002 - 0.23))  # n2: its end against 0.230
    assert level.as_dict()["itl_error"]["count"] == 3
