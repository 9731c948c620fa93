"""``llmcli history show`` on a conversation with branches: the current branch, numbered,
with a note where another leaves it; ``--branch N``; ``--json`` with attachments and forks;
code blocks that paste as written; bad input as one line. Through typer's CliRunner, stdout
and stderr apart."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from llmcli.commands import history as history_command
from llmcli.storage.store import Attachment, Store, StoredMessage
from llmcli.ui.terminal import Terminal

CODE = "def joke():\n    return 'knock knock'"
FILE = Attachment("jokes.md", "text/markdown", 120, "0f" * 32)


@pytest.fixture
def conversation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """hi / hello / tell a joke / bad joke, then undone at 2 and asked again."""
    monkeypatch.setenv("LLMCLI_DATA_DIR", str(tmp_path / "data"))
    with Store.open(tmp_path / "data" / "history.db") as store:
        cid = store.new_conversation(profile="local", model="tiny")
        store.append(cid, StoredMessage("user", "hi"))
        store.append(cid, StoredMessage("assistant", "hello"))
        store.append(cid, StoredMessage("user", "tell a joke", attachments=(FILE,)))
        store.append(cid, StoredMessage("assistant", "a bad joke"))
        store.set_head(cid, 2)
        store.append(cid, StoredMessage("user", "a better one, in Python"))
        store.append(cid, StoredMessage("assistant", f"Here:\n\n```python\n{CODE}\n```\n"))
    return cid


def run(*args: str, **env: str) -> Result:
    main = typer.Typer()
    main.add_typer(history_command.app, name="history")
    return CliRunner().invoke(main, ["history", *args], env=env or None)


def test_show_is_the_current_branch_with_a_note_where_the_other_leaves(conversation: str) -> None:
    result = run("show", conversation)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.splitlines()[1:] == [
        "",
        "user #1:",
        "hi",
        "",
        "assistant #2:",
        "hello",
        "",
        "↳ 1 other branch after message 2 (starting at message 3):"
        f" llmcli history show {conversation} --branch 3",
        "",
        "user #5:",
        "a better one, in Python",
        "",
        "assistant #6:",
        "Here:",
        "",
        "```python",
        *CODE.splitlines(),
        "```",
    ]


def test_show_branch_shows_the_other_one(conversation: str) -> None:
    result = run("show", conversation[:10], "--branch", "4")
    assert (result.exit_code, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert "tell a joke" in lines and "a bad joke" in lines
    assert "a better one, in Python" not in lines
    assert lines[lines.index("hello") + 2].startswith("↳ 1 other branch after message 2")
    assert lines[lines.index("hello") + 2].endswith("--branch 5")


def test_show_json_has_the_branch_its_forks_and_attachments(conversation: str) -> None:
    record = json.loads(run("show", conversation, "--json", "-b", "3").stdout)
    assert record["head"] == 4
    assert record["forks"] == [{"after": 2, "starts": [5]}]
    assert [(m["seq"], m["parent"]) for m in record["messages"]] == [
        (1, None),
        (2, 1),
        (3, 2),
        (4, 3),
    ]
    assert record["messages"][2]["attachments"] == [
        {"name": "jokes.md", "mime": "text/markdown", "bytes": 120, "sha256": "0f" * 32}
    ]
    assert record["messages"][0]["attachments"] == []
    # export --json is the same record.
    exported = json.loads(run("export", conversation, "--json").stdout)
    assert exported["forks"] == [{"after": 2, "starts": [3]}]


def test_a_conversation_without_branches_shows_as_before(conversation: str) -> None:
    with Store.open() as store:
        plain = store.new_conversation(profile="local", model="tiny")
        store.append(plain, StoredMessage("user", "one"))
    assert run("show", plain).stdout.splitlines()[1:] == ["", "user:", "one"]


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (["--branch", "9"], "llmcli: error: conversation {id} has no message 9\n"),
        (["--branch", "x"], "--branch"),
        (["--branch", "0"], "--branch"),
    ],
)
def test_a_bad_branch_is_one_line_and_exit_2(
    conversation: str, args: list[str], stderr: str
) -> None:
    result = run("show", conversation, *args)
    assert (result.exit_code, result.stdout) == (2, "")
    if stderr.startswith("llmcli:"):
        assert result.stderr == stderr.format(id=conversation)
    else:
        assert stderr in result.stderr
        assert "Traceback" not in result.stderr


def test_code_in_a_terminal_has_no_margin_or_padding(
    conversation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    detect = Terminal.detect

    def on_a_terminal(**streams: Any) -> Terminal:
        return dataclasses.replace(detect(**streams), stdout_isatty=True)

    monkeypatch.setattr(Terminal, "detect", staticmethod(on_a_terminal))
    result = run("show", conversation, COLUMNS="60", NO_COLOR="1")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    start = lines.index(CODE.splitlines()[0])  # the first code line, exactly: no margin
    assert lines[start : start + 2] == CODE.splitlines()  # and no padding after it
    assert "↳ 1 other branch after message 2" in result.stdout
