"""The event loop for the loops that carry many streams: the bench and the mock server.

uvloop (libuv under a Cython event loop) roughly halves the CPU a frame costs a bench
client or the mock server on this project's machines (``benchmarks/README.md``); with it
one process keeps up with about twice the streams before its timing error grows. It is a
dependency where it builds (not on Windows); without it, or with ``LLMCLI_EVENT_LOOP=asyncio``
(for comparing the two), asyncio's own loop runs. Interactive commands keep asyncio's
loop: they carry one stream, and prompt-toolkit is written and tested against it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop constructor, or ``None`` for asyncio's default."""
    if os.environ.get("LLMCLI_EVENT_LOOP", "").strip().lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def loop_name() -> str:
    """Which loop :func:`run` uses: recorded with benchmark results."""
    return "asyncio" if loop_factory() is None else "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the fast loop where there is one (Ctrl-C cancels ``main``)."""
    result: list[T] = []

    async def keep() -> None:
        result.append(await main)

    # The main task ends with no result of its own: asyncio.Runner formats the task's repr
    # (through signal.getsignal) as it restores the SIGINT handler, and a bench run's
    # result, every record in it, took a second to repr.
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(keep())
    return result[0]
