"""``llmcli.ui.terminal``: the terminal facts, read once from the streams and environment.

Fake streams say whether they are terminals; a real pty, sized with TIOCSWINSZ, stands
for a terminal whose width is read from the device.
"""

from __future__ import annotations

import fcntl
import io
import os
import struct
import sys
import termios
from collections.abc import Iterator
from typing import TextIO

import pytest

from llmcli.ui.render import OutputMode
from llmcli.ui.terminal import FALLBACK_WIDTH, Terminal, isatty


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def closed() -> io.StringIO:
    stream = io.StringIO()
    stream.close()
    return stream


@pytest.mark.parametrize(
    ("stdin", "stdout", "stderr", "environ", "facts"),
    [
        # facts: stdin_isatty, stdout_isatty, stderr_isatty, no_color, color_out, color_err, interactive
        (Tty(), Tty(), Tty(), {}, (True, True, True, False, True, True, True)),
        (io.StringIO(), Tty(), Tty(), {}, (False, True, True, False, True, True, False)),
        (Tty(), io.StringIO(), Tty(), {}, (True, False, True, False, False, True, False)),
        (Tty(), Tty(), io.StringIO(), {}, (True, True, False, False, True, False, True)),
        (Tty(), Tty(), Tty(), {"NO_COLOR": "1"}, (True, True, True, True, False, False, True)),
        (Tty(), Tty(), Tty(), {"NO_COLOR": ""}, (True, True, True, False, True, True, True)),
        (Tty(), Tty(), Tty(), {"TERM": "dumb"}, (True, True, True, True, False, False, True)),
        (Tty(), Tty(), Tty(), {"TERM": "xterm"}, (True, True, True, False, True, True, True)),
        (closed(), Tty(), closed(), {}, (False, True, False, False, True, False, False)),
        (object(), Tty(), Tty(), {}, (False, True, True, False, True, True, False)),
    ],
    ids=[
        "all-terminals", "stdin-piped", "stdout-piped", "stderr-piped", "NO_COLOR",
        "NO_COLOR-empty", "TERM-dumb", "TERM-xterm", "closed-streams", "no-isatty",
    ],
)  # fmt: skip
def test_detect(
    stdin: TextIO,
    stdout: TextIO,
    stderr: TextIO,
    environ: dict[str, str],
    facts: tuple[bool, ...],
) -> None:
    terminal = Terminal.detect(
        environ={"COLUMNS": "100", **environ}, stdin=stdin, stdout=stdout, stderr=stderr
    )
    assert (
        terminal.stdin_isatty,
        terminal.stdout_isatty,
        terminal.stderr_isatty,
        terminal.no_color,
        terminal.color_out,
        terminal.color_err,
        terminal.interactive,
    ) == facts
    assert (terminal.stdin, terminal.stdout, terminal.stderr) == (stdin, stdout, stderr)


def test_detect_defaults_to_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    streams = Tty(), io.StringIO(), Tty()
    monkeypatch.setattr(sys, "stdin", streams[0])
    monkeypatch.setattr(sys, "stdout", streams[1])
    monkeypatch.setattr(sys, "stderr", streams[2])
    monkeypatch.setenv("NO_COLOR", "yes")
    terminal = Terminal.detect()
    assert (terminal.stdin, terminal.stdout, terminal.stderr) == streams
    assert (terminal.stdin_isatty, terminal.stdout_isatty, terminal.no_color) == (True, False, True)


@pytest.fixture
def pty_of_width() -> Iterator[TextIO]:
    """The terminal end of a pty 123 columns wide."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 123, 0, 0))
    stream = open(follower, "w")  # noqa: SIM115 - closed below
    try:
        yield stream
    finally:
        stream.close()
        os.close(leader)


@pytest.mark.parametrize(
    ("columns", "on_pty", "width"),
    [
        ("100", False, 100),
        ("100", True, 100),  # COLUMNS wins, as in shutil.get_terminal_size
        (None, True, 123),  # the terminal's own size
        ("0", True, 123),
        ("wide", True, 123),
        (None, False, FALLBACK_WIDTH),  # piped, and no terminal behind the process either
        ("-5", False, FALLBACK_WIDTH),
    ],
)
def test_width(
    columns: str | None,
    on_pty: bool,
    width: int,
    pty_of_width: TextIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "__stdout__", io.StringIO())  # no terminal to fall back on
    environ = {} if columns is None else {"COLUMNS": columns}
    stdout = pty_of_width if on_pty else io.StringIO()
    terminal = Terminal.detect(environ=environ, stdin=io.StringIO(), stdout=stdout)
    assert terminal.width == width
    assert terminal.stdout_isatty is on_pty


def test_isatty_of_nothing_is_false() -> None:
    assert isatty(None) is False


@pytest.mark.parametrize(
    ("terminal", "raw", "expected"),
    [
        # expected: markdown, color_out, color_err
        ((True, True, False), False, (True, True, True)),
        ((True, True, False), True, (False, True, True)),
        ((True, True, True), False, (False, False, False)),
        ((False, True, False), False, (False, False, True)),
        ((True, False, False), False, (True, True, False)),
    ],
)  # fmt: skip
def test_output_mode_follows_the_terminal(
    terminal: tuple[bool, bool, bool], raw: bool, expected: tuple[bool, bool, bool]
) -> None:
    out_tty, err_tty, no_color = terminal
    facts = Terminal(
        stdin=io.StringIO(),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
        stdin_isatty=False,
        stdout_isatty=out_tty,
        stderr_isatty=err_tty,
        no_color=no_color,
        width=80,
    )
    mode = OutputMode.for_terminal(facts, raw=raw, show_reasoning=False)
    assert (mode.markdown, mode.color_out, mode.color_err) == expected
    assert mode.show_reasoning is False
    streams = Tty() if out_tty else io.StringIO(), Tty() if err_tty else io.StringIO()
    environ = {"NO_COLOR": "1"} if no_color else {}
    assert (
        OutputMode.detect(
            raw=raw, show_reasoning=False, stdout=streams[0], stderr=streams[1], environ=environ
        )
        == mode
    )
