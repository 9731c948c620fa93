"""The tool loop on screen: answers on stdout, calls and their results on stderr.

rich only; never imports httpx. Each step's answer goes through ``render.AnswerPrinter``,
the renderer ``complete`` and a piped ``chat`` use (markdown on a terminal, plain text in a
pipe, reasoning on stderr, the assembled call as ``→ tool call name(args)``). On top of
it:

- while a call streams, stderr on a terminal shows its name as soon as it arrives and its
  arguments as they grow, in a transient live line per call (a pipe gets only the
  assembled call, never fragments);
- each result is shown as it arrives, cut to ``RESULT_LINES`` lines of ``RESULT_WIDTH``
  characters, with its duration (the whole result is in ``--json`` and the history);
- each step ends with ``chat``'s status line (model, TTFT, tokens/s, tokens).

All model and tool text passes ``neutralize`` first.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Final, TextIO

from rich.live import Live
from rich.text import Text

from llmcli.tools.loop import Step
from llmcli.tools.tool import ToolRun
from llmcli.ui.chatview import status_line
from llmcli.ui.render import AnswerPrinter, OutputMode, make_console
from llmcli.ui.sanitize import neutralize
from llmcli.wire.events import ContentDelta, Event, ReasoningDelta, ToolCall, ToolCallDelta

RESULT_LINES: Final = 4
RESULT_WIDTH: Final = 160


def preview_result(text: str, *, lines: int = RESULT_LINES, width: int = RESULT_WIDTH) -> list[str]:
    """At most ``lines`` lines of ``text``, each at most ``width`` characters, and what was cut."""
    all_lines = neutralize(text).rstrip("\n").split("\n")
    shown = [line if len(line) <= width else line[: width - 1] + "…" for line in all_lines[:lines]]
    hidden = len(all_lines) - len(shown)
    if hidden > 0:
        shown.append(
            f"… {hidden} more line{'s' if hidden != 1 else ''}, {len(text)} characters in all"
        )
    return shown


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s"


class ToolLoopPrinter:
    """Shows the loop as it runs; pass it to ``run_tool_loop`` as the view."""

    def __init__(
        self, mode: OutputMode, *, stdout: TextIO | None = None, stderr: TextIO | None = None
    ) -> None:
        self.mode = mode
        self._out = stdout or sys.stdout
        self._err = stderr or sys.stderr
        self._console = make_console(self._err, color=mode.color_err)
        self._printer: AnswerPrinter | None = None
        self._wrote_text = False
        self._calls: dict[int, list[str]] = {}  # index -> [name, arguments so far]
        self._live: Live | None = None

    # -- LoopView -------------------------------------------------------------------------

    def begin_step(self, index: int) -> Callable[[Event], None]:
        self._printer = self._new_printer()
        self._wrote_text = False
        self._calls = {}
        return self._show

    def end_step(self, step: Step) -> None:
        self._stop_live()
        printer, self._printer = self._printer, None
        outcome = step.outcome
        if printer is not None:
            if outcome.interrupted or outcome.error:
                printer.abort("[interrupted]" if outcome.interrupted else "[incomplete]")
            else:
                printer.close()
        self._note(f"step {step.index + 1} · " + status_line(outcome, None))

    def tool_done(self, run: ToolRun) -> None:
        name = neutralize(run.call.name) or "?"
        took = format_duration(run.duration)
        if run.error is not None:
            lines = preview_result(run.error)
            self._line(f"✗ {name} failed ({took}): {lines[0]}", "red")
            rest = lines[1:]
        else:
            self._line(f"← {name} ({took})", "green")
            rest = preview_result(run.content) if run.content.strip() else ["(empty result)"]
        for line in rest:
            self._line("  " + line, "dim")

    # -- events ---------------------------------------------------------------------------

    def _show(self, event: Event) -> None:
        printer = self._printer
        assert printer is not None, "an event outside a step"
        match event:
            case ToolCallDelta():
                self._grow(event)
            case ToolCall():
                self._stop_live()
                printer.show(event)
            case ContentDelta() | ReasoningDelta():
                self._wrote_text = True
                printer.show(event)
            case _:
                printer.show(event)

    def _grow(self, delta: ToolCallDelta) -> None:
        if self._wrote_text and self._printer is not None:
            # Text before the calls is finished: print it whole before stderr gets busy.
            self._printer.close()
            self._printer = self._new_printer()
            self._wrote_text = False
        call = self._calls.setdefault(delta.index, ["", ""])
        named = bool(delta.name) and not call[0]
        if named:
            call[0] = delta.name or ""
        call[1] += delta.arguments
        if not self._console.is_terminal:
            return
        if self._live is None:
            self._live = Live(
                Text(""),
                console=self._console,
                transient=True,
                auto_refresh=True,
                refresh_per_second=10,
            )
            self._live.start()
        # A new call's name is drawn at once; growing arguments wait for the next refresh.
        self._live.update(self._growing(), refresh=named)

    def _growing(self) -> Text:
        width = max(20, self._console.width - 4)
        lines = []
        for _, (name, arguments) in sorted(self._calls.items()):
            head = f"→ {neutralize(name) or '…'}("
            room = max(8, width - len(head) - 2)
            tail = neutralize(arguments).replace("\n", " ")
            if len(tail) > room:
                tail = "…" + tail[-(room - 1) :]
            lines.append(head + tail + "…")
        return Text("\n".join(lines), style="cyan" if self.mode.color_err else "")

    def _stop_live(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    # -- output ---------------------------------------------------------------------------

    def _new_printer(self) -> AnswerPrinter:
        return AnswerPrinter(self.mode, stdout=self._out, stderr=self._err)

    def _line(self, text: str, style: str) -> None:
        self._console.print(text, style=style if self.mode.color_err else None)

    def _note(self, text: str) -> None:
        self._line(text, "dim")
