"""How a chat answer looks in a terminal: live reasoning that collapses, markdown, a status line.

rich only; never imports httpx. The REPL hands each event to the callback that
``begin_answer`` returns; ``end_answer`` closes the answer (finished, interrupted or
failed) and prints one quiet status line. All model text passes ``neutralize`` first.

Drawn once. rich's live areas redraw by moving the cursor up over the lines they drew
last; anything else the terminal prints in between shifts those lines, and the redraw
then leaves a stale copy behind. The terminal itself prints into the answer when it
echoes a key typed while the answer streams (a letter, Enter, ``^C``), so while an answer
is drawn the terminal's echo is off (:class:`EchoOff`). Typed keys are not lost: they wait
in the terminal's input queue, and the next prompt reads them.

Honest states. Until the first token, a transient line counts the seconds (and says
"thinking" once hidden reasoning arrives), and leaves nothing behind. The status line
names the model, says when the answer was cut at ``--max-tokens`` (finish reason
``length``), and is left out when nothing arrived at all (the error line says it all).
"""

from __future__ import annotations

import atexit
import contextlib
import time
from collections.abc import Callable
from typing import Any, TextIO

from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.text import Text

from llmcli.ui.mdstream import MarkdownStream
from llmcli.ui.render import make_console
from llmcli.ui.sanitize import neutralize
from llmcli.wire.events import ContentDelta, Event, Outcome, ReasoningDelta, ToolCall, ToolCallDelta

REASONING_TAIL_LINES = 6


def status_line(outcome: Outcome, model: str | None) -> str:
    """model · TTFT · tokens/s · prompt / completion / cached tokens, where known.

    Empty when nothing arrived (no token, no usage): an error line already said why.
    """
    answer = outcome.answer
    if outcome.ttft is None and answer.usage is None and not answer.content:
        return ""
    parts = [answer.model or model or "model ?"]
    if outcome.ttft is not None:
        parts.append(f"TTFT {outcome.ttft:.2f} s")
    usage = answer.usage
    completion = usage.completion_tokens if usage else None
    if completion and outcome.first_token is not None and outcome.ended is not None:
        generating = outcome.ended - outcome.first_token
        if generating > 0 and completion > 1:
            parts.append(f"{(completion - 1) / generating:.1f} tok/s")
    if usage is not None:
        tokens = f"{usage.prompt_tokens or 0} prompt / {usage.completion_tokens or 0} completion"
        if usage.cached_tokens is not None:
            tokens += f" / {usage.cached_tokens} cached"
        parts.append(tokens + " tokens")
    if answer.cost is not None:
        parts.append(f"${answer.cost}")
    if answer.finish_reason == "length":
        parts.append("cut at --max-tokens")
    # The model name and cost are the server's words: neutralised like its answer.
    return neutralize(" · ".join(parts))


class TerminalChatView:
    """Shows answers in a terminal; ``reasoning`` is read at each answer (``/reasoning``)."""

    def __init__(
        self,
        out: TextIO,
        *,
        color: bool,
        markdown: bool,
        reasoning: Callable[[], str],
        clock: Callable[[], float] = time.perf_counter,
        keys: TextIO | None = None,
        waiting: bool = True,
    ) -> None:
        """``keys``: the terminal the user types on (the command's stdin), whose echo is
        held while an answer is drawn (none without it); ``waiting``: show the seconds
        until the first token."""
        self.console = make_console(out, color=color)
        self._markdown = markdown
        self._reasoning_mode = reasoning
        self._clock = clock
        self._answer: _AnswerDisplay | None = None
        self._model: str | None = None
        self._echo = EchoOff(keys)
        self._waiting = waiting

    def begin_answer(self, model: str | None) -> Callable[[Event], None]:
        self._model = model
        self._echo.hold()
        self._answer = _AnswerDisplay(
            self.console,
            markdown=self._markdown,
            mode=self._reasoning_mode(),
            clock=self._clock,
            waiting=self._waiting,
        )
        return self._answer.show

    def end_answer(self, outcome: Outcome) -> None:
        display, self._answer = self._answer, None
        try:
            if display is not None:
                display.close(outcome)
            if outcome.error is not None:
                self.warn(outcome.error)
            line = status_line(outcome, self._model)
            if line:
                self.console.print(line, style="dim", markup=False)
        finally:
            self._echo.release()

    def info(self, text: str) -> None:
        self.console.print(text, style="dim", markup=False)

    def warn(self, text: str) -> None:
        self.console.print(neutralize(text), style="bold red", markup=False)


class EchoOff:
    """The terminal's echo, held off while an answer is drawn (see the module docstring).

    Only ECHO and ECHONL change, and with TCSANOW, so keys typed meanwhile stay queued
    for the next prompt and Ctrl-C still interrupts. The terminal is given back as it was
    at ``release``, and at exit should anything skip that.
    """

    def __init__(self, stream: TextIO | None) -> None:
        self._fd: int | None = None
        self._saved: list[Any] | None = None
        with contextlib.suppress(AttributeError, ValueError, OSError):
            if stream is not None and stream.isatty():
                self._fd = stream.fileno()

    def hold(self) -> None:
        if self._fd is None or self._saved is not None:
            return
        import termios

        try:
            saved = termios.tcgetattr(self._fd)
            quiet = list(saved)
            quiet[3] = int(saved[3]) & ~(termios.ECHO | termios.ECHONL)
            termios.tcsetattr(self._fd, termios.TCSANOW, quiet)
        except (termios.error, OSError):
            return
        self._saved = saved
        atexit.register(self.release)

    def release(self) -> None:
        saved, self._saved = self._saved, None
        if saved is None or self._fd is None:
            return
        import termios

        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(self._fd, termios.TCSANOW, saved)
        atexit.unregister(self.release)


class _Waiting:
    """``waiting 2.3 s`` (or ``thinking``) until the first thing to show; drawn by Live."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.started = clock()
        self.thinking = False

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        word = "thinking" if self.thinking else "waiting"
        yield Text(f"{word} {self.clock() - self.started:.0f} s", style="dim")


class _AnswerDisplay:
    """One answer on screen: reasoning (live, shown or hidden), then the answer."""

    def __init__(
        self,
        console: Console,
        *,
        markdown: bool,
        mode: str,
        clock: Callable[[], float],
        waiting: bool = True,
    ) -> None:
        self.console = console
        self.mode = mode
        self.clock = clock
        self.started = clock()
        self.reasoning_parts: list[str] = []
        self.reasoning_chunks = 0
        self.reasoning_ended: float | None = None
        self._live: Live | None = None
        self._summary_printed = False
        self._markdown = MarkdownStream(console) if markdown else None
        self._wrote = False
        self._last_char = "\n"
        self._open_call: int | None = None
        self._streamed_calls: set[int] = set()
        self._waiting: Live | None = None
        self._clock_line: _Waiting | None = None
        if waiting and console.is_terminal and not console.is_dumb_terminal:
            self._clock_line = _Waiting(clock)
            self._waiting = Live(
                self._clock_line,
                console=console,
                transient=True,
                auto_refresh=True,
                refresh_per_second=4,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._waiting.start()

    def _stop_waiting(self) -> None:
        if self._waiting is not None:
            live, self._waiting = self._waiting, None
            live.stop()  # transient: the line goes, nothing is left behind

    def show(self, event: Event) -> None:
        if self._waiting is not None:
            if isinstance(event, ReasoningDelta) and self.mode == "hide":
                assert self._clock_line is not None
                self._clock_line.thinking = True  # nothing to show yet, but it is working
            elif isinstance(event, ReasoningDelta | ContentDelta | ToolCallDelta | ToolCall):
                self._stop_waiting()
        match event:
            case ReasoningDelta(text=text):
                self._reasoning(neutralize(text))
            case ContentDelta(text=text):
                self._end_reasoning()
                self._close_call()
                self._content(neutralize(text))
            case ToolCallDelta():
                self._end_reasoning()
                self._tool_fragment(event)
            case ToolCall(index=index, name=name, arguments=arguments):
                self._end_reasoning()
                if index in self._streamed_calls:
                    self._close_call()
                else:  # a server that sent the call whole, without fragments
                    self.console.print(
                        f"→ {neutralize(name)}({neutralize(arguments)})", style="cyan", markup=False
                    )
            case _:
                pass

    def _tool_fragment(self, delta: ToolCallDelta) -> None:
        """Show a call as it streams: its name when it arrives, then its arguments growing."""
        if delta.index != self._open_call:
            self._close_call()
            self._open_call = delta.index
            self._streamed_calls.add(delta.index)
            self.console.print(
                f"→ {neutralize(delta.name or '?')}(", end="", style="cyan", markup=False
            )
        if delta.arguments:
            self.console.print(neutralize(delta.arguments), end="", style="cyan", markup=False)

    def _close_call(self) -> None:
        if self._open_call is not None:
            self.console.print(")", style="cyan", markup=False)
            self._open_call = None

    def _reasoning(self, text: str) -> None:
        if self.reasoning_ended is not None:
            self.reasoning_chunks += 1  # late reasoning after the answer began: counted only
            return
        self.reasoning_parts.append(text)
        self.reasoning_chunks += 1
        if self.mode == "show":
            self.console.print(text, end="", style="dim italic", markup=False)
        elif self.mode == "collapse":
            if self._live is None:
                self._live = Live(
                    Text(""),
                    console=self.console,
                    transient=True,
                    auto_refresh=True,
                    refresh_per_second=8,
                    vertical_overflow="crop",
                )
                self._live.start()
            tail = "".join(self.reasoning_parts)[-4000:].splitlines()[-REASONING_TAIL_LINES:]
            self._live.update(Text("\n".join(tail), style="dim italic"))

    def _end_reasoning(self) -> None:
        if not self.reasoning_parts or self.reasoning_ended is not None:
            return
        self.reasoning_ended = self.clock()
        if self._live is not None:
            self._live.stop()
            self._live = None
        if self.mode == "show":
            if not "".join(self.reasoning_parts).endswith("\n"):
                self.console.print()
        elif self.mode == "collapse":  # hide shows nothing of it, not even this line
            seconds = self.reasoning_ended - self.started
            self.console.print(
                f"thought for {seconds:.1f} s, {self.reasoning_chunks} tokens"
                " (/reasoning show keeps it)",
                style="dim",
                markup=False,
            )

    def _content(self, text: str) -> None:
        if not text:
            return
        self._wrote = True
        self._last_char = text[-1]
        if self._markdown is not None:
            self._markdown.feed(text)
        else:
            self.console.file.write(text)
            self.console.file.flush()

    def close(self, outcome: Outcome) -> None:
        self._stop_waiting()
        self._end_reasoning()
        self._close_call()
        # "[incomplete]" marks a cut answer; when nothing came, the error line is enough.
        cut = outcome.error is not None and (self._wrote or bool(self.reasoning_parts))
        note = "[interrupted]" if outcome.interrupted else ("[incomplete]" if cut else None)
        if self._markdown is not None:
            if note:
                self._markdown.abort(note)
            else:
                self._markdown.finish()
            return
        if self._wrote and self._last_char != "\n":
            self.console.file.write("\n")
        if note:
            self.console.print(note, style="dim", markup=False)
