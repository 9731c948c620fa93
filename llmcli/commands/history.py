"""``llmcli history``: list, search, show, export and delete logged conversations.

A conversation is a tree when ``/undo`` or ``/edit-last`` made branches: ``show`` shows the
current branch, numbers its messages and says where the others leave it, and
``show --branch N`` shows the branch through message N.

The store (``llmcli.storage.store``) does the work; this module parses arguments and prints.
Data goes to stdout: a table or coloured transcript in a terminal, plain text when piped,
JSON with ``--json``; notes and questions go to stderr. Model text is untrusted, so all
of it passes ``neutralize`` before it reaches a terminal or a Markdown file.
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llmcli.commands.boundary import command_boundary, report
from llmcli.commands.completion import (
    complete_conversation_ids,
    complete_model_names,
    complete_profile_names,
)
from llmcli.commands.helptext import HELP_SETTINGS, Command
from llmcli.errors import LlmcliError, UsageError
from llmcli.ui.terminal import Terminal

if TYPE_CHECKING:
    from llmcli.storage.store import Conversation, Store

app = typer.Typer(
    help="""List, show, export and delete the conversations llmcli has logged.

\b
Examples:
  llmcli history list
  llmcli history search "sqlite wal" --since 2026-01-01
  llmcli history usage --since 2026-01-01
  llmcli history show 01m9878nqe
  llmcli history export 01m9878nqe -o chat.md""",
    no_args_is_help=True,
    context_settings=HELP_SETTINGS,
)

IdArgument = Annotated[
    str,
    typer.Argument(
        metavar="ID",
        help="Conversation id, or any unique start of it.",
        autocompletion=complete_conversation_ids,
    ),
]

_STYLES = {
    "header": "bold",
    "role": "bold cyan",
    "reasoning": "dim",
    "tool": "yellow",
    "marker": "bold magenta",
    "error": "bold red",
    "fork": "yellow",
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


ProfileFilter = Annotated[
    str | None,
    typer.Option(
        "--profile",
        "-p",
        metavar="NAME",
        help="Only conversations with profile NAME.",
        autocompletion=complete_profile_names,
    ),
]
ModelFilter = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        metavar="MODEL",
        help="Only messages from MODEL (else their conversation's model).",
        autocompletion=complete_model_names,
    ),
]
SinceOption = Annotated[
    str | None,
    typer.Option("--since", metavar="DATE", help="From DATE (YYYY-MM-DD, local time) on."),
]
UntilOption = Annotated[
    str | None,
    typer.Option("--until", metavar="DATE", help="Up to and including DATE (YYYY-MM-DD)."),
]


@app.command("search", cls=Command)
@command_boundary
def search_command(
    text: Annotated[str, typer.Argument(metavar="TEXT", help="Words to find (FTS5 syntax).")],
    profile: ProfileFilter = None,
    model: ModelFilter = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, metavar="INTEGER", help="How many matches.")
    ] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Search every logged message, best match first, with a snippet of each.

    TEXT is an SQLite FTS5 query: words must all appear; "a phrase" in double quotes,
    OR, NOT and prefix* work.

    \b
    Examples:
      llmcli history search tomllib
      llmcli history search '"connection refused"' -p local --since 2026-01-01
      llmcli history search 'rust OR go' -m qwen --json
    """
    from llmcli.ui.sanitize import dumps_json
    from llmcli.ui.transcript import format_time

    start, end = _day_range(since, until)
    with _open_store() as store:
        result = store.search(
            text, profile=profile, model=model, since=start, until=end, limit=limit
        )
        terminal = Terminal.detect()
        on_screen = terminal.stdout_isatty
        rows = [
            (
                store.short_id(hit.conversation_id) if on_screen else hit.conversation_id,
                str(hit.seq),
                format_time(hit.created_at),
                hit.profile,
                hit.model or "-",
                hit.role,
                hit.snippet,
            )
            for hit in result.hits
        ]
    if not result.ranked:
        report("this SQLite has no FTS5: matching TEXT as plain text, newest first")
    if as_json:
        sys.stdout.write(dumps_json([h.to_record() for h in result.hits], indent=2) + "\n")
        return
    if not rows:
        report("no messages match")
        return
    from llmcli.ui.tables import print_rows

    columns = ("ID", "MSG", "TIME", "PROFILE", "MODEL", "ROLE", "SNIPPET")
    print_rows(columns, rows, terminal=terminal, shrink=("MODEL", "SNIPPET"), right=("MSG",))


@app.command("usage", cls=Command)
@command_boundary
def usage_command(
    since: SinceOption = None,
    until: UntilOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Total the tokens and cost of the answers, per profile and model.

    Tokens are what the servers reported; cost is zen's, in dollars.

    \b
    Examples:
      llmcli history usage
      llmcli history usage --since 2026-01-01 --until 2026-01-31
      llmcli history usage --since 2026-01-01 --json
    """
    from llmcli.ui.sanitize import dumps_json

    start, end = _day_range(since, until)
    with _open_store() as store:
        totals = store.usage(since=start, until=end)
    if as_json:
        sys.stdout.write(dumps_json([t.to_record() for t in totals], indent=2) + "\n")
        return
    if not totals:
        report("no answers in that period")
        return
    from llmcli.ui.tables import print_rows

    rows = [
        (
            t.profile,
            t.model or "-",
            str(t.answers),
            str(t.prompt_tokens),
            str(t.completion_tokens),
            str(t.total_tokens),
            "-" if t.cost is None else f"${t.cost}",
        )
        for t in totals
    ]
    columns = ("PROFILE", "MODEL", "ANSWERS", "PROMPT", "COMPLETION", "TOTAL", "COST")
    numbers = ("ANSWERS", "PROMPT", "COMPLETION", "TOTAL", "COST")
    print_rows(columns, rows, terminal=Terminal.detect(), shrink=("MODEL",), right=numbers)


@app.command("show", cls=Command)
@command_boundary
def show_command(
    conversation_id: IdArgument,
    branch: Annotated[
        int | None,
        typer.Option(
            "--branch",
            "-b",
            min=1,
            metavar="N",
            help="Show the branch through message N instead of the current one.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="The branch as JSON: every field, and its forks.")
    ] = False,
) -> None:
    """Show a conversation: markdown rendered in a terminal, plain text when piped.

    A conversation with branches (made by /undo or /edit-last in the chat) shows its
    current branch, numbers its messages and notes where other branches leave it.

    \b
    Examples:
      llmcli history show 01m9878nqe
      llmcli history show 01m9878nqe | less
      llmcli history show 01m9878nqe --branch 3
      llmcli history show 01m9878nqe --json
    """
    from llmcli.ui.transcript import to_json, transcript_blocks

    terminal = Terminal.detect()
    with _open_store() as store:
        conversation = store.get(conversation_id, branch=branch)
    if as_json:
        sys.stdout.write(to_json(conversation))
        return
    blocks = _with_forks(transcript_blocks(conversation), conversation, numbered=branch is not None)
    if not terminal.stdout_isatty:
        lines = [line for text, _style in blocks for line in text.split("\n")]
        terminal.stdout.write("".join(line + "\n" for line in lines))
        return
    from rich.console import Console, Group, RenderableType
    from rich.text import Text

    from llmcli.ui.markdown import CODE_THEME, PastableMarkdown

    parts: list[RenderableType] = [
        # The text is neutralised already. No hyperlinks: a link shows where it goes.
        PastableMarkdown(text, hyperlinks=False, code_theme=CODE_THEME)
        if style == "markdown"
        else Text(text, style=_STYLES[style])
        for text, style in blocks
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


def _with_forks(
    blocks: list[tuple[str, str]], conversation: Conversation, *, numbered: bool
) -> list[tuple[str, str]]:
    """The transcript's blocks with each message numbered (``user #3:``) and a note where
    other branches leave this one, when there are any (or a branch was asked for)."""
    from llmcli.ui.branches import fork_note

    if not conversation.forks and not numbered:
        return blocks
    # Each message's blocks start with a blank line and its role label (see transcript).
    labels = [i for i, (_text, style) in enumerate(blocks) if style == "role"]
    labels = labels[1:] if conversation.system else labels
    messages = conversation.messages
    if len(labels) != len(messages):  # not the shape expected: show it unnumbered
        return blocks
    notes = {fork.after: fork_note(fork, conversation.id) for fork in conversation.forks}
    starts = [label - 1 for label in labels] + [len(blocks)]
    shown = blocks[: starts[0]]
    if None in notes:
        shown += [("", "text"), (notes[None], "fork")]
    for index, message in enumerate(messages):
        part = blocks[starts[index] : starts[index + 1]]
        label = part[1][0]
        part[1] = (f"{label.removesuffix(':')} #{message.seq}:", "role")
        shown += part
        if message.seq in notes:
            shown += [("", "text"), (notes[message.seq], "fork")]
    return shown


def _day_range(since: str | None, until: str | None) -> tuple[float | None, float | None]:
    """``--since``/``--until`` days (local time) as ``[start, end)`` Unix seconds."""
    start = None if since is None else _day_start(since, "--since")
    end = None if until is None else _day_start(until, "--until", days_after=1)
    if start is not None and end is not None and end <= start:
        raise UsageError(f"--until {until} is before --since {since}")
    return start, end


def _day_start(text: str, option: str, *, days_after: int = 0) -> float:
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a date: write YYYY-MM-DD") from None
    midnight = datetime.datetime.combine(day + datetime.timedelta(days=days_after), datetime.time())
    return midnight.timestamp()


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


# --- I/O ---------------------------------------------------------------------------------


def _open_store() -> Store:
    from llmcli.storage.store import Store

    return Store.open()
