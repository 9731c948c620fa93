"""Showing a streamed answer: the answer on stdout, reasoning and notes on stderr.

rich only; never imports httpx. The renderer consumes typed events and never decides
anything about the network. Every piece of model text passes ``neutralize`` first: model
output is untrusted and must not drive the terminal.

stdout in a terminal gets incremental markdown (``MarkdownStream``); piped, it gets the
plain text exactly as it streams (control characters neutralised). ``NO_COLOR`` and
``--raw`` turn markdown and colour off.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from llmcli.ui.sanitize import neutralize
from llmcli.ui.terminal import Terminal
from llmcli.wire.events import ContentDelta, Event, ReasoningDelta, ToolCall

if TYPE_CHECKING:
    from rich.console import Console

    from llmcli.ui.mdstream import MarkdownStream
    from llmcli.wire.events import Outcome


@dataclass(frozen=True, slots=True)
class OutputMode:
    """How to show an answer, decided once from the streams and the user's flags."""

    markdown: bool
    color_out: bool
    color_err: bool
    show_reasoning: bool

    @classmethod
    def for_terminal(
        cls, terminal: Terminal, *, raw: bool = False, show_reasoning: bool = True
    ) -> OutputMode:
        """Markdown only on a colour terminal without ``--raw``; colour where allowed."""
        return cls(
            markdown=terminal.color_out and not raw,
            color_out=terminal.color_out,
            color_err=terminal.color_err,
            show_reasoning=show_reasoning,
        )

    @classmethod
    def detect(
        cls,
        *,
        raw: bool = False,
        show_reasoning: bool = True,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        environ: dict[str, str] | None = None,
    ) -> OutputMode:
        """:meth:`for_terminal` of the terminal detected from these streams."""
        terminal = Terminal.detect(environ=environ, stdout=stdout, stderr=stderr)
        return cls.for_terminal(terminal, raw=raw, show_reasoning=show_reasoning)


def make_console(stream: TextIO, *, color: bool) -> Console:
    # rich is imported here, not above: a piped answer that shows no reasoning needs none
    # of it, and rich with markdown costs about 50 ms of start-up (benchmarks/README.md).
    from rich.console import Console

    return Console(
        file=stream,
        force_terminal=color or None,
        no_color=not color,
        highlight=False,
        soft_wrap=not color,
        emoji=False,
        markup=False,
    )


class AnswerPrinter:
    """Prints one answer as its events arrive; ``close`` ends it cleanly, ``abort`` keeps it."""

    def __init__(
        self,
        mode: OutputMode,
        *,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.mode = mode
        self._out = stdout or sys.stdout
        self._err = stderr or sys.stderr
        self._err_rich: Console | None = None
        self._markdown: MarkdownStream | None = None
        if mode.markdown:
            from llmcli.ui.mdstream import MarkdownStream

            console = make_console(self._out, color=True)
            self._markdown = MarkdownStream(console)
        self._in_reasoning = False
        self._wrote_content = False
        self._last_char = "\n"

    def _err_console(self) -> Console:
        if self._err_rich is None:
            self._err_rich = make_console(self._err, color=self.mode.color_err)
        return self._err_rich

    def show(self, event: Event) -> None:
        match event:
            case ContentDelta(text=text):
                self._end_reasoning()
                self._write_content(neutralize(text))
            case ReasoningDelta(text=text) if self.mode.show_reasoning:
                self._write_reasoning(neutralize(text))
            case ToolCall(name=name, arguments=arguments):
                self._end_reasoning()
                self._err_console().print(
                    f"→ tool call {neutralize(name)}({neutralize(arguments)})",
                    style="cyan" if self.mode.color_err else None,
                )
            case _:
                pass

    def close(self) -> None:
        """The answer is complete."""
        self._end_reasoning()
        if self._markdown is not None:
            self._markdown.finish()
        elif self._wrote_content and self._last_char != "\n":
            self._out.write("\n")
        self._out.flush()

    def abort(self, note: str) -> None:
        """The answer stopped early: keep what is shown, mark it, end the line."""
        self._end_reasoning()
        if self._markdown is not None:
            self._markdown.abort(note)
        elif self._wrote_content and self._last_char != "\n":
            self._out.write("\n")
        self._out.flush()

    def note(self, text: str) -> None:
        """A quiet line on stderr (stats, hints)."""
        self._err_console().print(text, style="dim" if self.mode.color_err else None)

    def _write_content(self, text: str) -> None:
        if not text:
            return
        self._wrote_content = True
        self._last_char = text[-1]
        if self._markdown is not None:
            self._markdown.feed(text)
        else:
            self._out.write(text)
            self._out.flush()

    def _write_reasoning(self, text: str) -> None:
        if not text:
            return
        if not self._in_reasoning:
            self._in_reasoning = True
        self._err_console().print(text, end="", style="dim italic" if self.mode.color_err else None)
        self._err.flush()
        self._reasoning_last = text[-1]

    def _end_reasoning(self) -> None:
        if self._in_reasoning:
            self._in_reasoning = False
            if self._reasoning_last != "\n":
                self._err.write("\n")
            self._err.flush()


class PipedChatView:
    """``chat`` with stdin not a terminal: answers on stdout, reasoning and notes on stderr."""

    def __init__(
        self,
        mode: OutputMode,
        *,
        reasoning: Callable[[], str],
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.mode = mode
        self._reasoning_mode = reasoning
        self._out = stdout or sys.stdout
        self._err = stderr or sys.stderr
        self._printer: AnswerPrinter | None = None
        self.failures = 0

    def begin_answer(self, model: str | None) -> Callable[[Event], None]:
        show = self._reasoning_mode() != "hide"
        mode = OutputMode(
            markdown=False,
            color_out=self.mode.color_out,
            color_err=self.mode.color_err,
            show_reasoning=show,
        )
        self._printer = AnswerPrinter(mode, stdout=self._out, stderr=self._err)
        return self._printer.show

    def end_answer(self, outcome: Outcome) -> None:
        printer, self._printer = self._printer, None
        if printer is not None:
            if outcome.interrupted or outcome.error:
                printer.abort("[interrupted]" if outcome.interrupted else "[incomplete]")
            else:
                printer.close()
        if outcome.error is not None:
            self.failures += 1
            self.warn(f"error: {outcome.error}")

    def info(self, text: str) -> None:
        self._err.write(f"llmcli: {neutralize(text)}\n")

    def warn(self, text: str) -> None:
        self._err.write(f"llmcli: {neutralize(text)}\n")
