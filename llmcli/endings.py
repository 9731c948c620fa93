"""SIGTERM and SIGHUP as endings like Ctrl-C: cancel the work, keep what arrived, exit 128+N.

``timeout 10 llmcli ...`` sends SIGTERM and a closed terminal sends SIGHUP; by default
either kills the process on the spot, losing whatever had arrived and was not yet
written. :func:`run_until_signalled` turns them, while a coroutine runs, into what
asyncio already makes of Ctrl-C: the task is cancelled, so every ``finally`` and
``except CancelledError`` on the way out runs, and then :class:`SignalEnding` is raised
for the command to report, with the conventional exit code (143 for SIGTERM, 129 for
SIGHUP). A signal ignored when the command started (``nohup`` ignores SIGHUP) stays
ignored, and the handlers in place before are put back afterwards.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Coroutine
from typing import Any, Final, TypeVar

from llmcli.errors import LlmcliError

T = TypeVar("T")

ENDING_SIGNALS: Final = (signal.SIGTERM, signal.SIGHUP)
_SAID: Final = {signal.SIGTERM: "terminated", signal.SIGHUP: "hung up"}


class SignalEnding(BaseException):
    """The command was told to end by a signal; ``exit_code`` is 128 + its number.

    A ``BaseException``, as ``KeyboardInterrupt`` is, so that no ``except Exception``
    on the way out mistakes it for a failure of the work it ended.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        super().__init__(f"{_SAID.get(signal.Signals(signum), 'ended')} ({name})")


def ending_error(ending: SignalEnding, where: str = "") -> LlmcliError:
    """The ending as the one error line the command boundary prints, with its exit code."""
    error = LlmcliError(f"{where}{ending}")
    error.exit_code = ending.exit_code
    return error


async def run_until_signalled(main: Coroutine[Any, Any, T]) -> T:
    """Await ``main``; SIGTERM or SIGHUP cancels it and raises :class:`SignalEnding`.

    Call it from the task ``asyncio.run`` runs, in the main thread; elsewhere (no signal
    handlers there) it simply awaits ``main``.
    """
    import asyncio  # here: the command boundary imports this module, and start-up is lean

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    received: list[int] = []

    def on_signal(signum: int) -> None:
        if not received:
            received.append(signum)
            task.cancel()

    previous: dict[int, Any] = {}
    for signum in ENDING_SIGNALS:
        handler = signal.getsignal(signum)
        if handler is signal.SIG_IGN:
            continue
        try:
            loop.add_signal_handler(signum, on_signal, signum)
        except (ValueError, RuntimeError, NotImplementedError):
            continue  # not the main thread, or a loop without signal support
        previous[signum] = handler
    try:
        return await main
    except BaseException:
        if not received:
            raise
        # Whatever the cancellation turned into on its way out, the signal is the cause.
        task.uncancel()
        raise SignalEnding(received[0]) from None
    finally:
        for number, handler in previous.items():
            loop.remove_signal_handler(number)
            # remove_signal_handler leaves SIG_DFL; whoever was there before comes back.
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(number, handler if handler is not None else signal.SIG_DFL)
