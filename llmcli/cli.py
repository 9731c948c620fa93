"""The ``llmcli`` command line: one Typer app, one module per subcommand.

Only typer and the standard library are imported here; each command imports the layers
it needs when it runs. Subcommands are loaded lazily, as click recommends for large
command lines: ``llmcli complete ...`` builds an app holding ``complete`` alone, so it
pays neither for importing the other command modules nor for typer turning their
signatures into click commands (together about 60 ms, see benchmarks/README.md). Help,
unknown names and the tests get the whole app (``app``, built on first use).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from llmcli import __version__
from llmcli.commands.helptext import HELP_SETTINGS, Command, Group

if TYPE_CHECKING:
    from collections.abc import Callable

Kind = Literal["command", "group"]
# Subcommand name -> (module in llmcli.commands, attribute, what it is), in help order.
COMMANDS: dict[str, tuple[str, str, Kind]] = {
    "chat": ("chat", "chat", "command"),
    "complete": ("complete", "complete", "command"),
    "embed": ("embed", "embed", "command"),
    "tools-demo": ("tools_demo", "tools_demo", "command"),
    "models": ("models", "app", "group"),
    "health": ("models", "health", "command"),
    "serve": ("serve", "serve", "command"),
    "profiles": ("profiles", "app", "group"),
    "roles": ("roles", "app", "group"),
    "history": ("history", "app", "group"),
    "bench": ("bench", "app", "group"),
    "mock-server": ("mock_server", "mock_server", "command"),
    "slots": ("slots", "app", "group"),
}

EXAMPLES = """\b
Examples:
  llmcli complete "Name the capital of France"
  llmcli chat -p local
  llmcli bench -p zen -p local --concurrency 1,4

Every command has -h, with examples of its own."""


def _version(value: bool) -> None:
    if value:
        typer.echo(f"llmcli {__version__}")
        raise typer.Exit()


def main(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """A terminal client and benchmark for OpenAI-compatible LLM backends."""


def build_app(names: Sequence[str] | None = None) -> typer.Typer:
    """The app with the subcommands ``names`` (all of them when ``None``)."""
    app = typer.Typer(
        name="llmcli",
        help="A terminal client and benchmark for OpenAI-compatible LLM backends (opencode zen, llama.cpp).",
        no_args_is_help=True,
        cls=Group,
        # --install-completion and --show-completion; typer imports its completion module
        # (and shellingham) whatever this says, so they cost start-up next to nothing.
        add_completion=True,
        # Tracebacks only for real bugs, and never with locals: they can hold keys.
        pretty_exceptions_show_locals=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings=HELP_SETTINGS,
        epilog=EXAMPLES,
    )
    app.callback()(main)
    for name in COMMANDS if names is None else names:
        module_name, attribute, kind = COMMANDS[name]
        module = importlib.import_module(f"llmcli.commands.{module_name}")
        target = getattr(module, attribute)
        if kind == "group":
            app.add_typer(target, name=name)
        else:
            function: Callable[..., object] = target
            app.command(name, cls=Command)(function)
    return app


# Set by the shell completion scripts (click's ``_{PROG}_COMPLETE``) when Tab is pressed.
COMPLETE_VAR = "_LLMCLI_COMPLETE"


def run(argv: Sequence[str]) -> None:
    """Run the command line ``argv`` (without the program name)."""
    first = argv[0] if argv else None
    # Completing needs every command: the words being completed are in the shell's
    # variables, not in argv.
    instruction = os.environ.get(COMPLETE_VAR)
    if instruction:
        os.environ[COMPLETE_VAR] = typer_instruction(instruction)
    app = build_app([first] if first in COMMANDS and not instruction else None)
    app(args=list(argv), prog_name="llmcli")


def typer_instruction(instruction: str) -> str:
    """Typer's spelling (``source_bash``) of click's (``bash_source``); others unchanged.

    Click documents ``_LLMCLI_COMPLETE=bash_source``; typer only reads ``source_bash``,
    which its own scripts (``--show-completion``) use. Both work here.
    """
    shell, _, action = instruction.partition("_")
    if shell in _SHELLS and action in ("source", "complete"):
        return f"{action}_{shell}"
    return instruction


_SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")
_full_app: typer.Typer | None = None


def __getattr__(name: str) -> typer.Typer:
    """``llmcli.cli.app``: the whole app, built the first time it is asked for."""
    global _full_app
    if name != "app":
        raise AttributeError(name)
    if _full_app is None:
        _full_app = build_app()
    return _full_app
