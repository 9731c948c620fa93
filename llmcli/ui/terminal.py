"""The terminal facts a command needs, read once at the command boundary and passed down.

Which of stdin, stdout and stderr is a terminal, whether colour is allowed (``NO_COLOR``
set to anything non-empty, or ``TERM=dumb``, turns it off), and how wide the screen is.
A command calls :meth:`Terminal.detect` once and hands the result to whatever draws;
nothing below it asks ``isatty`` again. Tests build one with the streams and environment
they want. No rich here: this module is imported on every command's start-up path.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

FALLBACK_WIDTH = 80


@dataclass(frozen=True, slots=True)
class Terminal:
    """The three standard streams, whether each is a terminal, colour, and the width."""

    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    stdin_isatty: bool
    stdout_isatty: bool
    stderr_isatty: bool
    no_color: bool
    width: int

    @classmethod
    def detect(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> Terminal:
        """Read the facts from the given streams and environment (default: this process's)."""
        env = os.environ if environ is None else environ
        in_stream = sys.stdin if stdin is None else stdin
        out_stream = sys.stdout if stdout is None else stdout
        err_stream = sys.stderr if stderr is None else stderr
        return cls(
            stdin=in_stream,
            stdout=out_stream,
            stderr=err_stream,
            stdin_isatty=isatty(in_stream),
            stdout_isatty=isatty(out_stream),
            stderr_isatty=isatty(err_stream),
            no_color=bool(env.get("NO_COLOR")) or env.get("TERM") == "dumb",
            width=_width(env, out_stream),
        )

    @property
    def color_out(self) -> bool:
        """stdout may be coloured: a terminal, and neither NO_COLOR nor TERM=dumb."""
        return self.stdout_isatty and not self.no_color

    @property
    def color_err(self) -> bool:
        """stderr may be coloured: a terminal, and neither NO_COLOR nor TERM=dumb."""
        return self.stderr_isatty and not self.no_color

    @property
    def interactive(self) -> bool:
        """A person types on stdin and reads stdout (the chat REPL, confirmations)."""
        return self.stdin_isatty and self.stdout_isatty


def isatty(stream: TextIO | None) -> bool:
    """``stream.isatty()``, False for a missing, closed or fake stream."""
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # no such method; closed
        return False


def _width(environ: Mapping[str, str], stdout: TextIO) -> int:
    """Columns as ``shutil.get_terminal_size`` counts them: ``COLUMNS`` first, then the
    terminal behind stdout (or the process's original stdout), then 80."""
    try:
        columns = int(environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    for stream in (stdout, sys.__stdout__):
        try:
            columns = os.get_terminal_size(stream.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):  # no fd, closed, not a terminal
            continue
        if columns > 0:
            return columns
    return FALLBACK_WIDTH
