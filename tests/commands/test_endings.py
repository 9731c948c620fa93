"""``llmcli.endings``: SIGTERM and SIGHUP cancel the running work and say which ended it.

The signals are sent to this process itself, inside the coroutine; every test puts the
handlers back as they were.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from types import FrameType

import pytest

from llmcli.endings import SignalEnding, ending_error, run_until_signalled


@pytest.fixture(autouse=True)
def handlers_kept() -> Iterator[None]:
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGHUP)}
    yield
    for signum, handler in before.items():
        signal.signal(signum, handler)


async def signal_self(signum: int, *, then_sleep: float) -> str:
    os.kill(os.getpid(), signum)
    await asyncio.sleep(then_sleep)
    return "finished"


@pytest.mark.parametrize(
    ("signum", "code", "said"),
    [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGHUP, 129, "hung up (SIGHUP)")],
)
def test_a_signal_cancels_the_work_and_names_itself(signum: int, code: int, said: str) -> None:
    cleaned_up: list[bool] = []

    async def work() -> str:
        try:
            return await signal_self(signum, then_sleep=60)  # cancelled long before
        finally:
            cleaned_up.append(True)

    with pytest.raises(SignalEnding) as caught:
        asyncio.run(run_until_signalled(work()))
    assert (caught.value.exit_code, str(caught.value), cleaned_up) == (code, said, [True])
    error = ending_error(caught.value, "stopped after 3 of 9 texts: ")
    assert (str(error), error.exit_code) == (f"stopped after 3 of 9 texts: {said}", code)


def test_the_handler_before_is_put_back() -> None:
    def mine(signum: int, frame: FrameType | None) -> None:
        raise AssertionError("not while the work runs")

    signal.signal(signal.SIGTERM, mine)
    with pytest.raises(SignalEnding):
        asyncio.run(run_until_signalled(signal_self(signal.SIGTERM, then_sleep=60)))
    assert signal.getsignal(signal.SIGTERM) is mine


def test_an_ignored_signal_stays_ignored() -> None:
    # nohup ignores SIGHUP: the work goes on to its end.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    result = asyncio.run(run_until_signalled(signal_self(signal.SIGHUP, then_sleep=0.2)))
    assert result == "finished"
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN


def test_without_a_signal_the_result_and_errors_pass_through() -> None:
    async def fail() -> None:
        raise ValueError("its own error")

    assert asyncio.run(run_until_signalled(asyncio.sleep(0, "done"))) == "done"
    with pytest.raises(ValueError, match="its own error"):
        asyncio.run(run_until_signalled(fail()))
