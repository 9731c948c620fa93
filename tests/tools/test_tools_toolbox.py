"""Running calls: every bad call is an error result for the model, never an exception."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from llmcli.errors import UsageError
from llmcli.tools.builtin import builtin_tools, now_tool
from llmcli.tools.files import Root
from llmcli.tools.tool import ConfirmRequest, Decision, Tool, ToolError, ToolRun
from llmcli.tools.toolbox import Toolbox
from llmcli.wire.events import ToolCall


class Approver:
    """A confirmer that answers as told and remembers what it was asked."""

    def __init__(self, approve: bool, reason: str = "no") -> None:
        self.approve = approve
        self.reason = reason
        self.asked: list[ConfirmRequest] = []

    async def __call__(self, request: ConfirmRequest) -> Decision:
        self.asked.append(request)
        return Decision(self.approve, "" if self.approve else self.reason)


def call(name: str, arguments: Any = None, *, index: int = 0) -> ToolCall:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
    return ToolCall(index=index, id=f"call_{index}", name=name, arguments=text)


def run(toolbox: Toolbox, *calls: ToolCall) -> list[ToolRun]:
    return asyncio.run(toolbox.run_calls(calls))


def error_of(result: ToolRun) -> str:
    assert result.error is not None, result.content
    assert json.loads(result.content) == {"error": result.error}
    return result.error


async def _raise(arguments: dict[str, Any]) -> str:
    raise RuntimeError("boom")


async def _sleep(arguments: dict[str, Any]) -> str:
    await asyncio.sleep(60)
    return "woke"


async def _fail(arguments: dict[str, Any]) -> str:
    raise ToolError("the disk is on fire")


@pytest.fixture
def toolbox(tmp_path: Path) -> Toolbox:
    fixed = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    tools = [tool for tool in builtin_tools(Root(tmp_path)) if tool.name != "now"]
    tools += [
        now_tool(lambda: fixed),
        Tool("raises", "A tool with a bug", _raise),
        Tool("sleeps", "Never answers", _sleep, timeout=0.05),
        Tool("fails", "Reports a failure", _fail),
    ]
    return Toolbox(tools, confirm=Approver(True))


def test_good_calls(toolbox: Toolbox, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    results = run(
        toolbox,
        call("calculator", {"expression": "17*23"}),
        call("now", {"timezone": "Asia/Tokyo"}, index=1),
        call("now", {}, index=2),
        call("read_file", {"path": "notes.txt"}, index=3),
        call("list_dir", "", index=4),  # "" is a call without arguments
    )
    assert [r.content for r in results] == [
        "391",
        "2025-01-02T12:04:05+09:00 (Thursday, JST, Asia/Tokyo)",
        "2025-01-02T03:04:05+00:00 (Thursday, UTC, UTC)",
        "hello",
        ".: 1 entries\nnotes.txt (5 bytes)",
    ]
    assert all(r.ok and r.duration >= 0 for r in results)
    assert [r.to_message()["tool_call_id"] for r in results] == [f"call_{i}" for i in range(5)]


@pytest.mark.parametrize(
    ("the_call", "message"),
    [
        (call("nope", {}), "there is no tool named 'nope'; the tools are: calculator, read_file"),
        (call("", {}), "there is no tool named ''"),
        (call("calculator", '{"expression": "1+'), "the arguments are not valid JSON"),
        (call("calculator", "[1, 2]"), "the arguments must be a JSON object, not array"),
        (call("calculator", "null"), "the arguments must be a JSON object, not null"),
        (
            call("calculator", {}),
            "invalid arguments: arguments: missing required property 'expression'",
        ),
        (
            call("calculator", {"expression": 17}),
            "invalid arguments: arguments.expression: expected string, got integer",
        ),
        (call("calculator", {"expression": "__import__('os')"}), "not allowed: function calls"),
        (call("calculator", {"expression": "1/0"}), "division by zero"),
        (call("now", {"timezone": "Mars/Olympus"}), "unknown time zone 'Mars/Olympus'"),
        (call("now", {"timezone": "../../etc/passwd"}), "unknown time zone"),
        (call("read_file", {"path": "../x"}), "outside the directory"),
        (call("list_dir", {"path": "/"}), "outside the directory"),
        (call("raises", {}), "the tool failed: RuntimeError: boom"),
        (call("sleeps", {}), "timed out after 0.05 s"),
        (call("fails", {}), "the disk is on fire"),
    ],
)
def test_bad_calls_become_error_results(toolbox: Toolbox, the_call: ToolCall, message: str) -> None:
    [result] = run(toolbox, the_call)
    assert message in error_of(result)


def test_unknown_tool_lists_the_offered_ones(toolbox: Toolbox) -> None:
    [result] = run(toolbox.select(["calculator", "read_file"]), call("now", {}))
    assert error_of(result) == "there is no tool named 'now'; the tools are: calculator, read_file"


def test_calls_run_concurrently_and_results_keep_the_calls_order() -> None:
    # "first" can only finish after "second" has started: run one after the other, it times out.
    second_started = asyncio.Event()
    finished: list[str] = []

    async def first(arguments: dict[str, Any]) -> str:
        await second_started.wait()
        finished.append("first")
        return "one"

    async def second(arguments: dict[str, Any]) -> str:
        second_started.set()
        finished.append("second")
        return "two"

    toolbox = Toolbox(
        [Tool("first", "", first, timeout=5), Tool("second", "", second)], confirm=Approver(True)
    )
    done: list[str] = []

    async def go() -> list[ToolRun]:
        return await toolbox.run_calls(
            [call("first"), call("second", index=1)], lambda r: done.append(r.call.name)
        )

    results = asyncio.run(go())
    assert [r.content for r in results] == ["one", "two"]
    assert finished == ["second", "first"] == done


def test_confirmation_gates_the_run() -> None:
    ran: list[dict[str, Any]] = []

    async def risky(arguments: dict[str, Any]) -> str:
        ran.append(arguments)
        return "done"

    tool = Tool(
        "risky",
        "",
        risky,
        parameters={"type": "object", "properties": {"x": {"type": "integer"}}},
        confirm=True,
        preview=lambda a: f"risky x={a['x']}",
    )
    refuser = Approver(False, reason="not run: the user declined this call")
    [result] = run(Toolbox([tool], confirm=refuser), call("risky", {"x": 1}))
    assert error_of(result) == "not run: the user declined this call"
    assert ran == [] and [r.shown for r in refuser.asked] == ["risky x=1"]
    # invalid arguments are refused before anyone is asked
    [result] = run(Toolbox([tool], confirm=refuser), call("risky", {"x": "1"}))
    assert "expected integer" in error_of(result) and len(refuser.asked) == 1
    approver = Approver(True)
    [result] = run(Toolbox([tool], confirm=approver), call("risky", {"x": 2}))
    assert result.content == "done" and ran == [{"x": 2}]


def test_select() -> None:
    toolbox = Toolbox([Tool("a", "", _fail), Tool("b", "", _fail)], confirm=Approver(True))
    assert toolbox.select(["b", "a", "b"]).names == ["b", "a"]
    with pytest.raises(UsageError, match=r"no tool named 'c'; available: a, b"):
        toolbox.select(["c"])
    with pytest.raises(ValueError, match="two tools are named 'a'"):
        Toolbox([Tool("a", "", _fail), Tool("a", "", _fail)], confirm=Approver(True))


def test_specs_are_openai_tools(toolbox: Toolbox) -> None:
    specs = {spec["function"]["name"]: spec for spec in toolbox.specs()}
    assert specs["calculator"] == {
        "type": "function",
        "function": {
            "name": "calculator",
            "description": "Evaluate an arithmetic expression: numbers, + - * / // % ** and parentheses.",
            "parameters": {
                "type": "object",
                "properties": {
                    "expression": {"type": "string", "description": "e.g. (17 * 23) / 4"}
                },
                "required": ["expression"],
            },
        },
    }
    assert "python" not in specs
