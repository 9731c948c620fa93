"""The tool loop against the real llama-server (a forced first call) and the scripted mock."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from rig import LlamaServer, TinyVocab
from rig.payloads import tool_call_block
from rig.profiles import make_profile

from llmcli import errors
from llmcli.mock import MockConfig, MockServer, ScriptedCall
from llmcli.tools.builtin import builtin_tools, now_tool
from llmcli.tools.files import Root
from llmcli.tools.loop import LoopSettings, PrepareRequest, Transcript, run_tool_loop
from llmcli.tools.tool import ConfirmRequest, Decision, Tool, ToolError
from llmcli.tools.toolbox import Toolbox
from llmcli.wire.client import ChatRequest, Client, RetryPolicy

PROMPT = "what is 17*23 and what time is it in Tokyo?"
NOON = datetime(2025, 1, 2, 3, 0, 0, tzinfo=UTC)


async def _approve(request: ConfirmRequest) -> Decision:
    return Decision(True)


def make_toolbox(tmp_path: Path, *extra: Tool) -> Toolbox:
    tools = [t for t in builtin_tools(Root(tmp_path)) if t.name != "now"]
    return Toolbox([*tools, now_tool(lambda: NOON), *extra], confirm=_approve)


def calls(*pairs: tuple[str, Any]) -> tuple[ScriptedCall, ...]:
    return tuple(
        ScriptedCall(name, args if isinstance(args, str) else json.dumps(args))
        for name, args in pairs
    )


def first_user() -> Transcript:
    return Transcript(messages=[{"role": "user", "content": PROMPT}])


def run_on_mock(
    config: MockConfig,
    toolbox: Toolbox,
    settings: LoopSettings | None = None,
    prepare: PrepareRequest | None = None,
) -> tuple[Transcript, list[dict[str, Any]]]:
    """Run the loop against a llamacpp-dialect mock; the transcript and every request body."""
    transcript = first_user()

    async def go() -> list[dict[str, Any]]:
        async with MockServer(dataclasses.replace(config, dialect="llamacpp")) as mock:
            async with Client(make_profile(mock.base_url)) as client:
                await run_tool_loop(
                    client,
                    ChatRequest(messages=[], max_tokens=None),
                    toolbox,
                    transcript,
                    settings=settings,
                    prepare=prepare,
                )
            assert mock.errors == []
            return [request.body for request in mock.requests]

    return transcript, asyncio.run(go())


class Body(httpx.AsyncByteStream):
    """A streamed response body (the client reads answers raw, as they arrive)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data


# -- the real llama-server ---------------------------------------------------------------


class Recorder(httpx.AsyncBaseTransport):
    """Passes requests to the real server and keeps their JSON bodies."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.bodies: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_real_server_tool_result_goes_back(
    llama_think: LlamaServer, tiny_vocab: TinyVocab, tmp_path: Path
) -> None:
    # A random-weights model calls tools only when made to: the first request gets an
    # assistant prefill holding the call. Both requests end the turn as early as the
    # grammar allows (a bias on <|im_end|>), so the second answer is text (empty).
    end_turn = {"logit_bias": {str(tiny_vocab.im_end_id): 100}}

    def prepare(step: int, request: ChatRequest) -> ChatRequest:
        if step > 0:
            return dataclasses.replace(request, extra=end_turn)
        prefill = {"role": "assistant", "content": tool_call_block("17*23")}
        return dataclasses.replace(
            request,
            messages=[*request.messages, prefill],
            tool_choice="required",
            parallel_tool_calls=False,
            extra=end_turn,
        )

    toolbox = make_toolbox(tmp_path).select(["calculator"])
    recorder = Recorder()
    transcript = first_user()

    async def go() -> None:
        profile = make_profile(llama_think.base_url)
        async with Client(profile, transport=recorder) as client:
            await run_tool_loop(
                client, ChatRequest(messages=[]), toolbox, transcript, prepare=prepare
            )

    asyncio.run(go())
    assert transcript.stopped == "answered" and len(transcript.steps) == 2
    [run] = transcript.steps[0].runs
    assert run.call.name == "calculator" and run.content == "391" and run.ok
    assert transcript.steps[0].answer.finish_reason == "tool_calls"
    assert transcript.steps[1].answer.finish_reason == "stop"
    # The prefill was sent but is not part of the conversation.
    assert recorder.bodies[0]["messages"][-1]["content"].startswith("<tool_call>")
    assert [m["role"] for m in transcript.messages] == ["user", "assistant", "tool", "assistant"]
    # The second request carried the call and its result, and the server took them.
    second = recorder.bodies[1]
    assert second["messages"][1]["tool_calls"] == [
        {
            "id": run.call.id,
            "type": "function",
            "function": {"name": "calculator", "arguments": '{"expression": "17*23"}'},
        }
    ]
    assert second["messages"][2] == {"role": "tool", "tool_call_id": run.call.id, "content": "391"}
    assert second["tool_choice"] == "auto" and [t["function"]["name"] for t in second["tools"]] == [
        "calculator"
    ]
    rendered = httpx.post(
        llama_think.root_url + "/apply-template",
        json={"messages": second["messages"], "tools": second["tools"]},
        timeout=10,
    ).json()["prompt"]
    assert "<tool_response>\n391\n</tool_response>" in rendered


def test_real_server_parallel_calls_both_run(
    llama_think: LlamaServer, tiny_vocab: TinyVocab, tmp_path: Path
) -> None:
    end_turn = {"logit_bias": {str(tiny_vocab.im_end_id): 100}}

    def prepare(step: int, request: ChatRequest) -> ChatRequest:
        if step > 0:
            return dataclasses.replace(request, extra=end_turn)
        prefill = tool_call_block("17*23") + "\n" + tool_call_block("2**10")
        return dataclasses.replace(
            request,
            messages=[*request.messages, {"role": "assistant", "content": prefill}],
            tool_choice="required",
            extra=end_turn,
        )

    transcript = first_user()

    async def go() -> None:
        async with Client(make_profile(llama_think.base_url)) as client:
            await run_tool_loop(
                client,
                ChatRequest(messages=[]),
                make_toolbox(tmp_path).select(["calculator"]),
                transcript,
                settings=LoopSettings(parallel_tool_calls=True),
                prepare=prepare,
            )

    asyncio.run(go())
    assert [run.content for run in transcript.steps[0].runs] == ["391", "1024"]
    tool_messages = [m for m in transcript.messages if m["role"] == "tool"]
    assert [m["content"] for m in tool_messages] == ["391", "1024"]
    assert transcript.stopped == "answered"


# -- the mock: scripted conversations ----------------------------------------------------


def test_parallel_calls_then_a_text_answer(tmp_path: Path) -> None:
    script = (calls(("calculator", {"expression": "17*23"}), ("now", {"timezone": "Asia/Tokyo"})),)
    transcript, bodies = run_on_mock(
        MockConfig(tool_script=script, answer_tool_results=True),
        make_toolbox(tmp_path),
        LoopSettings(parallel_tool_calls=True),
    )
    assert transcript.stopped == "answered"
    assert transcript.final_answer == (
        "calculator: 391\nnow: 2025-01-02T12:00:00+09:00 (Thursday, JST, Asia/Tokyo)"
    )
    assert len(bodies) == 2 and bodies[0]["parallel_tool_calls"] is True
    assert [t["function"]["name"] for t in bodies[0]["tools"]] == [
        "calculator",
        "read_file",
        "list_dir",
        "now",
    ]
    assistant, *results = bodies[1]["messages"][1:]
    ids = [call["id"] for call in assistant["tool_calls"]]
    assert assistant["content"] is None and len(set(ids)) == 2
    assert results == [
        {"role": "tool", "tool_call_id": ids[0], "content": "391"},
        {
            "role": "tool",
            "tool_call_id": ids[1],
            "content": "2025-01-02T12:00:00+09:00 (Thursday, JST, Asia/Tokyo)",
        },
    ]
    assert transcript.messages[-1] == {"role": "assistant", "content": transcript.final_answer}


def test_results_keep_the_calls_order_when_they_finish_out_of_order(tmp_path: Path) -> None:
    second_started = asyncio.Event()

    async def slow(arguments: dict[str, Any]) -> str:
        await second_started.wait()  # only ends if the other call runs meanwhile
        return "slow"

    async def fast(arguments: dict[str, Any]) -> str:
        second_started.set()
        return "fast"

    toolbox = make_toolbox(tmp_path, Tool("slow", "", slow, timeout=5), Tool("fast", "", fast))
    script = (calls(("slow", {}), ("fast", {})),)
    transcript, bodies = run_on_mock(
        MockConfig(tool_script=script, answer_tool_results=True), toolbox
    )
    [step, _] = transcript.steps
    assert [run.content for run in step.runs] == ["slow", "fast"]
    assert step.runs[1].ended <= step.runs[0].ended  # fast finished first
    assert [m["content"] for m in bodies[1]["messages"] if m["role"] == "tool"] == ["slow", "fast"]
    assert transcript.final_answer == "slow: slow\nfast: fast"


def test_several_steps(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("buy milk")
    script = (
        calls(("list_dir", {})),
        calls(("read_file", {"path": "notes.txt"})),
        calls(("calculator", {"expression": "2+2"})),
    )
    transcript, bodies = run_on_mock(
        MockConfig(tool_script=script, answer_tool_results=True), make_toolbox(tmp_path)
    )
    assert len(bodies) == 4 and transcript.stopped == "answered"
    assert [[m["role"] for m in body["messages"]] for body in bodies] == [
        ["user"],
        ["user", "assistant", "tool"],
        ["user", "assistant", "tool", "assistant", "tool"],
        ["user", "assistant", "tool", "assistant", "tool", "assistant", "tool"],
    ]
    assert [body["messages"][-1]["content"] for body in bodies[1:]] == [
        ".: 1 entries\nnotes.txt (8 bytes)",
        "buy milk",
        "4",
    ]
    assert transcript.final_answer == "calculator: 4"


def test_bad_calls_go_back_as_errors_and_the_loop_goes_on(tmp_path: Path) -> None:
    async def broken(arguments: dict[str, Any]) -> str:
        raise KeyError("oops")

    async def stuck(arguments: dict[str, Any]) -> str:
        await asyncio.sleep(60)
        return "never"

    async def refuses(arguments: dict[str, Any]) -> str:
        raise ToolError("no can do")

    toolbox = make_toolbox(
        tmp_path,
        Tool("broken", "", broken),
        Tool("stuck", "", stuck, timeout=0.1),
        Tool("refuses", "", refuses),
    )
    script = (
        calls(
            ("nosuchtool", {}),
            ("calculator", '{"expression": '),
            ("calculator", {"expr": "1+1"}),
            ("broken", {}),
            ("stuck", {}),
            ("refuses", {}),
            ("read_file", {"path": "../../etc/passwd"}),
        ),
    )
    transcript, bodies = run_on_mock(
        MockConfig(tool_script=script, answer_tool_results=True), toolbox
    )
    assert transcript.stopped == "answered"
    results = [
        json.loads(m["content"])["error"] for m in bodies[1]["messages"] if m["role"] == "tool"
    ]
    assert results[0].startswith("there is no tool named 'nosuchtool'")
    assert results[1].startswith("the arguments are not valid JSON")
    assert results[2].startswith(
        "invalid arguments: arguments: missing required property 'expression'"
    )
    assert results[3] == "the tool failed: KeyError: 'oops'"
    assert results[4] == "timed out after 0.1 s"
    assert results[5] == "no can do"
    assert "outside the directory" in results[6]
    # Broken arguments are sent back as {} (llama-server rejects a request otherwise).
    sent = [call["function"]["arguments"] for call in bodies[1]["messages"][1]["tool_calls"]]
    assert sent[1] == "{}" and sent[2] == '{"expr": "1+1"}'
    assert transcript.steps[0].answer.tool_calls[1].arguments == '{"expression": '


def test_max_steps(tmp_path: Path) -> None:
    step = calls(("calculator", {"expression": "1+1"}))
    transcript, bodies = run_on_mock(
        MockConfig(tool_script=(step, step, step)),
        make_toolbox(tmp_path),
        LoopSettings(max_steps=2),
    )
    assert transcript.stopped == "max_steps" and transcript.final_answer is None
    assert len(bodies) == 2
    # The last answer's calls are not run: no request would carry their results.
    assert [len(s.runs) for s in transcript.steps] == [1, 0]
    assert transcript.messages[-1]["role"] == "assistant"


@pytest.mark.parametrize(
    ("choice", "sent", "steps"),
    [
        ("auto", ["auto"], 1),
        ("none", ["none"], 1),
        ("required", ["required", "auto"], 2),
        ("now", [{"type": "function", "function": {"name": "now"}}, "auto"], 2),
    ],
)
def test_tool_choice_forces_only_the_first_step(
    tmp_path: Path, choice: str, sent: list[Any], steps: int
) -> None:
    # The plain mock calls a tool when tool_choice is required or named, else answers in text.
    transcript, bodies = run_on_mock(
        MockConfig(), make_toolbox(tmp_path), LoopSettings(tool_choice=choice)
    )
    assert [body["tool_choice"] for body in bodies] == sent
    assert len(transcript.steps) == steps and transcript.stopped == "answered"


def test_prepare_changes_are_sent_not_recorded(tmp_path: Path) -> None:
    def prepare(step: int, request: ChatRequest) -> ChatRequest:
        note = {"role": "system", "content": f"step {step}"}
        return dataclasses.replace(request, messages=[note, *request.messages], seed=step)

    script = (calls(("calculator", {"expression": "1+1"})),)
    transcript, bodies = run_on_mock(
        MockConfig(tool_script=script, answer_tool_results=True),
        make_toolbox(tmp_path),
        prepare=prepare,
    )
    assert [body["messages"][0]["content"] for body in bodies] == ["step 0", "step 1"]
    assert [body["seed"] for body in bodies] == [0, 1]
    assert transcript.messages[0] == {"role": "user", "content": PROMPT}


def test_a_backend_error_mid_loop_keeps_what_happened(tmp_path: Path) -> None:
    frames = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None}}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "c1",
                                "type": "function",
                                "function": {
                                    "name": "calculator",
                                    "arguments": '{"expression": "6*7"}',
                                },
                            }
                        ]
                    },
                }
            ]
        },
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    stream = ("".join(f"data: {json.dumps(f)}\n\n" for f in frames) + "data: [DONE]\n\n").encode()
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        if len(seen) == 1:
            return httpx.Response(
                200, stream=Body(stream), headers={"content-type": "text/event-stream"}
            )
        assert body["messages"][-1] == {"role": "tool", "tool_call_id": "c1", "content": "42"}
        error = {"error": {"message": "the model fell over", "type": "server_error"}}
        return httpx.Response(400, json=error)

    transcript = first_user()

    async def go() -> None:
        profile = make_profile("http://backend.test/v1")
        transport = httpx.MockTransport(handler)
        async with Client(profile, transport=transport, retry=RetryPolicy(attempts=1)) as client:
            await run_tool_loop(
                client, ChatRequest(messages=[]), make_toolbox(tmp_path), transcript
            )

    with pytest.raises(errors.StatusError, match="the model fell over"):
        asyncio.run(go())
    assert transcript.stopped is None and transcript.ended is not None
    first, second = transcript.steps
    assert [run.content for run in first.runs] == ["42"]
    assert second.outcome.error is not None and "the model fell over" in second.outcome.error
    assert [m["role"] for m in transcript.messages] == ["user", "assistant", "tool"]
