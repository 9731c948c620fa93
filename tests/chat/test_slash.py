"""Slash command parsing and hints."""

from __future__ import annotations

import pytest

from llmcli.chat.slash import COMMANDS, SlashCall, UnknownCommand, help_text, is_slash, parse


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/help", SlashCall("help", "")),
        ("/model  qwen3 ", SlashCall("model", "qwen3")),
        ("/system You are terse.", SlashCall("system", "You are terse.")),
        ("  /EXIT", SlashCall("exit", "")),
        ("/ret", SlashCall("retry", "")),
        ("/reasoning hide", SlashCall("reasoning", "hide")),
    ],
)
def test_parse(text: str, expected: SlashCall) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [("/modle", "model"), ("/halp", "help"), ("/zzzzzz", None)],
)
def test_unknown_commands_suggest_the_nearest(text: str, suggestion: str | None) -> None:
    with pytest.raises(UnknownCommand) as info:
        parse(text)
    assert info.value.suggestion == suggestion
    if suggestion:
        assert f"did you mean /{suggestion}?" in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("/help", True), ("  /x", True), ("//etc/hosts", False), ("hi /x", False)],
)
def test_is_slash(text: str, expected: bool) -> None:
    assert is_slash(text) is expected


def test_help_lists_every_command() -> None:
    text = help_text()
    assert all(f"/{command.name}" in text for command in COMMANDS)
    # One line a command, even in an 80-column terminal.
    assert len(text.splitlines()) == len(COMMANDS) + 1
    assert max(len(line) for line in text.splitlines()) <= 80


def test_ambiguous_prefix_names_the_candidates() -> None:
    with pytest.raises(UnknownCommand, match="/re is ambiguous: /reasoning or /retry"):
        parse("/re")
