"""The run's sweep loop (llmcli.bench.run.sweep_profile) on a scripted backend: the levels
it measures are the ones the search asks for, bisection included, and each is summed up
against the run's SLO. No network: ``measure`` makes the records a backend whose TTFT is
10 ms per concurrent stream would give.
"""

from __future__ import annotations

import asyncio

import pytest

from llmcli.bench.metrics import RequestRecord, Slo, TokenChunk
from llmcli.bench.records import BenchRun, LevelResult, ProfileRun
from llmcli.bench.run import Load, sweep_profile
from llmcli.bench.runner import Runner
from llmcli.bench.sweep import SweepBounds, find_knee, step_of
from llmcli.bench.workload import Settings


def scripted_level(load: Load, requests: int = 10) -> LevelResult:
    """``requests`` successful requests, each with a TTFT of 10 ms per unit of load."""
    concurrency, rate = load
    ttft = 0.01 * (rate if rate is not None else concurrency)
    level = LevelResult(concurrency=concurrency, rate=rate)
    for index in range(requests):
        sent = float(index)
        level.records.append(
            RequestRecord(
                index=index,
                sent_at=sent,
                first_chunk_at=sent + ttft,
                chunks=[
                    TokenChunk(sent + ttft, "content"),
                    TokenChunk(sent + ttft + 0.01, "content"),
                ],
                finish_at=sent + ttft + 0.01,
                closed_at=sent + ttft + 0.01,
                completion_tokens=2,
            )
        )
    return level


@pytest.mark.parametrize(
    ("bounds", "concurrency", "loads", "knee"),
    [
        # TTFT within the SLO up to 10 streams: 1, 2, 4, 8, 16 then 12, 10, 11
        (SweepBounds(1, 64), (1,), [(1, None), (2, None), (4, None), (8, None), (16, None),
                                    (12, None), (10, None), (11, None)], (10, 11)),
        # open loop: the rate is searched, the concurrency cap stays as given
        (SweepBounds(2.0, 64.0, max_steps=4, integer=False), (3,),
         [(3, 2.0), (3, 4.0), (3, 8.0), (3, 16.0)], (8.0, 16.0)),
    ],
)  # fmt: skip
def test_the_levels_measured_are_the_searchs(
    bounds: SweepBounds,
    concurrency: tuple[int, ...],
    loads: list[Load],
    knee: tuple[float, float],
) -> None:
    slo = Slo(ttft=0.105)  # met up to 10 streams (100 ms), missed at 11
    settings = Settings(concurrency=concurrency, slo=slo)
    run = BenchRun(settings, "now", {}, 0.0, sweep=bounds)
    result = ProfileRun("scripted", "http://127.0.0.1:1", None, None)
    asked: list[Load] = []

    async def measure(profile: ProfileRun, runner: Runner, load: Load) -> LevelResult:
        asked.append(load)
        level = scripted_level(load)
        profile.levels.append(level)
        return level

    asyncio.run(sweep_profile(run, bounds, result, None, measure))  # type: ignore[arg-type]
    assert asked == loads
    steps = [step_of(level, slo) for level in result.levels]
    found = find_knee(steps, bounds)
    assert (found.last_pass, found.first_fail) == knee
