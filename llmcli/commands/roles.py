"""``llmcli roles``: list and show roles (named system prompts with their defaults).

Roles are read and checked by ``llmcli.config.roles``; this module parses and prints. A
table in a terminal, tab-separated lines when piped, JSON with ``--json``.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from llmcli.commands.boundary import command_boundary, report
from llmcli.commands.completion import complete_role_names
from llmcli.commands.helptext import HELP_SETTINGS, Command

app = typer.Typer(
    help="""List and show roles: named system prompts with their model and sampling defaults.

Roles are built in or read from roles.toml in the config directory ($LLMCLI_ROLES names
another file); use one with --role NAME on complete and chat, or /role NAME in a chat.

\b
Examples:
  llmcli roles list
  llmcli roles show summarise
  git diff | llmcli complete --role commit-message""",
    no_args_is_help=True,
    context_settings=HELP_SETTINGS,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.command("list", cls=Command)
@command_boundary
def list_command(as_json: JsonFlag = False) -> None:
    """List every role: built in, and those of your roles file.

    \b
    Examples:
      llmcli roles list
      llmcli roles list --json | jq -r '.roles[].name'
    """
    from llmcli.config.roles import load_roles
    from llmcli.ui.sanitize import dumps_json
    from llmcli.ui.tables import print_rows
    from llmcli.ui.terminal import Terminal

    role_set = load_roles()
    roles = list(role_set.roles.values())
    if as_json:
        document = {"file": str(role_set.file), "roles": [_describe(role) for role in roles]}
        print(dumps_json(document))
        return
    terminal = Terminal.detect()
    rows = [
        (role.name, role.description or "-", role.summary(), _source(role.source)) for role in roles
    ]
    columns = ("NAME", "DESCRIPTION", "SETS", "FROM") if terminal.stdout_isatty else ()
    print_rows(columns, rows, terminal=terminal, prose=("DESCRIPTION", "SETS"))
    if terminal.stdout_isatty:
        state = "" if role_set.file.is_file() else " (not created yet)"
        report(f"your roles file: {role_set.file}{state}")


@app.command("show", cls=Command)
@command_boundary
def show_command(
    name: Annotated[
        str,
        typer.Argument(metavar="NAME", help="Role to show.", autocompletion=complete_role_names),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Show one role: its system prompt, template and defaults.

    \b
    Examples:
      llmcli roles show summarise
      llmcli roles show summarise --json
    """
    from llmcli.config.roles import load_roles
    from llmcli.ui.sanitize import dumps_json
    from llmcli.ui.tables import print_rows
    from llmcli.ui.terminal import Terminal

    role = load_roles().get(name)
    description = _describe(role)
    if as_json:
        print(dumps_json(description))
        return
    rows = [(key, _text(value)) for key, value in description.items() if value not in (None, [])]
    print_rows(("FIELD", "VALUE"), rows, terminal=Terminal.detect(), prose=("VALUE",))


def _describe(role: object) -> dict[str, object]:
    assert dataclasses.is_dataclass(role) and not isinstance(role, type)
    description = dataclasses.asdict(role)
    description["stop"] = list(description["stop"])
    description["source"] = _source(str(description["source"]))
    return description


def _source(source: str) -> str:
    return source if source == "built-in" else f"file {source}"


def _text(value: object) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)
