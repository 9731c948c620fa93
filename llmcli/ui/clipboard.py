"""Copying text to the user's clipboard: a clipboard program, else the terminal (OSC 52).

A clipboard program (wl-copy, xclip, xsel, pbcopy) is tried first, the X and Wayland ones
only where their display is set. Where none works (a server reached over ssh, a console
without X or Wayland, an X display that has gone away), the text goes to the terminal as an OSC 52 sequence,
``ESC ] 52 ; c ; BASE64 BEL``, which xterm, kitty, WezTerm, iTerm2, Windows Terminal,
foot, Alacritty and others put on the clipboard of the machine the user sits at.

tmux reads OSC 52 itself. With ``set -g set-clipboard on`` it keeps the text as a paste
buffer and passes it on to the terminal outside; with ``external`` (its default) or
``off`` it drops what programs send. Then only its passthrough (``allow-passthrough on``,
tmux 3.3) can carry the sequence, wrapped, to the outer terminal. So inside tmux the
plain sequence is sent when ``set-clipboard`` is on, the wrapped one when it is not and
passthrough is allowed, and otherwise the user is told which option to set.

What is copied is what the chat showed: ``neutralize`` has made every control character
visible and inert, so pasting into a shell cannot run escape sequences the model wrote.
Terminals cap OSC 52 (xterm and hterm at about 100,000 bytes of base64), so longer text
is refused with a note rather than cut short.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from collections.abc import Mapping
from typing import IO, Final

from llmcli.ui.sanitize import neutralize

__all__ = ["CLIPBOARD_TOOLS", "OSC52_MAX_BYTES", "copy_to_clipboard", "osc52_sequence"]

CLIPBOARD_TOOLS: Final = (
    ("wl-copy",),
    ("xclip", "-selection", "clipboard"),
    ("xsel", "--clipboard", "--input"),
    ("pbcopy",),
)
# The display a program needs: without it (ssh, a console) the program can only fail, with
# messages such as xsel's ": Inappropriate ioctl for device", so it is not tried at all.
_DISPLAY_OF: Final = {"wl-copy": "WAYLAND_DISPLAY", "xclip": "DISPLAY", "xsel": "DISPLAY"}
# 75,000 bytes make 100,000 characters of base64, the least that common terminals take.
OSC52_MAX_BYTES: Final = 75_000
_TOOL_TIMEOUT: Final = 5.0


def copy_to_clipboard(
    text: str,
    *,
    terminal: IO[str] | None = None,
    env: Mapping[str, str] | None = None,
    what: str = "answer",
) -> str:
    """Copy ``text``; return one line saying how (or why not).

    ``terminal``: the stream the chat draws on, for OSC 52 when no program works (none:
    no fallback, e.g. when output is not a terminal).
    """
    if not text:
        return f"no {what} to copy yet"
    text = neutralize(text)
    env = os.environ if env is None else env
    failed = ""
    for tool in CLIPBOARD_TOOLS:
        display = _DISPLAY_OF.get(tool[0])
        if display is not None and not env.get(display):
            continue
        program = shutil.which(tool[0], path=env.get("PATH"))
        if program:
            try:
                subprocess.run(
                    [program, *tool[1:]],
                    input=text.encode(),
                    check=True,
                    timeout=_TOOL_TIMEOUT,
                    capture_output=True,
                )
            except (OSError, subprocess.SubprocessError) as error:
                failed = f"{tool[0]} failed ({_reason(error)})"
                break
            return f"copied {len(text)} characters with {tool[0]}"
    if terminal is None:
        if failed:
            return f"{failed}; nothing copied"
        return "no clipboard here (install wl-clipboard, xclip or xsel); nothing copied"
    return _copy_by_terminal(text, terminal, env, failed)


def osc52_sequence(text: str, *, tmux_passthrough: bool = False) -> str:
    """The OSC 52 sequence that puts ``text`` on the clipboard; wrapped for tmux's
    passthrough (every ESC doubled, inside ``ESC P tmux; ... ESC \\``) if asked."""
    payload = base64.b64encode(text.encode("utf-8")).decode("ascii")
    sequence = f"\x1b]52;c;{payload}\x07"
    if tmux_passthrough:
        return "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    return sequence


def _copy_by_terminal(text: str, terminal: IO[str], env: Mapping[str, str], failed: str) -> str:
    size = len(text.encode("utf-8"))
    lead = f"{failed}; " if failed else ""
    if size > OSC52_MAX_BYTES:
        return (
            f"{lead}nothing copied: {size:,} bytes is more than a terminal takes"
            f" ({OSC52_MAX_BYTES:,}); install a clipboard program, or /save the chat"
        )
    passthrough = False
    note = ""
    if env.get("TMUX"):
        clipboard, allow = _tmux_options(env)
        if clipboard != "on":
            if allow not in ("on", "all"):
                return (
                    f"{lead}nothing copied: tmux drops programs' clipboard sequences with"
                    f" set-clipboard {clipboard or 'unknown'}; run: tmux set -g set-clipboard on"
                )
            passthrough = True
            note = " through tmux's passthrough"
        else:
            note = " (tmux keeps it as a paste buffer too)"
    terminal.write(osc52_sequence(text, tmux_passthrough=passthrough))
    terminal.flush()
    return (
        f"{lead}sent {len(text)} characters to the terminal's clipboard (OSC 52){note};"
        " the terminal must allow programs to set it"
    )


def _tmux_options(env: Mapping[str, str]) -> tuple[str, str]:
    """tmux's ``set-clipboard`` and ``allow-passthrough`` where this chat runs."""
    values = []
    for option in ("set-clipboard", "allow-passthrough"):
        try:
            done = subprocess.run(
                ["tmux", "show-options", "-gv", option],
                capture_output=True,
                text=True,
                timeout=_TOOL_TIMEOUT,
                env=dict(env),
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            values.append("")
            continue
        values.append(done.stdout.strip() if done.returncode == 0 else "")
    return values[0], values[1]


def _reason(error: BaseException) -> str:
    if isinstance(error, subprocess.CalledProcessError):
        detail = (error.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        return neutralize(detail[-1]) if detail else f"exit status {error.returncode}"
    if isinstance(error, subprocess.TimeoutExpired):
        return "it did not finish in 5 s"
    return str(error)
