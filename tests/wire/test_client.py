"""Client protocol edges through httpx.MockTransport: cases a real server will not produce
on demand. Each handler also asserts what the client sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import httpx
import pytest
from rig.profiles import make_profile as rig_profile

from llmcli import errors
from llmcli.config.profiles import Profile
from llmcli.net.streamhttp import StaleConnection
from llmcli.wire.client import ChatRequest, Client, RetryPolicy, parse_models, parse_retry_after
from llmcli.wire.events import Answer, Event

BASE = "http://backend.test/v1"
HELLO = ChatRequest(messages=[{"role": "user", "content": "hi"}])


def make_profile(**changes: Any) -> Profile:
    fields = {"api_key": "test-key", "model": None, "dialect": "llamacpp", **changes}
    return rig_profile(BASE, **fields)


class Body(httpx.AsyncByteStream):
    """A response body delivered in the given pieces, optionally failing at the end."""

    def __init__(self, pieces: Iterable[bytes], fail: Exception | None = None) -> None:
        self.pieces = list(pieces)
        self.fail = fail

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece
        if self.fail is not None:
            raise self.fail


def sse(*frames: Any) -> bytes:
    out = []
    for frame in frames:
        data = frame if isinstance(frame, str) else json.dumps(frame)
        out.append(f"data: {data}\n\n")
    return "".join(out).encode()


def delta(content: str | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    d = {} if content is None else {"content": content}
    return {
        "id": "x",
        "model": "m",
        "choices": [{"index": 0, "delta": d, "finish_reason": finish}],
        **extra,
    }


Handler = Callable[[httpx.Request], httpx.Response]


def run_stream(
    handler: Handler,
    *,
    profile: Profile | None = None,
    retry: RetryPolicy | None = None,
    sleeps: list[float] | None = None,
    text: bool = False,
) -> tuple[Answer, list[Event], Exception | None]:
    answer, events = Answer(), []

    async def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)

    async def go() -> None:
        async with Client(
            profile or make_profile(),
            transport=httpx.MockTransport(handler),
            retry=retry or RetryPolicy(attempts=3),
            sleep=sleep,
        ) as client:
            stream = client.stream_text("hi", HELLO) if text else client.stream_chat(HELLO)
            async for event in stream:
                events.append(event)
                answer.apply(event)

    try:
        asyncio.run(go())
    except errors.LlmcliError as error:
        return answer, events, error
    return answer, events, None


def streaming(
    body: bytes | Body, status: int = 200, headers: dict[str, str] | None = None
) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status,
            headers={"content-type": "text/event-stream", **(headers or {})},
            stream=body if isinstance(body, Body) else Body([body]),
        )

    return handler


def test_request_carries_key_usage_option_and_profile_params() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, stream=Body([sse(delta("ok", "stop"), "[DONE]")]))

    profile = make_profile(params={"cache_prompt": False}, headers={"x-team": "a"}, model="tiny")
    answer, _, error = run_stream(handler, profile=profile)
    assert error is None and answer.content == "ok"
    (request,) = seen
    assert request.method == "POST" and request.url == httpx.URL(BASE + "/chat/completions")
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.headers["x-team"] == "a"
    body = json.loads(request.content)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["cache_prompt"] is False and body["model"] == "tiny"
    assert body["messages"] == [{"role": "user", "content": "hi"}]


def test_sse_split_at_every_byte_gives_the_same_answer() -> None:
    raw = sse(
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None}}]},
        delta("héllo "),
        delta("wörld ✓"),
        delta(None, "stop"),
        "[DONE]",
    )
    answer, _, error = run_stream(streaming(Body([raw[i : i + 1] for i in range(len(raw))])))
    assert error is None
    assert (answer.content, answer.finish_reason) == ("héllo wörld ✓", "stop")


def test_zen_cost_frame_after_done_and_keepalive_comments() -> None:
    raw = b": keep-alive\n\n" + sse(
        delta("a"),
        delta(None, "stop"),
        {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}},
        "[DONE]",
        {"choices": [], "cost": "0.0000123"},
    )
    answer, _, error = run_stream(streaming(raw))
    assert error is None
    assert (
        answer.cost == "0.0000123" and answer.usage is not None and answer.usage.total_tokens == 4
    )


def test_stream_without_done_but_with_finish_is_whole() -> None:
    answer, _, error = run_stream(streaming(sse(delta("a"), delta(None, "stop"))))
    assert error is None and answer.content == "a"


def test_stream_cut_short_keeps_text_and_says_so() -> None:
    answer, _, error = run_stream(streaming(sse(delta("partial "), delta("answer"))))
    assert isinstance(error, errors.StreamError) and "cut short" in str(error)
    assert answer.content == "partial answer"


def test_error_event_in_200_stream_keeps_text() -> None:
    raw = sse(
        delta("so far"), {"error": {"code": 500, "message": "slot crashed", "type": "server_error"}}
    )
    answer, _, error = run_stream(streaming(raw))
    assert isinstance(error, errors.StreamError) and "slot crashed" in str(error)
    assert answer.content == "so far"


def test_malformed_json_frame() -> None:
    answer, _, error = run_stream(streaming(sse(delta("ok"), "{not json")))
    assert isinstance(error, errors.StreamError) and "not JSON" in str(error)
    assert answer.content == "ok"


def test_frames_orjson_refuses_are_read_as_the_json_module_reads_them() -> None:
    # NaN and a lone surrogate: orjson rejects both, Python's json takes both.
    raw = sse(
        '{"id":"x","model":"m","choices":[{"index":0,"delta":{"content":"a\\ud800"}}]}',
        '{"choices":[{"index":0,"delta":{"content":"b"}}],"cost":NaN}',
        delta(None, "stop"),
    )
    answer, _, error = run_stream(streaming(raw))
    assert error is None and answer.content == "a\ud800b"


def test_garbage_after_done_is_harmless() -> None:
    answer, _, error = run_stream(streaming(sse(delta("ok", "stop"), "[DONE]", "{garbage")))
    assert error is None and answer.content == "ok"


def test_reset_mid_stream_keeps_text() -> None:
    body = Body([sse(delta("half"))], fail=httpx.ReadError("connection reset by peer"))
    answer, _, error = run_stream(streaming(body))
    assert isinstance(error, errors.StreamError) and "lost mid-answer" in str(error)
    assert answer.content == "half"


def test_stall_mid_stream_is_a_timeout() -> None:
    body = Body([sse(delta("half"))], fail=httpx.ReadTimeout("timed out"))
    answer, _, error = run_stream(streaming(body))
    assert isinstance(error, errors.TimeoutError) and "stalled mid-answer" in str(error)
    assert answer.content == "half"


def test_zen_401_is_not_retried() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(
            401,
            json={"type": "error", "error": {"type": "AuthError", "message": "Invalid API key."}},
        )

    _, _, error = run_stream(
        handler, profile=make_profile(dialect="zen", api_key_env="ZEN_API_KEY")
    )
    assert isinstance(error, errors.StatusError) and error.status == 401
    assert "Invalid API key." in str(error) and "ZEN_API_KEY" in str(error)
    assert "test-key" not in str(error)
    assert len(calls) == 1


def test_429_retry_after_is_honoured_then_succeeds() -> None:
    replies = [
        httpx.Response(
            429,
            headers={"retry-after": "2"},
            json={"type": "error", "error": {"type": "RateLimitError", "message": "slow"}},
        ),
        httpx.Response(200, stream=Body([sse(delta("ok", "stop"), "[DONE]")])),
    ]
    sleeps: list[float] = []
    answer, _, error = run_stream(lambda request: replies.pop(0), sleeps=sleeps)
    assert error is None and answer.content == "ok"
    assert sleeps and sleeps[0] >= 2


def test_429_with_long_retry_after_says_when() -> None:
    sleeps: list[float] = []
    handler = streaming(
        b'{"type":"error","error":{"type":"RateLimitError","message":"daily limit"}}',
        429,
        {"retry-after": "7200"},
    )
    _, _, error = run_stream(handler, sleeps=sleeps)
    assert isinstance(error, errors.StatusError) and error.status == 429
    assert "retry after 7200 s" in str(error) and "UTC" in str(error)
    assert sleeps == []


def test_503_loading_retried_until_attempts_run_out() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(
            503,
            json={"error": {"message": "Loading model", "type": "unavailable_error", "code": 503}},
        )

    sleeps: list[float] = []
    _, _, error = run_stream(handler, sleeps=sleeps, retry=RetryPolicy(attempts=3))
    assert isinstance(error, errors.StatusError) and "Loading model" in str(error)
    assert len(calls) == 3 and len(sleeps) == 2


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            500,
            b"<html><head><title>500 Internal Server Error</title></head><body>boom</body></html>",
            "HTTP 500: HTML page: 500 Internal Server Error",
        ),
        (500, b"", "HTTP 500: empty response"),
        (
            400,
            b'{"error":{"code":400,"message":"the request exceeds the available context size",'
            b'"type":"exceed_context_size_error","n_prompt_tokens":5000,"n_ctx":2048}}',
            "HTTP 400: the request exceeds the available context size (exceed_context_size_error)",
        ),
    ],
)
def test_error_bodies_of_every_shape(status: int, body: bytes, expected: str) -> None:
    _, _, error = run_stream(streaming(body, status))
    assert isinstance(error, errors.StatusError)
    assert str(error).startswith(expected)
    assert "\n" not in str(error)


def test_connect_failure_retried_then_reported() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("Connection refused")

    _, _, error = run_stream(handler, sleeps=[])
    assert isinstance(error, errors.ConnectError) and "cannot reach http://backend.test/v1" in str(
        error
    )
    assert len(calls) == 3


def test_text_completion_refused_on_zen() -> None:
    _, _, error = run_stream(streaming(b""), profile=make_profile(dialect="zen"), text=True)
    assert isinstance(error, errors.UsageError) and "/completions" in str(error)


@pytest.mark.parametrize(
    ("payload", "ids"),
    [
        (
            {
                "object": "list",
                "data": [{"id": "a", "meta": {"n_params": 1}}],
                "models": [{"model": "a", "name": "a"}],
            },
            ["a"],
        ),
        ({"models": [{"name": "b", "model": "b"}]}, ["b"]),
        ([{"id": "c"}, "d"], ["c", "d"]),
    ],
)
def test_models_from_every_shape(payload: Any, ids: list[str]) -> None:
    assert [model.id for model in parse_models(payload)] == ids


def test_zen_free_models_marked() -> None:
    found = parse_models(
        {"data": [{"id": "big-pickle"}, {"id": "grok-code-free"}, {"id": "claude"}]}, zen=True
    )
    assert [model.free for model in found] == [True, True, False]


@pytest.mark.parametrize(
    ("value", "expected"), [("3", 3.0), (" 1.5 ", 1.5), ("junk", None), (None, None), ("-4", 0.0)]
)
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_retry_after_http_date_in_the_past_is_zero() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_401_for_an_unknown_model_points_at_the_model_not_the_key() -> None:
    body = b'{"type":"error","error":{"type":"ModelError","message":"Model gpt-9 not supported"}}'
    _, _, error = run_stream(streaming(body, 401), profile=make_profile(dialect="zen"))
    assert isinstance(error, errors.StatusError)
    assert "check the model name" in str(error) and "key" not in str(error)


def test_a_stale_keepalive_connection_is_retried_at_once() -> None:
    replies: list[Any] = [
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.Response(200, stream=Body([sse(delta("ok", "stop"), "[DONE]")])),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        reply = replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    sleeps: list[float] = []
    answer, _, error = run_stream(handler, sleeps=sleeps)
    assert error is None and answer.content == "ok"
    assert sleeps == [] and replies == []


def test_the_users_flags_win_over_profile_params() -> None:
    profile = make_profile(params={"temperature": 0.2, "top_k": 5})
    request = ChatRequest(messages=[{"role": "user", "content": "hi"}], temperature=0.9)
    payload = Client(profile).chat_payload(request, stream=False)
    assert (payload["temperature"], payload["top_k"]) == (0.9, 5)


def test_a_stale_connection_on_the_last_attempt_is_marked_stale() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")

    _, _, error = run_stream(handler, retry=RetryPolicy(attempts=1))
    assert isinstance(error, errors.ConnectError) and error.stale
    assert str(error).startswith("connection to http://backend.test/v1 failed: ")


@pytest.mark.parametrize(
    ("first_error", "requests_made", "dialect"),
    [
        # A keep-alive connection the server closed (llama-server does after a stream): the
        # probe goes once more, on a fresh connection, and gets its answer.
        (StaleConnection("Server disconnected without sending a response."), 2, "llamacpp"),
        # A malformed answer is no stale connection: not sent again.
        (
            httpx.RemoteProtocolError("the response has both Transfer-Encoding and Content-Length"),
            1,
            None,
        ),
    ],
)
def test_a_probe_goes_once_more_only_after_a_stale_connection(
    first_error: httpx.RemoteProtocolError, requests_made: int, dialect: str | None
) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if len(seen) == 1:
            raise first_error
        return httpx.Response(200, json={"default_generation_settings": {}})

    async def run() -> str | None:
        profile = make_profile(dialect=None)
        async with Client(profile, transport=httpx.MockTransport(handler)) as client:
            try:
                return await client.detect_dialect()
            except errors.ConnectError:
                return None

    assert asyncio.run(run()) == dialect
    assert seen == ["/props"] * requests_made
