"""Editing the past in a scripted (piped) chat against llmcli's zen-dialect mock server:
``/undo``, ``/edit-last [N]``, ``/branches``, ``/branch N``, ``-c`` on the branch that was
current, the same without a history (``--no-log``), a failed command that changes nothing,
and ``/copy N``. What the server is sent is the proof of what the chat goes on from."""

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
from llmcli.storage.store import Fork, Store, StoredMessage

ANSWER = " lorem ipsum dolor"  # the mock's first three words: every answer here


def invoke(*args: str, input: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, ["chat", "-p", "mock", *args], input=input, env=env)


@pytest.fixture
def mock() -> Iterator[MockServerThread]:
    server = MockServerThread(MockConfig(default_max_tokens=3))
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def profiles(write_profiles: WriteProfiles, mock: MockServerThread) -> Path:
    return write_profiles(
        f'[profiles.mock]\nbase_url = "{mock.base_url}"\ndialect = "zen"\nmodel = "big-pickle"\n'
    )


def sent(mock: MockServerThread) -> list[list[str]]:
    """The user and assistant texts of each chat request, in order."""
    return [
        [m["content"] for m in request.body["messages"] if m["role"] != "system"]
        for request in mock.server.requests
        if request.path.endswith("/chat/completions")
    ]


def stored(branch: int | None = None) -> tuple[list[str], tuple[Fork, ...]]:
    with Store.open() as store:
        latest = store.latest()
        assert latest is not None
        conversation = store.get(latest.id, branch=branch)
    return [m.content for m in conversation.messages], conversation.forks


def notes(result: Any) -> list[str]:
    return [line.removeprefix("llmcli: ") for line in result.stderr.splitlines()]


def test_undo_drops_the_exchange_and_keeps_it_as_a_branch(mock: MockServerThread) -> None:
    result = invoke(input="first\nsecond\n/undo\nthird\n")
    assert result.exit_code == 0, result.stderr
    assert "dropped the last exchange; kept as a branch" in notes(result)
    assert sent(mock)[-1] == ["first", ANSWER, "third"]
    assert stored() == (["first", ANSWER, "third", ANSWER], (Fork(after=2, starts=(3,)),))
    assert stored(branch=3)[0] == ["first", ANSWER, "second", ANSWER]


def test_retry_keeps_the_earlier_answer_as_a_branch(mock: MockServerThread) -> None:
    result = invoke(input="first\n/branches\n/retry\nsecond\n/branches\n")
    assert result.exit_code == 0, result.stderr
    assert "one branch only: /undo, /edit-last and /retry start another" in notes(result)
    assert "asking again; the earlier answer stays as a branch (/branches)" in notes(result)
    # The server is asked again from the question alone, then goes on from the new answer.
    assert sent(mock) == [["first"], ["first"], ["first", ANSWER, "second"]]
    assert stored() == (["first", ANSWER, "second", ANSWER], (Fork(after=1, starts=(2,)),))
    assert stored(branch=2)[0] == ["first", ANSWER]
    lines = notes(result)
    listing = lines[lines.index("branches (/branch N goes on from the one ending at message N):") :]
    assert listing[1:] == [
        "* 5  4 messages, current: second",
        "  2  2 messages, after message 1: lorem ipsum dolor",  # the earlier answer
    ]


def test_edit_last_sends_the_edited_message_as_a_new_branch(mock: MockServerThread) -> None:
    result = invoke(input="first\nsecond\n/edit-last\nsecond, edited\n/branches\n")
    assert result.exit_code == 0, result.stderr
    assert sent(mock)[-1] == ["first", ANSWER, "second, edited"]
    lines = notes(result)
    listing = lines[lines.index("branches (/branch N goes on from the one ending at message N):") :]
    assert listing[1:] == [
        "* 6  4 messages, current: second, edited",
        "  4  4 messages, after message 2: second",
    ]


def test_edit_last_n_goes_back_further(mock: MockServerThread) -> None:
    result = invoke(input="first\nsecond\n/edit-last 2\nfirst, again\n")
    assert result.exit_code == 0, result.stderr
    assert sent(mock)[-1] == ["first, again"]
    assert stored()[1] == (Fork(after=None, starts=(1,)),)


def test_a_command_instead_of_the_edited_message_cancels_the_edit(
    mock: MockServerThread,
) -> None:
    result = invoke(input="first\n/edit-last\n/usage\nsecond\n")
    assert result.exit_code == 0, result.stderr
    assert sent(mock)[-1] == ["first", ANSWER, "second"]
    assert stored()[1] == ()


def test_switching_branches_and_continuing_the_one_that_was_current(
    mock: MockServerThread,
) -> None:
    first = invoke(input="first\nsecond\n/undo\nthird\n/branch 4\n")
    assert first.exit_code == 0, first.stderr
    assert "on the branch ending at message 4 (4 messages)" in notes(first)
    later = invoke("-c", input="more\n")
    assert later.exit_code == 0, later.stderr
    assert sent(mock)[-1] == ["first", ANSWER, "second", ANSWER, "more"]
    assert stored()[1] == (Fork(after=2, starts=(5,)),)


def test_failed_commands_leave_the_chat_as_it_was(mock: MockServerThread) -> None:
    script = "/undo\n/edit-last\nhi\n/undo 2\n/undo x\n/branch 99\n/branch\n/copy 0\nagain\n"
    result = invoke(input=script)
    assert result.exit_code == 0, result.stderr
    assert notes(result) == [
        "nothing to undo or edit yet: send a message first",
        "nothing to undo or edit yet: send a message first",
        "2 is not one of your messages: this branch has 1 (1 is the last)",
        "/undo takes a number from 1: /undo 2",
        f"conversation {latest_id()} has no message 99",
        "/branch takes a number from 1: /branch 2",
        "/copy takes a number from 1: /copy 2",
    ]
    assert sent(mock) == [["hi"], ["hi", ANSWER, "again"]]


def latest_id() -> str:
    with Store.open() as store:
        latest = store.latest()
    assert latest is not None
    return latest.id


def test_without_a_history_undo_forgets_and_branches_say_why(
    mock: MockServerThread, tmp_path: Path
) -> None:
    saved = tmp_path / "chat.json"
    script = f"first\nsecond\n/undo\nthird\n/branches\n/save {saved}\n"
    result = invoke("--no-log", input=script)
    assert result.exit_code == 0, result.stderr
    lines = notes(result)
    assert "dropped the last exchange; gone (not logged)" in lines
    assert "branches live in the history, and this chat is not logged (--no-log)" in lines
    assert sent(mock)[-1] == ["first", ANSWER, "third"]
    record = json.loads(saved.read_text())
    assert [m["content"] for m in record["messages"]] == ["first", ANSWER, "third", ANSWER]


ANSWER_WITH_CODE = (
    "Two ways:\n\n```bash\npip install llmcli\n```\n\nor\n\n"
    "~~~python\nimport subprocess\nsubprocess.run(['pip', 'install', 'llmcli'])\n~~~\n"
)


def test_copy_n_copies_that_code_block(tmp_path: Path) -> None:
    with Store.open() as store:
        cid = store.new_conversation(profile="mock", model="big-pickle")
        store.append(cid, StoredMessage("user", "how do I install it?"))
        store.append(cid, StoredMessage("assistant", ANSWER_WITH_CODE))
    sink = tmp_path / "clipboard"
    program = tmp_path / "bin" / "wl-copy"
    program.parent.mkdir()
    program.write_text(f'#!/bin/sh\n/bin/cat > "{sink}"\n')
    program.chmod(0o755)
    env = {"PATH": str(program.parent), "WAYLAND_DISPLAY": "wayland-0"}  # wl-copy needs it

    result = invoke("-c", input="/copy 2\n", env=env)
    assert result.exit_code == 0, result.stderr
    code = "import subprocess\nsubprocess.run(['pip', 'install', 'llmcli'])"
    assert notes(result)[-1] == f"code block 2: copied {len(code)} characters with wl-copy"
    assert sink.read_text() == code

    result = invoke("-c", input="/copy 3\n/copy\n", env=env)
    assert notes(result)[-2] == "/copy 3: the last answer has 2 code blocks"
    assert notes(result)[-1] == f"copied {len(ANSWER_WITH_CODE)} characters with wl-copy"
    assert sink.read_text() == ANSWER_WITH_CODE


def test_continue_goes_on_with_the_profile_the_conversation_was_on(
    write_profiles: WriteProfiles,
) -> None:
    with (
        MockServerThread(MockConfig(default_max_tokens=2)) as home,
        MockServerThread(MockConfig(default_max_tokens=2)) as other,
    ):
        write_profiles(
            'default = "home"\n'
            f'[profiles.home]\nbase_url = "{home.base_url}"\ndialect = "zen"\nmodel = "big-pickle"\n'
            f'[profiles.other]\nbase_url = "{other.base_url}"\ndialect = "zen"\n'
            'model = "big-pickle"\n'
        )
        runner = CliRunner()
        assert runner.invoke(app, ["chat", "-p", "other"], input="one\n").exit_code == 0
        # Not the default profile: the conversation (and its files) stays where it was.
        result = runner.invoke(app, ["chat", "-c"], input="two\n")
        assert result.exit_code == 0, result.stderr
        assert sent(home) == [] and [m[-1] for m in sent(other)] == ["one", "two"]
        result = runner.invoke(app, ["chat", "-c", "-p", "home"], input="three\n")  # -p wins
        assert result.exit_code == 0, result.stderr
        assert [m[-1] for m in sent(home)] == ["three"]
