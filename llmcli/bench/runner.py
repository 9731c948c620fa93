"""The benchmark's one piece of I/O: drive ``Client`` streams and timestamp what arrives.

Every event the client yields is stamped with the arrival of the bytes it was parsed from
(``Arrival``), on an injectable clock (``time.perf_counter`` by default, the clock the mock
server logs its frames with): the kernel's receive time where the bench's transport gets
one (:mod:`llmcli.net.streamhttp`), else when the bytes were read. Events parsed from one read
share a time. Nothing is computed here: records go to :mod:`llmcli.bench.metrics`.

Records are appended to the caller's :class:`~llmcli.bench.records.LevelResult` as each
request ends, so when a
run is interrupted (Ctrl-C cancels the main task) every finished request is already
there; requests cut off in flight are kept as ``cancelled`` and left out of the figures.

Before the first byte the client normally retries (429, 503, connect errors); the bench
client is built with a single attempt, so every failure is counted, never hidden in a
longer TTFT. One exception: a request sent on a pooled connection the server had already
closed is sent again once (the server never saw it), with its send time reset; the record
says so (``stale_retry``).

A whole run (profiles, levels, server info, workers) is driven by
:func:`llmcli.bench.run.run_bench`.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import math
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from llmcli import errors
from llmcli.bench.metrics import RequestRecord, TokenChunk, request_end
from llmcli.bench.records import LevelResult
from llmcli.bench.workload import (
    MAX_REQUESTS,
    Message,
    Settings,
    arrival_offsets,
    prompt_nonce,
    request_constraints,
    request_extra,
    synthetic_prompt,
    vary,
)
from llmcli.config.profiles import Profile
from llmcli.net.settings import proxy_for
from llmcli.net.streamhttp import StreamTransport
from llmcli.wire.client import Arrival, ChatRequest, Client, RetryPolicy, client_tls
from llmcli.wire.events import (
    TIMING_FIELDS,
    ContentDelta,
    Finish,
    ReasoningDelta,
    Started,
    Timings,
    ToolCallDelta,
    Usage,
)

if TYPE_CHECKING:
    from llmcli.bench.progress import Tracker

Clock = Callable[[], float]

BENCH_RETRY = RetryPolicy(attempts=1)


def bench_client(profile: Profile, clock: Clock = time.perf_counter) -> Client:
    """The bench's client: one attempt, on the lean stamping transport.

    httpx's default transport costs about 200 µs of CPU a frame here and its pool does
    work quadratic in its connections (encode/httpcore#1035); ``StreamTransport`` costs a
    fraction of that and stamps bytes as they come off the socket (``Arrival``).

    It has no proxies: where the environment sends the profile's server through one
    (``llmcli.net.settings``), the bench takes httpx's transport, which honours it, and its
    stamps are the client's, not the socket's.
    """
    env = os.environ
    if proxy_for(profile.base_url, env) is not None:
        return Client(profile, retry=BENCH_RETRY, env=env)
    transport = StreamTransport(
        connect_timeout=profile.connect_timeout,
        read_timeout=profile.read_timeout,
        clock=clock,
        ssl_context=client_tls(profile, None, env),
    )
    return Client(profile, retry=BENCH_RETRY, transport=transport, env=env)


def error_kind(error: errors.LlmcliError) -> str:
    """A short, countable name for a failure: ``http_429``, ``timeout``, ``stream``..."""
    if isinstance(error, errors.StatusError):
        return f"http_{error.status}"
    if isinstance(error, errors.TimeoutError):
        return "timeout"
    if isinstance(error, errors.ConnectError):
        return "connect"
    if isinstance(error, errors.StreamError):
        return "stream" if error.status is None else f"stream_{error.status}"
    return type(error).__name__.lower()


class SendQueue:
    """Lets one request be built and sent per turn of the event loop, in arrival order.

    When a wave of streams ends together (a closed loop does that), their next requests
    would all be built and sent in one turn of the loop: some 100-150 µs each here, during
    which no socket is read, so every other stream's bytes would be stamped late by the
    whole burst. Taking turns puts a read of the sockets between any two sends.
    """

    def __init__(self) -> None:
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self._pending = False

    async def turn(self) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiting.append(future)
        if not self._pending:
            self._pending = True
            loop.call_soon(self._next)
        await future

    def _next(self) -> None:
        waiting = self._waiting
        while waiting:
            future = waiting.popleft()
            if not future.done():  # a cancelled sender gives its turn away
                future.set_result(None)
                break
        if waiting:
            asyncio.get_running_loop().call_soon(self._next)
        else:
            self._pending = False


class Runner:
    """Sends a workload through its clients (one per lane of streams) and records every request."""

    def __init__(
        self,
        client: Client | Sequence[Client],
        settings: Settings,
        *,
        dialect: str | None,
        prompts: Sequence[Sequence[Message]] | None = None,
        clock: Clock = time.perf_counter,
        rng: random.Random | None = None,
    ) -> None:
        self.clients = [client] if isinstance(client, Client) else list(client)
        if not self.clients:
            raise ValueError("Runner needs at least one client")
        self.settings = settings
        self.clock = clock
        self.rng = rng or random.Random(settings.seed)
        self._prompts = prompts
        self.dialect = dialect
        self._extra = {**request_extra(dialect), **request_constraints(settings, dialect)}
        self._sends = SendQueue()
        self.schedule: Sequence[float] | None = None  # open loop: send offsets given, not drawn
        self.prompt_words: int | None = None  # set by calibrate_prompt
        self.tracker: Tracker | None = None  # told of each measured request's end

    def build_request(self, index: int) -> ChatRequest:
        settings = self.settings
        messages: list[Message]
        if self._prompts:
            chosen = self._prompts[index % len(self._prompts)]
            messages = [dict(m) for m in chosen] if settings.cache else vary(chosen, self.rng)
        else:
            prompt = synthetic_prompt(
                settings.input_tokens, self.rng, cache=settings.cache, words=self.prompt_words
            )
            messages = [{"role": "user", "content": prompt}]
        return ChatRequest(
            messages=messages,
            model=settings.model,
            max_tokens=settings.max_tokens,
            extra=self._extra,
        )

    async def run_one(
        self,
        index: int,
        *,
        warmup: bool = False,
        sink: list[RequestRecord] | None = None,
        lane: int = 0,
    ) -> RequestRecord:
        """Send one streamed request; the record of what came back, failure included.

        The record goes into ``sink`` as the request is sent and is filled in place, so an
        interrupted run still holds it (marked ``cancelled``). ``lane`` picks the client.
        """
        await self._sends.turn()
        client = self.clients[lane % len(self.clients)]
        request = self.build_request(index)
        clock = self.clock
        record = RequestRecord(index=index, sent_at=clock(), warmup=warmup)
        if not self.settings.cache:
            record.nonce = prompt_nonce(request.messages)
        if sink is not None:
            sink.append(record)
        arrival = Arrival(clock)
        for attempt in range(2):
            try:
                async for event in client.stream_chat(request, arrival=arrival):
                    _note(record, event, clock() if arrival.at is None else arrival.at)
            except errors.LlmcliError as error:
                if attempt == 0 and _stale_connection(error, record):
                    record.stale_retry = True
                    record.sent_at = clock()
                    continue
                record.error_kind = error_kind(error)
                record.error = str(error)
            except asyncio.CancelledError:
                record.error_kind = "cancelled"
                record.error = "interrupted before the answer was complete"
                _close(record, arrival, clock())
                raise
            break
        _close(record, arrival, clock())
        if self.tracker is not None and not warmup:
            self.tracker.request_done(request_end(record))
        return record

    async def run_level(
        self,
        level: LevelResult,
        tracker: Tracker | None = None,
        measure_from: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Warm-up, then the measured requests, at ``level``'s concurrency or rate.

        ``measure_from``, if given, is awaited between the two (workers wait there for one
        common start of an open-loop schedule).
        """
        settings = self.settings
        self.tracker = tracker
        # A full collection of the cyclic GC stops every stream for tens of ms at a few
        # hundred streams: it runs between levels instead, as timeit keeps it out of a
        # timing. What a level allocates is freed by reference counting; the few cycles it
        # leaves (a failed request's exception) wait for the next level.
        gc.collect()
        collecting = gc.isenabled()
        gc.disable()
        level.started_at = self.clock()
        try:
            if settings.warmup:
                await self._closed_loop(level, level.concurrency, settings.warmup, None, True)
            if measure_from is not None:
                await measure_from()
            if level.rate is not None:
                await self._open_loop(level, level.rate)
            else:
                await self._closed_loop(
                    level, level.concurrency, settings.requests, settings.duration, False
                )
        finally:
            level.ended_at = self.clock()
            self.tracker = None
            if collecting:
                gc.enable()
        if tracker is not None:
            done = [r for r in level.records if not r.warmup]
            failed = sum(1 for r in done if r.error_kind is not None or not r.chunks)
            tracker.level_finished(len(done), failed)

    async def _closed_loop(
        self,
        level: LevelResult,
        concurrency: int,
        count: int | None,
        duration: float | None,
        warmup: bool,
    ) -> None:
        """``concurrency`` workers, each sending its next request as soon as one ends.

        Never more workers than requests: a lane that could send nothing is not started.
        A level run for a ``duration`` stops at ``MAX_REQUESTS`` too: a record a request
        is kept, and memory must stay bounded however fast the server is.
        """
        if count is None:
            count = MAX_REQUESTS
        issued = 0
        deadline = self.clock() + duration if duration is not None else None

        async def worker(lane: int) -> None:
            nonlocal issued
            while True:
                if issued >= count:
                    return
                if deadline is not None and self.clock() >= deadline:
                    return
                index = issued
                issued += 1
                await self.run_one(index, warmup=warmup, sink=level.records, lane=lane)

        async with asyncio.TaskGroup() as group:
            for lane in range(min(concurrency, count)):
                group.create_task(worker(lane))

    async def _open_loop(self, level: LevelResult, rate: float) -> None:
        """Requests sent on a schedule computed in advance, however slow the answers."""
        settings = self.settings
        if self.schedule is not None:
            offsets = list(self.schedule)
        else:
            count = planned_requests(settings, rate)
            assert count is not None
            offsets = arrival_offsets(rate, count, self.rng, settings.arrival)
        start = self.clock()
        loop = asyncio.get_running_loop()
        loop_start = loop.time()

        async def send(index: int) -> None:
            await self.run_one(index, sink=level.records, lane=index)

        async with asyncio.TaskGroup() as group:
            for index, offset in enumerate(offsets):
                delay = loop_start + offset - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                level.send_offsets.append(self.clock() - start)
                group.create_task(send(index))


def _stale_connection(error: errors.LlmcliError, record: RequestRecord) -> bool:
    """A pooled keep-alive connection the server had closed: the request never reached it.

    llama-server closes idle keep-alive connections without notice now and then; the next
    request on one fails with no byte of answer. Sending it again on a fresh connection is
    safe and is what a user's client would do; the record is flagged.
    """
    return isinstance(error, errors.ConnectError) and error.stale and record.first_chunk_at is None


def _close(record: RequestRecord, arrival: Arrival, now: float) -> None:
    """The stream is over: its end, read lag, and the transport's send stamp if it gave one
    (the runner's own stamp, taken before the client built the request, stays as issued)."""
    record.closed_at = now
    record.read_lag = arrival.read_lag
    if arrival.sent_at is not None and arrival.sent_at > record.sent_at:
        record.issued_at, record.sent_at = record.sent_at, arrival.sent_at


def _note(record: RequestRecord, event: object, now: float) -> None:
    if record.first_chunk_at is None and isinstance(event, Started):
        record.first_chunk_at = now
    match event:
        case ContentDelta(text=text) if text:
            record.chunks.append(TokenChunk(now, "content"))
        case ReasoningDelta(text=text) if text:
            record.chunks.append(TokenChunk(now, "reasoning"))
        case ToolCallDelta():
            record.chunks.append(TokenChunk(now, "tool"))
        case Finish(reason=reason) if record.finish_at is None:
            record.finish_at = now
            record.finish_reason = reason
        case Usage():
            record.prompt_tokens = event.prompt_tokens
            record.completion_tokens = event.completion_tokens
            record.cached_tokens = event.cached_tokens
            record.reasoning_tokens = event.reasoning_tokens
        case Timings():
            # A server's NaN or Infinity (Python's json reads them) is no figure: kept as
            # unknown, so the results file stays JSON (it is written with allow_nan=False).
            record.timings = {name: _finite(getattr(event, name)) for name in TIMING_FIELDS}
        case _:
            pass


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def planned_requests(settings: Settings, rate: float | None) -> int | None:
    """Measured requests a level will send: ``None`` when a closed loop runs for a time."""
    if rate is not None and settings.requests is None:
        assert settings.duration is not None
        return max(1, int(rate * settings.duration))
    return settings.requests
