"""``llmcli.tools.session`` without the command line: a ``tools-demo`` run on the mock.

The mock speaks zen's dialect and runs a tool script (``MockConfig.tool_script``); the
terminal is three in-memory streams, so what the run shows is read back exactly.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from rig.profiles import make_profile

from llmcli.config.profiles import Profile
from llmcli.errors import UsageError
from llmcli.mock import MockConfig, MockServerThread, ScriptedCall
from llmcli.storage.store import Store
from llmcli.tools.session import ToolSetup, run_tool_demo, start_messages
from llmcli.ui.terminal import Terminal

CALCULATE = (ScriptedCall("calculator", json.dumps({"expression": "17*23"})),)


@dataclass
class Mock:
    server: MockServerThread
    profile: Profile


@pytest.fixture
def mock() -> Iterator[Mock]:
    server = MockServerThread(MockConfig(tool_script=(CALCULATE,), answer_tool_results=True))
    server.start()
    profile = make_profile(server.base_url, dialect="zen", model="big-pickle", api_key="public")
    yield Mock(server, profile)
    assert server.server.errors == []
    server.stop()


def in_memory() -> Terminal:
    return Terminal.detect(
        environ={}, stdin=io.StringIO(""), stdout=io.StringIO(), stderr=io.StringIO()
    )


def shown(terminal: Terminal) -> tuple[str, str]:
    assert isinstance(terminal.stdout, io.StringIO) and isinstance(terminal.stderr, io.StringIO)
    return terminal.stdout.getvalue(), terminal.stderr.getvalue()


@pytest.mark.parametrize(
    ("system", "roles"), [(None, ["user"]), ("", ["user"]), ("be brief", ["system", "user"])]
)
def test_the_first_messages(system: str | None, roles: list[str]) -> None:
    messages = start_messages(system, "hi")
    assert [m["role"] for m in messages] == roles and messages[-1]["content"] == "hi"


def test_a_run_shows_the_call_and_the_answer_and_logs_it(mock: Mock) -> None:
    terminal = in_memory()
    transcript = run_tool_demo(ToolSetup(), mock.profile, "what is 17*23?", terminal)
    assert transcript.stopped == "answered" and len(transcript.steps) == 2
    stdout, stderr = shown(terminal)
    assert stdout.splitlines() == ["calculator: 391"]
    assert "calculator" in stderr and "391" in stderr
    with Store.open() as store:
        [summary] = store.list()
        roles = [m.role for m in store.get(summary.id).messages]
    assert roles == ["user", "assistant", "tool", "assistant"]


def test_max_steps_is_a_transcript_not_an_error(
    mock: Mock, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = ToolSetup(max_steps=1, as_json=True, log=False)
    terminal = in_memory()
    transcript = run_tool_demo(setup, mock.profile, "loop", terminal)
    assert transcript.stopped == "max_steps" and not transcript.steps[0].runs
    assert shown(terminal) == ("", "")  # --json: nothing on the terminal as it runs
    document = json.loads(capsys.readouterr().out)
    assert document["stopped"] == "max_steps" and document["profile"] == mock.profile.name
    with Store.open() as store:
        assert store.list() == []


def test_a_bad_choice_is_refused_before_any_request(mock: Mock, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--tool-choice takes auto, required, none"):
        run_tool_demo(ToolSetup(tool_choice="nope"), mock.profile, "hi", in_memory())
    with pytest.raises(UsageError, match="add --allow-python"):
        run_tool_demo(ToolSetup(only=("python",), root=tmp_path), mock.profile, "hi", in_memory())
    assert mock.server.server.requests == []
