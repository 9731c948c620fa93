"""How a bench run ends on a signal: SIGTERM and SIGHUP as Ctrl-C, with their own exit codes.

A run stopped by ``timeout``, a service manager or a closed terminal keeps what arrived
and writes its results file, exactly as after Ctrl-C; only the exit status differs:
128 + the signal's number (SIGTERM 143, SIGHUP 129; Ctrl-C stays 130).

While the event loop runs, the handler cancels the run's main task from the loop, as
``asyncio.Runner`` does for SIGINT (an exception raised inside the loop could land in
any of its callbacks); the cancellation then unwinds the run as Ctrl-C's does. Outside
the loop, and on a second signal, the handler raises ``KeyboardInterrupt``, which every
``finally`` between it and the command already handles.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Awaitable, Iterator
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")

ENDING_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
# Signals held back while the results file is written: it is written whole, then they act.
_HELD = (signal.SIGINT, *ENDING_SIGNALS)


class Endings:
    """Inside ``with``: SIGTERM and SIGHUP end the run as Ctrl-C does; ``signum`` says which."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._task: asyncio.Task[Any] | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Endings:
        if threading.current_thread() is threading.main_thread():
            for number in ENDING_SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)

    @property
    def exit_code(self) -> int | None:
        """The conventional status of the signal that ended the run: 128 + its number."""
        return None if self.signum is None else 128 + self.signum

    @property
    def name(self) -> str:
        return "" if self.signum is None else signal.Signals(self.signum).name

    async def watch(self, main: Awaitable[T]) -> T:
        """Await ``main`` in the task a signal cancels (the task running this)."""
        self._task = asyncio.current_task()
        try:
            return await main
        finally:
            self._task = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        task = self._task
        if self.signum is None:
            self.signum = signum
            if task is not None and not task.done():
                task.get_loop().call_soon_threadsafe(task.cancel)
                return
        raise KeyboardInterrupt


@contextlib.contextmanager
def held_signals() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP wait until the block is over, then act as they would.

    The Python handlers are swapped, not the signals blocked: a process-directed signal
    that the main thread blocks is delivered to another thread, and Python still runs
    its handler in the main thread at once.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[signal.Signals] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        pending.append(signal.Signals(signum))

    previous = {number: signal.signal(number, hold) for number in _HELD}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if pending:
            _act(pending[0], previous[pending[0]])


def _act(signum: int, handler: Any) -> None:
    """What a signal held back would have done: its handler, or its default action."""
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        signal.raise_signal(signum)
