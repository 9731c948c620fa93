"""Copying: a clipboard program when one works, else OSC 52 to the terminal, and inside
tmux the sequence its options let through (read from a real tmux server)."""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmcli.ui.clipboard import OSC52_MAX_BYTES, copy_to_clipboard, osc52_sequence


def tool(directory: Path, name: str, script: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)


def test_a_working_program_copies_the_neutralised_text(tmp_path: Path) -> None:
    sink = tmp_path / "clipboard"
    tool(tmp_path, "xsel", f'/bin/cat > "{sink}"')
    terminal = io.StringIO()
    env = {"PATH": str(tmp_path), "DISPLAY": ":0"}
    said = copy_to_clipboard("ls\x1b[2J\n", terminal=terminal, env=env)
    assert said == "copied 7 characters with xsel"
    assert sink.read_text() == "ls\u241b[2J\n"  # the ESC made inert, as the chat showed it
    assert terminal.getvalue() == ""


def test_a_failing_program_falls_back_to_osc52(tmp_path: Path) -> None:
    # xclip with a display that has gone (ssh -X closed): it fails, the terminal takes over.
    tool(tmp_path, "xclip", """echo "Error: Can't open display: :9" >&2; exit 1""")
    terminal = io.StringIO()
    env = {"PATH": str(tmp_path), "DISPLAY": ":9"}
    said = copy_to_clipboard("print('hé')", terminal=terminal, env=env)
    assert said.startswith("xclip failed (Error: Can't open display: :9); sent 11 characters")
    assert "(OSC 52)" in said
    sent = terminal.getvalue()
    assert sent.startswith("\x1b]52;c;") and sent.endswith("\x07")
    assert base64.b64decode(sent[7:-1]).decode() == "print('hé')"


def test_x_and_wayland_programs_are_not_run_without_their_display(tmp_path: Path) -> None:
    # Over ssh or on a console xsel is installed but can only fail, and says so obscurely.
    ran = tmp_path / "ran"
    for name in ("xsel", "xclip", "wl-copy"):
        tool(tmp_path, name, f'echo {name} >> "{ran}"; echo ": Inappropriate ioctl" >&2; exit 1')
    terminal = io.StringIO()
    said = copy_to_clipboard("code", terminal=terminal, env={"PATH": str(tmp_path)})
    assert said.startswith("sent 4 characters to the terminal's clipboard (OSC 52)")
    assert not ran.exists()
    said = copy_to_clipboard(
        "code", terminal=terminal, env={"PATH": str(tmp_path), "WAYLAND_DISPLAY": "wayland-0"}
    )
    assert said.startswith("wl-copy failed (: Inappropriate ioctl); sent 4")
    assert ran.read_text() == "wl-copy\n"


def test_no_program_and_no_terminal_says_so(tmp_path: Path) -> None:
    assert copy_to_clipboard("x", env={"PATH": str(tmp_path)}).startswith("no clipboard here")
    assert copy_to_clipboard("", what="code") == "no code to copy yet"


def test_too_much_for_a_terminal_is_refused_not_cut(tmp_path: Path) -> None:
    terminal = io.StringIO()
    said = copy_to_clipboard(
        "x" * (OSC52_MAX_BYTES + 1), terminal=terminal, env={"PATH": str(tmp_path)}
    )
    assert said.startswith("nothing copied: 75,001 bytes is more than a terminal takes")
    assert terminal.getvalue() == ""
    copy_to_clipboard("x" * OSC52_MAX_BYTES, terminal=terminal, env={"PATH": str(tmp_path)})
    assert len(terminal.getvalue()) == len(osc52_sequence("x" * OSC52_MAX_BYTES))


def test_passthrough_wraps_and_doubles_every_escape() -> None:
    plain = osc52_sequence("a")
    assert plain == "\x1b]52;c;YQ==\x07"
    assert osc52_sequence("a", tmux_passthrough=True) == "\x1bPtmux;\x1b\x1b]52;c;YQ==\x07\x1b\\"


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A tmux server of its own, and the environment a program in one of its panes has."""
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed: apt-get install -y tmux", pytrace=False)
    name = f"llmcli-clip-{uuid.uuid4().hex[:8]}"
    subprocess.run(["tmux", "-L", name, "new-session", "-d", "sleep 60"], check=True)
    socket = subprocess.run(
        ["tmux", "-L", name, "display-message", "-p", "#{socket_path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    path = tmp_path / "bin"  # no clipboard program, and tmux itself
    path.mkdir()
    (path / "tmux").symlink_to(shutil.which("tmux") or "tmux")
    yield name, {"PATH": str(path), "TMUX": f"{socket},1,0"}
    subprocess.run(["tmux", "-L", name, "kill-server"], check=False)


def set_option(name: str, option: str, value: str) -> None:
    subprocess.run(["tmux", "-L", name, "set-option", "-g", option, value], check=True)


def test_in_tmux_with_set_clipboard_on_the_plain_sequence_goes(
    tmux: tuple[str, dict[str, str]],
) -> None:
    name, env = tmux
    set_option(name, "set-clipboard", "on")
    terminal = io.StringIO()
    said = copy_to_clipboard("code", terminal=terminal, env=env)
    assert terminal.getvalue() == osc52_sequence("code")
    assert "(tmux keeps it as a paste buffer too)" in said


def test_in_tmux_without_it_passthrough_or_a_hint(tmux: tuple[str, dict[str, str]]) -> None:
    name, env = tmux
    set_option(name, "set-clipboard", "external")  # tmux's default
    terminal = io.StringIO()
    said = copy_to_clipboard("code", terminal=terminal, env=env)
    assert said == (
        "nothing copied: tmux drops programs' clipboard sequences with set-clipboard"
        " external; run: tmux set -g set-clipboard on"
    )
    assert terminal.getvalue() == ""
    set_option(name, "allow-passthrough", "on")
    said = copy_to_clipboard("code", terminal=terminal, env=env)
    assert terminal.getvalue() == osc52_sequence("code", tmux_passthrough=True)
    assert "through tmux's passthrough" in said
