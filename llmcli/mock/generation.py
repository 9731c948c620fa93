"""What the mock model answers to one request, before any dialect gives it a wire shape.

A :class:`Generation` is the answer's plan: how many reasoning and content tokens, which
tool calls, the finish reason and the usage numbers. :meth:`Generation.pieces` cuts it into
the chunks a stream sends, one per schedule slot; the dialect's format wraps each piece in
its chunk JSON.

Length rules: without a limit the answer is ``reasoning_tokens`` of reasoning then
``default_max_tokens`` of content, finish ``stop``. With ``max_completion_tokens``,
``max_tokens`` (or llama.cpp's ``n_predict``) the answer is exactly that many tokens,
reasoning first, finish ``length``. Tool calls are never cut.

Tool calls: a request with ``tools`` and ``tool_choice`` ``"required"`` (or a named
function) gets a call to the first (or named) tool; with ``parallel_tool_calls: true`` and
two or more tools, ``"required"`` calls the first two. Arguments hold the schema's
required properties with placeholder values. A call streams as one fragment with id and
name (arguments ``""``), then argument fragments of up to 8 characters; each fragment is
one completion token.

Scripted tool conversations (``MockConfig.tool_script``, ``answer_tool_results``): see
:func:`plan_tool_calls` and :func:`tool_results_text`. A text answer made from tool
results streams one word (with the whitespace before it) per token and is cut by a
token limit like any answer.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from llmcli.mock.config import ToolStep
from llmcli.mock.timing import Distribution, draw_chunk_sizes, mean_of
from llmcli.mock.vocabulary import (
    content_text,
    encode_content,
    encode_reasoning,
    reasoning_text,
)

ARGUMENT_FRAGMENT = 8

# A piece of a stream: (kind, payload, tokens). For "content" and "reasoning" the payload is
# a JSON string literal; for "tool" it is a whole delta object.
Piece = tuple[str, bytes, int]


class BadRequest(Exception):
    """The request cannot be answered as sent; dialects turn this into their 400."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class ToolCall:
    index: int
    id: str
    name: str
    arguments: str

    def fragments(self) -> list[str]:
        text = self.arguments
        return [text[i : i + ARGUMENT_FRAGMENT] for i in range(0, len(text), ARGUMENT_FRAGMENT)]

    @property
    def tokens(self) -> int:
        return 1 + len(self.fragments())

    def to_message(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True, slots=True)
class Generation:
    prompt_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    content_tokens: int
    tool_calls: tuple[ToolCall, ...]
    tokens_per_chunk: int
    finish_reason: str
    text_pieces: tuple[str, ...] | None = None  # a fixed answer instead of the word list
    # Drawn sizes of the reasoning chunks, then the content chunks (a distribution of tokens
    # per chunk), a size a chunk (each segment's last one cut short); empty: every chunk
    # holds tokens_per_chunk.
    chunk_sizes: tuple[int, ...] = ()

    @property
    def completion_tokens(self) -> int:
        tool_tokens = sum(call.tokens for call in self.tool_calls)
        return self.reasoning_tokens + self.content_tokens + tool_tokens

    @property
    def slots(self) -> int:
        """How many chunks the stream's tokens take: one schedule slot each."""
        tool_tokens = sum(call.tokens for call in self.tool_calls)
        if not self.chunk_sizes:
            per = self.tokens_per_chunk
            return -(-self.reasoning_tokens // per) - (-self.content_tokens // per) + tool_tokens
        return len(self.chunk_sizes) + tool_tokens

    @property
    def mean_chunk_tokens(self) -> float:
        """Text tokens a chunk, on average (``tokens_per_chunk`` when it is fixed)."""
        if not self.chunk_sizes:
            return float(self.tokens_per_chunk)
        return (self.reasoning_tokens + self.content_tokens) / len(self.chunk_sizes)

    def chunk_counts(self) -> tuple[list[int], list[int]]:
        """The tokens of each reasoning chunk and of each content chunk."""
        sizes: Iterator[int] = (
            iter(self.chunk_sizes) if self.chunk_sizes else itertools.repeat(self.tokens_per_chunk)
        )
        return _split(self.reasoning_tokens, sizes), _split(self.content_tokens, sizes)

    @property
    def reasoning(self) -> str:
        return reasoning_text(0, self.reasoning_tokens)

    @property
    def content(self) -> str:
        if self.text_pieces is not None:
            return "".join(self.text_pieces[: self.content_tokens])
        return content_text(0, self.content_tokens)

    def pieces(self) -> Iterator[Piece]:
        reasoning, content = self.chunk_counts()
        start = 0
        for count in reasoning:
            yield "reasoning", encode_reasoning(start, count), count
            start += count
        start = 0
        for count in content:
            if self.text_pieces is not None:
                text = "".join(self.text_pieces[start : start + count])
                yield "content", json.dumps(text).encode(), count
            else:
                yield "content", encode_content(start, count), count
            start += count
        for call in self.tool_calls:
            first = {
                "index": call.index,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            yield "tool", _dump({"tool_calls": [first]}), 1
            for fragment in call.fragments():
                later = {"index": call.index, "function": {"arguments": fragment}}
                yield "tool", _dump({"tool_calls": [later]}), 1


def _dump(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def requested_limit(body: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    """The request's output token limit under the first of ``keys`` that is set."""
    for key in keys:
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadRequest(f"'{key}' must be an integer")
        if key == "n_predict" and value < 0:
            return None  # llama.cpp: -1 means "until the model stops"
        if value < 0:
            raise BadRequest(f"'{key}' must be 0 or more")
        return value
    return None


def plan_generation(
    body: dict[str, Any],
    *,
    prompt_tokens: int,
    cached_tokens: int,
    reasoning_tokens: int,
    default_tokens: int,
    tokens_per_chunk: int | Distribution,
    limit_keys: tuple[str, ...],
    call_prefix: str,
    tool_script: tuple[ToolStep, ...] = (),
    answer_tool_results: bool = False,
    rng: random.Random | None = None,
) -> Generation:
    """Decide the answer to one request (raises :class:`BadRequest`); ``rng`` draws the
    chunk sizes when ``tokens_per_chunk`` is a distribution."""
    limit = requested_limit(body, limit_keys)
    calls = plan_tool_calls(body, call_prefix, tool_script, answer_tool_results)
    summary = None if calls or not answer_tool_results else tool_results_text(body)
    pieces = None if summary is None else tuple(_WORD.findall(summary))
    if calls:
        reasoning, content, finish = reasoning_tokens, 0, "tool_calls"
    elif pieces is not None:
        reasoning = reasoning_tokens if limit is None else min(reasoning_tokens, limit)
        room = len(pieces) if limit is None else limit - reasoning
        content = min(len(pieces), room)
        finish = "length" if content < len(pieces) else "stop"
    elif limit is None:
        reasoning, content, finish = reasoning_tokens, default_tokens, "stop"
    else:
        reasoning = min(reasoning_tokens, limit)
        content, finish = limit - reasoning, "length"
    sizes: tuple[int, ...] = ()
    if isinstance(tokens_per_chunk, Distribution):
        draws = rng if rng is not None else random.Random(0)
        sizes = draw_chunk_sizes(tokens_per_chunk, reasoning, draws)
        sizes += draw_chunk_sizes(tokens_per_chunk, content, draws)
    return Generation(
        prompt_tokens=prompt_tokens,
        cached_tokens=min(cached_tokens, prompt_tokens),
        reasoning_tokens=reasoning,
        content_tokens=content,
        tool_calls=calls,
        tokens_per_chunk=max(1, round(mean_of(tokens_per_chunk))),
        finish_reason=finish,
        text_pieces=pieces,
        chunk_sizes=sizes,
    )


def _split(total: int, sizes: Iterator[int]) -> list[int]:
    """``total`` tokens cut into chunks of the next sizes (the last cut short)."""
    counts = []
    while total > 0:
        count = min(next(sizes), total)
        counts.append(count)
        total -= count
    return counts


# One token of a fixed text answer: a word with the whitespace before it (or the trailing
# whitespace), so the pieces join back into the text exactly.
_WORD = re.compile(r"\s*\S+|\s+")


def tool_round(messages: object) -> int:
    """How many answers with tool calls follow the conversation's last user message."""
    if not isinstance(messages, list):
        return 0
    count = 0
    for message in reversed(messages):
        if not isinstance(message, dict):
            continue
        if message.get("role") == "user":
            break
        if message.get("role") == "assistant" and message.get("tool_calls"):
            count += 1
    return count


def tool_results_text(body: dict[str, Any]) -> str | None:
    """``name: content`` for each tool result the conversation ends with (``None``: none)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    results: list[dict[str, Any]] = []
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "tool":
            break
        results.append(message)
    if not results:
        return None
    names: dict[str, str] = {}
    for message in messages:
        if isinstance(message, dict) and isinstance(message.get("tool_calls"), list):
            for call in message["tool_calls"]:
                if isinstance(call, dict) and isinstance(call.get("function"), dict):
                    names[str(call.get("id"))] = str(call["function"].get("name"))
    lines = []
    for message in reversed(results):
        content = message.get("content")
        text = content if isinstance(content, str) else json.dumps(content)
        lines.append(f"{names.get(str(message.get('tool_call_id')), 'tool')}: {text}")
    return "\n".join(lines)


def plan_tool_calls(
    body: dict[str, Any],
    call_prefix: str,
    tool_script: tuple[ToolStep, ...] = (),
    answer_tool_results: bool = False,
) -> tuple[ToolCall, ...]:
    tools = body.get("tools")
    if not isinstance(tools, list) or not tools:
        return ()
    functions = [
        tool["function"]
        for tool in tools
        if isinstance(tool, dict)
        and isinstance(tool.get("function"), dict)
        and isinstance(tool["function"].get("name"), str)
    ]
    if not functions:
        raise BadRequest("'tools' holds no function with a name")
    choice = body.get("tool_choice")
    if tool_script and choice != "none":
        step = tool_round(body.get("messages"))
        if step < len(tool_script):
            return tuple(
                ToolCall(index=i, id=f"{call_prefix}_{i}", name=call.name, arguments=call.arguments)
                for i, call in enumerate(tool_script[step])
            )
    if answer_tool_results and tool_results_text(body) is not None:
        return ()
    if choice == "required":
        count = 2 if body.get("parallel_tool_calls") is True and len(functions) > 1 else 1
        chosen = functions[:count]
    elif isinstance(choice, dict):
        wanted = (
            choice.get("function", {}).get("name")
            if isinstance(choice.get("function"), dict)
            else None
        )
        chosen = [fn for fn in functions if fn["name"] == wanted][:1]
        if not chosen:
            raise BadRequest(f"tool_choice names a function that is not in 'tools': {wanted!r}")
    else:
        return ()
    return tuple(
        ToolCall(
            index=i,
            id=f"{call_prefix}_{i}",
            name=fn["name"],
            arguments=json.dumps(placeholder_arguments(fn.get("parameters"))),
        )
        for i, fn in enumerate(chosen)
    )


def placeholder_arguments(schema: object) -> dict[str, Any]:
    """An object holding each required property of a JSON schema, with a made-up value."""
    if not isinstance(schema, dict):
        return {}
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        properties = {}
    required = schema.get("required")
    if not isinstance(required, list):
        return {}
    return {
        name: placeholder_value(properties.get(name)) for name in required if isinstance(name, str)
    }


def placeholder_value(schema: object) -> Any:
    if not isinstance(schema, dict):
        return "example"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return placeholder_arguments(schema)
    if kind == "null":
        return None
    return "example"
