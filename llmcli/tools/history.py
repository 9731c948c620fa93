"""The tool loop's conversation in the history store: every answer and every whole result.

The prompt, each step's answer (with its tool calls, usage and timings) and each tool
result as a ``tool`` message with its ``tool_call_id``, in the order they were sent, so
``llmcli history show`` and ``chat --continue`` see the same conversation the model saw.
"""

from __future__ import annotations

from llmcli.storage.store import Store, StoredMessage, message_from_outcome
from llmcli.tools.loop import Transcript


def log_transcript(
    store: Store,
    transcript: Transcript,
    *,
    profile: str,
    model: str | None,
    system: str | None,
    prompt: str,
) -> str:
    """Record the conversation; returns its id."""
    conversation = store.new_conversation(profile=profile, model=model, system=system)
    store.append(conversation, StoredMessage(role="user", content=prompt))
    for step in transcript.steps:
        store.append(conversation, message_from_outcome(step.outcome, profile=profile, model=model))
        for run in step.runs:
            store.append(
                conversation,
                StoredMessage(
                    role="tool",
                    content=run.content,
                    tool_call_id=run.call.id,
                    error=run.error,
                    duration_ms=run.duration * 1000,
                ),
            )
    return conversation
