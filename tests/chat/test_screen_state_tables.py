"""What a user sees in a real terminal (tmux) for chat's state and the listings' tables.

Each case runs at 80 and 120 columns and asserts on the screen itself, line by line:
``history list`` and ``profiles list`` keep ids, dates and URLs whole on their row,
under a header row; in ``chat``, a failed command leaves the chat as it was, /reasoning
says its mode, and ``chat -c`` shows where the conversation left off. Against llmcli's
zen-dialect mock server; nothing here times anything, it only waits for the screen.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import WriteProfiles
from rich.cells import cell_len

from llmcli.mock import MockConfig, MockServerThread
from llmcli.storage.store import Store, StoredMessage
from llmcli.ui.sanitize import neutralize

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")

WIDTHS = (80, 120)
HEIGHT = 30
WAIT = 30.0  # seconds the screen may take to show what a test waits for (a slow machine)
PROMPT_LINE = re.compile(r"^\S+ ›( |$)")


class Screen:
    """One command in a detached tmux window of a given size, read back as screen lines."""

    def __init__(self, command: list[str], width: int) -> None:
        self._dir = tempfile.mkdtemp(prefix="llmcli-tmux-")  # short: sockets have a length limit
        self._socket = os.path.join(self._dir, "s")
        shell = shlex.join(command) + "; echo '[exited]'; sleep 600"
        env = {**os.environ, "TERM": "xterm-256color"}
        env.pop("NO_COLOR", None)
        env.pop("COLUMNS", None)
        env.pop("LINES", None)
        self._tmux(
            "new-session", "-d", "-x", str(width), "-y", str(HEIGHT), "-s", "t", shell, env=env
        )
        self.width = width

    def _tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            ["tmux", "-S", self._socket, *args],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        return done.stdout

    def lines(self) -> list[str]:
        """The visible screen, trailing blank lines and trailing spaces dropped."""
        shown = [line.rstrip() for line in self._tmux("capture-pane", "-p", "-t", "t").split("\n")]
        while shown and not shown[-1]:
            shown.pop()
        return shown

    def wait_for(self, ready: Callable[[list[str]], bool]) -> list[str]:
        deadline = time.monotonic() + WAIT
        while True:
            shown = self.lines()
            if ready(shown):
                return shown
            if time.monotonic() > deadline:
                raise AssertionError("the screen never got there:\n" + "\n".join(shown))
            time.sleep(0.05)

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", "t", "-l", text)
        self._tmux("send-keys", "-t", "t", "Enter")

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self._socket, "kill-server"], capture_output=True)
        shutil.rmtree(self._dir, ignore_errors=True)


@pytest.fixture
def screens() -> Iterator[Callable[[list[str], int], Screen]]:
    opened: list[Screen] = []

    def open_screen(args: list[str], width: int) -> Screen:
        screen = Screen([sys.executable, "-m", "llmcli", *args], width)
        opened.append(screen)
        return screen

    yield open_screen
    for screen in opened:
        screen.close()


def exited(shown: list[str]) -> bool:
    return "[exited]" in shown


def prompts(shown: list[str]) -> int:
    """How many prompt lines (``model › ...``) the screen shows."""
    return sum(1 for line in shown if PROMPT_LINE.match(line))


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
        '[profiles.work]\nbase_url = "https://llm.internal.example.com/v1"\n'
        'api_key_env = "WORK_LLM_KEY"\nmodel = "qwen3-32b"\n'
    )


# --- tables ------------------------------------------------------------------------------

DATE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d")


@pytest.mark.parametrize("width", WIDTHS)
def test_history_list_keeps_every_row_on_one_line(
    width: int, screens: Callable[[list[str], int], Screen]
) -> None:
    models = ["SmolLM2-135M-Instruct", "/home/someone/models/qwen2.5-7b-instruct-q4_k_m.gguf"]
    with Store.open() as store:
        for index, model in enumerate(models * 2):
            conversation = store.new_conversation(profile="workstation", model=model)
            question = f"question {index}: what is the capital of France, and why is it famous?"
            store.append(conversation, StoredMessage("user", question))
        short_ids = [store.short_id(summary.id) for summary in store.list()]

    shown = screens(["history", "list"], width).wait_for(exited)
    table = shown[: shown.index("[exited]")]

    assert table[0].split() == ["ID", "UPDATED", "PROFILE", "MODEL", "MSGS", "TITLE"]
    assert len(table) == 1 + len(short_ids)  # one line a conversation: nothing wrapped
    for line, short_id in zip(table[1:], short_ids, strict=True):
        cells = line.split()
        assert cells[0] == short_id  # the whole id, ready to copy
        assert DATE.fullmatch(f"{cells[1]} {cells[2]}")
        assert cells[3] == "workstation"
        assert cell_len(line) <= width
    if width == 80:
        assert all(line.endswith("…") for line in table[1:])  # the titles gave way
    titles = [line.split("  ")[-1] for line in table[1:]]
    assert all(title.startswith("question ") for title in titles)


@pytest.mark.parametrize("width", WIDTHS)
def test_profiles_list_has_a_header_and_whole_urls(
    width: int, profiles: Path, mock: MockServerThread, screens: Callable[[list[str], int], Screen]
) -> None:
    shown = screens(["profiles", "list"], width).wait_for(exited)
    first_note = next(i for i, line in enumerate(shown) if line.startswith("llmcli: "))
    table, notes = shown[:first_note], shown[first_note : shown.index("[exited]")]

    assert table[0].split() == ["NAME", "BASE", "URL", "MODEL", "DIALECT", "KEY"]
    urls = {
        "zen": "https://opencode.ai/zen/v1",
        "local": "http://127.0.0.1:8080/v1",
        "demo": "http://127.0.0.1:0/v1",
        "mock": mock.base_url,
        "work": "https://llm.internal.example.com/v1",
    }
    rows = [line.split() for line in table[1:] if not line.startswith(" ")]
    assert [(row[0], row[1]) for row in rows] == list(urls.items())  # each URL whole, on its row
    assert all(cell_len(line) <= width for line in table)
    continuation = [line for line in table[1:] if line.startswith(" ")]
    if width == 120:
        assert continuation == []  # every profile on one line
    else:
        # Only the key's sentence wraps, in its own column.
        key_column = table[0].index("KEY")
        assert continuation and all(line[:key_column].strip() == "" for line in continuation)
    assert notes == wrap(
        [
            "llmcli: default profile: zen (used without -p)",
            f"llmcli: your profiles file: {profiles}",
        ],
        width,
    )


# --- chat ----------------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_a_failed_command_changes_nothing_on_screen_or_in_the_chat(
    width: int, profiles: Path, mock: MockServerThread, screens: Callable[[list[str], int], Screen]
) -> None:
    screen = screens(["chat", "-p", "mock"], width)
    screen.wait_for(lambda shown: prompts(shown) == 1)
    for number, command in enumerate(
        [
            "/profile nope",
            "/model grok-code-fast-1-free",
            "/profile",
            "/reasoning hide",
            "/reasoning",
        ],
        start=2,
    ):
        screen.type(command)
        shown = screen.wait_for(lambda shown, n=number: prompts(shown) == n)  # type: ignore[misc]

    known = "known: demo, local, mock, work, zen"
    expected = [
        "Enter sends · Alt+Enter new line · /help · Ctrl-D exits",
        "big-pickle › /profile nope",
        f"unknown profile 'nope'; {known}",
        "big-pickle › /model grok-code-fast-1-free",
        "model: grok-code-fast-1-free",
        "grok-code-fast-1-free › /profile",
        f"profile: mock at {mock.base_url}; model: grok-code-fast-1-free",
        "grok-code-fast-1-free › /reasoning hide",
        "reasoning: hide (not shown, still kept)",
        "grok-code-fast-1-free › /reasoning",
        "reasoning: hide (not shown, still kept)",
        "grok-code-fast-1-free ›",
    ]
    assert shown == wrap(expected, width)


def wrap(lines: list[str], width: int) -> list[str]:
    """Lines as a terminal of ``width`` columns shows them: cut every ``width`` cells."""
    return [
        line[start : start + width].rstrip()
        for line in lines
        for start in range(0, max(len(line), 1), width)
    ]


@pytest.mark.parametrize("width", WIDTHS)
def test_continue_shows_where_the_conversation_left_off(
    width: int, profiles: Path, screens: Callable[[list[str], int], Screen]
) -> None:
    # An escape sequence that would clear the screen, were it obeyed.
    answer = (
        "**Paris** \x1b[2J is the capital of France. " + "It is known for many things. " * 12
    ).strip() + "\n\n- museums\n- food\n"
    with Store.open() as store:
        conversation = store.new_conversation(profile="mock", model="big-pickle")
        store.append(conversation, StoredMessage("user", "first question"))
        store.append(conversation, StoredMessage("assistant", "first answer"))
        store.append(conversation, StoredMessage("user", "What is the capital of France?"))
        store.append(conversation, StoredMessage("assistant", answer))

    shown = screens(["chat", "-p", "mock", "-c"], width).wait_for(lambda s: prompts(s) >= 1)

    assert shown[0].startswith(f"continuing {conversation} (4 messages, the last at ")
    recap = shown[1 : shown.index("Enter sends · Alt+Enter new line · /help · Ctrl-D exits")]
    assert recap[0] == "  user:      What is the capital of France?"
    assert len(recap) == 5  # the question, then four lines of the answer: no more
    assert recap[1].startswith("  assistant: **Paris** ␛[2J is the capital")
    # The answer's words from the start, each line as full as the width allows.
    shown_words = [line.split() for line in recap[1:]]
    shown_words[0] = shown_words[0][1:]  # the label
    flat = " ".join(" ".join(words) for words in shown_words).removesuffix("…")
    assert " ".join(neutralize(answer).split()).startswith(flat)
    for words, following in itertools.pairwise(shown_words):
        assert cell_len(" " * 13 + " ".join([*words, following[0]])) > width
    assert recap[-1].endswith("…")
    assert all(line.startswith(" " * 13) for line in recap[2:])
    assert all(cell_len(line) <= width for line in recap)
    assert "first" not in "\n".join(shown)  # only the last exchange
    assert shown[-1] == "big-pickle ›"
