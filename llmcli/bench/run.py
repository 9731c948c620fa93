"""A whole benchmark run: each profile opened, each load level driven, in-process or in
workers (:mod:`llmcli.bench.workers`), into a :class:`~llmcli.bench.records.BenchRun`.

Before a profile's first level the run records what the server says about itself
(:func:`fetch_server_info`) and, for synthetic prompts on llama.cpp, fits the prompt to
``--input-tokens`` with the server's ``/tokenize`` (:func:`calibrate_prompt`). With
``Settings.workers`` above 1 each level runs in :mod:`llmcli.bench.workers` processes,
which stamp with ``time.perf_counter`` whatever clock is given here; with a ``cluster``
(``--cluster``) it runs as Dask tasks on the cluster's workers (:mod:`llmcli.bench.cluster`).
Each level's shares are checked each on its own records (:mod:`llmcli.bench.sharecheck`),
kept in ``run.environment["worker_processes"]`` or ``["cluster"]`` (with the workers'
clock offsets there).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import platform
import random
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from llmcli import __version__, errors
from llmcli.bench import sharecheck
from llmcli.bench.cluster import ClusterPool
from llmcli.bench.records import BenchRun, LevelResult, ProfileRun, level_key
from llmcli.bench.runner import Clock, Runner, bench_client, planned_requests
from llmcli.bench.serverinfo import models_summary, props_summary
from llmcli.bench.sweep import SweepBounds, SweepStep, next_level, step_of
from llmcli.bench.workers import START_MARGIN, LevelLost, WorkerPool, WorkerTask, plan
from llmcli.bench.workload import (
    TOKEN_TOLERANCE,
    Message,
    Settings,
    arrival_offsets,
    next_word_count,
    synthetic_prompt,
)
from llmcli.config.profiles import Profile
from llmcli.net import eventloop
from llmcli.wire.client import Client

if TYPE_CHECKING:
    from llmcli.bench.metrics import RequestRecord
    from llmcli.bench.progress import Tracker


class LevelPool(Protocol):
    """Where a level's shares run: worker processes (``--workers``) or a Dask cluster.

    ``description`` goes into the results (``run.environment``); a level's shares,
    checked each on its own records (``last_level``), are added to its ``levels``.
    """

    workers: int
    description: dict[str, Any]
    last_level: list[dict[str, Any]]

    async def run(
        self,
        tasks: Sequence[WorkerTask],
        sink: list[RequestRecord],
        tracker: Tracker | None = None,
        send_offsets: list[float] | None = None,
    ) -> None: ...


def environment() -> dict[str, Any]:
    """Where the run was made (no secrets: no environment variables, no keys)."""
    return {
        "llmcli": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "host": socket.gethostname(),
        "event_loop": eventloop.loop_name(),
    }


def new_run(
    settings: Settings, clock: Clock = time.perf_counter, *, sweep: SweepBounds | None = None
) -> BenchRun:
    return BenchRun(
        settings=settings,
        started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        environment=environment(),
        clock_origin=clock(),
        sweep=sweep,
    )


async def _open_profile(
    stack: contextlib.AsyncExitStack,
    run: BenchRun,
    profile: Profile,
    prompts: Sequence[Sequence[Message]] | None,
    clock: Clock,
) -> tuple[ProfileRun, Runner]:
    """The profile's clients (closed by ``stack``) and its entry in ``run``."""
    settings = run.settings
    result = ProfileRun(
        name=profile.name,
        base_url=profile.base_url,
        dialect=profile.dialect,
        model=settings.model or profile.model,
    )
    run.profiles.append(result)
    client = await stack.enter_async_context(bench_client(profile, clock))
    result.dialect = profile.dialect or await client.detect_dialect()
    result.server = await fetch_server_info(client, result.dialect)
    runner = Runner(client, settings, dialect=result.dialect, prompts=prompts, clock=clock)
    if prompts is None:
        result.input_tokens = await calibrate_prompt(runner, client, result.dialect)
    return result, runner


CALIBRATION_SAMPLES = 4
CALIBRATION_ROUNDS = 8


async def calibrate_prompt(runner: Runner, client: Client, dialect: str | None) -> dict[str, Any]:
    """Fit the synthetic prompt to ``--input-tokens`` with the server's own tokenizer.

    llama-server's ``/tokenize`` counts the user content's tokens (no template, no special
    tokens); the word count is adjusted until the mean over a few sample prompts is within
    ``TOKEN_TOLERANCE`` of the target, and ``runner.prompt_words`` is set. The samples come
    from a generator of their own, so the run's prompts are not changed by calibrating.
    Other servers cannot count: the target is reported as unmeasured.
    """
    settings = runner.settings
    target = settings.input_tokens
    report: dict[str, Any] = {"target": target, "measured_mean": None, "source": "none"}
    if dialect != "llamacpp":
        return report
    url = client.root_url + "/tokenize"
    words = target
    best: tuple[float, int, list[int]] | None = None
    try:
        for _ in range(CALIBRATION_ROUNDS):
            rng = random.Random(settings.seed or 0)
            counts = []
            for _sample in range(CALIBRATION_SAMPLES):
                text = synthetic_prompt(target, rng, cache=settings.cache, words=words)
                answer = await client.post_json(url, {"content": text})
                counts.append(len(answer["tokens"]))
            mean = sum(counts) / len(counts)
            if best is None or abs(mean - target) < abs(best[0] - target):
                best = (mean, words, counts)
            if abs(mean - target) <= TOKEN_TOLERANCE:
                break
            words = next_word_count(words, target, mean)
    except (errors.LlmcliError, KeyError, TypeError) as error:
        report["note"] = f"/tokenize: {error}"
        if best is None:
            return report
    assert best is not None
    mean, words, counts = best
    runner.prompt_words = words
    report.update(measured_mean=mean, measured=counts, words=words, source="tokenize")
    return report


async def fetch_server_info(client: Client, dialect: str | None) -> dict[str, Any]:
    """The server's own description: llama.cpp's ``/props`` and every dialect's models list.

    A failure to fetch one is kept as a note and never stops the run: a benchmark of a
    server that hides ``/props`` or ``/models`` is still a benchmark.
    """
    info: dict[str, Any] = {}
    notes: list[str] = []
    if dialect == "llamacpp":
        try:
            info["props"] = props_summary(await client.get_json(client.root_url + "/props"))
        except errors.LlmcliError as error:
            notes.append(f"/props: {error}")
    try:
        info["models"] = models_summary(await client.get_json("models"))
    except errors.LlmcliError as error:
        notes.append(f"/models: {error}")
    if notes:
        info["notes"] = notes
    return info


Load = tuple[int, float | None]  # a level's concurrency, and its rate in an open loop


def loads_of(settings: Settings) -> list[Load]:
    """The load levels a run goes through: each concurrency, or the one open-loop rate."""
    if settings.rate is not None:
        return [(max(settings.concurrency), settings.rate)]
    return [(level, None) for level in settings.concurrency]


async def run_bench(
    run: BenchRun,
    profiles: Sequence[Profile],
    *,
    prompts: Sequence[Sequence[Message]] | None = None,
    clock: Clock = time.perf_counter,
    progress: Tracker | None = None,
    interleave: bool = False,
    cluster: str | None = None,
) -> BenchRun:
    """The same workload against each profile: all levels of one profile, then the next;
    with ``interleave``, each level against every profile before the next level (so a
    drift in the machine or network over the run falls on all profiles alike).

    ``cluster`` (``dask`` or ``tcp://HOST:PORT``, see :func:`~llmcli.bench.cluster.
    parse_cluster`) runs every level on a Dask cluster instead of in this process.

    A Ctrl-C keeps every request that finished (see the module docstring).
    """
    try:
        async with contextlib.AsyncExitStack() as stack:
            opened = [await _open_profile(stack, run, p, prompts, clock) for p in profiles]
            workers = run.settings.workers
            pool: LevelPool | None = None
            if cluster is not None:
                pool = await stack.enter_async_context(ClusterPool(cluster, workers))
                run.environment[sharecheck.CLUSTER] = pool.description
                # what ran, not what --workers said: a cluster's size is found on joining it
                run.settings = dataclasses.replace(run.settings, workers=pool.workers)
            elif workers > 1:
                pool = stack.enter_context(WorkerPool(workers))
                run.environment[sharecheck.PROCESSES] = pool.description

            async def measure(result: ProfileRun, runner: Runner, load: Load) -> LevelResult:
                concurrency, rate = load
                level = LevelResult(concurrency=concurrency, rate=rate)
                result.levels.append(level)
                if progress is not None:
                    total = planned_requests(run.settings, rate)
                    progress.level_started(result.name, _load(concurrency, rate), total)
                if pool is None:
                    await runner.run_level(level, progress)
                else:
                    # the level's key in the profile's levels and the table (c=4, rate 2/s)
                    entry = {"profile": result.name, "load": level_key(level)}
                    try:
                        await _run_level_in_workers(pool, runner, level, prompts, progress)
                    except LevelLost as lost:  # what the other workers sent back is kept
                        level.incomplete = entry["incomplete"] = lost.reason
                        raise
                    finally:
                        pool.description["levels"].append({**entry, "workers": pool.last_level})
                return level

            if run.sweep is not None:
                for result, runner in opened:
                    await sweep_profile(run, run.sweep, result, runner, measure)
                return run
            loads = loads_of(run.settings)
            order = (
                [(load, entry) for load in loads for entry in opened]
                if interleave
                else [(load, entry) for entry in opened for load in loads]
            )
            for load, (result, runner) in order:
                await measure(result, runner, load)
    except asyncio.CancelledError:
        run.interrupted = True
        raise
    return run


async def sweep_profile(
    run: BenchRun,
    bounds: SweepBounds,
    result: ProfileRun,
    runner: Runner,
    measure: Callable[[ProfileRun, Runner, Load], Awaitable[LevelResult]],
) -> None:
    """Measure the levels the knee search asks for (see :mod:`llmcli.bench.sweep`), in turn."""
    steps: list[SweepStep] = []
    while (value := next_level(steps, bounds)) is not None:
        load: Load = (
            (int(value), None) if bounds.integer else (max(run.settings.concurrency), value)
        )
        steps.append(step_of(await measure(result, runner, load), run.settings.slo))


async def _run_level_in_workers(
    pool: LevelPool,
    runner: Runner,
    level: LevelResult,
    prompts: Sequence[Sequence[Message]] | None,
    progress: Tracker | None,
) -> None:
    """The level's streams over the pool's processes, records merged here (see workers).

    An open-loop level's schedule is drawn here, once, and dealt out in turn: worker k
    sends requests k, k + N, k + 2N ... of it, all from one common start.
    """
    schedule = None
    if level.rate is not None:
        count = planned_requests(runner.settings, level.rate)
        assert count is not None
        schedule = arrival_offsets(level.rate, count, runner.rng, runner.settings.arrival)
    tasks = plan(
        runner.clients[0].profile,
        runner.settings,
        dialect=runner.dialect,
        prompts=prompts,
        prompt_words=runner.prompt_words,
        concurrency=level.concurrency,
        workers=pool.workers,
        start_wall=time.time() + START_MARGIN,
        schedule=schedule,
    )
    level.started_at = runner.clock()
    try:
        await pool.run(tasks, level.records, progress, level.send_offsets)
    finally:
        level.ended_at = runner.clock()
    if progress is not None:
        done = [r for r in level.records if not r.warmup]
        failed = sum(1 for r in done if r.error_kind is not None or not r.chunks)
        progress.level_finished(len(done), failed)


def _load(concurrency: int, rate: float | None) -> str:
    return f"{rate:g} requests/s" if rate is not None else f"concurrency {concurrency}"
