"""What a user sees while a backend gets ready: a llama-server starting, a model extracted.

On a terminal stderr gets a redrawn line (``StartProgress``) or a byte progress bar
(``PullProgress``); piped, neither draws anything, and only the one-line notices remain.
:class:`BackendProgress` is the display ``llmcli.local.backend`` reports to.
"""

from __future__ import annotations

import time

from llmcli.ui.notices import report
from llmcli.ui.terminal import Terminal


class StartProgress:
    """One line on stderr while a server starts: redrawn on a terminal, silent when piped."""

    def __init__(self, profile: str, terminal: Terminal) -> None:
        self.profile = profile
        self.started = time.monotonic()
        self.drawn = False
        self.live = terminal.stderr_isatty
        self._err = terminal.stderr

    def update(self, state: str, elapsed: float) -> None:
        if self.live:
            self._err.write(
                f"\r\x1b[2Kllmcli: llama-server for {self.profile}: {state} {elapsed:.1f} s"
            )
            self._err.flush()
            self.drawn = True

    def clear(self) -> None:
        if self.drawn:
            self._err.write("\r\x1b[2K")
            self._err.flush()
            self.drawn = False

    def done(self, base_url: str, pid: int | None) -> None:
        """The server at ``base_url`` answers: llmcli's own (``pid``), or one already running."""
        self.clear()
        if pid is None:
            report(f"using the running llama-server for {self.profile} at {base_url}")
        else:
            elapsed = time.monotonic() - self.started
            report(
                f"llama-server for {self.profile} ready at {base_url} (pid {pid}, {elapsed:.1f} s)"
            )


class PullProgress:
    """A byte progress bar on stderr while a model is written; nothing when piped."""

    def __init__(self, name: str, terminal: Terminal) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )

        from llmcli.ui.render import make_console

        self.bar = Progress(
            TextColumn(f"extracting {name}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=make_console(terminal.stderr, color=terminal.color_err),
            transient=True,
            disable=not terminal.stderr_isatty,
        )
        self.task = self.bar.add_task(name, total=None)

    def update(self, done: int, total: int) -> None:
        self.bar.update(self.task, completed=done, total=total)

    def __enter__(self) -> PullProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()


class BackendProgress:
    """The displays of one command on one terminal, as ``llmcli.local.backend`` asks for them."""

    def __init__(self, terminal: Terminal) -> None:
        self.terminal = terminal

    def say(self, text: str) -> None:
        report(text)

    def starting(self, profile: str) -> StartProgress:
        return StartProgress(profile, self.terminal)

    def pulling(self, name: str) -> PullProgress:
        return PullProgress(name, self.terminal)
