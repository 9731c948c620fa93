"""Asking the user before a call runs, for tools that are not safe by construction.

The call is shown on stderr exactly as it will run (``neutralize`` makes any control or
bidi character in it visible, so model-written code cannot hide a line from the user),
then one line is read from stdin: ``y`` or ``yes`` approves, anything else (an empty line,
end of input) declines. Prompts come one at a time even when calls run concurrently.

Without a terminal on stdin nobody can be asked, so every such call is refused, unless the
user approved them all beforehand (``--yes``); those calls are still shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import TextIO

from llmcli.tools.tool import ConfirmRequest, Decision
from llmcli.ui.sanitize import neutralize

NO_TERMINAL = (
    "not run: this tool needs the user's approval and there is no terminal to ask on "
    "(the user can approve every call with --yes)"
)
DECLINED = "not run: the user declined this call"


class TerminalConfirmer:
    """Asks on the terminal; ``interactive`` says whether stdin is one a person types at."""

    def __init__(
        self,
        *,
        stdin: TextIO,
        stderr: TextIO,
        interactive: bool,
        assume_yes: bool = False,
    ) -> None:
        self._stdin = stdin
        self._stderr = stderr
        self._interactive = interactive
        self._assume_yes = assume_yes
        self._lock = asyncio.Lock()

    async def __call__(self, request: ConfirmRequest) -> Decision:
        async with self._lock:
            if self._assume_yes:
                self._show(request, "approved by --yes")
                return Decision(True)
            if not self._interactive:
                self._show(request, "refused: no terminal to ask on (--yes approves)")
                return Decision(False, NO_TERMINAL)
            self._show(request, "needs your approval")
            self._stderr.write(f"Run {neutralize(request.tool)}? [y/N] ")
            self._stderr.flush()
            answer = await read_line(self._stdin)
            if answer.strip().lower() in ("y", "yes"):
                return Decision(True)
            return Decision(False, DECLINED)

    def _show(self, request: ConfirmRequest, status: str) -> None:
        body = neutralize(request.shown).rstrip("\n")
        indented = "\n".join("  │ " + line for line in body.split("\n"))
        self._stderr.write(f"⚠ {neutralize(request.tool)}: {status}\n{indented}\n")
        self._stderr.flush()


async def read_line(stream: TextIO) -> str:
    """One line from ``stream`` without blocking the event loop ("" at end of input).

    A daemon thread does the blocking read: if the user presses Ctrl-C instead of
    answering, the program can still exit (an executor thread would be waited for).
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    def deliver(line: str) -> None:
        if not future.done():
            future.set_result(line)

    def read() -> None:
        try:
            line = stream.readline()
        except (OSError, ValueError):
            line = ""
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
            loop.call_soon_threadsafe(deliver, line)

    threading.Thread(target=read, name="llmcli-confirm", daemon=True).start()
    return await future
