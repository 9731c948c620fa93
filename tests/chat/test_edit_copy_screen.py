"""Editing the past and copying code, as a user does it in a real terminal (tmux):
``/edit-last`` puts the message back in the prompt and Enter sends it as a branch, Ctrl-C
there gives up the edit; ``/copy N`` reaches tmux's paste buffer by OSC 52 when no
clipboard program is there; code blocks on the screen carry no margin and no padding.
Against llmcli's mock server, a scripted stream, and the real llama-server."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import WriteProfiles
from rig import LlamaServer
from test_chat_screen import PROMPT, Screen, ScriptedStream, chat_env
from typer.testing import CliRunner

from llmcli.cli import app
from llmcli.mock import MockConfig, MockServerThread
from llmcli.storage.store import Fork, Store

CODE_ANSWER = [
    "Install it:\n\n",
    "```bash\npip install llmcli\n```\n\n",
    "Then, from Python:\n\n",
    "```python\ndef main():\n    if True:\n        print('tabs\\tand spaces')\n```\n\n",
    "Done.",
]
PYTHON_BLOCK = "def main():\n    if True:\n        print('tabs\\tand spaces')"


class TmuxScreen(Screen):
    """A chat in tmux, with tmux's own options and paste buffers at hand."""

    def set_option(self, option: str, value: str) -> None:
        self._tmux("set-option", "-g", option, value)

    def buffer(self) -> str:
        return self._tmux("show-buffer")

    def raw_lines(self) -> list[str]:
        """The screen and scrollback as drawn: trailing spaces kept (``-N``)."""
        return self._tmux("capture-pane", "-t", "t", "-p", "-N", "-S", "-5000").splitlines()


@pytest.fixture
def chat_screen(
    write_profiles: WriteProfiles, tmp_path: Path
) -> Iterator[Callable[..., TmuxScreen]]:
    screens: list[TmuxScreen] = []
    servers: list[MockServerThread] = []
    empty_path = tmp_path / "no-programs"  # no clipboard program, whatever the machine has
    empty_path.mkdir()

    def open_screen(
        width: int, height: int, base_url: str | None = None, dialect: str = "zen"
    ) -> TmuxScreen:
        if base_url is None:
            server = MockServerThread(MockConfig(default_max_tokens=4))
            server.start()
            servers.append(server)
            base_url = server.base_url
        profiles = write_profiles(
            f'[profiles.slow]\nbase_url = "{base_url}"\ndialect = "{dialect}"\n'
            'model = "big-pickle"\n'
        )
        env = chat_env(profiles, tmp_path, path=str(empty_path))
        argv = [sys.executable, "-m", "llmcli", "chat", "-p", "slow"]
        shown = TmuxScreen(argv, env, width, height)
        screens.append(shown)
        shown.wait_for_prompt(1)
        return shown

    yield open_screen
    for shown in screens:
        shown.close()
    for server in servers:
        server.stop()


def send(shown: TmuxScreen, text: str, prompts: int) -> list[str]:
    shown.type(text)
    shown.keys("Enter")
    return shown.wait_for_prompt(prompts)


def last_prompt(shown: TmuxScreen, count: int) -> str:
    """The ``count``-th prompt, once it is on the screen: the line as it stands."""
    lines = shown.wait_for_prompt(count)
    return [line for line in lines if line.startswith(PROMPT)][count - 1]


def history(data: Path) -> tuple[list[str], tuple[Fork, ...]]:
    with Store.open(data / "history.db") as store:
        latest = store.latest()
        assert latest is not None
        conversation = store.get(latest.id)
    return [m.content for m in conversation.messages], conversation.forks


def test_edit_last_prefills_the_prompt_and_sends_a_branch(
    chat_screen: Callable[..., TmuxScreen], tmp_path: Path
) -> None:
    shown = chat_screen(100, 30)
    send(shown, "first", 2)
    send(shown, "second", 3)
    shown.type("/edit-last")
    shown.keys("Enter")
    shown.wait_for("edit it, Enter sends it as a new branch")
    # The message is back in the prompt, ready to change.
    assert last_prompt(shown, 4) == f"{PROMPT} second"
    shown.type(", edited")
    shown.keys("Enter")
    lines = shown.wait_for_prompt(5)
    assert f"{PROMPT} second, edited" in lines

    messages, forks = history(tmp_path / "data")
    assert messages[0::2] == ["first", "second, edited"]
    assert forks == (Fork(after=2, starts=(3,)),)

    # Ctrl-C in the prefilled prompt gives the edit up; the next message is a plain one.
    shown.type("/edit-last")
    shown.keys("Enter")
    assert last_prompt(shown, 6) == f"{PROMPT} second, edited"
    shown.keys("C-c")
    shown.wait_for("edit cancelled; nothing changed")
    send(shown, "third", 8)
    messages, forks = history(tmp_path / "data")
    assert messages[0::2] == ["first", "second, edited", "third"]
    assert forks == (Fork(after=2, starts=(3,)),)


def test_undo_and_edit_in_the_terminal_against_the_real_llama_server(
    chat_screen: Callable[..., TmuxScreen], llama_plain: LlamaServer, tmp_path: Path
) -> None:
    shown = chat_screen(100, 30, base_url=llama_plain.base_url, dialect="llamacpp")
    send(shown, "first", 2)
    send(shown, "second", 3)
    lines = send(shown, "/undo", 4)
    assert "dropped the last exchange; kept as a branch" in lines
    shown.type("/edit-last")
    shown.keys("Enter")
    assert last_prompt(shown, 5) == f"{PROMPT} first"
    shown.type(" again")
    shown.keys("Enter")
    shown.wait_for_prompt(6)
    messages, forks = history(tmp_path / "data")
    assert messages[0::2] == ["first again"]
    assert forks == (Fork(after=None, starts=(1,)),)
    # /retry asks again and keeps the earlier answer (message 6) as a branch.
    lines = send(shown, "/retry", 7)
    assert "asking again; the earlier answer stays as a branch (/branches)" in lines
    messages, forks = history(tmp_path / "data")
    assert messages[0] == "first again" and len(messages) == 2
    assert forks == (Fork(after=None, starts=(1,)), Fork(after=5, starts=(6,)))


def test_undo_in_the_terminal(chat_screen: Callable[..., TmuxScreen], tmp_path: Path) -> None:
    shown = chat_screen(100, 30)
    send(shown, "first", 2)
    send(shown, "second", 3)
    lines = send(shown, "/undo", 4)
    assert "dropped the last exchange; kept as a branch" in lines
    send(shown, "/branches", 5)
    shown.wait_for(r"^  4  4 messages, after message 2: second$")
    assert history(tmp_path / "data")[0][0::2] == ["first"]


@pytest.fixture
def code_stream() -> Iterator[ScriptedStream]:
    stream = ScriptedStream(CODE_ANSWER, gap=0.05)
    yield stream
    stream.close()


def test_copy_n_reaches_tmux_by_osc52(
    chat_screen: Callable[..., TmuxScreen], code_stream: ScriptedStream
) -> None:
    shown = chat_screen(120, 30, base_url=code_stream.base_url)
    send(shown, "how do I install it?", 2)
    # tmux's default (set-clipboard external) drops what programs send: no buffer.
    send(shown, "/copy 1", 3)
    assert shown.buffer() == ""
    shown.set_option("set-clipboard", "on")  # now tmux keeps what OSC 52 sends as a buffer
    lines = send(shown, "/copy 2", 4)
    said = next(line for line in lines if line.startswith("code block 2:"))
    assert said.startswith(
        f"code block 2: sent {len(PYTHON_BLOCK)} characters to the terminal's clipboard (OSC 52)"
    )
    assert shown.buffer() == PYTHON_BLOCK
    send(shown, "/copy 1", 5)
    assert shown.buffer() == "pip install llmcli"
    lines = send(shown, "/copy 3", 6)
    assert "/copy 3: the last answer has 2 code blocks" in lines


def test_code_on_the_screen_has_no_margin_or_padding(
    chat_screen: Callable[..., TmuxScreen], code_stream: ScriptedStream
) -> None:
    shown = chat_screen(80, 30, base_url=code_stream.base_url)
    send(shown, "how do I install it?", 2)
    lines = shown.raw_lines()
    for code in ("pip install llmcli", *PYTHON_BLOCK.splitlines()):
        assert code in lines, f"{code!r} is not a line of its own as written:\n" + "\n".join(
            repr(line) for line in lines
        )


def test_undo_and_edit_against_the_real_llama_server(
    write_profiles: WriteProfiles, llama_plain: LlamaServer
) -> None:
    write_profiles(f'[profiles.plain]\nbase_url = "{llama_plain.base_url}"\ndialect = "llamacpp"\n')
    script = "hello\nmore\n/undo\nagain\n/edit-last\nagain, edited\n/branches\n"
    result = CliRunner().invoke(app, ["chat", "-p", "plain", "--max-tokens", "4"], input=script)
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    with Store.open() as store:
        latest = store.latest()
        assert latest is not None
        current = store.get(latest.id)
        branches = store.branches(latest.id)
    assert [m.content for m in current.messages if m.role == "user"] == ["hello", "again, edited"]
    assert all(m.error is None for m in current.messages)
    assert current.forks == (Fork(after=2, starts=(3, 5)),)
    assert (branches[0].leaf, branches[0].current) == (8, True)
    assert sorted(b.leaf for b in branches[1:]) == [4, 6]
    # -c goes on from the edited branch.
    again = CliRunner().invoke(app, ["chat", "-p", "plain", "-c", "--max-tokens", "4"], input="x\n")
    assert again.exit_code == 0, again.stderr
    with Store.open() as store:
        assert [m.content for m in store.get(latest.id).messages if m.role == "user"] == [
            "hello",
            "again, edited",
            "x",
        ]
