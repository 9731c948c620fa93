"""A conversation as text for people: a terminal transcript, Markdown, or JSON.

Shared by ``llmcli history`` and the chat REPL's ``/save``. Every piece of model text
passes ``neutralize`` first.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from llmcli.sanitize import dumps_json, neutralize
from llmcli.store import Conversation, StoredMessage

# (text, style) lines of a transcript; the command that prints them maps styles to colours.
Line = tuple[str, str]


def to_json(conversation: Conversation) -> str:
    """The full record (usage and timings included), as ``history export --json`` prints it.

    A conversation that was never logged (``chat --no-log``) has no id: ``"id": null``.
    """
    record = conversation.to_record()
    record["id"] = record["id"] or None
    return dumps_json(record, indent=2) + "\n"


def to_markdown(conversation: Conversation) -> str:
    return format_markdown(conversation)


def format_time(timestamp: float) -> str:
    """A stored time as local time, to the minute."""
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def transcript_lines(conversation: Conversation) -> list[Line]:
    """The conversation as (text, style) lines, every piece of model text neutralised."""
    header = (
        f"conversation {conversation.id}  profile {conversation.profile}"
        f"  model {conversation.model or '-'}  created {format_time(conversation.created_at)}"
    )
    lines: list[Line] = [(neutralize(header), "header")]
    if conversation.system:
        lines += [("", "text"), ("system:", "role")]
        lines += _text_lines(neutralize(conversation.system), "text")
    for message in conversation.messages:
        lines += [("", "text"), (neutralize(_role_label(message)) + ":", "role")]
        lines += _message_lines(message)
    return lines


def _message_lines(message: StoredMessage) -> Iterator[Line]:
    if message.reasoning.strip():
        yield "reasoning:", "reasoning"
        for line in neutralize(message.reasoning.strip("\n")).split("\n"):
            yield "  " + line, "reasoning"
    if message.content.strip():
        yield from _text_lines(neutralize(message.content), "text")
    for call in _calls(message):
        yield "→ " + neutralize(call), "tool"
    if message.interrupted:
        yield "[interrupted]", "marker"
    if _shows_error(message):
        yield f"[error: {neutralize(message.error or '')}]", "error"


def format_markdown(conversation: Conversation) -> str:
    """The conversation as a Markdown document, reasoning folded into ``<details>``."""
    fallback = f"Conversation {conversation.id}" if conversation.id else "Conversation"
    facts = (
        [f"- id: `{conversation.id}`"] if conversation.id else ["- not in the history (--no-log)"]
    )
    facts += [
        f"- profile: {neutralize(conversation.profile)}",
        f"- model: {neutralize(conversation.model or '-')}",
        f"- created: {format_time(conversation.created_at)}",
    ]
    parts = [f"# {neutralize(conversation.title or fallback)}", "\n".join(facts)]
    if conversation.system:
        parts += ["## system", neutralize(conversation.system.strip("\n"))]
    for message in conversation.messages:
        parts.append(f"## {neutralize(_role_label(message))}")
        if message.reasoning.strip():
            reasoning = neutralize(message.reasoning.strip("\n"))
            parts.append(f"<details>\n<summary>reasoning</summary>\n\n{reasoning}\n\n</details>")
        if message.content.strip():
            parts.append(neutralize(message.content.strip("\n")))
        parts += [f"→ `{neutralize(call)}`" for call in _calls(message)]
        if message.interrupted:
            parts.append("*[interrupted]*")
        if _shows_error(message):
            parts.append(f"*[error: {neutralize(message.error or '')}]*")
    return "\n\n".join(parts) + "\n"


def _role_label(message: StoredMessage) -> str:
    if message.role == "tool" and message.tool_call_id:
        return f"tool ({message.tool_call_id})"
    return message.role


def _shows_error(message: StoredMessage) -> bool:
    # Ctrl-C is recorded as the error "interrupted" too; "[interrupted]" already says it.
    return bool(message.error) and not (message.interrupted and message.error == "interrupted")


def _calls(message: StoredMessage) -> Iterator[str]:
    for call in message.tool_calls:
        function = call.get("function") or {}
        yield f"{function.get('name', '?')}({function.get('arguments', '')})"


def _text_lines(text: str, style: str) -> list[Line]:
    return [(line, style) for line in text.strip("\n").split("\n")]
