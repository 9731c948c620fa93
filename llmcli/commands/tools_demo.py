"""``llmcli tools-demo``: let the model call tools until it answers, and show every call."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llmcli.commands.boundary import command_boundary, report
from llmcli.commands.options import (
    JsonOption,
    ModelOption,
    NoLogOption,
    ProfileOption,
    RawOption,
    SystemOption,
    backend,
)

if TYPE_CHECKING:
    from llmcli.tools.loop import Transcript


@command_boundary
def tools_demo(
    prompt: Annotated[
        str | None,
        typer.Argument(help="The prompt; stdin is appended when piped.", show_default=False),
    ] = None,
    profile: ProfileOption = None,
    model: ModelOption = None,
    system: SystemOption = None,
    tools_file: Annotated[
        Path | None,
        typer.Option("--tools", help="More tools from a TOML or JSON file.", show_default=False),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--tool", help="Offer only this tool (repeatable).", show_default=False),
    ] = None,
    tool_choice: Annotated[
        str,
        typer.Option("--tool-choice", help="auto, required, none, or a tool name (first step)."),
    ] = "auto",
    parallel: Annotated[
        bool | None,
        typer.Option(
            "--parallel/--no-parallel", help="Allow several calls per answer.", show_default=False
        ),
    ] = None,
    max_steps: Annotated[
        int, typer.Option("--max-steps", min=1, help="Most requests before giving up.")
    ] = 5,
    root: Annotated[
        Path | None,
        typer.Option(
            "--root",
            help="Directory read_file/list_dir may read (default: cwd).",
            show_default=False,
        ),
    ] = None,
    allow_python: Annotated[
        bool, typer.Option("--allow-python", help="Offer a python tool (each call confirmed).")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Run tools that need confirmation without asking.")
    ] = False,
    raw: RawOption = False,
    as_json: JsonOption = False,
    no_log: NoLogOption = False,
) -> None:
    """Answer with tools: the answer on stdout, tool calls and results on stderr."""
    import asyncio

    from llmcli.commands.complete import read_prompt
    from llmcli.config.profiles import load_profiles
    from llmcli.endings import SignalEnding, ending_error, run_until_signalled
    from llmcli.tools.catalog import build_toolbox
    from llmcli.tools.confirm import TerminalConfirmer
    from llmcli.tools.display import ToolLoopPrinter
    from llmcli.tools.environment import key_variables
    from llmcli.tools.loop import (
        LoopSettings,
        QuietView,
        Transcript,
        parse_tool_choice,
        run_tool_session,
        transcript_to_json,
    )
    from llmcli.ui.render import OutputMode
    from llmcli.ui.sanitize import dumps_json
    from llmcli.ui.terminal import Terminal
    from llmcli.wire.client import ChatRequest

    terminal = Terminal.detect()
    with backend(profile, terminal=terminal) as chosen:
        content = read_prompt(prompt, "tools-demo")
        confirm = TerminalConfirmer(
            stdin=terminal.stdin,
            stderr=terminal.stderr,
            interactive=terminal.stdin_isatty,
            assume_yes=yes,
        )
        toolbox = build_toolbox(
            root=root or Path.cwd(),
            confirm=confirm,
            allow_python=allow_python,
            tools_file=tools_file,
            only=only or (),
            key_variables=key_variables(load_profiles().profiles.values()),
        )
        settings = LoopSettings(parse_tool_choice(tool_choice, toolbox.tools), parallel, max_steps)
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": content}
        ]
        transcript = Transcript(messages=list(messages))
        mode = OutputMode.for_terminal(terminal, raw=raw)
        view = (
            QuietView()
            if as_json
            else ToolLoopPrinter(mode, stdout=terminal.stdout, stderr=terminal.stderr)
        )
        run = run_tool_session(
            chosen,
            ChatRequest(messages, model=model),
            toolbox,
            transcript,
            settings=settings,
            view=view,
        )
        try:
            # SIGTERM and SIGHUP cancel the loop as Ctrl-C does, so a running tool's
            # process group is killed and the transcript kept, not left behind.
            asyncio.run(run_until_signalled(run))
        except SignalEnding as ending:
            raise ending_error(ending) from None
        finally:
            if as_json:
                print(dumps_json(transcript_to_json(transcript, profile=chosen.name), indent=2))
            if not no_log:
                _log(transcript, chosen.name, model or chosen.model, system, content)
        if transcript.stopped == "max_steps":
            report(
                f"error: stopped after {max_steps} steps with the model still calling tools (raise --max-steps)"
            )
            raise typer.Exit(1)


def _log(
    transcript: Transcript, profile: str, model: str | None, system: str | None, prompt: str
) -> None:
    """Record the conversation; a history that cannot be written only warns."""
    from llmcli.errors import LlmcliError
    from llmcli.storage.store import Store
    from llmcli.tools.history import log_transcript

    try:
        with Store.open() as store:
            log_transcript(
                store, transcript, profile=profile, model=model, system=system, prompt=prompt
            )
    except LlmcliError as error:
        report(f"warning: not logged: {error} (--no-log skips the history)")
