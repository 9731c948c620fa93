"""The client against the real llama-server on the tiny model: every event path for real."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import pytest
from conftest import KEYED_API_KEY, StartLlama
from rig import LlamaServer, TinyVocab
from rig.payloads import THINK_GRAMMAR, calculator_tool, tool_call_block
from rig.profiles import make_profile

from llmcli import errors
from llmcli.wire.client import ChatRequest, Client, RetryPolicy
from llmcli.wire.events import Answer, ContentDelta, Event, ReasoningDelta, Started, ToolCallDelta


def stream(server: LlamaServer, request: ChatRequest, **profile: Any) -> tuple[Answer, list[Event]]:
    answer, events = Answer(), []

    async def go() -> None:
        async with Client(make_profile(server.base_url, **profile)) as client:
            async for event in client.stream_chat(request):
                events.append(event)
                answer.apply(event)

    asyncio.run(go())
    return answer, events


def ask(text: str = "hi", **fields: Any) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}], **fields)


def test_reasoning_content_path(llama_think: LlamaServer) -> None:
    answer, events = stream(llama_think, ask(extra={"grammar": THINK_GRAMMAR}))
    assert answer.reasoning == "plan it\n"
    assert answer.content == "Hi there"
    assert answer.finish_reason == "stop"
    assert isinstance(events[0], Started) and events[0].model == "tiny"
    kinds = [type(e) for e in events if isinstance(e, ContentDelta | ReasoningDelta)]
    assert kinds.index(ContentDelta) > kinds.index(ReasoningDelta)
    assert ReasoningDelta not in kinds[kinds.index(ContentDelta) :]


def test_inline_think_tags_path(llama_plain: LlamaServer) -> None:
    # The plain template leaves the tags inline in content; the client splits them.
    answer, _ = stream(llama_plain, ask(extra={"grammar": THINK_GRAMMAR}))
    assert answer.reasoning == "plan it\n"
    assert answer.content == "Hi there"


def test_usage_and_timings(llama_think: LlamaServer) -> None:
    answer, _ = stream(llama_think, ask(max_tokens=5, extra={"ignore_eos": True}))
    assert answer.usage is not None and answer.timings is not None
    assert answer.usage.completion_tokens == 5
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + 5  # type: ignore[operator]
    assert answer.timings.predicted_n == 5
    assert answer.finish_reason == "length"


def tool_request(prefill: str, vocab: TinyVocab, *, parallel: bool) -> ChatRequest:
    return ChatRequest(
        messages=[
            {"role": "user", "content": "what is 2+2?"},
            {"role": "assistant", "content": prefill},
        ],
        tools=[calculator_tool()],
        tool_choice="required",
        parallel_tool_calls=parallel,
        # Ends the turn as soon as the tool grammar allows (see the rig's tests).
        extra={"logit_bias": {str(vocab.im_end_id): 100}},
    )


def test_tool_call(llama_think: LlamaServer, tiny_vocab: TinyVocab) -> None:
    answer, events = stream(
        llama_think, tool_request(tool_call_block("2+2"), tiny_vocab, parallel=False)
    )
    [call] = answer.tool_calls
    assert call.name == "calculator" and call.id
    assert json.loads(call.arguments) == {"expression": "2+2"}
    assert answer.finish_reason == "tool_calls"
    assert any(isinstance(e, ToolCallDelta) for e in events)


def test_generated_tool_call_fragments_are_assembled(
    llama_think: LlamaServer, tiny_vocab: TinyVocab
) -> None:
    request = tool_request(
        '<tool_call>\n{"name": "calculator", "arguments": ', tiny_vocab, parallel=False
    )
    request = dataclasses.replace(request, tools=[calculator_tool(only_expression="2+2")])
    answer, events = stream(llama_think, request)
    fragments = [e for e in events if isinstance(e, ToolCallDelta)]
    assert len(fragments) > 1
    [call] = answer.tool_calls
    assert json.loads(call.arguments) == {"expression": "2+2"}


def test_parallel_tool_calls(llama_think: LlamaServer, tiny_vocab: TinyVocab) -> None:
    prefill = tool_call_block("2+2") + "\n" + tool_call_block("3*3")
    answer, _ = stream(llama_think, tool_request(prefill, tiny_vocab, parallel=True))
    assert [json.loads(c.arguments)["expression"] for c in answer.tool_calls] == ["2+2", "3*3"]
    assert [c.index for c in answer.tool_calls] == [0, 1]
    assert len({c.id for c in answer.tool_calls}) == 2


def test_text_completion(llama_think: LlamaServer) -> None:
    answer = Answer()

    async def go() -> None:
        async with Client(make_profile(llama_think.base_url)) as client:
            async for event in client.stream_text(
                "Once", ask(max_tokens=4, extra={"ignore_eos": True})
            ):
                answer.apply(event)

    asyncio.run(go())
    assert answer.usage is not None and answer.usage.completion_tokens == 4
    assert answer.timings is not None and answer.finish_reason == "length"


def test_non_streamed_answer_gives_the_same_events(llama_think: LlamaServer) -> None:
    async def go() -> list[Event]:
        async with Client(make_profile(llama_think.base_url)) as client:
            return await client.complete_chat(ask(extra={"grammar": THINK_GRAMMAR}))

    answer = Answer()
    for event in asyncio.run(go()):
        answer.apply(event)
    assert (answer.reasoning, answer.content, answer.finish_reason) == (
        "plan it\n",
        "Hi there",
        "stop",
    )


def test_api_key(llama_keyed: LlamaServer) -> None:
    with pytest.raises(errors.StatusError) as info:
        stream(llama_keyed, ask(max_tokens=1), api_key="wrong-key")
    assert info.value.status == 401 and "Invalid API Key" in str(info.value)
    assert "wrong-key" not in str(info.value)
    answer, _ = stream(llama_keyed, ask(max_tokens=2), api_key=KEYED_API_KEY)
    assert answer.finish_reason in ("length", "stop")


def test_prompt_over_the_context(llama_think: LlamaServer) -> None:
    with pytest.raises(errors.StatusError) as info:
        stream(llama_think, ask("word " * 3000, max_tokens=1))
    assert info.value.status == 400
    assert "exceeds the available context size" in str(info.value)
    assert "exceed_context_size_error" in str(info.value)


def test_models_and_meta(llama_think: LlamaServer) -> None:
    async def go() -> Any:
        async with Client(make_profile(llama_think.base_url)) as client:
            return await client.list_models(), await client.health(), await client.detect_dialect()

    models, health, dialect = asyncio.run(go())
    [model] = models
    assert model.id == "tiny" and model.meta and model.meta["n_params"] > 0
    assert health.ready and health.detail == "ok"
    assert dialect == "llamacpp"


def test_loading_server(start_llama: StartLlama) -> None:
    server = start_llama(hold_loading=True)
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def go() -> Any:
        profile = make_profile(server.base_url)
        async with Client(profile, retry=RetryPolicy(attempts=3), sleep=fake_sleep) as client:
            health = await client.health()
            with pytest.raises(errors.StatusError) as info:
                async for _ in client.stream_chat(ask()):
                    pass
            return health, info.value

    health, error = asyncio.run(go())
    assert health.reachable and not health.ready and health.detail == "Loading model"
    assert error.status == 503 and "Loading model" in str(error) and "loading" in str(error)
    assert len(sleeps) == 2  # retried while loading, then reported


def test_dead_server_is_a_connect_error(start_llama: StartLlama) -> None:
    server = start_llama()
    url = server.base_url
    server.stop()
    with pytest.raises(errors.ConnectError, match="cannot reach"):

        async def go() -> None:
            async with Client(make_profile(url), retry=RetryPolicy(attempts=1)) as client:
                await client.list_models()

        asyncio.run(go())
