"""Decoded JSON chunks -> typed events: every dialect quirk of BACKENDS.md lives here.

Pure: no I/O, no clock. Its input is decoded JSON, so an object is always a ``dict``. ``ChunkParser`` reads chat and text completion chunks (and
whole non-streamed bodies, which become the same events), so the streaming and the
non-streaming paths cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from llmcli.errors import StreamError, cap_text
from llmcli.wire.events import (
    TIMING_FIELDS,
    ContentDelta,
    Cost,
    Event,
    Finish,
    ReasoningDelta,
    Started,
    Timings,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from llmcli.wire.think import ThinkSplitter


class ToolCallAssembler:
    """Folds tool-call fragments, keyed by ``index``, into whole calls."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, Any]] = {}

    def add(self, delta: ToolCallDelta) -> None:
        call = self._calls.setdefault(delta.index, {"id": None, "name": None, "arguments": []})
        if delta.id and not call["id"]:
            call["id"] = delta.id
        if delta.name and not call["name"]:
            call["name"] = delta.name
        call["arguments"].append(delta.arguments)

    def finish(self) -> list[ToolCall]:
        """The calls in index order; emptied, so a second finish adds nothing."""
        calls = [
            ToolCall(
                index=index,
                id=call["id"] or f"call_{index}",
                name=call["name"] or "",
                arguments="".join(call["arguments"]),
            )
            for index, call in sorted(self._calls.items())
        ]
        self._calls.clear()
        return calls


class ChunkParser:
    """Turns the chunks of one answer into events; ``finish()`` flushes what is held."""

    def __init__(self, *, split_think: bool = True) -> None:
        self._think = ThinkSplitter() if split_think else None
        self._tools = ToolCallAssembler()
        self._started = False
        self.finish_reason: str | None = None
        self.finished = False

    def parse(self, chunk: dict[str, Any]) -> list[Event]:
        """Events for one streamed chunk (chat or text completion)."""
        if not isinstance(chunk, dict):
            raise StreamError(f"malformed chunk from server: expected an object, got {chunk!r:.80}")
        events: list[Event] = []
        error = chunk.get("error")
        if error is not None:
            raise StreamError(_stream_error_message(error), status=_error_code(error))
        if not self._started and ("model" in chunk or "choices" in chunk):
            self._started = True
            events.append(
                Started(
                    model=_str_or_none(chunk.get("model")),
                    response_id=_str_or_none(chunk.get("id")),
                )
            )
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if not isinstance(choice, dict) or choice.get("index", 0) not in (0, None):
                    continue  # llmcli asks for one choice; ignore any other
                delta = choice.get("delta")
                if isinstance(delta, dict):
                    self._parse_delta(delta, events)
                text = choice.get("text")  # /completions
                if isinstance(text, str) and text:
                    events.append(ContentDelta(text))
                reason = choice.get("finish_reason")
                if reason:
                    events.extend(self._finish(str(reason)))
        if "usage" in chunk or "timings" in chunk or "cost" in chunk:
            events.extend(_parse_extras(chunk))
        return events

    def parse_body(self, body: dict[str, Any]) -> list[Event]:
        """Events for a whole, non-streamed chat or text completion body."""
        if not isinstance(body, dict):
            raise StreamError(f"malformed answer from server: expected an object, got {body!r:.80}")
        events: list[Event] = [
            Started(_str_or_none(body.get("model")), _str_or_none(body.get("id")))
        ]
        self._started = True
        reason = None
        for choice in _list(body.get("choices"))[:1]:
            if not isinstance(choice, dict):
                continue
            message = choice.get("message")
            if isinstance(message, dict):
                self._parse_delta(message, events)
            text = choice.get("text")
            if isinstance(text, str) and text:
                events.append(ContentDelta(text))
            reason = choice.get("finish_reason")
        events.extend(self._finish(str(reason) if reason else None))
        events.extend(_parse_extras(body))
        return events

    def finish(self) -> list[Event]:
        """Flush at end of stream: held think-tag text and unfinished tool calls."""
        events = self._flush()
        events.extend(self._tools.finish())
        return events

    def _finish(self, reason: str | None) -> list[Event]:
        events = self.finish()
        events.append(Finish(reason))
        self.finish_reason = reason
        self.finished = True
        return events

    def _flush(self) -> list[Event]:
        if self._think is None:
            return []
        return [_typed(kind, text) for kind, text in self._think.flush()]

    def _parse_delta(self, delta: dict[str, Any], events: list[Event]) -> None:
        # Upstreams name the reasoning field differently; llama-server and GLM/Kimi/Qwen use
        # reasoning_content, some others reasoning. A chunk carries one or the other.
        for key in ("reasoning_content", "reasoning"):
            reasoning = delta.get(key)
            if isinstance(reasoning, str) and reasoning:
                events.append(ReasoningDelta(reasoning))
                break
        content = delta.get("content")
        if isinstance(content, str) and content:
            if self._think is None:
                events.append(ContentDelta(content))
            else:
                for kind, text in self._think.feed(content):
                    events.append(_typed(kind, text))
        tool_calls = delta.get("tool_calls")
        if isinstance(tool_calls, list):
            for fragment in tool_calls:
                if isinstance(fragment, dict):
                    tool_delta = _tool_call_delta(fragment)
                    self._tools.add(tool_delta)
                    events.append(tool_delta)


def _typed(kind: str, text: str) -> Event:
    return ReasoningDelta(text) if kind == "reasoning" else ContentDelta(text)


def _tool_call_delta(fragment: dict[str, Any]) -> ToolCallDelta:
    function = fragment.get("function")
    function = function if isinstance(function, dict) else {}
    arguments = function.get("arguments")
    if isinstance(arguments, dict):  # a few servers send an object, not JSON text
        import json

        arguments = json.dumps(arguments)
    index = fragment.get("index")
    return ToolCallDelta(
        index=index if isinstance(index, int) else 0,
        id=_str_or_none(fragment.get("id")),
        name=_str_or_none(function.get("name")),
        arguments=arguments if isinstance(arguments, str) else "",
    )


def _parse_extras(chunk: dict[str, Any]) -> list[Event]:
    """Usage, llama.cpp timings and zen's cost, wherever a chunk carries them."""
    events: list[Event] = []
    usage = chunk.get("usage")
    if isinstance(usage, dict):
        events.append(parse_usage(usage))
    timings = chunk.get("timings")
    if isinstance(timings, dict):
        events.append(Timings(**{name: _number(timings.get(name)) for name in TIMING_FIELDS}))  # type: ignore[arg-type]
    cost = chunk.get("cost")
    if isinstance(cost, str | int | float) and not isinstance(cost, bool):
        events.append(Cost(str(cost)))
    return events


def parse_usage(usage: dict[str, Any]) -> Usage:
    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    cached = _int(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else None
    if cached is None:
        cached = _int(usage.get("cached_tokens"))
    reasoning = (
        _int(completion_details.get("reasoning_tokens"))
        if isinstance(completion_details, dict)
        else None
    )
    return Usage(
        prompt_tokens=_int(usage.get("prompt_tokens")),
        completion_tokens=_int(usage.get("completion_tokens")),
        total_tokens=_int(usage.get("total_tokens")),
        cached_tokens=cached,
        reasoning_tokens=reasoning,
    )


def error_details(payload: Any) -> tuple[str | None, str | None]:
    """(message, type) from either error shape: zen's ``{"type":"error","error":{...}}``,
    OpenAI/llama.cpp ``{"error":{...}}``, or a bare ``{"error": "text"}``."""
    if not isinstance(payload, dict):
        return None, None
    error = payload.get("error", payload)
    if isinstance(error, str):
        return error, None
    if not isinstance(error, dict):
        return None, None
    message = error.get("message")
    kind = error.get("type")
    return (
        message if isinstance(message, str) and message else None,
        kind if isinstance(kind, str) else None,
    )


def _stream_error_message(error: Any) -> str:
    message, kind = error_details({"error": error})
    text = cap_text(" ".join((message or "unknown error").split()))
    kind = None if kind is None else cap_text(kind, 80)
    return f"server error mid-answer: {text}" + (f" ({kind})" if kind else "")


def _error_code(error: Any) -> int | None:
    if isinstance(error, dict):
        return _int(error.get("code"))
    return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value
