"""The event loop for the bench, which reads hundreds of streams in one process.

uvloop (libuv under a Cython event loop) roughly halves the CPU a frame costs the bench
client on this project's machines (``benchmarks/README.md``), and calls ``data_received``
straight from its poll, where :mod:`llmcli.net.streamhttp` stamps the bytes. It is a
dependency where it builds (not on Windows); without it, or with
``LLMCLI_EVENT_LOOP=asyncio`` (for comparing the two), asyncio's own loop runs.

The mock server stays on asyncio's loop: uvloop queues small writes and sends them at the
end of the loop's turn, so the send times the mock logs would run ahead of the real
sends by up to a turn (2 ms seen at 16 streams). Interactive commands keep asyncio's loop
too: they carry one stream, and prompt-toolkit is written and tested against it.
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
