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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from llmcli import __version__
from llmcli.commands.helptext import HELP_SETTINGS, Command

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
        add_completion=False,
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


def run(argv: Sequence[str]) -> None:
    """Run the command line ``argv`` (without the program name)."""
    first = argv[0] if argv else None
    app = build_app([first] if first in COMMANDS else None)
    app(args=list(argv), prog_name="llmcli")


_full_app: typer.Typer | None = None


def __getattr__(name: str) -> typer.Typer:
    """``llmcli.cli.app``: the whole app, built the first time it is asked for."""
    global _full_app
    if name != "app":
        raise AttributeError(name)
    if _full_app is None:
        _full_app = build_app()
    return _full_app
