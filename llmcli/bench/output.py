"""Where ``llmcli bench`` and its subcommands show things: tables, JSON and CSV on stdout;
progress and notes (``llmcli bench: ...``) on stderr.

Everything is drawn on the streams of the :class:`~llmcli.ui.terminal.Terminal` the
command read once. A table piped to a file is never wrapped; a live progress display is
drawn only when stderr is a terminal, and a pipe or log file gets plain lines instead.
No network code here: ``bench compare`` and ``bench check`` use it and load no httpx.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmcli.bench.progress import Tracker
    from llmcli.ui.terminal import Terminal

PIPED_WIDTH = 160  # columns a table gets when stdout is a pipe or file, so it never wraps


@dataclass(frozen=True, slots=True)
class BenchOutput:
    """The bench's stdout and stderr, with the terminal facts that decide how to draw."""

    terminal: Terminal

    def show(self, *renderables: Any) -> None:
        """Print rich renderables (tables, text) on stdout, coloured where allowed."""
        from llmcli.ui.render import make_console

        console = make_console(self.terminal.stdout, color=self.terminal.color_out)
        if not self.terminal.stdout_isatty:
            console.width = max(console.width, PIPED_WIDTH)
        for renderable in renderables:
            console.print(renderable)

    def line(self, text: str) -> None:
        """One line of plain text (JSON) on stdout."""
        self.write(text + "\n")

    def write(self, text: str) -> None:
        """Text exactly as given (CSV) on stdout."""
        self.terminal.stdout.write(text)
        self.terminal.stdout.flush()

    def note(self, message: str) -> None:
        """A progress line or note on stderr: ``llmcli bench: message``."""
        self.terminal.stderr.write(f"llmcli bench: {message}\n")
        self.terminal.stderr.flush()

    @contextlib.contextmanager
    def tracker(self) -> Iterator[Tracker]:
        """A live display on a terminal's stderr; plain lines when stderr is a pipe or file."""
        from llmcli.bench.progress import LineProgress, LiveProgress

        if not self.terminal.stderr_isatty:
            yield LineProgress(self.note)
            return
        from llmcli.ui.render import make_console

        console = make_console(self.terminal.stderr, color=self.terminal.color_err)
        with LiveProgress(console) as live:
            yield live
