"""One ``llmcli tools-demo`` run: the toolbox and its confirmations, the loop, the transcript.

``llmcli tools-demo`` parses its options into a :class:`ToolSetup` and calls
:func:`run_tool_demo` with the prompt. The loop runs under SIGTERM and SIGHUP as it does
under Ctrl-C: the task is cancelled, a running tool's process group is killed, and the
transcript keeps every step that happened. However the loop ends, the transcript is then
printed as one JSON document (``--json``) and recorded in the history (unless ``--no-log``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmcli.tools.loop import DEFAULT_MAX_STEPS

if TYPE_CHECKING:
    from llmcli.config.profiles import Profile
    from llmcli.tools.loop import Transcript
    from llmcli.tools.toolbox import Toolbox
    from llmcli.ui.terminal import Terminal


@dataclass(frozen=True, slots=True)
class ToolSetup:
    """What the user asked ``llmcli tools-demo`` for."""

    model: str | None = None
    system: str | None = None
    tools_file: Path | None = None
    only: tuple[str, ...] = ()
    tool_choice: str = "auto"
    parallel: bool | None = None
    max_steps: int = DEFAULT_MAX_STEPS
    root: Path | None = None
    allow_python: bool = False
    assume_yes: bool = False
    raw: bool = False
    as_json: bool = False
    log: bool = True


def run_tool_demo(
    setup: ToolSetup, profile: Profile, prompt: str, terminal: Terminal
) -> Transcript:
    """Run the loop to an answer or to ``max_steps``; ``transcript.stopped`` says which.

    Bad choices (``--tool``, ``--tool-choice``, a tools file) raise ``UsageError`` or
    ``ConfigError`` before any request. Backend errors, Ctrl-C and :class:`SignalEnding`
    propagate once the transcript has been printed and logged.
    """
    import asyncio

    from llmcli.endings import run_until_signalled
    from llmcli.tools.display import ToolLoopPrinter
    from llmcli.tools.loop import (
        LoopSettings,
        LoopView,
        QuietView,
        Transcript,
        parse_tool_choice,
        run_tool_session,
        transcript_to_json,
    )
    from llmcli.ui.render import OutputMode
    from llmcli.ui.sanitize import dumps_json
    from llmcli.wire.client import ChatRequest

    toolbox = build_demo_toolbox(setup, terminal)
    choice = parse_tool_choice(setup.tool_choice, toolbox.tools)
    settings = LoopSettings(choice, setup.parallel, setup.max_steps)
    messages = start_messages(setup.system, prompt)
    transcript = Transcript(messages=list(messages))
    mode = OutputMode.for_terminal(terminal, raw=setup.raw)
    view: LoopView = (
        QuietView()
        if setup.as_json
        else ToolLoopPrinter(mode, stdout=terminal.stdout, stderr=terminal.stderr)
    )
    run = run_tool_session(
        profile,
        ChatRequest(messages, model=setup.model),
        toolbox,
        transcript,
        settings=settings,
        view=view,
    )
    try:
        asyncio.run(run_until_signalled(run))
    finally:
        if setup.as_json:
            print(dumps_json(transcript_to_json(transcript, profile=profile.name), indent=2))
        if setup.log:
            _log(transcript, profile.name, setup.model or profile.model, setup.system, prompt)
    return transcript


def build_demo_toolbox(setup: ToolSetup, terminal: Terminal) -> Toolbox:
    """The tools on offer, asking on ``terminal`` before a call that needs approval."""
    from llmcli.config.profiles import load_profiles
    from llmcli.tools.catalog import build_toolbox
    from llmcli.tools.confirm import TerminalConfirmer
    from llmcli.tools.environment import key_variables

    confirm = TerminalConfirmer(
        stdin=terminal.stdin,
        stderr=terminal.stderr,
        interactive=terminal.stdin_isatty,
        assume_yes=setup.assume_yes,
    )
    return build_toolbox(
        root=setup.root or Path.cwd(),
        confirm=confirm,
        allow_python=setup.allow_python,
        tools_file=setup.tools_file,
        only=setup.only,
        key_variables=key_variables(load_profiles().profiles.values()),
    )


def start_messages(system: str | None, prompt: str) -> list[dict[str, Any]]:
    """The conversation the first request sends: the system prompt, if any, and the prompt."""
    system_message = [{"role": "system", "content": system}] if system else []
    return [*system_message, {"role": "user", "content": prompt}]


def _log(
    transcript: Transcript, profile: str, model: str | None, system: str | None, prompt: str
) -> None:
    """Record the conversation; a history that cannot be written only warns."""
    from llmcli.errors import LlmcliError
    from llmcli.storage.store import Store
    from llmcli.tools.history import log_transcript
    from llmcli.ui.notices import report

    try:
        with Store.open() as store:
            log_transcript(
                store, transcript, profile=profile, model=model, system=system, prompt=prompt
            )
    except LlmcliError as error:
        report(f"warning: not logged: {error} (--no-log skips the history)")
