"""``chat``'s state through a scripted (piped) chat: a failed command changes nothing,
``/reasoning`` says its mode, ``/save`` works without the history, and BACKEND_URL is
named wherever it decides where a chat goes. Against llmcli's zen-dialect mock server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import WriteProfiles
from typer.testing import CliRunner

from llmcli.cli import app
from llmcli.mockserver import MockConfig, MockServerThread


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
    assert lines[2].startswith("llmcli: profile: mock (")
    assert "nope" not in "\n".join(lines[1:])
    assert sent_models(mock) == ["grok-code-fast-1-free"]
    assert result.stdout.strip()  # the answer came from the mock, the profile kept


def test_a_bad_reasoning_mode_changes_nothing_and_no_argument_says_the_mode(
    profiles: Path,
) -> None:
    script = "/reasoning\n/reasoning hide\n/reasoning sometimes\n/reasoning\n"
    result = invoke("-p", "mock", "--reasoning", "show", input=script)
    assert result.exit_code == 0, result.stderr
    usage = "use /reasoning show, /reasoning hide or /reasoning collapse"
    assert result.stderr.splitlines() == [
        f"llmcli: reasoning: show (streams and stays on screen); {usage}",
        "llmcli: reasoning: hide (not shown; still kept in the history)",
        f"llmcli: /reasoning sometimes: {usage}",
        f"llmcli: reasoning: hide (not shown; still kept in the history); {usage}",
    ]
