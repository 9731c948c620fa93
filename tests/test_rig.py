"""The rig works, and pins what the real llama-server says on the wire.

Plain httpx on purpose: these tests are the ground truth that llmcli's client is checked
against, so they must not depend on it. Where the server differs from BACKENDS.md, the
assertion here is what the server really does.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from rig.payloads import THINK_GRAMMAR, THINK_TEXT, calculator_tool, tool_call_block

if TYPE_CHECKING:  # pytest puts tests/ on sys.path, so the rig imports as `rig`
    from conftest import StartLlama
    from rig import LlamaServer, TinyVocab

TIMING_KEYS = {
    "cache_n",
    "prompt_n",
    "prompt_ms",
    "prompt_per_token_ms",
    "prompt_per_second",
    "predicted_n",
    "predicted_ms",
    "predicted_per_token_ms",
    "predicted_per_second",
}
LOADING_BODY = {"error": {"message": "Loading model", "type": "unavailable_error", "code": 503}}


@dataclass
class Stream:
    """A decoded SSE response: JSON frames in order, and whether `[DONE]` ended it."""

    frames: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False

    def choice_frames(self) -> Iterator[dict[str, Any]]:
        for frame in self.frames:
            if frame["choices"]:
                yield frame["choices"][0]

    def deltas(self) -> list[dict[str, Any]]:
        return [choice["delta"] for choice in self.choice_frames()]

    def joined(self, key: str) -> str:
        return "".join(d[key] for d in self.deltas() if d.get(key) is not None)

    def finish_reasons(self) -> list[str]:
        return [c["finish_reason"] for c in self.choice_frames() if c["finish_reason"]]

    def tool_call_fragments(self) -> list[dict[str, Any]]:
        return [tc for d in self.deltas() for tc in d.get("tool_calls", [])]


def post_stream(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Stream:
    """POST with `stream: true` and decode the SSE frames (one `data:` line per event)."""
    stream = Stream()
    with httpx.stream("POST", url, json={**body, "stream": True}, headers=headers, timeout=30) as r:
        assert r.status_code == 200, r.read().decode()
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if not line.startswith("data: "):
                assert line == "" or line.startswith(":"), line
                continue
            assert not stream.done, "frame after [DONE]"
            payload = line.removeprefix("data: ")
            if payload == "[DONE]":
                stream.done = True
            else:
                stream.frames.append(json.loads(payload))
    return stream


def assert_timings(frame: dict[str, Any]) -> None:
    assert frame["timings"].keys() >= TIMING_KEYS, frame["timings"]


# -- health and models -----------------------------------------------------------------


def test_health_answers_ok_on_both_routes(llama_think: LlamaServer) -> None:
    for path in ("/health", "/v1/health"):
        r = httpx.get(llama_think.root_url + path)
        assert (r.status_code, r.json()) == (200, {"status": "ok"})


def test_models_lists_alias_in_data_and_models(llama_think: LlamaServer) -> None:
    body = httpx.get(llama_think.base_url + "/models").json()
    assert body["object"] == "list"
    [model] = body["data"]
    assert model["id"] == "tiny"
    assert model["owned_by"] == "llamacpp"
    # n_ctx is the per-slot context: -c 2048 split over -np 2.
    assert model["meta"]["n_ctx"] == 1024
    assert model["meta"]["n_ctx_train"] == 4096
    assert model["meta"]["n_embd"] == 64
    assert model["meta"]["n_vocab"] == 356
    assert model["meta"]["n_params"] > 0
    assert model["meta"]["size"] > 0
    [ollama_style] = body["models"]
    assert ollama_style["model"] == ollama_style["name"] == "tiny"
    # The same list at the root; "created" is the clock at each answer, so it may tick.
    at_root = httpx.get(llama_think.root_url + "/models").json()["data"]
    assert [{**m, "created": None} for m in at_root] == [
        {**m, "created": None} for m in body["data"]
    ]


def test_templates_are_detected_with_the_intended_capabilities(
    llama_think: LlamaServer, llama_plain: LlamaServer
) -> None:
    think_caps = httpx.get(llama_think.root_url + "/props").json()["chat_template_caps"]
    assert think_caps["supports_tools"] and think_caps["supports_tool_calls"]
    assert think_caps["supports_parallel_tool_calls"]
    assert think_caps["supports_preserve_reasoning"]
    plain_caps = httpx.get(llama_plain.root_url + "/props").json()["chat_template_caps"]
    assert not plain_caps["supports_tools"] and not plain_caps["supports_tool_calls"]


# -- reasoning ---------------------------------------------------------------------------


def test_think_template_streams_reasoning_then_content(llama_think: LlamaServer) -> None:
    stream = post_stream(
        llama_think.base_url + "/chat/completions",
        {"messages": [{"role": "user", "content": "hi"}], "grammar": THINK_GRAMMAR},
    )
    deltas = stream.deltas()
    assert deltas[0] == {"role": "assistant", "content": None}
    assert stream.joined("reasoning_content") == "plan it\n"
    assert stream.joined("content") == "Hi there"
    kinds = [k for d in deltas[1:] for k in d if k in ("reasoning_content", "content")]
    assert kinds == sorted(kinds, key=lambda k: k == "content"), "reasoning must come first"
    assert stream.finish_reasons() == ["stop"]
    assert stream.done
    assert_timings(stream.frames[-1])
    assert all("timings" not in f for f in stream.frames[:-1])


def test_think_template_splits_reasoning_without_streaming(llama_think: LlamaServer) -> None:
    body = httpx.post(
        llama_think.base_url + "/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}], "grammar": THINK_GRAMMAR},
        timeout=30,
    ).json()
    message = body["choices"][0]["message"]
    assert message["reasoning_content"] == "plan it\n"
    assert message["content"] == "Hi there"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert {"prompt_tokens", "completion_tokens", "total_tokens"} <= body["usage"].keys()
    assert_timings(body)


def test_reasoning_format_none_keeps_think_inline(llama_think: LlamaServer) -> None:
    stream = post_stream(
        llama_think.base_url + "/chat/completions",
        {
            "messages": [{"role": "user", "content": "hi"}],
            "grammar": THINK_GRAMMAR,
            "reasoning_format": "none",
        },
    )
    assert stream.joined("content") == THINK_TEXT
    assert not any("reasoning_content" in d for d in stream.deltas())


def test_plain_template_keeps_think_inline(llama_plain: LlamaServer) -> None:
    stream = post_stream(
        llama_plain.base_url + "/chat/completions",
        {"messages": [{"role": "user", "content": "hi"}], "grammar": THINK_GRAMMAR},
    )
    assert stream.joined("content") == THINK_TEXT
    assert not any("reasoning_content" in d for d in stream.deltas())
    assert stream.finish_reasons() == ["stop"]


# -- tool calls --------------------------------------------------------------------------


def tool_request(prefill: str, im_end_id: int, **extra: Any) -> dict[str, Any]:
    # The bias on <|im_end|> ends the turn as soon as the tool grammar allows; without it
    # the random weights append junk that fails the tool-call parse about one time in
    # three (500), or keep writing further calls.
    return {
        "messages": [
            {"role": "user", "content": "what is 2+2?"},
            {"role": "assistant", "content": prefill},
        ],
        "tools": [calculator_tool()],
        "tool_choice": "required",
        "logit_bias": {str(im_end_id): 100},
        # Even with the bias, parallel_tool_calls=true lets the grammar start more calls.
        "parallel_tool_calls": False,
        **extra,
    }


def test_prefilled_tool_call_streams_as_tool_calls(
    llama_think: LlamaServer, tiny_vocab: TinyVocab
) -> None:
    stream = post_stream(
        llama_think.base_url + "/chat/completions",
        tool_request(tool_call_block("2+2"), tiny_vocab.im_end_id),
    )
    assert stream.deltas()[0] == {"role": "assistant", "content": None}
    # A prefilled call is parsed in one go: a single fragment carries the whole call.
    [call] = stream.tool_call_fragments()
    assert call["index"] == 0
    assert call["type"] == "function"
    assert isinstance(call["id"], str) and call["id"]
    assert call["function"] == {"name": "calculator", "arguments": '{"expression": "2+2"}'}
    assert stream.joined("content") == ""
    assert stream.finish_reasons() == ["tool_calls"]
    assert stream.done
    assert_timings(stream.frames[-1])


def test_generated_tool_call_arguments_stream_in_fragments(
    llama_think: LlamaServer, tiny_vocab: TinyVocab
) -> None:
    # Prefill up to the arguments; the tool grammar makes the model write them (the enum
    # pins the value, whitespace between JSON tokens stays the model's choice).
    body = tool_request(
        '<tool_call>\n{"name": "calculator", "arguments": ',
        tiny_vocab.im_end_id,
        tools=[calculator_tool(only_expression="2+2")],
    )
    stream = post_stream(llama_think.base_url + "/chat/completions", body)
    first, *rest = stream.tool_call_fragments()
    assert first["index"] == 0 and first["type"] == "function" and first["id"]
    assert first["function"]["name"] == "calculator"
    assert rest, "arguments should arrive in several fragments"
    for fragment in rest:
        assert fragment.keys() == {"index", "function"}
        assert fragment["index"] == 0
        assert fragment["function"].keys() == {"arguments"}
    arguments = "".join(f["function"]["arguments"] for f in [first, *rest])
    assert json.loads(arguments) == {"expression": "2+2"}
    assert stream.finish_reasons() == ["tool_calls"]


def test_two_prefilled_blocks_give_parallel_calls(
    llama_think: LlamaServer, tiny_vocab: TinyVocab
) -> None:
    prefill = tool_call_block("2+2") + "\n" + tool_call_block("3*3")
    stream = post_stream(
        llama_think.base_url + "/chat/completions",
        tool_request(prefill, tiny_vocab.im_end_id, parallel_tool_calls=True),
    )
    calls = stream.tool_call_fragments()
    assert [c["index"] for c in calls] == [0, 1]
    assert len({c["id"] for c in calls}) == 2
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [
        {"expression": "2+2"},
        {"expression": "3*3"},
    ]
    assert stream.finish_reasons() == ["tool_calls"]


def test_prefill_outside_the_tool_grammar_is_rejected(
    llama_think: LlamaServer, tiny_vocab: TinyVocab
) -> None:
    body = tool_request(tool_call_block("3*3"), tiny_vocab.im_end_id)
    body["tools"] = [calculator_tool(only_expression="2+2")]
    r = httpx.post(llama_think.base_url + "/chat/completions", json=body, timeout=30)
    assert r.status_code == 400
    assert r.json() == {
        "error": {
            "code": 400,
            "message": "Failed to initialize samplers: std::exception",
            "type": "invalid_request_error",
        }
    }


# -- usage and timings -------------------------------------------------------------------


def test_include_usage_adds_a_final_usage_chunk(llama_think: LlamaServer) -> None:
    stream = post_stream(
        llama_think.base_url + "/chat/completions",
        {
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 3,
            "ignore_eos": True,
            "stream_options": {"include_usage": True},
        },
    )
    *_, finish, usage_chunk = stream.frames
    assert finish["choices"][0]["finish_reason"] == "length"
    # With include_usage the timings move from the finish chunk to the usage chunk.
    assert "timings" not in finish and "usage" not in finish
    assert usage_chunk["choices"] == []
    usage = usage_chunk["usage"]
    assert usage["completion_tokens"] == 3
    assert usage["total_tokens"] == usage["prompt_tokens"] + 3
    assert "cached_tokens" in usage["prompt_tokens_details"]
    assert_timings(usage_chunk)
    assert usage_chunk["timings"]["predicted_n"] == 3
    assert stream.done


def test_without_include_usage_there_is_no_usage_chunk(llama_think: LlamaServer) -> None:
    stream = post_stream(
        llama_think.base_url + "/chat/completions",
        {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "ignore_eos": True},
    )
    assert all(frame["choices"] for frame in stream.frames)
    assert all("usage" not in frame for frame in stream.frames)
    assert stream.finish_reasons() == ["length"]
    assert_timings(stream.frames[-1])


def test_timings_per_token_puts_timings_on_every_chunk(llama_think: LlamaServer) -> None:
    stream = post_stream(
        llama_think.base_url + "/chat/completions",
        {
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 3,
            "ignore_eos": True,
            "timings_per_token": True,
        },
    )
    # Every chunk after the opening role chunk carries timings.
    assert all("timings" in frame for frame in stream.frames[1:])


# -- completions and embeddings ----------------------------------------------------------


def test_completions_stream_text_then_usage_and_timings(llama_think: LlamaServer) -> None:
    stream = post_stream(
        llama_think.base_url + "/completions",
        {"prompt": "hello", "max_tokens": 10, "grammar": 'root ::= "abcd"'},
    )
    assert all(f["object"] == "text_completion" for f in stream.frames)
    *chunks, last = stream.frames
    # One chunk per token; the end-of-generation token gets its own empty chunk.
    assert [f["choices"][0]["text"] for f in chunks] == ["a", "b", "c", "d", ""]
    assert all(f["choices"][0]["finish_reason"] is None for f in chunks)
    assert all("usage" not in f and "timings" not in f for f in chunks)
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["choices"][0]["text"] == ""
    assert last["usage"]["completion_tokens"] == 5  # the end token counts
    assert_timings(last)
    assert stream.done


def test_completions_random_bytes_are_held_until_valid_utf8(llama_think: LlamaServer) -> None:
    # The random weights emit byte tokens; the server only sends complete UTF-8, so a
    # stream can have fewer text chunks than tokens (and invalid bytes come out as U+FFFD).
    stream = post_stream(
        llama_think.base_url + "/completions",
        {"prompt": "hello", "max_tokens": 8, "ignore_eos": True, "seed": 7},
    )
    *chunks, last = stream.frames
    assert len(chunks) <= 8
    assert last["usage"]["completion_tokens"] == 8


def test_embeddings_string_list_and_base64(llama_embed: LlamaServer) -> None:
    url = llama_embed.base_url + "/embeddings"
    one = httpx.post(url, json={"input": "hello"}).json()
    [item] = one["data"]
    assert item["object"] == "embedding" and item["index"] == 0
    assert len(item["embedding"]) == 64
    assert one["usage"]["prompt_tokens"] > 0

    two = httpx.post(url, json={"input": ["hello", "world"]}).json()
    assert [d["index"] for d in two["data"]] == [0, 1]
    assert two["data"][0]["embedding"] == pytest.approx(item["embedding"], rel=1e-5)

    packed = httpx.post(url, json={"input": "hello", "encoding_format": "base64"}).json()
    raw = base64.b64decode(packed["data"][0]["embedding"])
    floats = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert list(floats) == pytest.approx(item["embedding"], rel=1e-5)


def test_embeddings_need_the_flag(llama_think: LlamaServer) -> None:
    r = httpx.post(llama_think.base_url + "/embeddings", json={"input": "hello"})
    assert r.status_code == 501
    assert r.json()["error"]["type"] == "not_supported_error"


# -- auth and errors ---------------------------------------------------------------------


def test_api_key_is_required_except_for_health(llama_keyed: LlamaServer) -> None:
    models = llama_keyed.base_url + "/models"
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        r = httpx.get(models, headers=headers)
        assert r.status_code == 401
        assert r.json() == {
            "error": {"code": 401, "message": "Invalid API Key", "type": "authentication_error"}
        }
    assert httpx.get(models, headers=llama_keyed.auth_headers()).status_code == 200
    assert httpx.get(llama_keyed.root_url + "/health").status_code == 200


@pytest.mark.parametrize("stream", [False, True])
def test_prompt_over_the_context_is_400_before_any_stream(
    llama_think: LlamaServer, stream: bool
) -> None:
    r = httpx.post(
        llama_think.base_url + "/chat/completions",
        json={"messages": [{"role": "user", "content": "a" * 3000}], "stream": stream},
        timeout=30,
    )
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert error["type"] == "exceed_context_size_error"
    assert error["code"] == 400
    assert error["n_ctx"] == 1024
    assert error["n_prompt_tokens"] > 3000
    assert error["message"] == (
        f"request ({error['n_prompt_tokens']} tokens) exceeds the available context size "
        "(1024 tokens), try increasing it"
    )


def test_unknown_route_is_404(llama_think: LlamaServer) -> None:
    r = httpx.get(llama_think.base_url + "/nope")
    assert r.status_code == 404
    assert r.json() == {
        "error": {"message": "File Not Found", "type": "not_found_error", "code": 404}
    }


# -- lifecycle -----------------------------------------------------------------------------


def test_every_route_answers_503_while_loading(start_llama: StartLlama) -> None:
    server = start_llama(hold_loading=True)
    for method, path in (
        ("GET", "/health"),
        ("GET", "/v1/models"),
        ("POST", "/v1/chat/completions"),
    ):
        r = httpx.request(method, server.root_url + path, json={} if method == "POST" else None)
        assert r.status_code == 503, path
        assert r.json() == LOADING_BODY


def test_factory_without_wait_then_ready(start_llama: StartLlama) -> None:
    server = start_llama(template="plain", wait=False, metrics=True, alias="oneoff")
    assert httpx.get(server.root_url + "/health").status_code in (200, 503)
    server.wait_ready()
    assert httpx.get(server.base_url + "/models").json()["data"][0]["id"] == "oneoff"
    metrics = httpx.get(server.root_url + "/metrics")
    assert metrics.status_code == 200
    assert "llamacpp:" in metrics.text
