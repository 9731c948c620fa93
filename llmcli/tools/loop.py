"""The tool-calling loop: ask, run the calls the answer makes, send the results, repeat.

One *step* is one request. Each step sends the whole conversation with the tool
definitions and streams the answer (the client assembles tool calls from their
fragments). An answer with tool calls is appended as an assistant message carrying
``tool_calls``, the calls run (concurrently, see :class:`~llmcli.tools.toolbox.Toolbox`),
and one ``tool`` message per call, with its ``tool_call_id``, follows in the calls' order.
An answer without tool calls ends the loop: that is the model's answer. After
``max_steps`` requests the loop stops even if the model still calls tools; the calls of
that last answer are not run, since no request would carry their results.

``tool_choice``: ``auto`` and ``none`` apply to every step. ``required`` or a tool's name
forces the *first* step's call only; later steps are ``auto``, or the model could never
answer in text.

The caller owns the :class:`Transcript` and passes it in, so after an error or Ctrl-C it
still holds every message and step that happened. ``prepare`` sees each step's request
before it is sent and may change it (the tests put an assistant prefill into the first
request to make a random-weights model call a tool); its changes are not recorded in the
conversation.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from llmcli.config.profiles import Profile
from llmcli.errors import LlmcliError, UsageError
from llmcli.tools.tool import ToolRun
from llmcli.tools.toolbox import Toolbox
from llmcli.wire.answer import answer_to_json
from llmcli.wire.client import ChatRequest, Client
from llmcli.wire.events import Answer, Event, Outcome, ToolCallDelta

DEFAULT_MAX_STEPS = 5
PLAIN_CHOICES = ("auto", "required", "none")

Stopped = Literal["answered", "max_steps"]
PrepareRequest = Callable[[int, ChatRequest], ChatRequest]


@dataclass(frozen=True, slots=True)
class LoopSettings:
    """``tool_choice``: auto, required, none, or a tool's name."""

    tool_choice: str = "auto"
    parallel_tool_calls: bool | None = None
    max_steps: int = DEFAULT_MAX_STEPS

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ValueError("max_steps must be 1 or more")

    def choice_for(self, step: int) -> str | dict[str, Any]:
        """The request's ``tool_choice`` at ``step`` (0-based)."""
        if self.tool_choice in ("auto", "none"):
            return self.tool_choice
        if step > 0:
            return "auto"
        if self.tool_choice == "required":
            return "required"
        return {"type": "function", "function": {"name": self.tool_choice}}


@dataclass(slots=True)
class Step:
    """One request and its answer, and the calls it made with their results."""

    index: int
    outcome: Outcome = field(default_factory=Outcome)
    runs: list[ToolRun] = field(default_factory=list)

    @property
    def answer(self) -> Answer:
        return self.outcome.answer


@dataclass(slots=True)
class Transcript:
    """The conversation as sent (``messages``), every step, and how the loop ended.

    ``stopped`` stays ``None`` while the loop runs or when an error ended it.
    """

    messages: list[dict[str, Any]]
    steps: list[Step] = field(default_factory=list)
    stopped: Stopped | None = None
    started: float = field(default_factory=time.perf_counter)
    ended: float | None = None

    @property
    def final_answer(self) -> str | None:
        if self.stopped != "answered" or not self.steps:
            return None
        return self.steps[-1].answer.content


class LoopView(Protocol):
    """What shows the loop as it runs (the terminal display, or nothing)."""

    def begin_step(self, index: int) -> Callable[[Event], None]:
        """A request is about to be sent; the callback gets each event of its answer."""
        ...

    def end_step(self, step: Step) -> None:
        """The answer ended (finished, failed or interrupted: see ``step.outcome``)."""
        ...

    def tool_done(self, run: ToolRun) -> None:
        """A call finished (calls finish in any order)."""
        ...


class QuietView:
    """Shows nothing (``--json``, tests)."""

    def begin_step(self, index: int) -> Callable[[Event], None]:
        return _ignore

    def end_step(self, step: Step) -> None:
        return None

    def tool_done(self, run: ToolRun) -> None:
        return None


def _ignore(_event: Event) -> None:
    return None


async def run_tool_loop(
    client: Client,
    request: ChatRequest,
    toolbox: Toolbox,
    transcript: Transcript,
    *,
    settings: LoopSettings | None = None,
    view: LoopView | None = None,
    prepare: PrepareRequest | None = None,
) -> Transcript:
    """Run the conversation in ``transcript.messages`` to an answer or to ``max_steps``.

    ``request`` gives everything but the messages and the tool fields (model, sampling,
    extra body fields). Backend errors and cancellation propagate; ``transcript`` then
    holds all that happened, the failed step's outcome marked.
    """
    settings = settings or LoopSettings()
    view = view or QuietView()
    tools = toolbox.specs()
    try:
        for index in range(settings.max_steps):
            step_request = replace(
                request,
                messages=list(transcript.messages),
                tools=tools,
                tool_choice=settings.choice_for(index),
                parallel_tool_calls=settings.parallel_tool_calls,
            )
            if prepare is not None:
                step_request = prepare(index, step_request)
            step = Step(index)
            transcript.steps.append(step)
            await _ask(client, step_request, step, view)
            transcript.messages.append(assistant_message(step.answer))
            if not step.answer.tool_calls:
                transcript.stopped = "answered"
                return transcript
            if index + 1 == settings.max_steps:
                break
            step.runs = await toolbox.run_calls(step.answer.tool_calls, view.tool_done)
            transcript.messages.extend(run.to_message() for run in step.runs)
        transcript.stopped = "max_steps"
        return transcript
    finally:
        transcript.ended = time.perf_counter()


async def _ask(client: Client, request: ChatRequest, step: Step, view: LoopView) -> None:
    outcome = step.outcome
    show = view.begin_step(step.index)
    try:
        async for event in client.stream_chat(request):
            outcome.observe(event)
            if outcome.first_token is None and isinstance(event, ToolCallDelta):
                # An answer that only calls tools starts with its first call fragment.
                outcome.first_token = time.perf_counter()
            show(event)
    except asyncio.CancelledError:
        outcome.interrupted = True
        raise
    except LlmcliError as error:
        outcome.error = str(error)
        raise
    finally:
        outcome.ended = time.perf_counter()
        view.end_step(step)


def assistant_message(answer: Answer) -> dict[str, Any]:
    """The answer as the assistant message sent back with the next request (no reasoning)."""
    if not answer.tool_calls:
        return {"role": "assistant", "content": answer.content}
    return {
        # The spec allows null content beside tool calls; "" confuses some servers.
        "role": "assistant",
        "content": answer.content or None,
        "tool_calls": [
            replace(call, arguments=_sendable(call.arguments)).to_openai()
            for call in answer.tool_calls
        ],
    }


def _sendable(arguments: str) -> str:
    # llama-server parses the arguments of every assistant tool call it is sent and
    # rejects the whole request when they are not a JSON object. Broken arguments are sent
    # as "{}"; the call's error result tells the model what it actually wrote.
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return "{}"
    return arguments if isinstance(value, dict) else "{}"


def transcript_to_json(transcript: Transcript, *, profile: str) -> dict[str, Any]:
    """The ``--json`` document: the messages as sent, every step with its calls, timings."""
    return {
        "profile": profile,
        "stopped": transcript.stopped,
        "answer": transcript.final_answer,
        "steps": [_step_to_json(step, profile) for step in transcript.steps],
        "messages": transcript.messages,
        "duration_ms": _ms(transcript.started, transcript.ended),
    }


def _step_to_json(step: Step, profile: str) -> dict[str, Any]:
    answer = answer_to_json(step.outcome, profile=profile)
    del answer["profile"]
    ttft = step.outcome.ttft
    return {
        "step": step.index,
        **answer,
        "ttft_ms": None if ttft is None else ttft * 1000,
        "duration_ms": _ms(step.outcome.started, step.outcome.ended),
        "tool_results": [
            {
                "id": run.call.id,
                "name": run.call.name,
                "arguments": run.call.arguments,
                "content": run.content,
                "error": run.error,
                "duration_ms": run.duration * 1000,
            }
            for run in step.runs
        ],
    }


def _ms(started: float, ended: float | None) -> float | None:
    return None if ended is None else (ended - started) * 1000


def parse_tool_choice(text: str, offered: Mapping[str, object]) -> str:
    """Check ``--tool-choice``: auto, required, none, or the name of an offered tool."""
    if text in PLAIN_CHOICES or text in offered:
        return text
    raise UsageError(
        f"--tool-choice takes auto, required, none or an offered tool's name "
        f"({', '.join(offered) or 'none offered'}), not {text!r}"
    )


async def run_tool_session(
    profile: Profile,
    request: ChatRequest,
    toolbox: Toolbox,
    transcript: Transcript,
    *,
    settings: LoopSettings | None = None,
    view: LoopView | None = None,
) -> Transcript:
    """:func:`run_tool_loop` on a client of its own for ``profile``."""
    async with Client(profile) as client:
        return await run_tool_loop(
            client, request, toolbox, transcript, settings=settings, view=view
        )
