"""``chat``'s state through a scripted (piped) chat: a failed command changes nothing,
``/reasoning`` says its mode, ``/save`` works without the history, and BACKEND_URL is
named wherever it decides where a chat goes. Against llmcli's zen-dialect mock server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import WriteProfiles
from typer.testing import CliRunner

from llmcli.cli import app
from llmcli.mock import MockConfig, MockServerThread
from llmcli.storage.store import Store


def invoke(*args: str, input: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, ["chat", *args], input=input, env=env)


@pytest.fixture
def mock() -> Iterator[MockServerThread]:
    server = MockServerThread(MockConfig())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def profiles(write_profiles: WriteProfiles, mock: MockServerThread) -> Path:
    return write_profiles(
        f'[profiles.mock]\nbase_url = "{mock.base_url}"\ndialect = "zen"\nmodel = "big-pickle"\n'
    )


def sent_models(mock: MockServerThread) -> list[str | None]:
    return [
        request.body.get("model")
        for request in mock.server.requests
        if request.path.endswith("/chat/completions")
    ]


def test_a_failed_profile_switch_leaves_the_chat_as_it_was(
    profiles: Path, mock: MockServerThread
) -> None:
    script = "/profile nope\n/model grok-code-fast-1-free\n/profile\nhi\n"
    result = invoke("-p", "mock", input=script)
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("llmcli: unknown profile 'nope'")
    # The next commands act on the chat as it was: no trace of 'nope' anywhere.
    assert lines[1] == "llmcli: model: grok-code-fast-1-free"
    assert lines[2] == f"llmcli: profile: mock at {mock.base_url}; model: grok-code-fast-1-free"
    assert "nope" not in "\n".join(lines[1:])
    assert sent_models(mock) == ["grok-code-fast-1-free"]
    assert result.stdout.strip()  # the answer came from the mock, the profile kept


def test_a_bad_reasoning_mode_changes_nothing_and_no_argument_says_the_mode(
    profiles: Path,
) -> None:
    script = "/reasoning\n/reasoning hide\n/reasoning sometimes\n/reasoning\n"
    result = invoke("-p", "mock", "--reasoning", "show", input=script)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [
        "llmcli: reasoning: show (streams and stays on screen)",
        "llmcli: reasoning: hide (not shown, still kept)",
        "llmcli: /reasoning sometimes: use /reasoning show, hide or collapse",
        "llmcli: reasoning: hide (not shown, still kept)",
    ]


def test_save_without_the_history_writes_what_the_chat_holds(
    profiles: Path, mock: MockServerThread, tmp_path: Path
) -> None:
    markdown, first, second = tmp_path / "chat.md", tmp_path / "one.json", tmp_path / "two.json"
    script = (
        f"/save {markdown}\nhello there\n/save {markdown}\n/save {first}\n/retry\n/save {second}\n"
    )
    result = invoke("-p", "mock", "--no-log", input=script)
    assert result.exit_code == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("llmcli: ")]
    assert notes == [
        "llmcli: nothing to save yet: send a message first",
        f"llmcli: saved {markdown}",
        f"llmcli: saved {first}",
        f"llmcli: saved {second}",
    ]
    answers = result.stdout.splitlines()
    once, again = json.loads(first.read_text()), json.loads(second.read_text())
    assert once["id"] is None and once["title"] == "hello there"
    assert [(m["role"], m["content"].strip()) for m in once["messages"]] == [
        ("user", "hello there"),
        ("assistant", answers[0].strip()),
    ]
    # /retry replaced the answer: still two messages, the second the new answer.
    assert [(m["role"], m["content"].strip()) for m in again["messages"]] == [
        ("user", "hello there"),
        ("assistant", answers[1].strip()),
    ]
    assert once["messages"][1]["usage"]["completion_tokens"] > 0
    text = markdown.read_text()
    assert text.startswith("# hello there\n") and "not in the history (--no-log)" in text
    assert "## user\n\nhello there" in text and answers[0].strip() in text
    with Store.open() as store:
        assert store.list() == []  # --no-log kept its word


def test_save_to_a_place_that_cannot_be_written_is_one_line(profiles: Path, tmp_path: Path) -> None:
    target = tmp_path / "missing" / "chat.md"
    result = invoke("-p", "mock", "--no-log", input=f"hi\n/save {target}\n/usage\n")
    assert result.exit_code == 0, result.stderr
    assert f"llmcli: {target}: cannot write: No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr and "1 answer(s)" in result.stderr


def test_backend_url_is_named_where_it_decides_the_server_and_the_model(
    profiles: Path, mock: MockServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    # BACKEND_URL points at the mock: another server than the shipped profiles' own.
    monkeypatch.setenv("BACKEND_URL", mock.base_url)
    result = invoke("-p", "zen", input="hi\n/profile local\n/model\n/model big-pickle\nhi\n")
    assert result.exit_code == 1  # the first answer failed
    zen_reason = (
        "BACKEND_URL points at another server than profile zen's, so its model big-pickle"
        " is not sent"
    )
    lines = result.stderr.splitlines()
    assert lines[0] == (
        f"llmcli: profile: zen at {mock.base_url} (from BACKEND_URL, which every profile"
        f" follows; profile zen's own: https://opencode.ai/zen/v1); model: server default"
        f" ({zen_reason})"
    )
    # The server refuses the missing model: the line says why none was sent.
    assert lines[1].startswith("llmcli: error: HTTP 401: ")
    assert lines[1].endswith(
        f"; no model was sent ({zen_reason}): name one with -m; llmcli models lists them"
    )
    assert "check the model name" not in lines[1]
    # /profile local still goes to BACKEND_URL's server, and says so in its one line.
    assert lines[2] == (
        f"llmcli: profile: local at {mock.base_url} (from BACKEND_URL, which every profile"
        " follows; profile local's own: http://127.0.0.1:8080/v1); model: server default"
    )
    assert lines[3:] == ["llmcli: model: server default", "llmcli: model: big-pickle"]
    assert sent_models(mock) == [None, "big-pickle"]
    assert result.stdout.strip()  # the second answer came
