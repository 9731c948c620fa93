"""``llmcli chat`` in a real terminal (a pty driven by pexpect), against real servers.

The tiny model on the real llama-server answers "Hi there" after reasoning "plan it"
(a grammar in the profile). Ctrl-C mid-answer needs an answer slow enough to interrupt
on cue, which a real server cannot promise: that test uses llmcli's mock server pacing
tokens 50 ms apart.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from conftest import WriteProfiles
from rig import LlamaServer
from rig.payloads import THINK_GRAMMAR

from llmcli.mock import Faults, MockConfig, MockServerThread
from llmcli.storage.store import Store

PROMPT = "› "
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def slow_mock() -> Iterator[MockServerThread]:
    server = MockServerThread(MockConfig(itl=0.05, default_max_tokens=400))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def profiles(
    write_profiles: WriteProfiles, llama_think: LlamaServer, slow_mock: MockServerThread
) -> Path:
    grammar = json.dumps(THINK_GRAMMAR)
    return write_profiles(
        f'[profiles.tiny]\nbase_url = "{llama_think.base_url}"\nparams = {{ grammar = {grammar} }}\n'
        f'[profiles.slow]\nbase_url = "{slow_mock.base_url}"\ndialect = "zen"\nmodel = "big-pickle"\n'
    )


def spawn(*args: str) -> pexpect.spawn:
    # pexpect does not answer cursor position requests; tell prompt-toolkit not to ask.
    env = {
        **os.environ,
        "TERM": "xterm-256color",
        "COLUMNS": "100",
        "LINES": "30",
        "PROMPT_TOOLKIT_NO_CPR": "1",
    }
    env.pop("NO_COLOR", None)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "llmcli", "chat", *args],
        env=env,
        dimensions=(30, 100),
        encoding="utf-8",
        timeout=20,
    )
    child.expect_exact(PROMPT)
    return child


def send(child: pexpect.spawn, text: str) -> None:
    child.send(text + "\r")


def finish(child: pexpect.spawn) -> int:
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus  # type: ignore[no-any-return]


def stored() -> Store:
    return Store.open()


def test_message_answer_reasoning_and_status(profiles: Path) -> None:
    child = spawn("-p", "tiny")
    send(child, "hi")
    child.expect_exact("thought for")  # reasoning streamed live, then collapsed
    child.expect_exact("Hi there")
    child.expect(r"tiny · TTFT [0-9.]+ s")
    child.expect_exact(PROMPT)
    assert finish(child) == 0
    with stored() as store:
        latest = store.latest()
        assert latest is not None
        conversation = store.get(latest.id)
    user, answer = conversation.messages
    assert (user.role, user.content) == ("user", "hi")
    assert (answer.content, answer.reasoning, answer.finish_reason) == (
        "Hi there",
        "plan it\n",
        "stop",
    )
    assert answer.usage and answer.usage["completion_tokens"] > 0


def test_multiline_input_is_one_message(profiles: Path) -> None:
    child = spawn("-p", "tiny")
    child.send("first line")
    child.send("\x1b\r")  # Esc Enter, what Alt+Enter sends: a newline, not a send
    child.send("second line\r")
    child.expect_exact("Hi there")
    child.expect_exact(PROMPT)
    assert finish(child) == 0
    with stored() as store:
        conversation = store.get(store.latest().id)  # type: ignore[union-attr]
    assert conversation.messages[0].content == "first line\nsecond line"


def test_slash_commands(profiles: Path) -> None:
    child = spawn("-p", "tiny")
    send(child, "/help")
    child.expect_exact("/reasoning [show|hide|collapse]")
    send(child, "/modle")
    child.expect_exact("did you mean /model?")
    send(child, "/system be brief")
    child.expect_exact("system prompt: be brief")
    send(child, "/reasoning show")
    child.expect_exact("reasoning: show")
    send(child, "hi")
    child.expect_exact("Hi there")
    # Shown reasoning streams a character at a time, each styled: read it without styles.
    assert "plan it" in ANSI.sub("", child.before)
    child.expect_exact(PROMPT)
    send(child, "/usage")
    child.expect(r"1 answer\(s\): \d+ prompt, \d+ completion")
    send(child, "/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    with stored() as store:
        conversation = store.get(store.latest().id)  # type: ignore[union-attr]
    assert conversation.system == "be brief"


def test_ctrl_c_stops_the_answer_and_keeps_it(profiles: Path, slow_mock: MockServerThread) -> None:
    child = spawn("-p", "slow", "--raw")
    send(child, "tell me a long story")
    child.expect_exact(" ipsum")  # the answer is streaming
    child.sendintr()
    child.expect_exact("[interrupted]")
    child.expect_exact(PROMPT)
    send(child, "/usage")  # the REPL is alive and answers
    child.expect_exact("answer(s)")
    child.expect_exact(PROMPT)
    assert finish(child) == 0
    with stored() as store:
        conversation = store.get(store.latest().id)  # type: ignore[union-attr]
    answer = conversation.messages[-1]
    assert answer.role == "assistant" and answer.interrupted
    assert answer.content.startswith(" lorem ipsum")
    assert len(answer.content.split()) < 400  # stopped well before the end


def test_ctrl_c_twice_on_an_empty_prompt_exits(profiles: Path) -> None:
    child = spawn("-p", "tiny")
    child.send("some text")
    child.sendintr()  # clears the line
    child.sendintr()  # empty prompt: a hint
    child.expect_exact("Ctrl-C again")
    child.expect_exact(PROMPT)
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_continue_resumes_the_latest_conversation(profiles: Path) -> None:
    child = spawn("-p", "tiny")
    send(child, "first question")
    child.expect_exact("Hi there")
    child.expect_exact(PROMPT)
    assert finish(child) == 0
    with stored() as store:
        first_id = store.latest().id  # type: ignore[union-attr]

    child = spawn("-p", "tiny", "-c")
    # Where it left off: the last question and the start of the real server's answer.
    recap = ANSI.sub("", child.before).replace("\r", "").split("\n")
    start = next(i for i, line in enumerate(recap) if line.startswith(f"continuing {first_id} "))
    assert recap[start + 1 : start + 3] == ["  user:      first question", "  assistant: Hi there"]
    send(child, "second question")
    child.expect_exact("Hi there")
    child.expect_exact(PROMPT)
    assert finish(child) == 0
    with stored() as store:
        conversation = store.get(first_id)
    assert [m.content for m in conversation.messages if m.role == "user"] == [
        "first question",
        "second question",
    ]


def test_pasted_block_stays_one_message(profiles: Path) -> None:
    child = spawn("-p", "tiny")
    child.send("\x1b[200~pasted one\npasted two\x1b[201~")  # bracketed paste
    child.send("\r")
    child.expect_exact("Hi there")
    child.expect_exact(PROMPT)
    assert finish(child) == 0
    with stored() as store:
        conversation = store.get(store.latest().id)  # type: ignore[union-attr]
    assert [m.content for m in conversation.messages if m.role == "user"] == [
        "pasted one\npasted two"
    ]


def test_tab_completes_slash_commands_and_profiles(profiles: Path) -> None:
    child = spawn("-p", "tiny")
    child.send("/pro\t")
    child.expect_exact("/profile")
    child.send(" sl\t")
    child.expect_exact("slow")
    child.send("\r")
    child.expect_exact("profile: slow")
    child.expect_exact(PROMPT)
    assert finish(child) == 0


def test_switch_profile_mid_chat_keeps_the_conversation(
    profiles: Path, slow_mock: MockServerThread
) -> None:
    child = spawn("-p", "tiny")
    send(child, "hello tiny")
    child.expect_exact("Hi there")
    child.expect_exact(PROMPT)
    send(child, "/profile slow")
    child.expect_exact("profile: slow")
    child.expect_exact(PROMPT)
    send(child, "hello mock")
    child.expect_exact(" ipsum")
    child.sendintr()
    child.expect_exact(PROMPT)
    assert finish(child) == 0
    [request] = [r for r in slow_mock.server.requests if r.path.endswith("/chat/completions")]
    assert request.body["messages"][:3] == [
        {"role": "user", "content": "hello tiny"},
        {"role": "assistant", "content": "Hi there"},
        {"role": "user", "content": "hello mock"},
    ]


def test_retry_replaces_the_last_answer_and_save_writes_files(
    profiles: Path, tmp_path: Path
) -> None:
    child = spawn("-p", "tiny")
    send(child, "hi")
    child.expect_exact("Hi there")
    child.expect_exact(PROMPT)
    send(child, "/retry")
    child.expect_exact("Hi there")
    child.expect_exact(PROMPT)
    send(child, f"/save {tmp_path / 'chat.json'}")
    child.expect_exact("saved")
    child.expect_exact(PROMPT)
    send(child, f"/save {tmp_path / 'chat.md'}")
    child.expect_exact("saved")
    child.expect_exact(PROMPT)
    assert finish(child) == 0
    record = json.loads((tmp_path / "chat.json").read_text())
    assert [m["role"] for m in record["messages"]] == ["user", "assistant"]  # replaced, not added
    markdown = (tmp_path / "chat.md").read_text()
    assert "## user" in markdown and "Hi there" in markdown and "plan it" in markdown


def test_edit_opens_the_editor_for_the_next_message(profiles: Path, tmp_path: Path) -> None:
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nprintf "written in the editor" > "$1"\n')
    editor.chmod(0o755)
    os.environ["EDITOR"] = str(editor)
    try:
        child = spawn("-p", "tiny")
        send(child, "/edit")
        child.expect_exact("written in the editor")  # the next prompt holds it
        child.send("\r")
        child.expect_exact("Hi there")
        child.expect_exact(PROMPT)
        assert finish(child) == 0
    finally:
        del os.environ["EDITOR"]
    with stored() as store:
        conversation = store.get(store.latest().id)  # type: ignore[union-attr]
    assert conversation.messages[0].content == "written in the editor"


def test_backend_error_mid_answer_keeps_it_and_returns_to_the_prompt(
    write_profiles: WriteProfiles,
) -> None:
    broken = MockServerThread(MockConfig(faults=Faults(reset=1.0, reset_after_tokens=3)))
    broken.start()
    try:
        write_profiles(
            f'[profiles.broken]\nbase_url = "{broken.base_url}"\ndialect = "zen"\nmodel = "big-pickle"\n'
        )
        child = spawn("-p", "broken", "--raw")
        send(child, "hi")
        child.expect_exact("lost mid-answer")
        child.expect_exact(PROMPT)
        assert finish(child) == 0
    finally:
        broken.stop()
    with stored() as store:
        answer = store.get(store.latest().id).messages[-1]  # type: ignore[union-attr]
    assert answer.content.startswith(" lorem ipsum") and answer.error
