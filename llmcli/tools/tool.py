"""What a tool is, what one call of it gave, and how a call is approved before it runs.

A :class:`Tool` pairs the definition a model is shown (name, description, JSON schema of
its arguments) with the coroutine that runs it. A tool reports a failure the model should
hear about by raising :class:`ToolError`; the toolbox turns that into an error result
(``{"error": "..."}``) and the conversation goes on.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmcli.wire.events import ToolCall

DEFAULT_TIMEOUT = 10.0

ToolFunction = Callable[[dict[str, Any]], Awaitable[str]]
Preview = Callable[[dict[str, Any]], str]


class ToolError(Exception):
    """A call failed in a way the model is told about (bad input, missing file, timeout).

    Not an ``LlmcliError``: it never reaches the user as an error, it goes back to the
    model as the call's result.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _empty_object() -> dict[str, Any]:
    return {"type": "object", "properties": {}}


@dataclass(frozen=True, slots=True)
class Tool:
    """One tool: what the model is shown, and what runs when it calls it.

    ``confirm``: ask the user before every call (tools that are not safe by
    construction). ``preview`` shows a call to the user when asking (default: the
    arguments as JSON). ``timeout`` bounds one call, in seconds.
    """

    name: str
    description: str
    run: ToolFunction
    parameters: Mapping[str, Any] = field(default_factory=_empty_object)
    confirm: bool = False
    preview: Preview | None = None
    timeout: float = DEFAULT_TIMEOUT

    def spec(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": dict(self.parameters),
            },
        }

    def show_call(self, arguments: dict[str, Any]) -> str:
        """The call as the user is asked to approve it."""
        if self.preview is not None:
            return self.preview(arguments)
        return json.dumps(arguments, ensure_ascii=False, indent=2)


@dataclass(frozen=True, slots=True)
class ToolRun:
    """One call and what it gave: ``content`` is exactly what the model is sent back.

    ``error`` holds the failure (``content`` is then ``{"error": error}`` as JSON);
    ``started``/``ended`` are ``perf_counter`` seconds.
    """

    call: ToolCall
    content: str
    error: str | None
    started: float
    ended: float

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def duration(self) -> float:
        return self.ended - self.started

    def to_message(self) -> dict[str, Any]:
        """The ``tool`` message that carries this result back to the model."""
        return {"role": "tool", "tool_call_id": self.call.id, "content": self.content}


def error_content(message: str) -> str:
    """The text of an error result, as the model receives it."""
    return json.dumps({"error": message}, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class ConfirmRequest:
    """A call waiting for the user's approval."""

    tool: str
    shown: str  # the call as the user sees it (``Tool.show_call``)


@dataclass(frozen=True, slots=True)
class Decision:
    """The user's answer; ``reason`` says why a call was not approved (told to the model)."""

    approved: bool
    reason: str = ""


class Confirmer(Protocol):
    """Asks the user whether a call may run."""

    async def __call__(self, request: ConfirmRequest) -> Decision: ...
