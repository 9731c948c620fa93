"""Sending on absolute deadlines, and recording when every frame actually left.

Every deadline is computed from the request's arrival (``start + pace.at(slot)``: TTFT plus
the slot's gaps, see :mod:`llmcli.mock.timing`, on the event loop's clock), so delays never
accumulate: a frame that is late (after a stall, or under load) goes out at once and the
next one is on time again.

One :class:`Pacer` per server writes the frames of all its streams from a single timer:
waking a task per frame costs about 13 µs in asyncio, which caps a server at some 50,000
frames/s before it has done any work, while a due frame here costs one synchronous
``transport.write``. Frames of one stream due together are joined into one write (and one
HTTP chunk). Each stream's task only wakes for what needs a coroutine: a stall, a reset,
back-pressure, the end.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Iterator

from llmcli.mock.http import Connection
from llmcli.mock.record import RecordedRequest, SentFrame
from llmcli.mock.timing import Pace

BATCH = 64  # most frames one stream writes per turn; then others get theirs
TURNS_PER_TICK = 1024  # most streams served before the loop polls sockets again
HIGH_WATER = 256 * 1024  # bytes buffered for a slow reader before its stream waits
KEEPALIVE_FRAME = b": keep-alive\n\n"

Step = tuple[int, str, bytes]


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def sleep_until(deadline: float) -> None:
    """Sleep until ``loop.time()`` reaches ``deadline`` (at once if it has)."""
    loop = asyncio.get_running_loop()
    if deadline <= loop.time():
        return
    future: asyncio.Future[None] = loop.create_future()
    handle = loop.call_at(deadline, _wake, future)
    try:
        await future
    finally:
        handle.cancel()


class Pacer:
    """Wakes once for whichever stream is due first and writes every due frame."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, StreamRun]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = float("inf")

    def schedule(self, run: StreamRun, when: float) -> None:
        heapq.heappush(self._heap, (when, next(self._order), run))
        if when < self._timer_when:
            self._arm(when)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(when, self._tick)
        self._timer_when = when

    def _tick(self) -> None:
        self._timer = None
        self._timer_when = float("inf")
        heap = self._heap
        now = asyncio.get_running_loop().time()
        for _ in range(TURNS_PER_TICK):
            if not heap or heap[0][0] > now:
                break
            run = heapq.heappop(heap)[2]
            again = run.turn(now)
            if again is not None:
                heapq.heappush(heap, (again, next(self._order), run))
        if heap:
            self._arm(max(heap[0][0], now))


class StreamRun:
    """One response stream: its head at once, then the planned steps on time."""

    def __init__(
        self,
        pacer: Pacer,
        conn: Connection,
        record: RecordedRequest,
        steps: Iterator[Step],
        *,
        head: bytes,
        start: float,
        pace: Pace,
        keepalive: float,
        stall_seconds: float,
        record_frames: bool,
    ) -> None:
        self._pacer = pacer
        self._conn = conn
        self._transport = conn.writer.transport
        self._record = record
        self._steps = steps
        self._step = next(steps, None)
        self._head = head
        self._start = start
        self._due = pace.at
        self._keepalive = keepalive
        self._stall_seconds = stall_seconds
        self._frames: list[SentFrame] | None = record.frames if record_frames else None
        self._last_write = start
        self._future: asyncio.Future[str] | None = None
        self._active = True

    async def run(self) -> bool:
        """Send the whole stream; ``False`` if it ended by resetting the connection."""
        loop = asyncio.get_running_loop()
        when = loop.time()
        try:
            while True:
                future: asyncio.Future[str] = loop.create_future()
                self._future = future
                self._pacer.schedule(self, when)
                reason = await future
                if reason == "done":
                    return True
                if reason == "stall":
                    await asyncio.sleep(self._stall_seconds)
                elif reason == "reset":
                    await self._conn.reset()
                    return False
                elif reason == "drain":
                    await self._conn.drain()
                else:
                    raise ConnectionResetError("the client closed the connection")
                when = loop.time()
        finally:
            self._active = False

    def _hand_off(self, reason: str) -> None:
        future = self._future
        if future is not None and not future.done():
            future.set_result(reason)

    def turn(self, now: float) -> float | None:
        """Write what is due; when to come back, or ``None`` when the task takes over."""
        if not self._active:
            return None
        try:
            return self._turn(now)
        except Exception as exc:  # a bug: let it surface in the stream's own task
            future = self._future
            if future is not None and not future.done():
                future.set_exception(exc)
            return None

    def _turn(self, now: float) -> float | None:
        if self._transport.is_closing():
            self._hand_off("closed")
            return None
        start, due, steps = self._start, self._due, self._steps
        pending: list[bytes] = []
        kinds: list[str] = []
        step = self._step
        while step is not None:
            slot, kind, frame = step
            if start + due(slot) > now:
                break
            if kind == "stall" or kind == "reset":
                self._step = next(steps, None)
                self._write(pending, kinds, now, last=False)
                if kind == "reset":
                    self._record.completed = True
                self._hand_off(kind)
                return None
            pending.append(frame)
            kinds.append(kind)
            step = next(steps, None)
            if len(pending) >= BATCH:
                break
        self._step = step
        if step is None:
            self._write(pending, kinds, now, last=True)
            self._hand_off("done")
            return None
        keepalive = self._keepalive
        if keepalive > 0 and not pending and now - self._last_write >= keepalive:
            pending.append(KEEPALIVE_FRAME)
            kinds.append("comment")
        if pending or self._head:
            self._write(pending, kinds, now, last=False)
            if self._transport.get_write_buffer_size() > HIGH_WATER:
                self._hand_off("drain")
                return None
        wake = start + due(step[0])
        if wake <= now:
            return now  # a full batch: the rest after the other streams' turns
        if keepalive > 0:
            wake = min(wake, self._last_write + keepalive)
        return wake

    def _write(self, pending: list[bytes], kinds: list[str], now: float, *, last: bool) -> None:
        data = self._conn.stream_bytes(b"".join(pending), last=last)
        if self._head:
            data = self._head + data
            kinds.insert(0, "headers")
            self._head = b""
        if not data:
            return
        if self._frames is not None and kinds:
            # Stamped just before the write hands the bytes to the socket: a client that
            # has read them can rely on finding them in the record.
            sent = time.perf_counter()
            self._frames.extend([SentFrame(sent, kind) for kind in kinds])
        if last:
            self._record.completed = True
        self._conn.write(data)
        self._last_write = now
