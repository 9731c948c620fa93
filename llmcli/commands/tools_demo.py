"""``llmcli tools-demo``: let the model call tools until it answers, and show every call."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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


@command_boundary
def tools_demo(
    prompt: Annotated[
        str | None,
        typer.Argument(
            metavar="PROMPT", help="The prompt; stdin is appended when piped.", show_default=False
        ),
    ] = None,
    profile: ProfileOption = None,
    model: ModelOption = None,
    system: SystemOption = None,
    tools_file: Annotated[
        Path | None,
        typer.Option(
            "--tools",
            metavar="FILE",
            help="More tools from a TOML or JSON file.",
            show_default=False,
        ),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--tool", metavar="NAME", help="Offer only this tool (repeatable).", show_default=False
        ),
    ] = None,
    tool_choice: Annotated[
        str,
        typer.Option(
            "--tool-choice",
            metavar="[auto|required|none|NAME]",
            help="Whether and which tool to call (first step); NAME: that tool.",
        ),
    ] = "auto",
    parallel: Annotated[
        bool | None,
        typer.Option(
            "--parallel/--no-parallel", help="Allow several calls per answer.", show_default=False
        ),
    ] = None,
    max_steps: Annotated[
        int,
        typer.Option(
            "--max-steps", min=1, metavar="INTEGER", help="Most requests before giving up."
        ),
    ] = 5,
    root: Annotated[
        Path | None,
        typer.Option(
            "--root",
            metavar="DIR",
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
    """Answer with tools: the answer on stdout, tool calls and results on stderr.

    \b
    Examples:
      llmcli tools-demo -p local "What time is it?"
      llmcli tools-demo --tool list_dir --root . "Which files are here?"
      llmcli tools-demo --tools mytools.toml --tool-choice required "Look it up"
    """
    from llmcli.commands.complete import read_prompt
    from llmcli.endings import SignalEnding, ending_error
    from llmcli.tools.session import ToolSetup, run_tool_demo
    from llmcli.ui.terminal import Terminal

    setup = ToolSetup(
        model=model,
        system=system,
        tools_file=tools_file,
        only=tuple(only or ()),
        tool_choice=tool_choice,
        parallel=parallel,
        max_steps=max_steps,
        root=root,
        allow_python=allow_python,
        assume_yes=yes,
        raw=raw,
        as_json=as_json,
        log=not no_log,
    )
    terminal = Terminal.detect()
    with backend(profile, terminal=terminal) as chosen:
        content = read_prompt(prompt, "tools-demo")
        try:
            transcript = run_tool_demo(setup, chosen, content, terminal)
        except SignalEnding as ending:
            # SIGTERM and SIGHUP end the loop as Ctrl-C does; the transcript is kept.
            raise ending_error(ending) from None
        if transcript.stopped == "max_steps":
            report(
                f"error: stopped after {max_steps} steps with the model still calling tools (raise --max-steps)"
            )
            raise typer.Exit(1)
