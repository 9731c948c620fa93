"""Options that say what goes into the message, shared by ``complete`` and ``chat``: files to
attach (``-a``) and a role (``--role``). Here rather than in a command module, since no
command module may import another (each subcommand loads alone)."""

from __future__ import annotations

from typing import Annotated

import typer

from llmcli.commands.completion import complete_role_names

AttachOption = Annotated[
    list[str] | None,
    typer.Option(
        "--attach",
        "-a",
        metavar="FILE",
        help="Attach a file or glob (repeatable): text fenced in the message, PNG/JPEG/GIF/WebP"
        " as images.",
        show_default=False,
    ),
]
RoleOption = Annotated[
    str | None,
    typer.Option(
        "--role",
        "-r",
        metavar="NAME",
        help="Role from roles.toml (llmcli roles list): system prompt, prompt template, defaults.",
        show_default=False,
        autocompletion=complete_role_names,
    ),
]
