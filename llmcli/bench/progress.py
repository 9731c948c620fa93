"""How a running benchmark shows its progress: a live rich display, or plain lines.

The runner reports through :class:`Tracker` (a level starts, a request ends, a level
ends) and never learns how it is shown. :class:`LiveProgress` draws one rich progress bar
per profile and load level on a console it is given (stderr, when that is a terminal);
:class:`LineProgress` writes the plain lines a pipe or log file gets, one when a level
starts and one when it ends.
"""

from __future__ import annotations

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


class Tracker(Protocol):
    """What the runner tells a display while it runs."""

    def level_started(self, profile: str, load: str, total: int | None) -> None: ...

    def request_done(self, failed: bool) -> None: ...

    def level_finished(self, done: int, failed: int) -> None: ...


class LineProgress:
    """Plain lines through ``write``: a level's start and its final count."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self._current = ""

    def level_started(self, profile: str, load: str, total: int | None) -> None:
        self._current = f"{profile}: {load}"
        self._write(f"{profile}: running at {load}")

    def request_done(self, failed: bool) -> None:
        pass  # a line a request would drown a log

    def level_finished(self, done: int, failed: int) -> None:
        self._write(f"{self._current}: {done} requests, {failed} failed")


class LiveProgress:
    """A rich progress display: per profile and level, requests done/total, errors, time.

    Use as a context manager around the run; the console is the caller's (stderr).
    Request ends may come from another thread (``--workers`` forwards them from a queue).
    """

    def __init__(self, console: Console, *, auto_refresh: bool = True) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("errors {task.fields[errors]}"),
            TimeElapsedColumn(),
            console=console,
            auto_refresh=auto_refresh,
            transient=False,
        )
        self._task: TaskID | None = None
        self._errors = 0
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
            self._task = self.progress.add_task(f"{profile} {load}", total=total, errors=0)

    def request_done(self, failed: bool) -> None:
        with self._lock:
            if self._task is None:
                return
            self._errors += failed
            self.progress.update(self._task, advance=1, errors=self._errors)

    def level_finished(self, done: int, failed: int) -> None:
        with self._lock:
            if self._task is None:
                return
            # a duration-bound level learns its total only at the end
            self.progress.update(self._task, total=done, completed=done, errors=failed)
            self.progress.stop_task(self._task)
            self._task = None
