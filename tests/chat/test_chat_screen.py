"""What a user sees of `llmcli chat` in a real terminal: tmux, read back line by line.

Issue 13: answers drawn twice after Ctrl-C or a key typed mid-answer, the top of a tall
answer lost, a stale copy after the window shrank, a stale table row, no sign of life
while waiting. Each test drives the real REPL in a tmux pane of a given size, against
llmcli's mock server (tokens paced 100 ms apart, so keys land mid-answer on cue) or a
scripted stream, and counts lines on the screen and in the scrollback.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import WriteProfiles

from llmcli.mock import MockConfig, MockServerThread
from llmcli.mock.vocabulary import CONTENT_WORDS

PROMPT = "big-pickle ›"
FIRST_LINE_WORDS = 6  # "lorem ipsum dolor sit amet consectetur": the mock's first words


class Screen:
    """One tmux pane running `llmcli chat`, on its own tmux server."""

    def __init__(self, argv: list[str], env: dict[str, str], width: int, height: int) -> None:
        if shutil.which("tmux") is None:
            pytest.fail("tmux is not installed: apt-get install -y tmux", pytrace=False)
        self.socket = f"llmcli-test-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
        # env -i: the test process's COLUMNS and LINES (set by the CLI tests' runner)
        # would override the pane's real size.
        command = f"env -i {exports} {shlex.join(argv)}; echo EXITED $?; sleep 600"
        self._tmux("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), command)
        self._tmux("set-option", "-t", "t", "history-limit", "5000")

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        return done.stdout

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "t", *keys)

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", "t", "-l", text)

    def resize(self, width: int, height: int) -> None:
        self._tmux("resize-window", "-t", "t", "-x", str(width), "-y", str(height))

    def lines(self, scrollback: bool = True) -> list[str]:
        args = ["capture-pane", "-t", "t", "-p"] + (["-S", "-5000"] if scrollback else [])
        return [line.rstrip() for line in self._tmux(*args).splitlines()]

    def wait_for(self, pattern: str, timeout: float = 20, scrollback: bool = True) -> list[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.lines(scrollback)
            if any(regex.search(line) for line in lines):
                return lines
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} never showed; the screen:\n" + "\n".join(self.lines()))

    def wait_for_words(self, count: int, timeout: float = 20) -> None:
        """Until at least ``count`` of the answer's words are on the screen."""
        deadline = time.monotonic() + timeout
        while len(answer_words(self.lines())) < count:
            if time.monotonic() > deadline:
                raise AssertionError("too few words; the screen:\n" + "\n".join(self.lines()))
            time.sleep(0.05)

    def prompts(self) -> int:
        return sum(1 for line in self.lines() if line.startswith(PROMPT))

    def wait_for_prompt(self, count: int, timeout: float = 30) -> list[str]:
        deadline = time.monotonic() + timeout
        while self.prompts() < count:
            if time.monotonic() > deadline:
                raise AssertionError("no prompt; the screen:\n" + "\n".join(self.lines()))
            time.sleep(0.05)
        return self.lines()

    def close(self) -> None:
        self._tmux("kill-server")


def chat_env(profiles: Path, tmp_path: Path, path: str | None = None) -> dict[str, str]:
    """A chat's environment in tmux: its profiles, its own data and config directories, a
    terminal that answers no cursor query; ``path`` instead of this process's PATH."""
    return {
        "TERM": "xterm-256color",
        "LLMCLI_CONFIG": str(profiles),
        "LLMCLI_DATA_DIR": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "PATH": os.environ.get("PATH", "") if path is None else path,
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "PROMPT_TOOLKIT_NO_CPR": "1",
        "LANG": "C.UTF-8",
    }


@pytest.fixture
def screen(write_profiles: WriteProfiles, tmp_path: Path) -> Iterator[Callable[..., Screen]]:
    screens: list[Screen] = []
    servers: list[MockServerThread] = []

    def open_screen(
        width: int,
        height: int,
        *args: str,
        config: MockConfig | None = None,
        base_url: str | None = None,
    ) -> Screen:
        if base_url is None:
            server = MockServerThread(config or MockConfig(itl=0.1, default_max_tokens=60))
            server.start()
            servers.append(server)
            base_url = server.base_url
        profiles = write_profiles(
            f'[profiles.slow]\nbase_url = "{base_url}"\ndialect = "zen"\nmodel = "big-pickle"\n'
        )
        env = chat_env(profiles, tmp_path)
        shown = Screen(
            [sys.executable, "-m", "llmcli", "chat", "-p", "slow", *args], env, width, height
        )
        screens.append(shown)
        shown.wait_for_prompt(1)
        return shown

    yield open_screen
    for shown in screens:
        shown.close()
    for server in servers:
        server.stop()


def answer_words(lines: list[str]) -> list[str]:
    """The mock's words on screen, in order (its answer is only those words)."""
    vocabulary = set(CONTENT_WORDS)
    words: list[str] = []
    for line in lines:
        if line.startswith(PROMPT) or " · " in line:
            continue
        parts = line.split()
        if parts and all(part in vocabulary for part in parts):
            words += parts
    return words


def answer_block(lines: list[str], prompt_line: str) -> list[str]:
    """Every line between the last ``prompt_line`` and the answer's end ([interrupted] or
    the status line), which must all be the answer's words: a stale copy or a fragment
    of a line (split mid-word) fails here."""
    start = max(i for i, line in enumerate(lines) if line == prompt_line) + 1
    block: list[str] = []
    for line in lines[start:]:
        if line == "[interrupted]" or line.startswith("big-pickle · "):
            break
        block.append(line)
    vocabulary = set(CONTENT_WORDS)
    strays = [line for line in block if not line or any(w not in vocabulary for w in line.split())]
    assert not strays, "lines that are not the answer's:\n" + "\n".join(block)
    return [word for line in block for word in line.split()]


def expected_words(count: int) -> list[str]:
    return [CONTENT_WORDS[i % len(CONTENT_WORDS)] for i in range(count)]


def first_lines(lines: list[str]) -> int:
    first = " ".join(CONTENT_WORDS[:FIRST_LINE_WORDS])
    return sum(1 for line in lines if line.startswith(first))


@pytest.mark.parametrize("width", [60, 100])
def test_ctrl_c_mid_answer_draws_it_once(screen: Callable[..., Screen], width: int) -> None:
    shown = screen(width, 24, "--max-tokens", "300")
    shown.type("go")
    shown.keys("Enter")
    shown.wait_for_words(20)
    shown.keys("C-c")
    lines = shown.wait_for_prompt(2)
    assert first_lines(lines) == 1, "\n".join(lines)
    words = answer_block(lines, f"{PROMPT} go")
    assert words == expected_words(len(words)) and len(words) >= 20
    assert lines.count("[interrupted]") == 1


@pytest.mark.parametrize("width", [60, 100])
def test_keys_typed_mid_answer_are_not_drawn_into_it_and_wait_for_the_prompt(
    screen: Callable[..., Screen], width: int
) -> None:
    shown = screen(width, 24, "--max-tokens", "40")
    shown.type("go")
    shown.keys("Enter")
    shown.wait_for_words(3)
    shown.type("next q")
    lines = shown.wait_for_prompt(2)
    assert first_lines(lines) == 1, "\n".join(lines)
    assert answer_block(lines, f"{PROMPT} go") == expected_words(40)
    # The keys typed mid-answer wait, and the next prompt reads them.
    shown.wait_for(rf"^{re.escape(PROMPT)} next q$")


def test_an_answer_taller_than_the_window_reaches_the_scrollback_once(
    screen: Callable[..., Screen],
) -> None:
    shown = screen(40, 12, "--max-tokens", "200", config=MockConfig(itl=0.03))
    shown.type("go")
    shown.keys("Enter")
    lines = shown.wait_for_prompt(2, timeout=40)
    assert answer_block(lines, f"{PROMPT} go") == expected_words(200)


def test_while_a_tall_answer_streams_its_top_is_in_the_scrollback(
    screen: Callable[..., Screen],
) -> None:
    shown = screen(40, 12, "--max-tokens", "200", config=MockConfig(itl=0.03))
    shown.type("go")
    shown.keys("Enter")
    shown.wait_for_words(70)  # two screens of them at 40 columns
    lines = shown.lines()
    assert shown.prompts() == 1, "the answer ended before the screen was read"
    words = answer_words(lines)
    assert words == expected_words(len(words))
    shown.wait_for_prompt(2, timeout=40)


def test_shrinking_the_window_mid_answer_leaves_no_copy(screen: Callable[..., Screen]) -> None:
    shown = screen(80, 14, "--max-tokens", "60")
    for _ in range(3):  # the prompt at the bottom of a full screen, as after some use
        shown.type("/help")
        shown.keys("Enter")
        time.sleep(0.3)
    shown.type("go")
    shown.keys("Enter")
    shown.wait_for_words(16)
    shown.resize(45, 14)
    lines = shown.wait_for_prompt(5, timeout=30)
    assert answer_block(lines, f"{PROMPT} go") == expected_words(60)


class ScriptedStream:
    """A zen-dialect server streaming ``pieces`` of an answer, ``gap`` seconds apart."""

    def __init__(self, pieces: list[str], gap: float) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                try:
                    for piece in outer.pieces:
                        chunk = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                        time.sleep(outer.gap)
                    done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                    self.wfile.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.pieces = pieces
        self.gap = gap
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_ctrl_c_in_a_streamed_table_leaves_no_stale_row(screen: Callable[..., Screen]) -> None:
    rows = [f"| item {n} | value {n * 7} |\n" for n in range(1, 40)]
    pieces = ["Here is the table:\n\n", "| name | value |\n", "|---|---|\n", *rows]
    stream = ScriptedStream(pieces, gap=0.15)
    try:
        shown = screen(70, 30, base_url=stream.base_url)
        shown.type("table please")
        shown.keys("Enter")
        shown.wait_for(r"item 6")
        shown.keys("C-c")
        lines = shown.wait_for_prompt(2)
    finally:
        stream.close()
    intro = lines.index("Here is the table:")
    end = lines.index("[interrupted]")
    between = lines[intro + 1 : end]
    items = [line for line in between if "item " in line]
    numbers = [int(re.search(r"item (\d+)", line)[1]) for line in items]  # type: ignore[index]
    assert numbers == list(range(1, len(numbers) + 1)), "\n".join(between)
    assert sum(1 for line in between if "name" in line and "value" in line) == 1


def test_waiting_shows_the_seconds_and_leaves_nothing(screen: Callable[..., Screen]) -> None:
    shown = screen(80, 20, config=MockConfig(ttft=3.0, default_max_tokens=5))
    shown.type("go")
    shown.keys("Enter")
    shown.wait_for(r"^waiting \d+ s$", timeout=3, scrollback=False)
    lines = shown.wait_for_prompt(2)
    assert not any(line.startswith("waiting") for line in lines), "\n".join(lines)
    assert answer_block(lines, f"{PROMPT} go") == expected_words(5)


def test_an_answer_cut_at_max_tokens_says_so(screen: Callable[..., Screen]) -> None:
    shown = screen(120, 20, "--max-tokens", "5", config=MockConfig(default_max_tokens=50))
    shown.type("go")
    shown.keys("Enter")
    lines = shown.wait_for_prompt(2)
    status = [line for line in lines if line.startswith("big-pickle · ")]
    assert len(status) == 1 and status[0].endswith("· cut at --max-tokens"), "\n".join(lines)
