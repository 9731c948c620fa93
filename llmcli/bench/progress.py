"""How a running benchmark shows its progress: a live rich display, or plain lines.

The runner reports through :class:`Tracker` (a level starts, a request ends, a level
ends) and never learns how it is shown. :class:`LiveProgress` draws one rich progress bar
per profile and load level on a console it is given (stderr, when that is a terminal),
with the level's running TTFT p50 and output tokens/s (:class:`RunningFigures`);
:class:`LineProgress` writes the plain lines a pipe or log file gets, one when a level
starts and one when it ends.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from llmcli.bench.metrics import RequestEnd


class Tracker(Protocol):
    """What the runner tells a display while it runs."""

    def level_started(self, profile: str, load: str, total: int | None) -> None: ...

    def request_done(self, end: RequestEnd) -> None: ...

    def level_finished(self, done: int, failed: int) -> None: ...


class RunningFigures:
    """A level's TTFT p50 and aggregate output tokens/s so far, as the summary defines them
    (``metrics.summarise``), kept up as requests end: O(log n) a request, nothing rescanned.

    The median is two heaps (the lower half a max-heap, the upper a min-heap); for an even
    count it is the mean of the middle two, as ``percentile(..., 50)`` interpolates.
    Tokens/s: output tokens of successful requests / (latest end - earliest send), over
    every request, failed ones included, as the table's aggregate.
    """

    def __init__(self) -> None:
        self._lower: list[float] = []  # negated: a max-heap
        self._upper: list[float] = []
        self._tokens = 0
        self._first_start: float | None = None
        self._last_end: float | None = None

    def add(self, end: RequestEnd) -> None:
        if self._first_start is None or end.start < self._first_start:
            self._first_start = end.start
        if end.end is not None and (self._last_end is None or end.end > self._last_end):
            self._last_end = end.end
        if not end.ok:
            return
        self._tokens += end.tokens
        if end.ttft is not None:
            self._add_ttft(end.ttft)

    def _add_ttft(self, value: float) -> None:
        if self._lower and value > -self._lower[0]:
            heapq.heappush(self._upper, value)
        else:
            heapq.heappush(self._lower, -value)
        if len(self._lower) > len(self._upper) + 1:
            heapq.heappush(self._upper, -heapq.heappop(self._lower))
        elif len(self._upper) > len(self._lower):
            heapq.heappush(self._lower, -heapq.heappop(self._upper))

    @property
    def ttft_p50(self) -> float | None:
        if not self._lower:
            return None
        if len(self._lower) > len(self._upper):
            return -self._lower[0]
        return (-self._lower[0] + self._upper[0]) / 2.0

    @property
    def tokens_per_second(self) -> float | None:
        if self._first_start is None or self._last_end is None:
            return None
        duration = self._last_end - self._first_start
        return self._tokens / duration if duration > 0 else None

    def texts(self) -> tuple[str, str]:
        """The display's text: TTFT p50 in ms and tokens/s, ``-`` while there is none."""
        ttft, tps = self.ttft_p50, self.tokens_per_second
        return (
            "-" if ttft is None else f"{ttft * 1000:.1f} ms",
            "-" if tps is None else f"{tps:,.1f}",
        )


class LineProgress:
    """Plain lines through ``write``: a level's start and its final count."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self._current = ""

    def level_started(self, profile: str, load: str, total: int | None) -> None:
        self._current = f"{profile}: {load}"
        self._write(f"{profile}: running at {load}")

    def request_done(self, end: RequestEnd) -> None:
        pass  # a line a request would drown a log

    def level_finished(self, done: int, failed: int) -> None:
        self._write(f"{self._current}: {done} requests, {failed} failed")


class LiveProgress:
    """A rich progress display: per profile and level, requests done/total, errors, the
    running TTFT p50 and output tokens/s (:class:`RunningFigures`), time.

    Use as a context manager around the run; the console is the caller's (stderr).
    Request ends may come from another thread (``--workers`` forwards them from a queue).
    """

    def __init__(self, console: Console, *, auto_refresh: bool = True) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("errors {task.fields[errors]}"),
            TextColumn("TTFT p50 {task.fields[ttft]}"),
            TextColumn("{task.fields[tps]} tok/s"),
            TimeElapsedColumn(),
            console=console,
            auto_refresh=auto_refresh,
            transient=False,
        )
        self._task: TaskID | None = None
        self._errors = 0
        self._figures = RunningFigures()
        self._lock = threading.Lock()

    def __enter__(self) -> LiveProgress:
        self.progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.progress.stop()

    def level_started(self, profile: str, load: str, total: int | None) -> None:
        with self._lock:
            self._errors = 0
            self._figures = RunningFigures()
            ttft, tps = self._figures.texts()
            self._task = self.progress.add_task(
                f"{profile} {load}", total=total, errors=0, ttft=ttft, tps=tps
            )

    def request_done(self, end: RequestEnd) -> None:
        with self._lock:
            if self._task is None:
                return
            self._errors += not end.ok
            self._figures.add(end)
            ttft, tps = self._figures.texts()
            self.progress.update(self._task, advance=1, errors=self._errors, ttft=ttft, tps=tps)

    def level_finished(self, done: int, failed: int) -> None:
        with self._lock:
            if self._task is None:
                return
            # a duration-bound level learns its total only at the end
            self.progress.update(self._task, total=done, completed=done, errors=failed)
            self.progress.stop_task(self._task)
            self._task = None
