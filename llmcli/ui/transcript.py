"""A conversation as text for people: a terminal transcript, Markdown, or JSON.

Shared by ``llmcli history`` and the chat REPL's ``/save``. Every piece of model text
passes ``neutralize`` first.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from llmcli.storage.store import Conversation, StoredMessage, attached_names, typed_text
from llmcli.ui.sanitize import dumps_json, neutralize

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


def transcript_blocks(conversation: Conversation) -> list[Line]:
    """The conversation as (text, style) blocks, every piece of model text neutralised.

    A block may span lines. A message's content has the style ``"markdown"``: a terminal
    renders it as markdown; piped, it is plain text like the rest.
    """
    header = (
        f"conversation {conversation.id}  profile {conversation.profile}"
        f"  model {conversation.model or '-'}  created {format_time(conversation.created_at)}"
    )
    blocks: list[Line] = [(neutralize(header), "header")]
    if conversation.system:
        blocks += [("", "text"), ("system:", "role")]
        blocks.append((neutralize(conversation.system).strip("\n"), "text"))
    for message in conversation.messages:
        blocks += [("", "text"), (neutralize(_role_label(message)) + ":", "role")]
        blocks += _message_blocks(message)
    return blocks


def transcript_lines(conversation: Conversation) -> list[Line]:
    """The conversation as plain (text, style) lines: :func:`transcript_blocks`, split."""
    return [
        (line, "text" if style == "markdown" else style)
        for text, style in transcript_blocks(conversation)
        for line in text.split("\n")
    ]


def recap_lines(conversation: Conversation, width: int) -> list[str]:
    """Where a conversation left off, in a few lines of ``width`` cells at most.

    The last user message (two lines at most), then the start of the answer after it
    (four lines at most), each labelled, cut with ``…`` where there is more. Neutralised.
    """
    messages = conversation.messages
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if last_user is None:
        return []
    room = max(width - len(_RECAP_INDENT), 10)
    asked = messages[last_user]
    # A message sent with files: what was typed, then the files' names, never their text.
    text = typed_text(asked)
    if asked.attachments:
        text = f"{text}\n[files: {attached_names(asked)}]".lstrip("\n")
    lines = _labelled("user:", _clip(text, room, 3 if asked.attachments else 2))
    after = [m for m in messages[last_user + 1 :] if m.role == "assistant"]
    if not after:
        return [*lines, *_labelled("assistant:", ["(no answer yet)"])]
    answer = after[-1]
    text = answer.content if answer.content.strip() else "\n".join(f"→ {c}" for c in _calls(answer))
    shown = _clip(text, room, 4)
    if answer.interrupted:
        shown.append("[interrupted]")
    elif _shows_error(answer):
        shown += _clip(f"[error: {answer.error}]", room, 1)
    return lines + _labelled("assistant:", shown or ["(empty)"])


_RECAP_INDENT = "  assistant: "


def _labelled(label: str, lines: list[str]) -> list[str]:
    """``lines`` under one another, the first after ``label``, all starting at one column."""
    first = f"  {label}".ljust(len(_RECAP_INDENT))
    return [(first if i == 0 else " " * len(first)) + line for i, line in enumerate(lines)]


def _clip(text: str, width: int, most: int) -> list[str]:
    """``text`` neutralised, wrapped to ``width`` cells, cut to ``most`` lines with ``…``."""
    from rich.cells import cell_len, set_cell_size

    lines: list[str] = []
    for paragraph in neutralize(text).split("\n"):
        if len(lines) > most:
            break
        line = ""  # the line being filled
        for word in paragraph.split():
            while cell_len(word) > width:  # a word longer than a line: cut where it must
                head = set_cell_size(word, width).rstrip(" ")  # a wide char may not fit
                if line:
                    lines.append(line)
                lines.append(head)
                line, word = "", word[len(head) :]
            if line and cell_len(line) + 1 + cell_len(word) > width:
                lines.append(line)
                line = ""
            line = f"{line} {word}" if line else word
        if line:
            lines.append(line)
    if len(lines) > most:
        lines = lines[:most]
        lines[-1] = set_cell_size(lines[-1], width - 1).rstrip() + "…"
    return lines


def _message_blocks(message: StoredMessage) -> Iterator[Line]:
    if message.reasoning.strip():
        yield "reasoning:", "reasoning"
        reasoning = neutralize(message.reasoning.strip("\n")).split("\n")
        yield "\n".join("  " + line for line in reasoning), "reasoning"
    if message.content.strip():
        yield neutralize(message.content).strip("\n"), "markdown"
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
