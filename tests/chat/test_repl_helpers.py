"""REPL helpers that need no terminal: the clipboard and the editor."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmcli.chat.repl import copy_to_clipboard, edit_in_editor
from llmcli.errors import UsageError


def test_copy_without_any_clipboard_tool_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert copy_to_clipboard("answer").startswith("no clipboard here")
    assert copy_to_clipboard("") == "no answer to copy yet"


def test_copy_uses_the_first_tool_found(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sink = tmp_path / "clipboard"
    tool = tmp_path / "xclip"
    tool.write_text(f'#!/bin/sh\n/bin/cat > "{sink}"\n')
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("DISPLAY", ":0")  # xclip is tried only where X is
    assert copy_to_clipboard("the answer") == "copied 10 characters with xclip"
    assert sink.read_text() == "the answer"


def test_editor_that_fails_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDITOR", "false")
    monkeypatch.delenv("VISUAL", raising=False)
    with pytest.raises(UsageError, match="could not run the editor 'false'"):
        edit_in_editor("")
