"""The mock backend against a plain httpx client: dialect shapes, faults, timing, HTTP.

Streams are read as raw bytes and split into SSE frames here, not through llmcli's client,
so these tests pin the wire format itself.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import socket
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from llmcli.mock import (
    CONTENT_WORDS,
    REASONING_WORDS,
    Faults,
    MockConfig,
    MockServer,
    MockServerThread,
    RecordedRequest,
)
from llmcli.mock.timing import Distribution
from llmcli.net import kernelstamps
from llmcli.wire.events import TIMING_FIELDS

Serve = Callable[..., MockServerThread]

USER = [{"role": "user", "content": "say something nice"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "note": {"type": "string"},
            },
            "required": ["city", "days", "unit"],
        },
    },
}
TIME_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {}}}


# One pooled client for the module: a fresh httpx.Client per call builds an SSL context,
# which costs more than the request.
HTTP = httpx.Client(timeout=10)


@pytest.fixture(scope="module", autouse=True)
def _close_client() -> Iterator[None]:
    yield
    HTTP.close()


@pytest.fixture
def serve() -> Iterator[Serve]:
    started: list[MockServerThread] = []

    def start(**options: Any) -> MockServerThread:
        mock = MockServerThread(MockConfig(**options))
        mock.start()
        started.append(mock)
        return mock

    yield start
    for mock in started:
        mock.stop()
        assert mock.server.errors == []


def words(start: int, count: int, vocabulary: tuple[str, ...] = CONTENT_WORDS) -> str:
    return "".join(" " + vocabulary[(start + i) % len(vocabulary)] for i in range(count))


def chat(model: str = "big-pickle", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": USER, **extra}


def read_frames(response: httpx.Response) -> list[str]:
    """The SSE frames of a finished stream, exactly as sent (no trailing blank line)."""
    raw = b"".join(response.iter_bytes()).decode()
    assert raw.endswith("\n\n"), "every frame must end with a blank line"
    return raw[:-2].split("\n\n")


def payloads(frames: list[str]) -> list[Any]:
    """The data of each frame: parsed JSON, or the literal ``[DONE]``."""
    out: list[Any] = []
    for frame in frames:
        assert frame.startswith("data: "), frame
        data = frame[len("data: ") :]
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


def stream(
    mock: MockServerThread, body: dict[str, Any], path: str = "/chat/completions", **kw: Any
) -> tuple[httpx.Response, list[str]]:
    with HTTP.stream("POST", mock.base_url + path, json={**body, "stream": True}, **kw) as r:
        return r, read_frames(r) if r.status_code == 200 else []


def last_record(mock: MockServerThread) -> RecordedRequest:
    return mock.server.requests[-1]


# zen dialect --------------------------------------------------------------------------------


def test_zen_models_list_and_headers(serve: Serve) -> None:
    mock = serve()
    response = HTTP.get(mock.base_url + "/models")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == [
        "big-pickle",
        "grok-code-fast-1-free",
        "claude-sonnet-4",
    ]
    for model in body["data"]:
        assert set(model) == {"id", "object", "created", "owned_by"}
        assert model["object"] == "model" and model["owned_by"] == "opencode"
        assert isinstance(model["created"], int)
    assert set(response.headers) == {"content-type", "content-length"}
    assert mock.base_url.endswith("/v1")


def test_zen_stream_frames_in_order(serve: Serve) -> None:
    mock = serve(cached_tokens=2)
    response, frames = stream(mock, chat(max_tokens=3))
    assert response.status_code == 200
    assert set(response.headers) == {"content-type", "cache-control", "transfer-encoding"}
    assert response.headers["content-type"] == "text/event-stream"
    data = payloads(frames)
    assert len(data) == 1 + 3 + 1 + 1 + 1 + 1
    role, d1, d2, d3, finish, usage, done, cost = data
    for chunk in (role, d1, d2, d3, finish, usage):
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == "big-pickle"
        assert chunk["id"] == role["id"] and chunk["id"].startswith("chatcmpl-")
    assert role["choices"] == [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
    ]
    texts = [c["choices"][0]["delta"]["content"] for c in (d1, d2, d3)]
    assert texts == [words(0, 1), words(1, 1), words(2, 1)]
    assert all(c["choices"][0]["finish_reason"] is None for c in (d1, d2, d3))
    assert finish["choices"] == [{"index": 0, "delta": {}, "finish_reason": "length"}]
    assert usage["choices"] == []
    assert usage["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": 3,
        "total_tokens": 6,
        "prompt_tokens_details": {"cached_tokens": 2},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    assert done == "[DONE]"
    assert cost == {"choices": [], "cost": "0"}  # no id, no object


def test_zen_stream_is_identical_to_what_the_record_says(serve: Serve) -> None:
    mock = serve(empty_chunks=2)
    _, frames = stream(mock, chat(max_tokens=2))
    kinds = last_record(mock).kinds()
    assert kinds == [
        "headers",
        "role",
        "content",
        "empty",
        "empty",
        "content",
        "empty",
        "empty",
        "finish",
        "usage",
        "done",
        "cost",
    ]
    data = payloads(frames)
    assert [d["choices"] for d in data[2:4]] == [[], []]
    assert set(data[2]) == {"id", "object", "created", "model", "choices"}


def test_zen_non_stream(serve: Serve) -> None:
    mock = serve()
    response = HTTP.post(mock.base_url + "/chat/completions", json=chat())
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": words(0, 16)},
            "finish_reason": "stop",
        }
    ]
    assert body["usage"]["completion_tokens"] == 16
    assert body["usage"]["total_tokens"] == 16 + 3


def test_zen_cached_tokens_top_level_for_claude(serve: Serve) -> None:
    mock = serve(cached_tokens=1, api_keys=frozenset({"sk-real"}))
    auth = {"authorization": "Bearer sk-real"}
    body = HTTP.post(
        mock.base_url + "/chat/completions", json=chat("claude-sonnet-4"), headers=auth
    ).json()
    assert body["usage"]["cached_tokens"] == 1
    assert "prompt_tokens_details" not in body["usage"]


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_prefix(serve: Serve, field: str) -> None:
    mock = serve(reasoning_tokens=3, reasoning_field=field, default_max_tokens=2)
    _, frames = stream(mock, chat())
    deltas = [d["choices"][0]["delta"] for d in payloads(frames)[1:6]]
    assert deltas == [
        {field: words(0, 1, REASONING_WORDS)},
        {field: words(1, 1, REASONING_WORDS)},
        {field: words(2, 1, REASONING_WORDS)},
        {"content": words(0, 1)},
        {"content": words(1, 1)},
    ]
    usage = payloads(frames)[-3]["usage"]
    assert usage["completion_tokens"] == 5
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 3}

    message = HTTP.post(mock.base_url + "/chat/completions", json=chat()).json()["choices"][0][
        "message"
    ]
    assert message[field] == words(0, 3, REASONING_WORDS)
    assert message["content"] == words(0, 2)


def test_max_tokens_cuts_with_finish_length(serve: Serve) -> None:
    mock = serve(reasoning_tokens=2, tokens_per_chunk=3)
    _, frames = stream(mock, chat(max_completion_tokens=7))
    data = payloads(frames)
    deltas = [d["choices"][0]["delta"] for d in data[1:-4]]
    reasoning = "".join(d.get("reasoning_content", "") for d in deltas)
    content = "".join(d.get("content", "") for d in deltas)
    assert reasoning == words(0, 2, REASONING_WORDS)
    assert content == words(0, 5)
    assert [len(d.get("content", "").split()) for d in deltas] == [0, 3, 2]
    assert data[-4]["choices"][0]["finish_reason"] == "length"
    sent = len((reasoning + content).split())
    assert data[-3]["usage"]["completion_tokens"] == sent == 7


def test_tool_call_built_from_required_properties(serve: Serve) -> None:
    mock = serve()
    body = chat(tools=[WEATHER_TOOL, TIME_TOOL], tool_choice="required")
    _, frames = stream(mock, body)
    data = payloads(frames)
    fragments = [d["choices"][0]["delta"]["tool_calls"][0] for d in data[1:-4]]
    assert fragments[0]["id"] and fragments[0]["type"] == "function"
    assert fragments[0]["function"] == {"name": "get_weather", "arguments": ""}
    assert all(set(f) == {"index", "function"} for f in fragments[1:])
    assert {f["index"] for f in fragments} == {0}
    arguments = json.loads("".join(f["function"]["arguments"] for f in fragments))
    assert arguments == {"city": "example", "days": 1, "unit": "celsius"}
    assert data[-4]["choices"][0]["finish_reason"] == "tool_calls"
    assert data[-3]["usage"]["completion_tokens"] == len(fragments)


def test_named_tool_choice_and_non_stream(serve: Serve) -> None:
    mock = serve()
    named = {"type": "function", "function": {"name": "get_time"}}
    body = chat(tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=named, parallel_tool_calls=True)
    choice = HTTP.post(mock.base_url + "/chat/completions", json=body).json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["function"] == {"name": "get_time", "arguments": "{}"}
    # tool_choice "auto" (or none) answers in text
    auto = chat(tools=[WEATHER_TOOL], tool_choice="auto")
    text = HTTP.post(mock.base_url + "/chat/completions", json=auto).json()["choices"][0]
    assert text["finish_reason"] == "stop" and text["message"]["content"] == words(0, 16)


def test_parallel_tool_calls(serve: Serve) -> None:
    mock = serve()
    body = chat(tools=[WEATHER_TOOL, TIME_TOOL], tool_choice="required", parallel_tool_calls=True)
    _, frames = stream(mock, body)
    calls: dict[int, dict[str, str]] = {}
    for chunk in payloads(frames)[1:-4]:
        for fragment in chunk["choices"][0]["delta"]["tool_calls"]:
            call = calls.setdefault(fragment["index"], {"name": "", "arguments": ""})
            call["name"] += fragment["function"].get("name", "")
            call["arguments"] += fragment["function"]["arguments"]
    assert sorted(calls) == [0, 1]
    assert calls[0]["name"] == "get_weather" and calls[1]["name"] == "get_time"
    assert json.loads(calls[1]["arguments"]) == {}


def test_zen_keys(serve: Serve) -> None:
    mock = serve(api_keys=frozenset({"sk-real"}))
    url = mock.base_url + "/chat/completions"

    def post(model: str, key: str | None) -> httpx.Response:
        headers = {"authorization": f"Bearer {key}"} if key is not None else {}
        return HTTP.post(url, json=chat(model), headers=headers)

    assert post("big-pickle", None).status_code == 200
    assert post("grok-code-fast-1-free", "public").status_code == 200
    unknown = post("big-pickle", "sk-unknown")
    assert unknown.status_code == 401
    assert unknown.json() == {
        "type": "error",
        "error": {"type": "AuthError", "message": "Invalid API key."},
    }
    assert post("claude-sonnet-4", None).status_code == 401
    assert post("claude-sonnet-4", "public").json()["error"]["type"] == "AuthError"
    assert post("claude-sonnet-4", "sk-real").status_code == 200
    no_model = post("gpt-nonexistent", "sk-real")
    assert no_model.status_code == 401
    assert no_model.json()["error"]["type"] == "ModelError"


@pytest.mark.parametrize("path", ["/embeddings", "/completions", "/responses-nope"])
def test_zen_has_no_embeddings_or_completions(serve: Serve, path: str) -> None:
    mock = serve()
    response = HTTP.post(mock.base_url + path, json={"model": "big-pickle", "input": "x"})
    assert response.status_code == 404
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "NotFoundError"


def test_zen_bad_request(serve: Serve) -> None:
    mock = serve()
    url = mock.base_url + "/chat/completions"
    not_json = HTTP.post(url, content=b"{nope", headers={"content-type": "application/json"})
    assert not_json.status_code == 400
    assert not_json.json()["type"] == "error"
    assert HTTP.post(url, json=chat(max_tokens="ten")).status_code == 400


# status faults ------------------------------------------------------------------------------


def test_429_has_retry_after_and_limit_lets_the_retry_through(serve: Serve) -> None:
    mock = serve(faults=Faults(status_429=1.0, retry_after=2, limit=1))
    url = mock.base_url + "/chat/completions"
    first = HTTP.post(url, json=chat())
    assert first.status_code == 429
    assert first.headers["retry-after"] == "2"
    assert set(first.headers) == {"content-type", "content-length", "retry-after"}
    assert first.json()["error"]["type"] == "RateLimitError"
    assert HTTP.post(url, json=chat()).status_code == 200
    assert [r.fault for r in mock.server.requests] == ["status_429", None]


def test_500_json_and_html(serve: Serve) -> None:
    url = serve(faults=Faults(status_500=1.0)).base_url + "/chat/completions"
    response = HTTP.post(url, json=chat())
    assert response.status_code == 500 and response.json()["type"] == "error"
    url = serve(faults=Faults(status_500=1.0, html_500=True)).base_url + "/chat/completions"
    response = HTTP.post(url, json=chat(stream=True))
    assert response.status_code == 500
    assert response.headers["content-type"] == "text/html"
    assert response.text.startswith("<html>")


def test_503_loading_model(serve: Serve) -> None:
    url = serve(faults=Faults(status_503=1.0)).base_url + "/chat/completions"
    response = HTTP.post(url, json=chat(stream=True))
    assert response.status_code == 503
    assert response.json() == {
        "error": {"message": "Loading model", "type": "unavailable_error", "code": 503}
    }


def test_faults_follow_the_seed(serve: Serve) -> None:
    def sequence(seed: int) -> list[str | None]:
        mock = serve(faults=Faults(status_429=0.3, status_500=0.3), seed=seed)
        for _ in range(12):
            HTTP.post(mock.base_url + "/chat/completions", json=chat())
        return [r.fault for r in mock.server.requests]

    first = sequence(7)
    assert first == sequence(7)
    assert {"status_429", "status_500", None} <= set(first)


def test_fault_rates_are_validated() -> None:
    with pytest.raises(ValueError, match="add up"):
        Faults(reset=0.7, stall=0.5)
    with pytest.raises(ValueError, match="probability"):
        Faults(reset=1.5)
    with pytest.raises(ValueError, match="dialect"):
        MockConfig(dialect="openai")  # type: ignore[arg-type]


# stream faults ------------------------------------------------------------------------------


def test_reset_is_a_read_error_after_some_bytes(serve: Serve) -> None:
    mock = serve(faults=Faults(reset=1.0, reset_after_tokens=2))
    received: list[bytes] = []
    with (
        pytest.raises(httpx.ReadError),
        HTTP.stream("POST", mock.base_url + "/chat/completions", json=chat(stream=True)) as r,
    ):
        assert r.status_code == 200
        received.extend(r.iter_bytes())
    assert b'"content":" ipsum"' in b"".join(received)
    record = last_record(mock)
    assert record.kinds() == ["headers", "role", "content", "content"]
    assert record.fault == "reset" and record.completed


def test_reset_non_stream(serve: Serve) -> None:
    mock = serve(faults=Faults(reset=1.0))
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        HTTP.post(mock.base_url + "/chat/completions", json=chat())
    assert last_record(mock).kinds() == ["partial"]


def test_stall_fires_a_read_timeout(serve: Serve) -> None:
    mock = serve(faults=Faults(stall=1.0, stall_after_tokens=1, stall_seconds=5))
    timeout = httpx.Timeout(5.0, read=0.2)
    lines: list[str] = []
    with (
        pytest.raises(httpx.ReadTimeout),
        HTTP.stream(
            "POST", mock.base_url + "/chat/completions", json=chat(stream=True), timeout=timeout
        ) as r,
    ):
        lines.extend(r.iter_lines())
    assert any('"content":" lorem"' in line for line in lines)
    assert last_record(mock).kinds() == ["headers", "role", "content"]


def test_stall_then_the_rest(serve: Serve) -> None:
    mock = serve(faults=Faults(stall=1.0, stall_seconds=0.1), default_max_tokens=3)
    _, frames = stream(mock, chat())
    assert payloads(frames)[-2] == "[DONE]"
    record = last_record(mock)
    assert record.times("content")[0] - record.times("role")[0] >= 0.09


def test_error_event_ends_without_done(serve: Serve) -> None:
    mock = serve(faults=Faults(error_event=1.0, error_after_tokens=2))
    response, frames = stream(mock, chat())
    assert response.status_code == 200
    data = payloads(frames)
    assert [d["choices"][0]["delta"].get("content") for d in data[1:3]] == [
        words(0, 1),
        words(1, 1),
    ]
    assert set(data[-1]) == {"error"} and data[-1]["error"]["message"]
    assert "[DONE]" not in data
    error = HTTP.post(mock.base_url + "/chat/completions", json=chat())
    assert error.status_code == 500 and "error" in error.json()


@pytest.mark.parametrize("no_finish", [False, True])
def test_no_done(serve: Serve, no_finish: bool) -> None:
    mock = serve(faults=Faults(no_done=1.0, no_finish=no_finish), default_max_tokens=2)
    _, frames = stream(mock, chat())
    data = payloads(frames)
    assert "[DONE]" not in data
    assert all(d["choices"] for d in data)  # no usage chunk, no cost frame
    reasons = [d["choices"][0]["finish_reason"] for d in data]
    assert reasons[-1] == (None if no_finish else "stop")
    assert len(data) == (3 if no_finish else 4)


def test_malformed_frame_mid_stream(serve: Serve) -> None:
    mock = serve(faults=Faults(malformed=1.0, malformed_after_tokens=1), default_max_tokens=3)
    _, frames = stream(mock, chat())
    assert frames[-2] == "data: [DONE]"
    bad = [f for f in frames if not _is_json_frame(f)]
    assert bad == [frames[2]]
    assert frames[2].startswith("data: {")
    good = payloads([f for f in frames if f != frames[2]])
    chunks = [d for d in good if isinstance(d, dict) and d.get("choices")]
    contents = [d["choices"][0]["delta"].get("content") for d in chunks]
    assert "".join(c for c in contents if c) == words(0, 3)


def _is_json_frame(frame: str) -> bool:
    data = frame.removeprefix("data: ")
    if data == "[DONE]":
        return True
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


# llamacpp dialect ---------------------------------------------------------------------------


def test_llamacpp_health_models_props(serve: Serve) -> None:
    mock = serve(dialect="llamacpp", models=("tiny",), n_ctx=2048)
    assert HTTP.get(mock.url + "/health").json() == {"status": "ok"}
    models = HTTP.get(mock.base_url + "/models").json()
    assert [m["id"] for m in models["data"]] == ["tiny"]
    assert models["data"][0]["owned_by"] == "llamacpp"
    assert {"n_ctx", "n_params", "size"} <= set(models["data"][0]["meta"])
    assert [m["name"] for m in models["models"]] == ["tiny"]
    props = HTTP.get(mock.url + "/props").json()
    assert props["default_generation_settings"]["n_ctx"] == 2048
    missing = HTTP.get(mock.url + "/nope")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}
    }


def test_llamacpp_chat_stream_shape(serve: Serve) -> None:
    mock = serve(dialect="llamacpp", models=("tiny",), itl=0.001)
    _, frames = stream(mock, {"messages": USER, "max_tokens": 2})
    data = payloads(frames)
    assert data[-1] == "[DONE]"
    role, first, second, finish = data[:-1]
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": None}
    assert first["choices"][0]["delta"] == {"content": words(0, 1)}
    assert second["object"] == "chat.completion.chunk" and second["model"] == "tiny"
    assert finish["choices"][0] == {"finish_reason": "length", "index": 0, "delta": {}}
    assert "usage" not in finish
    assert "timings" not in first
    timings = finish["timings"]
    assert timings["predicted_n"] == 2 and timings["prompt_n"] == 3
    assert timings["predicted_per_second"] == pytest.approx(1000.0)
    assert {
        "prompt_ms",
        "prompt_per_second",
        "predicted_ms",
        "predicted_per_token_ms",
        "cache_n",
    } <= set(timings)


def test_llamacpp_timings_carry_every_field_llmcli_reads(serve: Serve) -> None:
    """The mock writes what llama-server writes, from its own list (the mock never imports
    the client); all of ``TIMING_FIELDS`` but the speculative-decoding ones."""
    mock = serve(dialect="llamacpp", itl=0.001)
    timings = payloads(stream(mock, {"messages": USER, "max_tokens": 2})[1])[-2]["timings"]
    read = {name for name in TIMING_FIELDS if not name.startswith("draft_")}
    assert read == {"prompt_n", "prompt_ms", "prompt_per_second", "predicted_n",
                    "predicted_ms", "predicted_per_second", "cache_n"}  # fmt: skip
    assert read <= set(timings)


def test_llamacpp_usage_only_when_asked(serve: Serve) -> None:
    mock = serve(dialect="llamacpp", cached_tokens=1)
    body = {"messages": USER, "max_tokens": 1, "stream_options": {"include_usage": True}}
    data = payloads(stream(mock, body)[1])
    finish, usage, done = data[-3:]
    assert done == "[DONE]"
    assert "timings" not in finish and usage["choices"] == []
    assert usage["usage"] == {
        "completion_tokens": 1,
        "prompt_tokens": 3,
        "total_tokens": 4,
        "prompt_tokens_details": {"cached_tokens": 1},
    }
    assert usage["timings"]["cache_n"] == 1


def test_llamacpp_timings_per_token(serve: Serve) -> None:
    mock = serve(dialect="llamacpp")
    data = payloads(stream(mock, {"messages": USER, "n_predict": 3, "timings_per_token": True})[1])
    assert [d["timings"]["predicted_n"] for d in data[1:4]] == [1, 2, 3]


def test_llamacpp_completions(serve: Serve) -> None:
    mock = serve(dialect="llamacpp")
    data = payloads(
        stream(mock, {"prompt": "once upon a time", "max_tokens": 3}, "/completions")[1]
    )
    assert [d["choices"][0]["text"] for d in data[:3]] == [words(i, 1) for i in range(3)]
    final = data[3]
    assert final["choices"][0]["finish_reason"] == "length"
    assert final["usage"]["prompt_tokens"] == 4 and final["usage"]["completion_tokens"] == 3
    assert final["timings"]["predicted_n"] == 3
    assert data[4] == "[DONE]"
    whole = HTTP.post(mock.base_url + "/completions", json={"prompt": "hi"}).json()
    assert whole["choices"][0]["text"] == words(0, 16)
    assert whole["object"] == "text_completion" and "timings" in whole


def test_llamacpp_embeddings_float_and_base64(serve: Serve) -> None:
    mock = serve(dialect="llamacpp")
    url = mock.base_url + "/embeddings"
    floats = HTTP.post(url, json={"input": ["hello", "world"]}).json()
    encoded = HTTP.post(url, json={"input": ["hello", "world"], "encoding_format": "base64"})
    assert [d["index"] for d in floats["data"]] == [0, 1]
    for plain, packed in zip(floats["data"], encoded.json()["data"], strict=True):
        vector = plain["embedding"]
        assert len(vector) == 64
        assert sum(v * v for v in vector) == pytest.approx(1.0, rel=1e-5)
        decoded = list(struct.unpack("<64f", base64.b64decode(packed["embedding"])))
        assert decoded == vector
    assert floats["data"][0]["embedding"] != floats["data"][1]["embedding"]
    again = HTTP.post(url, json={"input": "hello"}).json()["data"][0]["embedding"]
    assert again == floats["data"][0]["embedding"]


def test_llamacpp_error_mid_stream_without_done(serve: Serve) -> None:
    mock = serve(dialect="llamacpp", faults=Faults(error_event=1.0, error_after_tokens=1))
    data = payloads(stream(mock, {"messages": USER})[1])
    assert data[-1]["error"]["code"] == 500
    assert data[-1]["error"]["type"] == "server_error"
    assert "[DONE]" not in data


def test_llamacpp_api_key(serve: Serve) -> None:
    mock = serve(dialect="llamacpp", api_keys=frozenset({"secret"}))
    url = mock.base_url + "/chat/completions"
    denied = HTTP.post(url, json={"messages": USER}, headers={"authorization": "Bearer nope"})
    assert denied.status_code == 401
    assert denied.json() == {
        "error": {"code": 401, "message": "Invalid API Key", "type": "authentication_error"}
    }
    assert HTTP.post(url, json={"messages": USER}).status_code == 401
    ok = HTTP.post(url, json={"messages": USER}, headers={"authorization": "Bearer secret"})
    assert ok.status_code == 200
    assert HTTP.get(mock.url + "/health").status_code == 200


def test_llamacpp_context_and_loading(serve: Serve) -> None:
    mock = serve(dialect="llamacpp", n_ctx=2)
    response = HTTP.post(mock.base_url + "/chat/completions", json={"messages": USER})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "exceed_context_size_error"
    assert error["n_prompt_tokens"] == 3 and error["n_ctx"] == 2
    loading = serve(dialect="llamacpp", loading_seconds=30)
    health = HTTP.get(loading.url + "/health")
    assert health.status_code == 503 and health.json()["error"]["message"] == "Loading model"


# HTTP and timing ----------------------------------------------------------------------------


def test_keep_alive_serves_two_requests_on_one_connection(serve: Serve) -> None:
    mock = serve(default_max_tokens=2)
    with httpx.Client(base_url=mock.base_url) as client:
        with client.stream("POST", "/chat/completions", json=chat(stream=True)) as r:
            assert payloads(read_frames(r))[-2] == "[DONE]"
        assert client.post("/chat/completions", json=chat()).status_code == 200
        assert client.get("/models").status_code == 200
    assert [r.connection for r in mock.server.requests] == [1, 1, 1]


def test_raw_http_chunked_request_and_connection_close(serve: Serve) -> None:
    mock = serve(default_max_tokens=1)
    body = json.dumps(chat()).encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n%x\r\n%b\r\n0\r\n\r\n" % (len(body), body)
    )
    with socket.create_connection(("127.0.0.1", mock.server.port), timeout=5) as sock:
        sock.sendall(request)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, payload = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"connection: close" in head
    assert json.loads(payload)["choices"][0]["message"]["content"] == words(0, 1)


def test_client_leaving_mid_stream_is_not_an_error(serve: Serve) -> None:
    mock = serve(itl=0.01, default_max_tokens=100)
    with HTTP.stream("POST", mock.base_url + "/chat/completions", json=chat(stream=True)) as r:
        lines = r.iter_lines()
        assert next(lines).startswith("data: ")
    # the server notices at its next write, ends that stream and keeps serving
    short = chat(max_tokens=1)
    assert HTTP.post(mock.base_url + "/chat/completions", json=short).status_code == 200
    first = mock.server.requests[0]
    assert not first.completed and len(first.times("content")) < 100


def test_schedule_follows_ttft_and_itl(serve: Serve) -> None:
    ttft, itl = 0.05, 0.02
    mock = serve(ttft=ttft, itl=itl, default_max_tokens=5)
    stream(mock, chat())
    record = last_record(mock)
    times = record.times("content")
    assert len(times) == 5
    assert record.times() == sorted(record.times())
    assert record.times("headers")[0] - record.received_at < ttft  # the head goes out at once
    # Deadlines are absolute (received + ttft + i * itl): a frame is never early, and a late
    # one does not push the next ones back, so a gap after a late frame may be under itl.
    for i, sent in enumerate(times):
        assert sent - record.received_at >= ttft + i * itl - 0.001, (i, times)
    assert times[-1] - record.received_at < ttft + 4 * itl + 0.5


def test_a_drawn_schedule_varies_its_gaps_and_chunks_repeatably(serve: Serve) -> None:
    timing = {
        "ttft": Distribution("uniform", (0.02, 0.06)),
        "itl": Distribution("uniform", (0.002, 0.02)),
        "tokens_per_chunk": Distribution("uniform", (1.0, 3.0), integer=True),
        "default_max_tokens": 30,
    }
    sizes = []
    for seed in (7, 7, 8):
        mock = serve(seed=seed, **timing)
        _, frames = stream(mock, chat(stream_options={"include_usage": True}))
        data = payloads(frames)
        deltas = [
            d["choices"][0]["delta"].get("content") for d in data if d != "[DONE]" and d["choices"]
        ]
        counts = [len(text.split()) for text in deltas if text]
        usage = next(d["usage"] for d in data if isinstance(d, dict) and d.get("usage"))
        assert sum(counts) == 30 == usage["completion_tokens"]
        assert set(counts) == {1, 2, 3}
        sizes.append(counts)
        record = last_record(mock)
        times = record.times("content")
        assert len(times) == len(counts)
        assert 0.02 - 0.001 <= times[0] - record.received_at < 0.06 + 0.5
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert max(gaps) - min(gaps) > 0.005  # drawn between 2 and 20 ms, not one value
    assert sizes[0] == sizes[1] != sizes[2]  # the seed decides the draws


def raw_chat(*, close: bool = False) -> tuple[bytes, bytes]:
    """The head and body of a non-streamed chat request, as bytes for a raw socket."""
    body = json.dumps(chat(stream=False)).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n" + ("connection: close\r\n" if close else "") + "\r\n"
    ).encode()
    return head, body


def test_a_request_is_logged_from_its_first_bytes_and_timed_from_its_body(
    serve: Serve,
) -> None:
    mock = serve(ttft=0.0, default_max_tokens=1)
    head, body = raw_chat(close=True)
    with socket.create_connection((mock.server._host, mock.server.port)) as sock:
        sock.sendall(head)
        time.sleep(0.2)  # the body comes late: a slow client, or a big upload
        sock.sendall(body)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    record = last_record(mock)
    assert record.received_at - record.arrived_at >= 0.19  # the head came 0.2 s before the body
    assert record.arrived_at <= record.received_at <= record.times()[0]


@pytest.mark.skipif(not kernelstamps.AVAILABLE, reason="the kernel's receive stamps: Linux")
def test_a_request_arriving_while_the_mock_is_busy_is_logged_when_it_arrived(
    serve: Serve,
) -> None:
    mock = serve(ttft=0.0, default_max_tokens=1)
    request = b"".join(raw_chat())
    with socket.create_connection((mock.server._host, mock.server.port)) as sock:
        sock.sendall(request)  # the first request on a connection: to be read here
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        loop = mock._loop
        assert loop is not None
        loop.call_soon_threadsafe(time.sleep, 0.3)  # the mock's loop is stuck...
        time.sleep(0.05)
        sent = time.perf_counter()
        sock.sendall(request)  # ... while the next request arrives
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    record = last_record(mock)
    assert record.arrived_at - sent < 0.1  # the kernel's receive time
    assert record.received_at - sent >= 0.2  # read once the loop was free


def test_without_a_second_descriptor_the_mock_reads_the_ordinary_way(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_more_files(fd: int) -> int:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr("llmcli.mock.http.os.dup", no_more_files)  # the open-files limit
    mock = serve(ttft=0.0, default_max_tokens=1)
    request = b"".join(raw_chat())
    with socket.create_connection((mock.server._host, mock.server.port)) as sock:
        for _ in range(2):
            sock.sendall(request)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    record = last_record(mock)
    assert record.arrived_at <= record.received_at
    assert mock.server.errors == []


def test_keepalive_comments_while_waiting(serve: Serve) -> None:
    mock = serve(ttft=0.1, keepalive_interval=0.02, default_max_tokens=1)
    _, frames = stream(mock, chat())
    comments = [f for f in frames if f.startswith(":")]
    assert comments and all(f == ": keep-alive" for f in comments)
    assert frames.index(comments[0]) == 0  # before the role chunk: the answer is not ready
    assert payloads([f for f in frames if not f.startswith(":")])[-2] == "[DONE]"


def test_async_server_and_many_concurrent_streams() -> None:
    async def scenario() -> list[RecordedRequest]:
        async with (
            MockServer(MockConfig(itl=0.002, default_max_tokens=10)) as server,
            httpx.AsyncClient(base_url=server.base_url) as client,
        ):

            async def one() -> str:
                response = await client.post("/chat/completions", json=chat(stream=True))
                return response.text

            texts = await asyncio.gather(*(one() for _ in range(20)))
            assert all(text.count("data: ") == 15 for text in texts)
            assert server.errors == []
            return server.requests

    records = asyncio.run(scenario())
    assert len(records) == 20 and all(r.completed for r in records)
