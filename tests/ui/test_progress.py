"""``llmcli.ui.progress``: a server's start drawn on a terminal's stderr, nothing piped;
the one-line notice when it answers either way."""

from __future__ import annotations

import io

import pytest

from llmcli.ui.progress import StartProgress
from llmcli.ui.terminal import Terminal


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stderr", "drawn"),
    [
        (Tty(), "\r\x1b[2Kllmcli: llama-server for demo: loading 1.5 s\r\x1b[2K"),
        (io.StringIO(), ""),
    ],
)
def test_start_progress(
    stderr: io.StringIO, drawn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal = Terminal.detect(environ={}, stdin=io.StringIO(), stdout=io.StringIO(), stderr=stderr)
    progress = StartProgress("demo", terminal)
    progress.update("loading", 1.5)
    progress.done("http://127.0.0.1:9/v1", None)
    progress.clear()  # again: nothing left to erase
    assert stderr.getvalue() == drawn
    assert capsys.readouterr().err == (
        "llmcli: using the running llama-server for demo at http://127.0.0.1:9/v1\n"
    )
