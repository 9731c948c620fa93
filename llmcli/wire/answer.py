"""One answer, start to end: drive a client's events into an ``Answer`` and a display.

Shared by ``complete`` and ``chat``: the answer is folded as events arrive, so whatever
happens (an error, Ctrl-C) the caller still holds everything received.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from llmcli.config.profiles import Profile
from llmcli.wire.client import ChatRequest, Client
from llmcli.wire.events import Event, Outcome, sent_fields


async def _replay(events: list[Event]) -> AsyncIterator[Event]:
    for event in events:
        yield event


async def drive_answer(
    profile: Profile,
    request: ChatRequest,
    *,
    show: Callable[[Event], None],
    outcome: Outcome,
    text_prompt: str | None = None,
    stream: bool = True,
) -> Outcome:
    """Run :func:`drive_answer_on` on a client of its own for ``profile``, then close it.

    For one-shot commands; a chat keeps its clients (``ClientPool``) across answers.
    """
    async with Client(profile) as client:
        return await drive_answer_on(
            client, request, show=show, outcome=outcome, text_prompt=text_prompt, stream=stream
        )


async def drive_answer_on(
    client: Client,
    request: ChatRequest,
    *,
    show: Callable[[Event], None],
    outcome: Outcome,
    text_prompt: str | None = None,
    stream: bool = True,
) -> Outcome:
    """Ask ``client`` for one answer; feed every event to ``outcome`` and ``show`` as it arrives.

    Errors and cancellation propagate; ``outcome`` already holds all that arrived. The
    client stays open for the caller's next answer.
    """
    events: AsyncIterator[Event]
    if text_prompt is not None:
        events = client.stream_text(text_prompt, request, stream=stream)
    elif stream:
        events = client.stream_chat(request)
    else:
        events = _replay(await client.complete_chat(request))
    try:
        async for event in events:
            outcome.observe(event)
            show(event)
    except asyncio.CancelledError:
        outcome.interrupted = True
        raise
    finally:
        outcome.ended = time.perf_counter()
    return outcome


def answer_to_json(outcome: Outcome, *, profile: str) -> dict[str, Any]:
    """The ``--json`` shape of one answer; ``error`` and ``interrupted`` say how it ended."""
    answer = outcome.answer
    document: dict[str, Any] = {
        "content": answer.content,
        "reasoning": answer.reasoning,
        "tool_calls": [call.to_openai() for call in answer.tool_calls],
        "finish_reason": answer.finish_reason,
        "usage": sent_fields(answer.usage),
        "timings": sent_fields(answer.timings),
        "model": answer.model,
        "profile": profile,
    }
    if answer.cost is not None:
        document["cost"] = answer.cost
    if outcome.error is not None:
        document["error"] = outcome.error
    if outcome.interrupted:
        document["interrupted"] = True
    return document
