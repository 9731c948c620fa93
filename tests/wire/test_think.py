"""Tests for llmcli.wire.think: inline <think> reasoning split out of streamed content."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from llmcli.wire.think import Piece, ThinkSplitter


def split(chunks: Iterable[str]) -> list[Piece]:
    splitter = ThinkSplitter()
    pieces: list[Piece] = []
    for chunk in chunks:
        result = splitter.feed(chunk)
        assert_well_formed(result)
        pieces += result
    return pieces + splitter.flush()


def assert_well_formed(result: list[Piece]) -> None:
    """Non-empty pieces; at most one reasoning piece, then at most one content piece."""
    assert all(text for _, text in result)
    assert [kind for kind, _ in result] in (
        [],
        ["reasoning"],
        ["content"],
        ["reasoning", "content"],
    )


def joined(pieces: list[Piece]) -> tuple[str, str]:
    """(reasoning, content), each the concatenation of its pieces."""
    reasoning = "".join(text for kind, text in pieces if kind == "reasoning")
    content = "".join(text for kind, text in pieces if kind == "content")
    return reasoning, content


CASES: list[tuple[str, str, tuple[str, str]]] = [
    ("plain answer", "Hello there", ("", "Hello there")),
    ("reasoning then answer", "<think>plan it</think>Hi", ("plan it", "Hi")),
    (
        "llama-server layout",
        "<think>\nplan it\n</think>\n\nHi there",
        ("plan it\n", "Hi there"),
    ),
    ("leading whitespace before tag", " \n\t<think>x</think>y", ("x", "y")),
    ("leading whitespace kept in passthrough", "  \nHello", ("", "  \nHello")),
    ("empty reasoning", "<think></think>Answer", ("", "Answer")),
    ("empty reasoning with newlines", "<think>\n\n</think>\n\nAnswer", ("", "Answer")),
    (
        "tag later in prose",
        "Use <think> and </think> tags.",
        ("", "Use <think> and </think> tags."),
    ),
    ("second think is content", "<think>a</think>b <think>c</think>", ("a", "b <think>c</think>")),
    ("unclosed reasoning", "<think>still going <", ("still going <", "")),
    ("unclosed with partial close tag", "<think>abc</thi", ("abc</thi", "")),
    ("opening tag alone", "<think>", ("", "")),
    ("partial opening tag only", "<thi", ("", "<thi")),
    ("near miss opening tag", "<thinking>hm</thinking>ok", ("", "<thinking>hm</thinking>ok")),
    ("uppercase tag is content", "<THINK>x</THINK>", ("", "<THINK>x</THINK>")),
    ("lt in reasoning", "<think>a < b <<</ x</think>c", ("a < b <<</ x", "c")),
    ("near miss close tag", "<think>a</thin k></think>b", ("a</thin k>", "b")),
    (
        "answer keeps inner whitespace",
        "<think>r</think>\n\nline 1\n\nline 2\n",
        ("r", "line 1\n\nline 2\n"),
    ),
    ("only whitespace after close", "<think>r</think>\n\n", ("r", "")),
    ("only whitespace", " \n ", ("", " \n ")),
    ("empty", "", ("", "")),
    ("unicode", "<think>思考 🤔</think>答え", ("思考 🤔", "答え")),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_whole_text(text: str, expected: tuple[str, str]) -> None:
    assert joined(split([text])) == expected


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_two_way_split_gives_the_same_result(text: str, expected: tuple[str, str]) -> None:
    for cut in range(len(text) + 1):
        assert joined(split([text[:cut], text[cut:]])) == expected, cut


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_one_character_at_a_time(text: str, expected: tuple[str, str]) -> None:
    assert joined(split(text)) == expected


def test_every_three_way_split_of_a_stream() -> None:
    text = " <think>\nplan <b> it</th\n</think>\n\nHi <think> there"
    expected = ("plan <b> it</th\n", "Hi <think> there")
    for i in range(len(text) + 1):
        for j in range(i, len(text) + 1):
            assert joined(split([text[:i], text[i:j], text[j:]])) == expected, (i, j)


def test_reasoning_precedes_content_in_order() -> None:
    assert split(["<think>a", "b</think>", "c"]) == [
        ("reasoning", "a"),
        ("reasoning", "b"),
        ("content", "c"),
    ]


def test_held_text_is_released_with_the_next_chunk_in_one_piece() -> None:
    splitter = ThinkSplitter()
    assert splitter.feed("<think>ab</") == [("reasoning", "ab")]
    # The held "</" turned out not to be a tag: released together with the new text.
    assert splitter.feed("b>cd</think>\nef") == [("reasoning", "</b>cd"), ("content", "ef")]
    assert splitter.feed("gh") == [("content", "gh")]
    assert splitter.flush() == []


@pytest.mark.parametrize(
    ("chunk", "released", "held"),
    [
        ("abc", "abc", ""),
        ("abc<", "abc", "<"),
        ("abc</thin", "abc", "</thin"),
        ("abc</think", "abc", "</think"),
        ("abc</x", "abc</x", ""),
        ("abc<</th", "abc<", "</th"),
        ("a</thinkx", "a</thinkx", ""),
    ],
)
def test_holds_back_only_a_possible_close_tag_prefix(chunk: str, released: str, held: str) -> None:
    splitter = ThinkSplitter()
    assert splitter.feed("<think>") == []
    assert joined(splitter.feed(chunk)) == (released, "")
    assert len(held) <= len("</think>") - 1
    assert joined(splitter.flush()) == (held, "")


@pytest.mark.parametrize("prefix", ["<", "<t", "<th", "<thi", "<thin", "<think"])
def test_opening_tag_prefix_is_held_then_released_as_content(prefix: str) -> None:
    splitter = ThinkSplitter()
    assert splitter.feed(prefix) == []
    assert splitter.feed("!") == [("content", prefix + "!")]


def test_passthrough_after_first_visible_text() -> None:
    splitter = ThinkSplitter()
    assert splitter.feed("\n") == []
    assert splitter.feed("Hi") == [("content", "\nHi")]
    assert splitter.feed("<think>") == [("content", "<think>")]
    assert splitter.feed("") == []
    assert splitter.flush() == []


def test_unclosed_reasoning_flushes_as_reasoning() -> None:
    splitter = ThinkSplitter()
    assert splitter.feed("<think>deep thought</thi") == [("reasoning", "deep thought")]
    assert splitter.flush() == [("reasoning", "</thi")]
