"""``recap_lines``: where a continued chat left off, in a few lines that fit the screen."""

from __future__ import annotations

import pytest
from rich.cells import cell_len

from llmcli.storage.store import Conversation, StoredMessage
from llmcli.ui.transcript import recap_lines

LONG = " ".join(f"w{i}" for i in range(100))


def conversation(*messages: StoredMessage) -> Conversation:
    return Conversation(
        id="01m97y8200000000",
        title=None,
        profile="local",
        model=None,
        created_at=0.0,
        updated_at=0.0,
        message_count=len(messages),
        system=None,
        messages=messages,
    )


@pytest.mark.parametrize(
    ("messages", "width", "expected"),
    [
        # One exchange, short: the question after the prompt mark, the answer under it.
        (
            (StoredMessage("user", "hi"), StoredMessage("assistant", "Hi there")),
            80,
            ["  user:      hi", "  assistant: Hi there"],
        ),
        # Only the last exchange; line breaks kept, blank lines dropped.
        (
            (
                StoredMessage("user", "first"),
                StoredMessage("assistant", "one"),
                StoredMessage("user", "second"),
                StoredMessage("assistant", "**two**\n\n- a\n- b"),
            ),
            80,
            ["  user:      second", "  assistant: **two**", "             - a", "             - b"],
        ),
        # A long answer: four lines, the last cut with an ellipsis; nothing wider than 40.
        (
            (StoredMessage("user", "where?"), StoredMessage("assistant", LONG)),
            40,
            [
                "  user:      where?",
                "  assistant: w0 w1 w2 w3 w4 w5 w6 w7 w8",
                "             w9 w10 w11 w12 w13 w14 w15",
                "             w16 w17 w18 w19 w20 w21 w22",
                "             w23 w24 w25 w26 w27 w28 w2…",
            ],
        ),
        # Ctrl-C ended it; a tool call with no text; a question with no answer yet.
        (
            (StoredMessage("user", "go"), StoredMessage("assistant", "wor", interrupted=True)),
            80,
            ["  user:      go", "  assistant: wor", "             [interrupted]"],
        ),
        (
            (
                StoredMessage("user", "weather?"),
                StoredMessage(
                    "assistant",
                    "",
                    tool_calls=({"function": {"name": "weather", "arguments": "{}"}},),
                ),
                StoredMessage("tool", "sunny", tool_call_id="c1"),
            ),
            80,
            ["  user:      weather?", "  assistant: → weather({})"],
        ),
        (
            (StoredMessage("user", "hello?"),),
            80,
            ["  user:      hello?", "  assistant: (no answer yet)"],
        ),
        # Server text is neutralised: an escape sequence cannot reach the terminal.
        (
            (StoredMessage("user", "x"), StoredMessage("assistant", "\x1b[2Jgone\u202e")),
            80,
            ["  user:      x", "  assistant: ␛[2Jgone<U+202E>"],
        ),
        (
            (StoredMessage("user", "q"), StoredMessage("assistant", "")),
            80,
            ["  user:      q", "  assistant: (empty)"],
        ),
        ((), 80, []),
    ],
)
def test_recap(messages: tuple[StoredMessage, ...], width: int, expected: list[str]) -> None:
    lines = recap_lines(conversation(*messages), width)
    assert lines == expected
    assert all(cell_len(line) <= width for line in lines)


def test_a_long_question_takes_two_lines_and_wide_characters_count_double() -> None:
    lines = recap_lines(
        conversation(StoredMessage("user", "日本語" * 30), StoredMessage("assistant", "ok")), 30
    )
    assert [cell_len(line) <= 30 for line in lines] == [True, True, True]
    assert lines[1].endswith("…") and lines[2] == "  assistant: ok"


def test_a_question_sent_with_files_shows_what_was_typed_and_the_names_not_the_text() -> None:
    from llmcli.storage.store import Attachment

    files = (
        Attachment("notes.md", "text/plain", 9, "0" * 64),
        Attachment("p.png", "image/png", 70, "1" * 64),
    )
    asked = StoredMessage(
        "user",
        "compare these\n\nFile: notes.md\n```\nSECRET-ish text\n```\n\nImage: p.png",
        attachments=files,
    )
    lines = recap_lines(conversation(asked, StoredMessage("assistant", "done")), 80)
    assert lines == [
        "  user:      compare these",
        "             [files: notes.md, p.png]",
        "  assistant: done",
    ]
    only_files = StoredMessage("user", "File: notes.md\n```\nbody\n```", attachments=files[:1])
    assert recap_lines(conversation(only_files), 80)[0] == "  user:      [files: notes.md]"
