"""``ClientPool`` and the chat session that owns it: one client per profile, all closed at
the end. (That answers really share a connection is shown against servers in
``test_cli_chat.py``.)"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable

import httpx
import pytest
from rig.profiles import make_profile

from llmcli.chat.clientpool import ClientPool
from llmcli.chat.repl import Repl
from llmcli.chat.session import ChatSession, Conversation
from llmcli.config.profiles import Profile
from llmcli.wire.client import Client, RetryPolicy
from llmcli.wire.events import Event, Outcome

ONE = make_profile("http://127.0.0.1:9/v1", name="one", dialect="openai")
TWO = make_profile("http://127.0.0.1:9/v1", name="two", dialect="openai")


class Transport(httpx.AsyncBaseTransport):
    """Answers every chat request with a two-word stream; counts requests and closes."""

    def __init__(self, *, fail_to_close: bool = False) -> None:
        self.requests: list[str] = []
        self.closed = 0
        self.fail_to_close = fail_to_close

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chat/completions"
        self.requests.append(json.loads(request.content)["messages"][-1]["content"])
        body = (
            b'data: {"choices":[{"index":0,"delta":{"content":"Hi there"}}]}\n\n'
            b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
            b"data: [DONE]\n\n"
        )
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=httpx.ByteStream(body)
        )

    async def aclose(self) -> None:
        self.closed += 1
        if self.fail_to_close:
            raise OSError("cannot close")


class Maker:
    """A ``ClientPool`` factory that remembers every client it made, with its transport."""

    def __init__(self, failing: Callable[[Profile], bool] = lambda profile: False) -> None:
        self.made: list[tuple[Profile, Transport]] = []
        self.failing = failing

    def __call__(self, profile: Profile) -> Client:
        transport = Transport(fail_to_close=self.failing(profile))
        self.made.append((profile, transport))
        return Client(profile, transport=transport, retry=RetryPolicy(attempts=1))


class QuietView:
    def begin_answer(self, model: str | None) -> Callable[[Event], None]:
        return lambda event: None

    def end_answer(self, outcome: Outcome) -> None:
        assert outcome.error is None, outcome.error

    def info(self, text: str) -> None:
        pass

    def warn(self, text: str) -> None:
        raise AssertionError(text)


def test_one_client_per_profile_value() -> None:
    pool = ClientPool(Maker())
    first = pool.get(ONE)
    assert pool.get(ONE) is first
    assert pool.get(dataclasses.replace(ONE)) is first  # an equal profile read again
    assert pool.get(TWO) is not first
    moved = dataclasses.replace(ONE, base_url="http://127.0.0.1:10/v1")  # same name, elsewhere
    assert pool.get(moved) is not first


def test_close_closes_every_client_even_when_one_fails() -> None:
    maker = Maker(failing=lambda profile: profile.name == "one")
    pool = ClientPool(maker)
    pool.get(ONE)
    pool.get(TWO)
    with pytest.raises(OSError, match="cannot close"):
        asyncio.run(pool.aclose())
    assert [transport.closed for _, transport in maker.made] == [1, 1]
    asyncio.run(pool.aclose())  # again: nothing left to close
    assert [transport.closed for _, transport in maker.made] == [1, 1]
    with pytest.raises(RuntimeError, match="closed"):
        pool.get(ONE)


def test_a_session_keeps_each_profiles_client_across_answers_and_switches() -> None:
    maker = Maker()
    session = ChatSession(
        Conversation(profile=ONE, model=None), QuietView(), None, ClientPool(maker)
    )

    async def chat() -> None:
        await session.ask("a1")
        await session.ask("a2")
        session.set_profile(TWO)
        await session.ask("b1")
        session.set_profile(dataclasses.replace(ONE))  # read again by a later /profile one
        await session.ask("a3")
        await session.aclose()

    asyncio.run(chat())
    assert [(profile.name, t.requests, t.closed) for profile, t in maker.made] == [
        ("one", ["a1", "a2", "a3"], 1),
        ("two", ["b1"], 1),
    ]


def scripted_repl(maker: Maker, view: QuietView) -> Repl:
    session = ChatSession(Conversation(profile=ONE, model=None), view, None, ClientPool(maker))
    profiles = {"one": ONE, "two": TWO}
    return Repl(
        session, profile_names=profiles, load_profile=profiles.__getitem__, history_path=None
    )


def test_a_scripted_chat_closes_its_clients_when_it_ends() -> None:
    maker = Maker()
    asyncio.run(scripted_repl(maker, QuietView()).run(["a1", "/profile two", "b1", "b2"]))
    assert [(profile.name, t.requests, t.closed) for profile, t in maker.made] == [
        ("one", ["a1"], 1),
        ("two", ["b1", "b2"], 1),
    ]


def test_a_bug_mid_chat_still_closes_the_clients() -> None:
    class BrokenView(QuietView):
        def end_answer(self, outcome: Outcome) -> None:
            raise RuntimeError("a bug in the view")

    maker = Maker()
    with pytest.raises(RuntimeError, match="a bug in the view"):
        asyncio.run(scripted_repl(maker, BrokenView()).run(["a1", "a2"]))
    assert [(t.requests, t.closed) for _, t in maker.made] == [(["a1"], 1)]
