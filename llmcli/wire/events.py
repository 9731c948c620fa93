"""Typed events: what a streamed (or whole) answer is made of, from wire to display.

The client turns every chunk a backend sends into a sequence of these; renderers,
``complete --json``, the chat REPL and the benchmark consume the same sequence. ``Answer``
folds a sequence back into the whole answer, so nothing received is ever lost when a
stream breaks half-way; ``Outcome`` adds when its parts arrived and how it ended, for the
displays, the history and ``--json``. Pure data: no I/O, no httpx, no rich.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class Started:
    """The first chunk arrived; carries the model the server says it is running."""

    model: str | None
    response_id: str | None = None


@dataclass(frozen=True, slots=True)
class ContentDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """One fragment of a tool call; ``id`` and ``name`` come only on a call's first."""

    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call assembled from all of its fragments; ``arguments`` is JSON text."""

    index: int
    id: str
    name: str
    arguments: str

    def to_openai(self) -> dict[str, Any]:
        """The call as an OpenAI ``tool_calls`` entry, as servers expect it sent back."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Timings:
    """llama-server's own account of the work (the server-side ground truth)."""

    prompt_n: int | None = None
    prompt_ms: float | None = None
    prompt_per_second: float | None = None
    predicted_n: int | None = None
    predicted_ms: float | None = None
    predicted_per_second: float | None = None
    cache_n: int | None = None
    draft_n: int | None = None
    draft_n_accepted: int | None = None


# The fields of llama-server's ``timings`` object llmcli reads (the parser) and keeps (the
# bench's records), in the order the server writes them.
TIMING_FIELDS: tuple[str, ...] = tuple(timing.name for timing in fields(Timings))


@dataclass(frozen=True, slots=True)
class Cost:
    """zen's cost frame (a decimal string in dollars), sent after ``[DONE]``."""

    amount: str


@dataclass(frozen=True, slots=True)
class Finish:
    """The server ended the answer; ``reason`` is ``stop``, ``length``, ``tool_calls``..."""

    reason: str | None


Event = (
    Started
    | ContentDelta
    | ReasoningDelta
    | ToolCallDelta
    | ToolCall
    | Usage
    | Timings
    | Cost
    | Finish
)


class Answer:
    """The whole answer, folded from events as they arrive.

    Text arrives a token at a time; it is kept as a list of pieces and joined when read,
    so a 20,000-token answer costs linear, not quadratic, time to collect.
    """

    __slots__ = (
        "_content",
        "_reasoning",
        "cost",
        "finish_reason",
        "model",
        "timings",
        "tool_calls",
        "usage",
    )

    def __init__(
        self,
        *,
        model: str | None = None,
        content: str = "",
        reasoning: str = "",
        tool_calls: list[ToolCall] | None = None,
        finish_reason: str | None = None,
        usage: Usage | None = None,
        timings: Timings | None = None,
        cost: str | None = None,
    ) -> None:
        self.model = model
        self._content = [content] if content else []
        self._reasoning = [reasoning] if reasoning else []
        self.tool_calls: list[ToolCall] = list(tool_calls or [])
        self.finish_reason = finish_reason
        self.usage = usage
        self.timings = timings
        self.cost = cost

    @property
    def content(self) -> str:
        return _joined(self._content)

    @property
    def reasoning(self) -> str:
        return _joined(self._reasoning)

    def __repr__(self) -> str:
        return (
            f"Answer(model={self.model!r}, content={self.content!r}, "
            f"reasoning={self.reasoning!r}, finish_reason={self.finish_reason!r})"
        )

    def apply(self, event: Event) -> None:
        match event:
            case Started(model=model):
                self.model = self.model or model
            case ContentDelta(text=text):
                self._content.append(text)
            case ReasoningDelta(text=text):
                self._reasoning.append(text)
            case ToolCall():
                self.tool_calls.append(event)
            case Usage():
                self.usage = event
            case Timings():
                self.timings = event
            case Cost(amount=amount):
                self.cost = amount
            case Finish(reason=reason):
                self.finish_reason = reason
            case ToolCallDelta():
                pass  # fragments are folded into ToolCall events by the client


def _joined(parts: list[str]) -> str:
    """The pieces as one string, kept joined so that reading again costs nothing."""
    if len(parts) > 1:
        parts[:] = ["".join(parts)]
    return parts[0] if parts else ""


def sent_fields(value: Usage | Timings | None) -> dict[str, Any] | None:
    """The fields of ``value`` that the server sent (those not ``None``)."""
    if value is None:
        return None
    return {
        field.name: getattr(value, field.name)
        for field in fields(value)
        if getattr(value, field.name) is not None
    }


@dataclass(slots=True)
class Outcome:
    """The answer plus how it ended and when its parts arrived."""

    answer: Answer = field(default_factory=Answer)
    started: float = field(default_factory=time.perf_counter)
    first_token: float | None = None
    ended: float | None = None
    error: str | None = None
    interrupted: bool = False

    def observe(self, event: Event) -> None:
        self.answer.apply(event)
        if self.first_token is None and isinstance(event, ContentDelta | ReasoningDelta):
            self.first_token = time.perf_counter()

    @property
    def ttft(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.started
