"""``--workers N``: one load level's streams spread over N processes, merged exactly.

One Python process cannot read hundreds of streams on time (see benchmarks/README.md);
N processes each run a share of the level's streams with their own :class:`Runner` and
send back every request's record. The parent merges the records into one level, and the
statistics are computed from the merged samples by :func:`~llmcli.bench.metrics.summarise`
as for a single process: a percentile is never an average of the workers' percentiles.

Clocks. Every time inside a record is a reading of the worker's ``time.perf_counter``.
A worker sends each request's times as offsets from that request's own send
(:class:`PortableRecord`), so every duration (TTFT, ITL, e2e...) is a difference of two
readings of one clock in one process, exactly as without workers. Only the send time
itself crosses processes: as a wall-clock stamp (``time.time``), taken from one pairing
of the worker's two clocks. The parent maps each stamp onto its own ``perf_counter``
through its own pairing, and rebuilds the record there. Wall-clock alignment between
processes is good to well under a millisecond on one machine, and it only places
requests against each other: it moves the aggregate window (first send to last end, the
denominator of requests/s and tokens/s), never a per-request figure.

The share itself, :func:`run_share`, is the same wherever it runs: ``--cluster`` runs it
as Dask tasks (:mod:`llmcli.bench.cluster`), with the same plan and the same merge.

Workers are spawned (``spawn`` start method: no forked event loop or sockets), once per
run; each level's shares start together at a wall-clock instant the parent chooses.
Each request's end is reported on a queue as it happens, so the progress display counts
requests while the level runs (only the display: the records are the results).

Stopping. Workers ignore SIGINT, SIGTERM and SIGHUP (a terminal or ``timeout`` signals
the whole process group): how a run ends is the parent's to decide. The parent stops a
level by writing its tag into a shared ``_stop`` cell, then sending ``STOP_SIGNAL`` to
every worker. The cell reaches a worker whatever it is doing when the signal comes: a
worker still starting its share (slow on a loaded machine), or one about to take a
second share from the pool's queue, finds the level stopped and sends back what it has
at once. The signal only wakes a share that is running; its handler is installed once
for the process's life, so it is never left to the default action (which would kill
the worker, and every record with it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures.process
import contextlib
import dataclasses
import itertools
import multiprocessing
import os
import queue
import random
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmcli.bench.metrics import RequestEnd, RequestRecord, TokenChunk
from llmcli.bench.records import LevelResult
from llmcli.bench.runner import Runner, bench_client
from llmcli.bench.sharecheck import share_check
from llmcli.bench.workload import Message, Settings
from llmcli.config.profiles import Profile
from llmcli.errors import LlmcliError
from llmcli.net import eventloop

if TYPE_CHECKING:
    from types import FrameType

    from llmcli.bench.progress import Tracker

# The parent waits this long past "now" before a level starts, so every worker is ready.
START_MARGIN = 0.1
# After a Ctrl-C, how long the parent waits for the workers to send what they finished
# (they answer at once; a loaded machine may take seconds to schedule them).
INTERRUPT_WAIT = 30.0
# How long the parent waits for its worker processes to start (imports, on a busy machine).
START_WAIT = 120.0
# After a worker process died, how long the parent waits for the others' stopped shares.
SALVAGE_WAIT = 10.0
# How the parent tells its workers to stop a level (not on Windows, which has no SIGUSR1).
STOP_SIGNAL: signal.Signals | None = getattr(signal, "SIGUSR1", None)


class LevelLost(LlmcliError):
    """A level cut short by a lost worker (or its share): the run ends with this one line,
    after the results file, the table and the report are written with what arrived.

    ``reason`` is what the results keep with the level (``incomplete``); the message adds
    what to do next.
    """

    def __init__(self, reason: str, advice: str = "run again") -> None:
        super().__init__(f"{reason}; {advice}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ClockPair:
    """One simultaneous reading of a process's monotonic and wall clocks."""

    perf: float
    wall: float

    @classmethod
    def now(cls) -> ClockPair:
        return cls(perf=time.perf_counter(), wall=time.time())

    def to_wall(self, perf: float) -> float:
        return self.wall + (perf - self.perf)

    def to_perf(self, wall: float) -> float:
        return self.perf + (wall - self.wall)


@dataclass(frozen=True, slots=True)
class PortableRecord:
    """A :class:`RequestRecord` that can leave its process: times are offsets (s) from
    the request's own send, except ``sent_wall``, the send on the wall clock."""

    sent_wall: float
    fields: dict[str, Any]
    chunks: tuple[tuple[float, str], ...]
    offsets: dict[str, float | None]


_TIMES = ("first_chunk_at", "finish_at", "closed_at", "issued_at")


def to_portable(record: RequestRecord, pair: ClockPair) -> PortableRecord:
    """The record with its times relative to its send (see the module docstring)."""
    sent = record.sent_at
    fields = {
        f.name: getattr(record, f.name)
        for f in dataclasses.fields(record)
        if f.name not in ("sent_at", "chunks", *_TIMES)
    }
    if fields.get("timings") is not None:
        fields["timings"] = dict(fields["timings"])
    return PortableRecord(
        sent_wall=pair.to_wall(sent),
        fields=fields,
        chunks=tuple((chunk.at - sent, chunk.kind) for chunk in record.chunks),
        offsets={
            name: None if getattr(record, name) is None else getattr(record, name) - sent
            for name in _TIMES
        },
    )


def from_portable(portable: PortableRecord, pair: ClockPair, index: int) -> RequestRecord:
    """The record rebuilt on the parent's clock, renumbered ``index`` within its level."""
    sent = pair.to_perf(portable.sent_wall)
    record = RequestRecord(**{**portable.fields, "index": index, "sent_at": sent})
    record.chunks = [TokenChunk(sent + at, kind) for at, kind in portable.chunks]  # type: ignore[arg-type]
    for name, offset in portable.offsets.items():
        setattr(record, name, None if offset is None else sent + offset)
    return record


def shares(total: int, parts: int) -> list[int]:
    """``total`` split over ``parts`` as evenly as integers allow, zeros dropped."""
    base, extra = divmod(total, parts)
    return [n for n in (base + (1 if i < extra else 0) for i in range(parts)) if n > 0]


@dataclass(frozen=True, slots=True)
class WorkerTask:
    """One worker's share of a level; everything in it pickles (no mapping proxies).

    Its repr leaves the profile out: it holds the API key and headers, and a task's repr
    is what Dask logs when one fails (and a traceback may show).
    """

    profile_fields: dict[str, Any] = field(repr=False)
    settings: Settings
    dialect: str | None
    prompts: tuple[tuple[dict[str, Any], ...], ...] | None
    prompt_words: int | None
    concurrency: int
    seed: int | None
    start_wall: float
    tag: int = 0  # which level a progress message belongs to
    schedule: tuple[float, ...] | None = None  # open loop: this worker's send offsets


def plan(
    profile: Profile,
    settings: Settings,
    *,
    dialect: str | None,
    prompts: Sequence[Sequence[Message]] | None,
    prompt_words: int | None,
    concurrency: int,
    workers: int,
    start_wall: float,
    schedule: Sequence[float] | None = None,
) -> list[WorkerTask]:
    """Each worker's task: a share of the streams, and the same share of the requests.

    With an open-loop ``schedule`` every worker takes part, sending every Nth request of
    it (worker k: k, k + N, ...), after its share of the warm-up.
    """
    parts: list[tuple[float, ...] | None]
    if schedule is None:
        streams = shares(concurrency, workers)
        parts = [None] * len(streams)
        requests: list[int | None] = (
            list(split(settings.requests, streams))
            if settings.requests is not None
            else [None] * len(streams)
        )
        warmups = split(settings.warmup, streams)
    else:
        # Every worker sends its share of the one schedule, so each has a stream to warm up.
        streams = [max(1, concurrency // workers + (n < concurrency % workers))
                   for n in range(workers)]  # fmt: skip
        dealt = [tuple(schedule[n::workers]) for n in range(workers)]
        parts = list(dealt)
        requests = [len(part) for part in dealt]
        warmups = split(settings.warmup, [1] * workers)
    portable = _portable_profile(profile)
    frozen_prompts = _frozen(prompts)
    tasks: list[WorkerTask] = []
    for number, share in enumerate(streams):
        if requests[number] == 0:
            continue
        changes: dict[str, Any] = {
            "concurrency": (share,),
            "requests": requests[number],
            "warmup": warmups[number],
        }
        if parts[number] is not None:
            changes["duration"] = None  # the schedule holds the count
        tasks.append(
            WorkerTask(
                profile_fields=portable,
                settings=dataclasses.replace(settings, **changes),
                dialect=dialect,
                prompts=frozen_prompts,
                prompt_words=prompt_words,
                concurrency=share,
                seed=None if settings.seed is None else settings.seed + 1000 * number,
                start_wall=start_wall,
                schedule=parts[number],
            )
        )
    return tasks


def _frozen(
    prompts: Sequence[Sequence[Message]] | None,
) -> tuple[tuple[dict[str, Any], ...], ...] | None:
    return (
        tuple(tuple(dict(m) for m in conversation) for conversation in prompts) if prompts else None
    )


def split(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` in parts proportional to ``weights``; the parts always add up to it."""
    whole = sum(weights)
    bounds = [0]
    running = 0
    for weight in weights:
        running += weight
        bounds.append(total * running // whole)
    return [high - low for low, high in itertools.pairwise(bounds)]


def _portable_profile(profile: Profile) -> dict[str, Any]:
    fields = {f.name: getattr(profile, f.name) for f in dataclasses.fields(profile)}
    fields["headers"] = dict(profile.headers)
    fields["params"] = profile.request_params()  # plain dicts: the frozen ones do not pickle
    fields["spawn"] = None  # the parent started any spawned server already
    return fields


# What a share sends back: its records, its start and end (wall clock), open-loop sends.
ShareResult = tuple[list[PortableRecord], float, float, list[float]]


def run_task(task: WorkerTask) -> tuple[ShareResult, int]:
    """In a worker process: run the share; its records, start and end, open-loop sends,
    and which process ran it (its self-check is reported by process).

    A stopped share also sends what it has on the progress queue: when the stop came
    because another worker died, the pool has failed every future, this one's too, and
    the queue is the only way back (see :meth:`WorkerPool.run`)."""
    result = eventloop.run(_run_task(task))
    if _stopped(task.tag) and _progress_queue is not None:
        _progress_queue.put((SALVAGE, (task.tag, result, os.getpid())))
    return result, os.getpid()


async def _run_task(task: WorkerTask) -> ShareResult:
    """The share as a task of its own, which a stop cancels (see the module docstring)."""
    global _share

    def started(share: asyncio.Future[None]) -> None:
        global _share
        _share = share
        if _stopped(task.tag):  # stopped before this worker began: nothing to wait for
            share.cancel()

    queue = _progress_queue
    reporter = WallClockTracker(lambda end: queue.put((task.tag, end))) if queue else None
    together = (lambda: _common_start(task.tag)) if task.schedule is not None else None
    try:
        return await run_share(task, reporter=reporter, together=together, started=started)
    finally:
        _share = None


async def run_share(
    task: WorkerTask,
    *,
    reporter: Tracker | None = None,
    together: Callable[[], Awaitable[None]] | None = None,
    started: Callable[[asyncio.Future[None]], None] | None = None,
) -> ShareResult:
    """One share of a level, wherever it runs (a spawned process, a Dask worker).

    It waits for ``task.start_wall`` (this host's wall clock), runs the level with its own
    :class:`Runner`, reporting ends to ``reporter``; an open loop awaits ``together``
    after its warm-up. ``started`` is given the share's future, which a stop cancels: a
    stopped share ends here, its records kept.
    """
    profile = Profile(**task.profile_fields)
    async with bench_client(profile) as client:
        runner = Runner(
            client,
            task.settings,
            dialect=task.dialect,
            prompts=task.prompts,
            rng=random.Random(task.seed),
        )
        runner.prompt_words = task.prompt_words
        runner.schedule = task.schedule
        level = LevelResult(concurrency=task.concurrency, rate=task.settings.rate)
        share = asyncio.ensure_future(_run_share(task, runner, level, reporter, together))
        if started is not None:
            started(share)
        with contextlib.suppress(asyncio.CancelledError):
            await share  # a stopped share ends here, its records in ``level``
    pair = ClockPair.now()
    return (
        [to_portable(record, pair) for record in level.records],
        pair.to_wall(level.started_at),
        pair.to_wall(level.ended_at),
        level.send_offsets,
    )


async def _run_share(
    task: WorkerTask,
    runner: Runner,
    level: LevelResult,
    reporter: Tracker | None,
    together: Callable[[], Awaitable[None]] | None,
) -> None:
    delay = task.start_wall - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    await runner.run_level(level, reporter, together if task.schedule is not None else None)


async def _common_start(tag: int) -> None:
    """In a worker: say its warm-up is done, then wait for the parent's start instant.

    The parent (:meth:`WorkerPool._forward`) writes one wall-clock instant into the shared
    ``_start`` array once every worker of the level is ready; the open-loop schedules,
    dealt out in turn, then all count from it.
    """
    if _progress_queue is None or _start is None:
        return
    _progress_queue.put(("ready", tag))
    while not (int(_start[0]) == tag and _start[1] > 0):
        await asyncio.sleep(0.002)
    delay = _start[1] - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


# In a worker process (set at process start): the queue request ends are reported on, the
# shared (level tag, start instant) of an open-loop level, and the shared tag of the level
# the parent stopped. ``_share`` is the share running now, if any.
_progress_queue: Any = None
_start: Any = None
_stop: Any = None
_share: asyncio.Future[None] | None = None

# What ends a run reaches a worker too (a terminal's Ctrl-C or hangup, ``timeout``'s
# SIGTERM go to the whole process group); the parent decides, and stops the workers.
PARENTS_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def _init_worker(queue: Any, start: Any, stop: Any) -> None:
    global _progress_queue, _start, _stop
    _progress_queue = queue
    _start = start
    _stop = stop
    for number in PARENTS_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    if STOP_SIGNAL is not None:
        signal.signal(STOP_SIGNAL, _on_stop)
    queue.put(("pid", os.getpid()))


@contextlib.contextmanager
def signals_blocked(numbers: Sequence[int]) -> Iterator[None]:
    """The calling thread's ``numbers`` blocked inside the block (where POSIX allows it)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, numbers)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _stopped(tag: int) -> bool:
    return _stop is not None and int(_stop.value) == tag


def _on_stop(signum: int, frame: FrameType | None) -> None:
    """STOP_SIGNAL: cancel the running share from its loop (the handler runs between two
    bytecodes of the main thread, maybe inside the loop's own code, so it only schedules)."""
    share = _share
    if share is not None and not share.done():
        with contextlib.suppress(RuntimeError):  # the loop closed as the signal came
            share.get_loop().call_soon_threadsafe(share.cancel)


class WallClockTracker:
    """A share's :class:`Tracker` wherever it runs: each measured request's end, its times
    moved onto the wall clock (the workers' clocks meet there, as their records do), handed
    to ``deliver`` (a process's queue to its parent, a Dask worker's batch)."""

    def __init__(self, deliver: Callable[[RequestEnd], None]) -> None:
        self._deliver = deliver
        pair = ClockPair.now()
        self._to_wall = pair.wall - pair.perf

    def level_started(self, profile: str, load: str, total: int | None) -> None:
        pass

    def request_done(self, end: RequestEnd) -> None:
        self._deliver(end.on_clock(self._to_wall))

    def level_finished(self, done: int, failed: int) -> None:
        pass


SALVAGE = "salvage"  # a stopped share's result, sent on the progress queue too


def _ready(pause: float) -> None:
    time.sleep(pause)  # holds a process so the next warm-up task goes to another one


class WorkerPool:
    """N spawned processes for a whole run; a level is sent to them with :meth:`run`."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        context = multiprocessing.get_context("spawn")
        self._queue: Any = context.Queue()
        self._start: Any = context.Array("d", [0.0, 0.0], lock=False)  # (tag, wall instant)
        self._stop: Any = context.Value("i", 0, lock=False)  # the tag of a stopped level
        self._executor = concurrent.futures.ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(self._queue, self._start, self._stop),
        )
        self._ready = 0
        self._expected = 0
        self._tracker: Tracker | None = None
        self._pids: set[int] = set()
        self._tag = 0
        self._salvaged: list[tuple[ShareResult, int]] = []  # the level's stopped shares
        # What the results keep (run.environment["worker_processes"]): each level's shares
        # checked by process (llmcli.bench.sharecheck); ``last_level`` is the latest's.
        self.description: dict[str, Any] = {"processes": workers, "levels": []}
        self.last_level: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._forward, name="bench-progress", daemon=True)

    def __enter__(self) -> WorkerPool:
        # Start every process now (imports take a while), not inside the first level; a
        # submit starts a process while none is idle, so N of them start N processes.
        # They start with the parent's signals blocked, which a child inherits: a Ctrl-C
        # while one boots (before _init_worker ignores it) would kill it half-imported.
        # The parent loses nothing: Python runs its handlers whichever thread is signalled.
        with signals_blocked(PARENTS_SIGNALS):
            futures = [self._executor.submit(_ready, 0.2) for _ in range(self.workers)]
        # Every worker's pid, before any level: a stop must reach all of them.
        deadline = time.monotonic() + START_WAIT
        while len(self._pids) < self.workers:
            try:
                tag, pid = self._queue.get(timeout=0.1)
            except queue.Empty:
                failed = next((f for f in futures if f.done() and f.exception()), None)
                if failed is None and time.monotonic() < deadline:
                    continue
                self.__exit__()
                reason = (
                    f"ended as it started ({failed.exception()!r})"
                    if failed
                    else (f"did not start within {START_WAIT:g} s")
                )
                raise LlmcliError(f"--workers {self.workers}: a worker process {reason}") from None
            if tag == "pid":
                self._pids.add(pid)
        for future in futures:
            future.result()
        self._reader.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._reader.is_alive():
            self._queue.put(None)
            self._reader.join(timeout=5)
        self._queue.close()

    def _forward(self) -> None:
        """Thread: request ends from the workers to the current level's tracker."""
        while (message := self._queue.get()) is not None:
            tag, payload = message
            if tag == SALVAGE:
                level, result, pid = payload
                if level == self._tag:
                    self._salvaged.append((result, pid))
                continue
            if tag == "ready":
                if payload == self._tag:
                    self._ready += 1
                    if self._ready == self._expected:  # every worker warm: start together
                        self._start[1] = time.time() + START_MARGIN
                        self._start[0] = float(self._tag)
                continue
            tracker = self._tracker
            if tracker is not None and tag == self._tag:  # late ends of a level are dropped
                tracker.request_done(payload)

    async def run(
        self,
        tasks: Sequence[WorkerTask],
        sink: list[RequestRecord],
        tracker: Tracker | None = None,
        send_offsets: list[float] | None = None,
    ) -> None:
        """Run the tasks at once; their records merged on this process's clock into ``sink``.

        On Ctrl-C (the parent's alone: workers ignore SIGINT) the parent sends each worker
        ``STOP_SIGNAL``; each stops and sends back every request it has, the cut-off ones
        marked ``cancelled``; they are merged before the cancellation goes on, as a single
        process keeps its finished requests.
        """
        index_from = len(sink)
        self._start[1] = 0.0
        self._ready = 0
        self._expected = sum(1 for task in tasks if task.schedule is not None)
        self._tag += 1
        self._tracker = tracker
        self._salvaged = []
        futures = [
            self._executor.submit(run_task, dataclasses.replace(task, tag=self._tag))
            for task in tasks
        ]
        broken = False
        try:
            await asyncio.gather(*(asyncio.wrap_future(future) for future in futures))
        except concurrent.futures.process.BrokenProcessPool:
            broken = True
            # A worker process died (killed, out of memory): the executor fails every
            # future with it. The others are stopped and send what they have on the queue.
            self._stop_workers()
            deadline = time.monotonic() + SALVAGE_WAIT
            while len(self._salvaged) < len(futures) - 1 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            raise LevelLost(
                "--workers: a worker process ended during the level (killed, or out of"
                " memory?), with the requests it had made"
            ) from None
        except BaseException:  # Ctrl-C, or a worker failed (the others may wait to start)
            self._stop_workers()
            concurrent.futures.wait(futures, timeout=INTERRUPT_WAIT)
            raise
        finally:
            self._tracker = None
            finished = (
                list(self._salvaged)  # a broken pool: what the stopped shares sent back
                if broken
                else [
                    future.result()
                    for future in futures
                    if future.done() and not future.cancelled() and future.exception() is None
                ]
            )
            results = [result for result, _ in finished]
            sink.extend(merge([result[0] for result in results], ClockPair.now(), index_from))
            if send_offsets is not None:  # each counted from the one common start
                send_offsets.extend(sorted(o for result in results for o in result[3]))
            host = socket.gethostname()
            self.last_level = [
                {"worker": f"pid {pid}", "hostname": host, **share_check(result[0]).as_dict()}
                for result, pid in finished
            ]

    def _stop_workers(self) -> None:
        """Stop the level in every worker now (they ignore Ctrl-C: see the module docstring).

        The cell first, then the signal: a worker that has not begun its share yet (or
        takes another one next) sees the cell; one that is running it is woken.
        """
        self._stop.value = self._tag
        if STOP_SIGNAL is None:
            return
        for pid in self._pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, STOP_SIGNAL)


def merge(
    parts: Sequence[Sequence[PortableRecord]], pair: ClockPair, index_from: int = 0
) -> list[RequestRecord]:
    """Every worker's records on one clock, in send order, numbered from ``index_from``.

    The records themselves are merged, not their statistics: whatever is computed from the
    result (percentiles included) is computed over the pooled samples.
    """
    merged = [from_portable(portable, pair, 0) for part in parts for portable in part]
    merged.sort(key=lambda record: record.sent_at)
    for number, record in enumerate(merged):
        record.index = index_from + number
    return merged
