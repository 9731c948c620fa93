"""``llmcli.net.eventloop``: uvloop where installed, asyncio's loop on request."""

from __future__ import annotations

import asyncio

import pytest

from llmcli.net import eventloop


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_run_uses_uvloop_where_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("uvloop")  # a dependency except on Windows
    monkeypatch.delenv("LLMCLI_EVENT_LOOP", raising=False)
    assert eventloop.loop_name() == "uvloop"
    assert eventloop.run(_loop_module()).startswith("uvloop")


def test_asyncio_loop_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMCLI_EVENT_LOOP", "asyncio")
    assert eventloop.loop_name() == "asyncio"
    assert eventloop.run(_loop_module()).startswith("asyncio")


def test_run_returns_the_result_and_raises_the_error() -> None:
    async def answer() -> dict[str, int]:
        await asyncio.sleep(0)
        return {"n": 42}

    async def fail() -> None:
        raise ValueError("boom")

    assert eventloop.run(answer()) == {"n": 42}
    with pytest.raises(ValueError, match="boom"):
        eventloop.run(fail())
