"""``llmcli roles list`` and ``roles show`` through the real CLI, and Tab completing role names
(the function, and a real bash)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from test_completion import tab  # the bash harness, beside this file
from typer.testing import CliRunner

from llmcli.cli import app
from llmcli.commands.completion import complete_role_names

ROLES = """
[roles.reviewer]
description = "Reviews a diff"
system = "You review code.\\u001b[2J"
model = "qwen3"
temperature = 0.3

[roles.summarise]
system = "Be terse."
"""


@pytest.fixture
def roles_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "roles.toml"
    path.write_text(ROLES)
    monkeypatch.setenv("LLMCLI_ROLES", str(path))
    return path


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_list_piped_is_one_tab_separated_line_a_role(roles_file: Path) -> None:
    result = invoke("roles", "list")
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.splitlines() == [
        f"summarise\t-\tsystem prompt\tfile {roles_file}",
        "commit-message\tA git commit message for a diff (git diff | llmcli complete --role ...)"
        "\tsystem prompt, prompt template, temperature 0.2\tbuilt-in",
        f"reviewer\tReviews a diff\tsystem prompt, model qwen3, temperature 0.3\tfile {roles_file}",
    ]


def test_list_json(roles_file: Path) -> None:
    result = invoke("roles", "list", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["file"] == str(roles_file)
    reviewer = next(role for role in document["roles"] if role["name"] == "reviewer")
    assert reviewer == {
        "name": "reviewer",
        "description": "Reviews a diff",
        "system": "You review code.\x1b[2J",
        "prompt": None,
        "profile": None,
        "model": "qwen3",
        "temperature": 0.3,
        "top_p": None,
        "max_tokens": None,
        "seed": None,
        "stop": [],
        "source": f"file {roles_file}",
    }


def test_show_neutralises_what_the_file_says(roles_file: Path) -> None:
    result = invoke("roles", "show", "reviewer")
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout
    assert "system\tYou review code.␛[2J" in result.stdout.splitlines()
    assert "prompt" not in result.stdout  # unset fields are not listed


def test_show_an_unknown_role_is_one_line(roles_file: Path) -> None:
    result = invoke("roles", "show", "reviwer")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(
        "llmcli: error: unknown role 'reviwer' (did you mean 'reviewer'?)"
    )
    assert len(result.stderr.splitlines()) == 1


def test_a_broken_file_is_one_line(roles_file: Path) -> None:
    roles_file.write_text("[roles.x]\ntemperature = 'hot'\n")
    result = invoke("roles", "list")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"llmcli: error: {roles_file}: temperature in role 'x' must be a number (e.g. 0.7),"
        " got a string\n"
    )


def test_tab_completes_role_names(roles_file: Path) -> None:
    assert complete_role_names("re") == ["reviewer"]
    assert set(complete_role_names("")) == {"summarise", "commit-message", "reviewer"}
    roles_file.write_text("[roles.x\n")
    assert complete_role_names("") == []  # a broken file offers nothing, never a traceback


def test_bash_completes_role_names(roles_file: Path, tmp_path: Path) -> None:
    if shutil.which("bash") is None:
        pytest.fail("bash is not installed", pytrace=False)
    env = {**os.environ}
    env.pop("_LLMCLI_COMPLETE", None)
    assert tab(["llmcli", "complete", "--role", "rev"], env, tmp_path) == ["reviewer"]
    assert tab(["llmcli", "chat", "-r", ""], env, tmp_path) == [
        "summarise",
        "commit-message",
        "reviewer",
    ]
    assert tab(["llmcli", "roles", "show", "c"], env, tmp_path) == ["commit-message"]
