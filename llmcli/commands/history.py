"""``llmcli history``: list, show, export and delete logged conversations.

The store (``llmcli.storage.store``) does the work; this module parses arguments and prints.
Data goes to stdout: a table or coloured transcript in a terminal, plain text when piped,
JSON with ``--json``; notes and questions go to stderr. Model text is untrusted, so all
of it passes ``neutralize`` before it reaches a terminal or a Markdown file.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llmcli.commands.boundary import command_boundary, report
from llmcli.commands.helptext import HELP_SETTINGS, Command
from llmcli.errors import LlmcliError, UsageError
from llmcli.ui.terminal import Terminal

if TYPE_CHECKING:
    from llmcli.storage.store import Store

app = typer.Typer(
    help="""List, show, export and delete the conversations llmcli has logged.

\b
Examples:
  llmcli history list
  llmcli history show 01m9878nqe
  llmcli history export 01m9878nqe -o chat.md""",
    no_args_is_help=True,
    context_settings=HELP_SETTINGS,
)

IdArgument = Annotated[
    str, typer.Argument(metavar="ID", help="Conversation id, or any unique start of it.")
]

_STYLES = {
    "header": "bold",
    "role": "bold cyan",
    "reasoning": "dim",
    "tool": "yellow",
    "marker": "bold magenta",
    "error": "bold red",
    "text": "",
}


@app.command("list", cls=Command)
@command_boundary
def list_command(
    limit: Annotated[
        int,
        typer.Option(
            "--limit", "-n", min=1, metavar="INTEGER", help="How many conversations to list."
        ),
    ] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List conversations, the most recently updated first.

    \b
    Examples:
      llmcli history list
      llmcli history list -n 5 --json
    """
    from llmcli.ui.sanitize import dumps_json
    from llmcli.ui.transcript import format_time

    with _open_store() as store:
        summaries = store.list(limit=limit)
        if as_json:
            sys.stdout.write(dumps_json([s.to_record() for s in summaries], indent=2) + "\n")
            return
        terminal = Terminal.detect()
        on_screen = terminal.stdout_isatty
        rows = [
            (
                store.short_id(s.id) if on_screen else s.id,
                format_time(s.updated_at),
                s.profile,
                s.model or "-",
                str(s.message_count),
                s.title or "-",
            )
            for s in summaries
        ]
    if not rows and on_screen:
        report("no conversations yet: 'llmcli chat' and 'llmcli complete' log theirs here")
        return
    from llmcli.ui.tables import print_rows

    columns = ("ID", "UPDATED", "PROFILE", "MODEL", "MSGS", "TITLE")
    print_rows(columns, rows, terminal=terminal, shrink=("MODEL", "TITLE"), right=("MSGS",))


@app.command("show", cls=Command)
@command_boundary
def show_command(conversation_id: IdArgument) -> None:
    """Show a conversation: markdown rendered in a terminal, plain text when piped.

    \b
    Examples:
      llmcli history show 01m9878nqe
      llmcli history show 01m9878nqe | less
    """
    from llmcli.ui.transcript import transcript_blocks, transcript_lines

    terminal = Terminal.detect()
    with _open_store() as store:
        conversation = store.get(conversation_id)
    if not terminal.stdout_isatty:
        lines = transcript_lines(conversation)
        terminal.stdout.write("".join(text + "\n" for text, _style in lines))
        return
    from rich.console import Console, Group, RenderableType
    from rich.markdown import Markdown
    from rich.text import Text

    parts: list[RenderableType] = [
        # The text is neutralised already. No hyperlinks: a link shows where it goes.
        Markdown(text, hyperlinks=False)
        if style == "markdown"
        else Text(text, style=_STYLES[style])
        for text, style in transcript_blocks(conversation)
    ]
    Console(file=terminal.stdout, highlight=False, markup=False, emoji=False).print(Group(*parts))


@app.command("export", cls=Command)
@command_boundary
def export_command(
    conversation_id: IdArgument,
    as_json: Annotated[
        bool, typer.Option("--json", help="The full record as JSON, usage and timings included.")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to FILE instead of stdout.", metavar="FILE"),
    ] = None,
) -> None:
    """Export a conversation as Markdown, or as JSON with --json.

    \b
    Examples:
      llmcli history export 01m9878nqe -o chat.md
      llmcli history export 01m9878nqe --json > chat.json
    """
    from llmcli.ui.transcript import to_json, to_markdown

    with _open_store() as store:
        conversation = store.get(conversation_id)
    document = to_json(conversation) if as_json else to_markdown(conversation)
    if output is None or str(output) == "-":
        sys.stdout.write(document)
        return
    try:
        output.write_text(document, encoding="utf-8")
    except OSError as error:
        raise LlmcliError(f"{output}: cannot write: {error.strerror or error}") from None
    report(f"wrote conversation {conversation.id} to {output}")


@app.command("rm", cls=Command)
@command_boundary
def rm_command(
    conversation_id: IdArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
) -> None:
    """Delete a conversation and all its messages.

    \b
    Examples:
      llmcli history rm 01m9878nqe
      llmcli history rm 01m9878nqe --yes
    """
    from llmcli.ui.sanitize import neutralize

    terminal = Terminal.detect()
    with _open_store() as store:
        conversation = store.get(conversation_id)
        if not yes:
            if not terminal.stdin_isatty:
                raise UsageError(
                    "not deleting without confirmation: pass --yes to rm from a script"
                )
            title = neutralize(conversation.title or "untitled")
            question = (
                f"delete conversation {conversation.id} ({title!r},"
                f" {_count(conversation.message_count, 'message')})?"
            )
            if not typer.confirm(question, err=True):
                report("nothing deleted")
                return
        store.delete(conversation.id)
    report(f"deleted conversation {conversation.id}")


# --- formatting: pure functions of a conversation ---------------------------------------


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


# --- I/O ---------------------------------------------------------------------------------


def _open_store() -> Store:
    from llmcli.storage.store import Store

    return Store.open()
