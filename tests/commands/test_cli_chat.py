"""``llmcli chat`` with stdin not a terminal: one message per line, scriptable."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import WriteProfiles, mock_server_process
from rig import LlamaServer
from rig.payloads import THINK_GRAMMAR
from typer.testing import CliRunner

from llmcli.cli import app
from llmcli.mock import Faults, MockConfig, MockServerThread
from llmcli.storage.store import Store


def invoke(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(app, ["chat", *args], input=input)


@pytest.fixture
def tiny(write_profiles: WriteProfiles, llama_think: LlamaServer) -> str:
    grammar = json.dumps(THINK_GRAMMAR)
    write_profiles(
        f'[profiles.tiny]\nbase_url = "{llama_think.base_url}"\nparams = {{ grammar = {grammar} }}\n'
    )
    return "tiny"


def test_each_line_is_a_message_in_one_conversation(tiny: str) -> None:
    result = invoke("-p", tiny, "-s", "be brief", input="first\n\nsecond\n")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Hi there\nHi there\n"
    assert result.stderr == "plan it\nplan it\n"
    with Store.open() as store:
        [summary] = store.list()
        conversation = store.get(summary.id)
    assert conversation.system == "be brief"
    assert [(m.role, m.content) for m in conversation.messages] == [
        ("user", "first"),
        ("assistant", "Hi there"),
        ("user", "second"),
        ("assistant", "Hi there"),
    ]


def test_reasoning_hidden_and_slash_commands_work_in_scripts(tiny: str) -> None:
    result = invoke("-p", tiny, "--reasoning", "hide", input="hi\n/usage\n/nope\n")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Hi there\n"
    assert "1 answer(s)" in result.stderr and "unknown command /nope" in result.stderr
    assert "plan it" not in result.stderr


def test_continue_sends_the_history_without_reasoning(
    tiny: str, write_profiles: WriteProfiles
) -> None:
    assert invoke("-p", tiny, input="one\n").exit_code == 0
    mock = MockServerThread(MockConfig())
    mock.start()
    try:
        write_profiles(
            f'[profiles.mock]\nbase_url = "{mock.base_url}"\ndialect = "zen"\nmodel = "big-pickle"\n'
        )
        result = invoke("-p", "mock", "-c", input="two\n")
        assert result.exit_code == 0, result.stderr
        [request] = mock.server.requests
    finally:
        mock.stop()
    sent = request.body["messages"]
    assert sent == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "Hi there"},
        {"role": "user", "content": "two"},
    ]


def test_a_failed_answer_is_one_line_and_a_non_zero_exit(write_profiles: WriteProfiles) -> None:
    mock = MockServerThread(MockConfig(faults=Faults(error_event=1.0, error_after_tokens=2)))
    mock.start()
    try:
        write_profiles(
            f'[profiles.mock]\nbase_url = "{mock.base_url}"\ndialect = "zen"\nmodel = "big-pickle"\n'
        )
        result = invoke("-p", "mock", input="hi\n")
    finally:
        mock.stop()
    assert result.exit_code == 1
    assert result.stdout.startswith(" lorem ipsum")  # what arrived is kept
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "server error mid-answer" in lines[0]


def test_continue_without_history_says_so(tiny: str) -> None:
    result = invoke("-p", tiny, "-c", input="hi\n")
    assert result.exit_code == 2
    assert "no conversation to continue yet" in result.stderr


def test_a_grammar_constrains_every_answer(
    write_profiles: WriteProfiles, llama_plain: LlamaServer, tmp_path: Any
) -> None:
    write_profiles(f'[profiles.plain]\nbase_url = "{llama_plain.base_url}"\ndialect = "llamacpp"\n')
    grammar = tmp_path / "yes.gbnf"
    grammar.write_text('root ::= "yes" | "no"\n')
    result = invoke("-p", "plain", "--grammar", str(grammar), input="one\ntwo\n")
    assert result.exit_code == 0, result.stderr
    assert all(line in ("yes", "no") for line in result.stdout.splitlines())
    assert len(result.stdout.splitlines()) == 2


def test_a_grammar_on_zen_is_refused_before_any_request(tmp_path: Any) -> None:
    grammar = tmp_path / "yes.gbnf"
    grammar.write_text('root ::= "yes"\n')
    result = invoke("-p", "zen", "--grammar", str(grammar), input="hi\n")
    assert result.exit_code == 2
    assert "--grammar needs llama.cpp" in result.stderr


# --- connections: one client per profile for the whole chat ------------------------------

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def chat_process(*args: str, stderr: Path) -> subprocess.Popen[str]:
    """``llmcli chat`` with pipes for stdin and stdout, so a test can talk to it line by line."""
    with stderr.open("w") as sink:  # the child has its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "llmcli", "chat", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=sink,
            text=True,
        )


def say(chat: subprocess.Popen[str], line: str) -> None:
    assert chat.stdin is not None
    chat.stdin.write(line + "\n")
    chat.stdin.flush()


@posix_only
def test_each_profile_keeps_one_connection_for_the_whole_chat(
    write_profiles: WriteProfiles, tmp_path: Path
) -> None:
    log = tmp_path / "mock.jsonl"
    with mock_server_process("--log", str(log)) as (server, url):
        # Two names for one server: two clients, each to keep its own connection.
        write_profiles(
            f'[profiles.one]\nbase_url = "{url}"\ndialect = "zen"\nmodel = "big-pickle"\n'
            f'[profiles.two]\nbase_url = "{url}"\ndialect = "zen"\nmodel = "big-pickle"\n'
        )
        script = "a1\na2\n/profile two\nb1\nb2\n/profile one\na3\n/profile two\nb3\n"
        result = invoke("-p", "one", input=script)
        assert result.exit_code == 0, result.stderr
        server.send_signal(signal.SIGTERM)  # it stops, having written every line
        assert server.wait(timeout=10) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["path"] for line in lines] == ["/v1/chat/completions"] * 6
    assert all(line["completed"] for line in lines)
    by_message = {line["body"]["messages"][-1]["content"]: line["connection"] for line in lines}
    assert all(isinstance(number, int) for number in by_message.values())
    one = {by_message[text] for text in ("a1", "a2", "a3")}
    two = {by_message[text] for text in ("b1", "b2", "b3")}
    assert len(one) == 1 and len(two) == 1 and one != two, by_message


@posix_only
def test_sigterm_mid_answer_keeps_it_and_exits_143(
    write_profiles: WriteProfiles, tmp_path: Path
) -> None:
    mock = MockServerThread(MockConfig(itl=0.05, default_max_tokens=400))  # 20 s an answer
    mock.start()
    try:
        write_profiles(
            f'[profiles.slow]\nbase_url = "{mock.base_url}"\ndialect = "zen"\nmodel = "big-pickle"\n'
        )
        chat = chat_process("-p", "slow", stderr=tmp_path / "stderr")
        try:
            say(chat, "hi")
            deadline = time.monotonic() + 30
            while not (mock.server.requests and "content" in mock.server.requests[0].kinds()):
                assert time.monotonic() < deadline, "the answer never started"
                time.sleep(0.05)
            chat.send_signal(signal.SIGTERM)
            assert chat.wait(timeout=30) == 128 + signal.SIGTERM
        finally:
            if chat.poll() is None:
                chat.kill()
                chat.wait()
        assert chat.stdout is not None
        assert chat.stdout.read().startswith(" lorem")  # what arrived is kept
    finally:
        mock.stop()
    assert (tmp_path / "stderr").read_text() == "llmcli: error: terminated (SIGTERM)\n"
    with Store.open() as store:
        [summary] = store.list()
        messages = store.get(summary.id).messages
    assert [(m.role, m.interrupted) for m in messages] == [("user", False), ("assistant", True)]
    assert messages[1].content.startswith(" lorem")


@posix_only
def test_sigterm_while_waiting_for_the_next_line_ends_the_chat_with_143(
    write_profiles: WriteProfiles, tmp_path: Path
) -> None:
    mock = MockServerThread(MockConfig())
    mock.start()
    try:
        write_profiles(
            f'[profiles.mock]\nbase_url = "{mock.base_url}"\ndialect = "zen"\nmodel = "big-pickle"\n'
        )
        chat = chat_process("-p", "mock", stderr=tmp_path / "stderr")
        assert chat.stdout is not None
        try:
            say(chat, "hi")
            assert chat.stdout.readline().startswith(" lorem")
            chat.send_signal(signal.SIGTERM)  # stdin stays open: the chat waits for a line
            assert chat.wait(timeout=30) == 128 + signal.SIGTERM
        finally:
            if chat.poll() is None:
                chat.kill()
                chat.wait()
    finally:
        mock.stop()
    assert (tmp_path / "stderr").read_text() == "llmcli: error: terminated (SIGTERM)\n"
