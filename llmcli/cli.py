"""The ``llmcli`` command line: one Typer app, one module per subcommand.

Only typer and the standard library are imported here; each command imports the layers
it needs when it runs.
"""

from __future__ import annotations

from typing import Annotated

import typer

from llmcli import __version__
from llmcli.commands import (
    bench,
    chat,
    complete,
    embed,
    history,
    mock_server,
    models,
    profiles,
    serve,
    slots,
    tools_demo,
)

app = typer.Typer(
    name="llmcli",
    help="A terminal client and benchmark for OpenAI-compatible LLM backends (opencode zen, llama.cpp).",
    no_args_is_help=True,
    add_completion=False,
    # Tracebacks only for real bugs, and never with locals: they can hold keys.
    pretty_exceptions_show_locals=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"llmcli {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """A terminal client and benchmark for OpenAI-compatible LLM backends."""


app.command()(chat.chat)
app.command()(complete.complete)
app.command()(embed.embed)
app.command("tools-demo")(tools_demo.tools_demo)
app.add_typer(models.app, name="models")
app.command()(models.health)
app.command()(serve.serve)
app.add_typer(profiles.app, name="profiles")
app.add_typer(history.app, name="history")
app.add_typer(bench.app, name="bench")
app.command("mock-server")(mock_server.mock_server)
app.add_typer(slots.app, name="slots")
