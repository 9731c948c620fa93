"""Tab in the chat prompt after ``/role`` (role names) and ``/file`` (paths, for the last one
typed), through the REPL's completer as prompt-toolkit calls it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from llmcli.chat.repl import SlashCompleter


def offered(text: str) -> list[str]:
    repl: Any = SimpleNamespace(model_names=[], profile_names=["local", "zen"])
    completions = SlashCompleter(repl).get_completions(Document(text), CompleteEvent())
    return [c.text for c in completions]


def test_role_names_complete_from_the_built_in_roles_and_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    roles = tmp_path / "roles.toml"
    roles.write_text('[roles.critic]\nsystem = "Be harsh."\n')
    monkeypatch.setenv("LLMCLI_ROLES", str(roles))
    assert offered("/role c") == ["commit-message", "critic"]
    assert offered("/ro") == ["/role"]
    roles.write_text("[roles.x\n")
    assert offered("/role ") == []  # a broken file offers nothing


def test_file_completes_the_last_path_typed(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("x")
    (tmp_path / "notebook.txt").write_text("x")
    (tmp_path / "other.md").write_text("x")
    assert sorted(offered(f"/file {tmp_path}/other.md {tmp_path}/note")) == ["book.txt", "s.md"]
    assert offered("/fi") == ["/file"]
