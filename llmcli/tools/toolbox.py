"""The tools on offer, and how one answer's calls are run: concurrently, and never fatally.

A call goes through, in order: the tool is looked up by name, its arguments are decoded
(they must be a JSON object; an empty string counts as ``{}``) and checked against the
tool's schema, the user is asked when the tool wants confirmation, then the tool runs
under its time limit. Whatever goes wrong at any stage becomes an error result,
``{"error": "..."}``, which the model reads and can act on; the conversation goes on.

Several calls from one answer run at once (``asyncio.gather``); their results come back in
the calls' order, whatever order they finish in.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from llmcli.errors import UsageError
from llmcli.tools.schema import type_of, validate
from llmcli.tools.tool import Confirmer, ConfirmRequest, Tool, ToolError, ToolRun, error_content
from llmcli.wire.events import ToolCall


class Toolbox:
    """Tools by name; ``confirm`` is asked before each call of a tool that wants it."""

    def __init__(
        self,
        tools: Sequence[Tool],
        *,
        confirm: Confirmer,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.tools: dict[str, Tool] = {}
        for tool in tools:
            if tool.name in self.tools:
                raise ValueError(f"two tools are named {tool.name!r}")
            self.tools[tool.name] = tool
        self._confirm = confirm
        self._clock = clock

    @property
    def names(self) -> list[str]:
        return list(self.tools)

    def select(self, names: Sequence[str]) -> Toolbox:
        """A toolbox offering only ``names`` (in the order given); unknown names are refused."""
        for name in names:
            if name not in self.tools:
                close = difflib.get_close_matches(name, self.tools, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise UsageError(
                    f"no tool named {name!r}{hint}; available: {', '.join(self.tools)}"
                )
        chosen = [self.tools[name] for name in dict.fromkeys(names)]
        return Toolbox(chosen, confirm=self._confirm, clock=self._clock)

    def specs(self) -> list[dict[str, Any]]:
        """The request's ``tools`` list."""
        return [tool.spec() for tool in self.tools.values()]

    async def run_calls(
        self, calls: Sequence[ToolCall], on_done: Callable[[ToolRun], None] | None = None
    ) -> list[ToolRun]:
        """Run every call at once; the results in the calls' order."""

        async def one(call: ToolCall) -> ToolRun:
            run = await self.run_call(call)
            if on_done is not None:
                on_done(run)
            return run

        return list(await asyncio.gather(*(one(call) for call in calls)))

    async def run_call(self, call: ToolCall) -> ToolRun:
        """Run one call; any failure is the call's error result, never an exception."""
        started = self._clock()
        error: str | None
        try:
            content = await self._run(call)
            error = None
        except ToolError as failure:
            error = failure.message
        except Exception as failure:
            # Tools are plugins: a bug in one must reach the model as that call's error,
            # not end the conversation. Cancellation and Ctrl-C are not Exceptions and go on.
            error = f"the tool failed: {type(failure).__name__}: {failure}"
        ended = self._clock()
        if error is not None:
            content = error_content(error)
        return ToolRun(call=call, content=content, error=error, started=started, ended=ended)

    async def _run(self, call: ToolCall) -> str:
        tool = self.tools.get(call.name)
        if tool is None:
            offered = ", ".join(self.tools) or "none"
            raise ToolError(f"there is no tool named {call.name!r}; the tools are: {offered}")
        arguments = decode_arguments(call.arguments)
        problems = validate(arguments, tool.parameters)
        if problems:
            raise ToolError("invalid arguments: " + "; ".join(problems))
        if tool.confirm:
            decision = await self._confirm(ConfirmRequest(tool.name, tool.show_call(arguments)))
            if not decision.approved:
                raise ToolError(decision.reason or "the user did not approve this call")
        try:
            async with asyncio.timeout(tool.timeout):
                return await tool.run(arguments)
        except TimeoutError:
            raise ToolError(f"timed out after {tool.timeout:g} s") from None


def decode_arguments(text: str) -> dict[str, Any]:
    """A call's arguments as an object; raises :class:`ToolError` saying what is wrong."""
    if not text.strip():
        return {}  # some servers send "" for a call without arguments
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ToolError(
            f"the arguments are not valid JSON ({error.msg} at character {error.pos}): {text[:200]!r}"
        ) from None
    if not isinstance(value, dict):
        raise ToolError(f"the arguments must be a JSON object, not {type_of(value)}")
    return value
