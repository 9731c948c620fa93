"""SIGTERM ends a terminal chat (a pty driven by pexpect) as Ctrl-C ends an answer.

Mid-answer, the answer is kept, marked interrupted; at the prompt, the chat simply ends.
Either way one line says so, the exit code is 143 (128 + SIGTERM), and the clients are
closed on the way out.
The answers come from llmcli's mock server pacing tokens 50 ms apart, so the signal can
land while one streams. (Scripted chats: ``test_cli_chat.py``.)
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator

import pexpect
import pytest
from conftest import WriteProfiles

from llmcli.mock import MockConfig, MockServerThread
from llmcli.storage.store import Store

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and ptys")

PROMPT = "› "


@pytest.fixture
def slow(write_profiles: WriteProfiles) -> Iterator[str]:
    server = MockServerThread(MockConfig(itl=0.05, default_max_tokens=400))
    server.start()
    write_profiles(
        f'[profiles.slow]\nbase_url = "{server.base_url}"\ndialect = "zen"\nmodel = "big-pickle"\n'
    )
    yield "slow"
    server.stop()


def spawn(*args: str) -> pexpect.spawn:
    # pexpect does not answer cursor position requests; tell prompt-toolkit not to ask.
    env = {**os.environ, "TERM": "xterm-256color", "PROMPT_TOOLKIT_NO_CPR": "1"}
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


def ended_by_sigterm(child: pexpect.spawn) -> int | None:
    child.kill(signal.SIGTERM)
    child.expect_exact("llmcli: error: terminated (SIGTERM)")
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus  # type: ignore[no-any-return]


def test_sigterm_mid_answer_keeps_it_and_ends_the_chat(slow: str) -> None:
    child = spawn("-p", slow, "--raw")
    child.send("tell me a long story\r")
    child.expect_exact(" ipsum")  # the answer is streaming
    assert ended_by_sigterm(child) == 128 + signal.SIGTERM
    with Store.open() as store:
        conversation = store.get(store.latest().id)  # type: ignore[union-attr]
    answer = conversation.messages[-1]
    assert answer.role == "assistant" and answer.interrupted
    assert answer.content.startswith(" lorem ipsum")


def test_sigterm_at_the_prompt_ends_the_chat(slow: str) -> None:
    child = spawn("-p", slow)
    assert ended_by_sigterm(child) == 128 + signal.SIGTERM
