"""The bench runner: a scripted clock through httpx.MockTransport (exact figures), then the
mock server (structure, and client times against the server's frame log)."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from rig import LlamaServer
from rig.profiles import make_profile

from llmcli.bench.metrics import measure, summarise
from llmcli.bench.records import LevelResult
from llmcli.bench.run import new_run, run_bench
from llmcli.bench.runner import BENCH_RETRY, Runner, SendQueue
from llmcli.bench.workload import TOKEN_TOLERANCE, Settings
from llmcli.mock import Faults, MockConfig, MockServerThread
from llmcli.net import streamhttp
from llmcli.wire.client import Client

BASE = "http://backend.test/v1"


class ScriptedClock:
    """A clock that reads whatever the scripted body last set it to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ScriptedBody(httpx.AsyncByteStream):
    """SSE frames, each delivered at its scripted time."""

    def __init__(self, clock: ScriptedClock, frames: list[tuple[float, Any]]) -> None:
        self.clock = clock
        self.frames = frames

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for at, payload in self.frames:
            self.clock.now = at
            data = payload if isinstance(payload, str) else json.dumps(payload)
            yield f"data: {data}\n\n".encode()


def delta(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "choices": [{"index": 0, "delta": fields, "finish_reason": None}]}


FINISH = {"model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}


def usage(tokens: int) -> dict[str, Any]:
    return {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": tokens}}


def runner_for(
    frames: list[tuple[float, Any]],
    *,
    status: int = 200,
    dialect: str = "llamacpp",
    **settings: Any,
) -> tuple[Runner, ScriptedClock, list[dict[str, Any]]]:
    clock = ScriptedClock()
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        if status != 200:
            return httpx.Response(status, json={"error": {"message": "slow down"}})
        return httpx.Response(200, stream=ScriptedBody(clock, frames))

    profile = make_profile(BASE, dialect=dialect, model=None)
    client = Client(profile, transport=httpx.MockTransport(handler), retry=BENCH_RETRY)
    runner = Runner(
        client,
        Settings(**settings),
        dialect=dialect,
        clock=clock,
        rng=random.Random(1),
    )
    return runner, clock, sent


def test_scripted_stream_gives_exact_figures_and_the_request_is_right() -> None:
    frames = [
        (0.10, delta(role="assistant", content=None)),
        (0.30, delta(reasoning_content="plan")),
        (0.40, delta(content="Hi")),
        (0.45, delta(content=" there")),
        (0.50, FINISH),
        (0.90, usage(6)),
        (0.95, "[DONE]"),
    ]
    runner, _clock, sent = runner_for(frames, max_tokens=6, input_tokens=12)
    record = asyncio.run(runner.run_one(0))
    m = measure(record)
    assert m.ok and m.token_source == "usage" and m.output_tokens == 6
    assert m.ttfb == pytest.approx(0.10)  # the role chunk
    assert m.ttft == pytest.approx(0.30)  # reasoning counts, the role chunk does not
    assert m.ttfa == pytest.approx(0.40)
    assert m.e2e == pytest.approx(0.50)  # the finish, not the usage chunk at 0.90
    assert m.tokens_per_chunk == pytest.approx(2.0)
    assert m.itl == pytest.approx((0.05, 0.025))
    assert m.tpot == pytest.approx(0.20 / 5)
    assert record.closed_at == pytest.approx(0.95)

    body = sent[0]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 6 and body["ignore_eos"] is True
    assert len(body["messages"][0]["content"].split()) == 12
    assert record.nonce == body["messages"][0]["content"].split()[0]


def test_prompts_vary_unless_cache_and_ignore_eos_only_for_llamacpp() -> None:
    frames = [(0.1, delta(content="x")), (0.2, FINISH)]
    runner, _, sent = runner_for(frames, dialect="zen")
    asyncio.run(runner.run_one(0))
    asyncio.run(runner.run_one(1))
    assert "ignore_eos" not in sent[0]
    assert sent[0]["messages"] != sent[1]["messages"]
    cached, _, cached_sent = runner_for(frames, cache=True)
    asyncio.run(cached.run_one(0))
    asyncio.run(cached.run_one(1))
    assert cached_sent[0]["messages"] == cached_sent[1]["messages"]


def test_error_event_inside_a_200_stream_is_a_failure_that_keeps_its_chunks() -> None:
    frames = [
        (0.1, delta(content="a")),
        (0.2, delta(content="b")),
        (0.3, {"error": {"code": 500, "message": "boom", "type": "server_error"}}),
    ]
    runner, _, _ = runner_for(frames)
    record = asyncio.run(runner.run_one(0))
    assert record.error_kind == "stream_500" and len(record.chunks) == 2
    assert not measure(record).ok


def test_usage_only_stream_is_a_failure() -> None:
    frames = [(0.1, delta(role="assistant")), (0.2, FINISH), (0.3, usage(0)), (0.4, "[DONE]")]
    runner, _, _ = runner_for(frames)
    m = measure(asyncio.run(runner.run_one(0)))
    assert not m.ok and m.error_kind == "empty"


def test_http_errors_are_not_retried_and_are_counted() -> None:
    runner, _, sent = runner_for([], status=429, requests=3)
    level = LevelResult(concurrency=2)
    asyncio.run(runner.run_level(level))
    assert len(sent) == 3
    summary = summarise(level.records)
    assert summary.requests == 3 and summary.errors == {"http_429": 3}


def test_closed_loop_warmup_is_excluded() -> None:
    frames = [(0.1, delta(content="x")), (0.2, FINISH), (0.3, usage(1))]
    runner, _, sent = runner_for(frames, requests=5, warmup=2)
    level = LevelResult(concurrency=3)
    asyncio.run(runner.run_level(level))
    assert len(sent) == 7
    assert sum(r.warmup for r in level.records) == 2
    assert summarise(level.records).requests == 5


# -- against the mock server ----------------------------------------------------------------


@pytest.fixture
def mock() -> Iterator[MockServerThread]:
    with MockServerThread(MockConfig(ttft=0.05, itl=0.01, tokens_per_chunk=1)) as server:
        yield server
    assert server.server.errors == []


def chats(server: MockServerThread) -> list[Any]:
    """The chat requests the mock served (the run also asks for its models list)."""
    return [r for r in server.server.requests if r.path.endswith("/chat/completions")]


def mock_profile(server: MockServerThread, name: str = "mock") -> Any:
    return make_profile(server.base_url, name=name, dialect="zen", model="big-pickle")


def test_mock_closed_loop_structure_and_client_times_follow_the_server_log(
    mock: MockServerThread,
) -> None:
    settings = Settings(concurrency=(1, 4), requests=8, max_tokens=5)
    run = asyncio.run(run_bench(new_run(settings), [mock_profile(mock)]))
    [profile] = run.profiles
    assert [level.concurrency for level in profile.levels] == [1, 4]
    served = {r.body["messages"][0]["content"].split()[0]: r for r in chats(mock)}
    assert len(served) == 16
    for level in profile.levels:
        summary = summarise(level.records)
        assert (summary.requests, summary.ok) == (8, 8)
        assert summary.token_sources == {"usage": 8}
        for record in level.records:
            m = measure(record)
            assert m.output_tokens == 5 and len(m.itl) == 4  # ITL count = tokens - 1
            assert record.nonce is not None
            log = served[record.nonce]
            content = log.times("content")
            first_client = record.chunks[0].at
            # The client reads a frame after the server sent it, and not long after.
            assert record.sent_at <= log.received_at
            # Sent when the transport handed it to the socket: after the runner issued and
            # the client built it, before the server's kernel received it.
            assert record.issued_at is not None and record.issued_at < record.sent_at
            assert record.sent_at <= log.arrived_at
            assert content[0] <= first_client < content[0] + 0.25
            if streamhttp.KERNEL_STAMPS:  # Linux: the kernel's stamps, and the read lag
                assert record.read_lag is not None and 0.0 <= record.read_lag < 0.25
            assert record.chunks[-1].at >= content[-1]
            # The server's schedule: ttft 50 ms, then 10 ms a token (never early).
            assert m.ttft is not None and m.ttft >= 0.05
            assert m.e2e is not None and m.e2e >= 0.05 + 4 * 0.01


def test_mock_faults_are_counted_by_kind_and_never_disappear() -> None:
    faults = Faults(status_500=0.3, error_event=0.3, reset=0.2)
    config = MockConfig(faults=faults, seed=3, default_max_tokens=4)
    with MockServerThread(config) as server:
        settings = Settings(concurrency=(4,), requests=20, max_tokens=4)
        run = asyncio.run(run_bench(new_run(settings), [mock_profile(server)]))
        sent = len(chats(server))
    summary = summarise(run.profiles[0].levels[0].records)
    assert summary.requests == 20 == sent
    assert summary.ok + summary.failed == 20
    assert sum(summary.errors.values()) == summary.failed > 0
    assert set(summary.errors) <= {"http_500", "stream", "stream_500"}


def test_interrupt_keeps_finished_requests(mock: MockServerThread) -> None:
    settings = Settings(concurrency=(2,), requests=1000, max_tokens=5)
    run = new_run(settings)

    async def scenario() -> None:
        task = asyncio.create_task(run_bench(run, [mock_profile(mock)]))
        while sum(1 for r in run_records(run) if r.closed_at is not None) < 4:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert run.interrupted
    records = run_records(run)
    summary = summarise(records)
    assert summary.ok >= 4
    assert summary.cancelled >= 1
    assert summary.requests + summary.cancelled == len(records)
    # A request cut off mid-answer had been sent: it keeps the transport's send stamp too.
    cut = [r for r in records if r.error_kind == "cancelled" and r.chunks]
    assert all(r.issued_at is not None and r.issued_at < r.sent_at for r in cut)


def run_records(run: Any) -> list[Any]:
    return [r for p in run.profiles for level in p.levels for r in level.records]


def test_a_dead_keep_alive_connection_is_sent_again_once_and_flagged() -> None:
    clock = ScriptedClock()
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(clock.now)
        clock.now += 1.0
        if len(calls) == 1:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        frames = [(2.5, delta(content="x")), (2.5, FINISH)]
        return httpx.Response(200, stream=ScriptedBody(clock, frames))

    profile = make_profile(BASE, dialect="llamacpp", model=None)
    client = Client(profile, transport=httpx.MockTransport(handler), retry=BENCH_RETRY)
    runner = Runner(client, Settings(), dialect="llamacpp", clock=clock)
    record = asyncio.run(runner.run_one(0))
    assert record.stale_retry and record.error_kind is None
    assert record.sent_at == 1.0  # the send that reached the server
    assert measure(record).ttft == pytest.approx(1.5)


def test_a_refused_connection_is_not_sent_again() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    profile = make_profile(BASE, dialect="llamacpp", model=None)
    client = Client(profile, transport=httpx.MockTransport(handler), retry=BENCH_RETRY)
    record = asyncio.run(Runner(client, Settings(), dialect="llamacpp").run_one(0))
    assert record.error_kind == "connect" and not record.stale_retry


def test_duration_ends_a_level(mock: MockServerThread) -> None:
    settings = Settings(concurrency=(1,), requests=None, duration=0.4, max_tokens=3)
    run = asyncio.run(run_bench(new_run(settings), [mock_profile(mock)]))
    level = run.profiles[0].levels[0]
    summary = summarise(level.records)
    # each request takes at least 50 + 2 x 10 ms: a handful fit in 0.4 s, not the default 10
    assert 2 <= summary.requests <= 6 and summary.ok == summary.requests
    assert level.ended_at - level.started_at >= 0.4


@pytest.mark.parametrize("interleave", [False, True])
def test_profiles_in_turn_or_interleaved(mock: MockServerThread, interleave: bool) -> None:
    settings = Settings(concurrency=(1, 2), requests=2, max_tokens=2)
    profiles = [mock_profile(mock, "a"), mock_profile(mock, "b")]
    run = asyncio.run(run_bench(new_run(settings), profiles, interleave=interleave))
    a, b = run.profiles
    assert [len(level.records) for level in (*a.levels, *b.levels)] == [2, 2, 2, 2]
    # interleaved: b's first level runs before a's second; in turn: after it
    b_first_before_a_second = b.levels[0].started_at < a.levels[1].started_at
    assert b_first_before_a_second is interleave


# -- synthetic prompt length against llama-server's tokenizer -------------------------------


def test_synthetic_prompt_is_fitted_with_the_real_tokenizer(llama_think: LlamaServer) -> None:
    # 16 tokens, not 2: the random model's first tokens can all be bytes of an unfinished
    # UTF-8 character, which the server holds back, leaving an answer with no text.
    settings = Settings(concurrency=(1,), requests=3, input_tokens=40, max_tokens=16)
    profile = make_profile(llama_think.base_url, dialect="llamacpp", model=None)
    run = asyncio.run(run_bench(new_run(settings), [profile]))
    [result] = run.profiles
    fitted = result.input_tokens
    assert fitted is not None and fitted["source"] == "tokenize", fitted
    assert fitted["target"] == 40
    assert abs(fitted["measured_mean"] - 40) <= TOKEN_TOLERANCE
    # the tiny model's vocabulary spells words out: far fewer words than tokens
    assert fitted["words"] < 40

    async def count(text: str) -> int:
        async with Client(profile) as client:
            answer = await client.post_json(client.root_url + "/tokenize", {"content": text})
        return len(answer["tokens"])

    records = result.levels[0].records
    assert summarise(records).ok == 3
    # the requests really sent are near the target too (each prompt's words are random)
    runner = Runner(Client(profile), settings, dialect="llamacpp", rng=random.Random(5))
    runner.prompt_words = fitted["words"]
    sent = [runner.build_request(i).messages[0]["content"] for i in range(6)]
    counts = [asyncio.run(count(text)) for text in sent]
    assert abs(sum(counts) / len(counts) - 40) <= 3 * TOKEN_TOLERANCE, counts
    # usage counts the templated prompt: more than the content alone
    assert all(r.prompt_tokens is not None and r.prompt_tokens > 40 - 3 for r in records)


def test_servers_without_a_tokenizer_report_the_target_unmeasured(
    mock: MockServerThread,
) -> None:
    settings = Settings(concurrency=(1,), requests=1, input_tokens=20, max_tokens=2)
    run = asyncio.run(run_bench(new_run(settings), [mock_profile(mock)]))
    assert run.profiles[0].input_tokens == {"target": 20, "measured_mean": None, "source": "none"}


def test_a_llamacpp_server_without_tokenize_is_noted() -> None:
    with MockServerThread(MockConfig(dialect="llamacpp")) as server:
        profile = make_profile(server.base_url, dialect="llamacpp", model=None)
        settings = Settings(concurrency=(1,), requests=1, input_tokens=20, max_tokens=2)
        run = asyncio.run(run_bench(new_run(settings), [profile]))
    fitted = run.profiles[0].input_tokens
    assert fitted is not None and fitted["source"] == "none"
    assert fitted["note"].startswith("/tokenize: ")
    assert summarise(run.profiles[0].levels[0].records).ok == 1


def test_send_queue_lets_one_sender_through_a_loop_turn_in_order() -> None:
    async def main() -> tuple[list[tuple[str, int]], bool]:
        loop = asyncio.get_running_loop()
        turns = 0

        def count() -> None:  # runs once every turn of the loop
            nonlocal turns
            turns += 1
            loop.call_soon(count)

        loop.call_soon(count)
        queue = SendQueue()
        seen: list[tuple[str, int]] = []

        async def sender(name: str) -> None:
            await queue.turn()
            seen.append((name, turns))

        tasks = [asyncio.create_task(sender(name)) for name in "abcd"]
        await asyncio.sleep(0)  # every sender is waiting now
        tasks[2].cancel()  # "c" gives its turn away
        results = await asyncio.gather(*tasks, return_exceptions=True)
        return seen, isinstance(results[2], asyncio.CancelledError)

    seen, cancelled = asyncio.run(main())
    assert [name for name, _ in seen] == ["a", "b", "d"]
    assert cancelled
    turns = [turn for _, turn in seen]
    assert all(later > earlier for earlier, later in itertools.pairwise(turns))
