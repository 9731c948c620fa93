"""Slash commands of the chat REPL: the table of them, parsing, and the nearest-name hint.

Pure: the REPL owns what each command does; this module only knows their names, their
arguments and their help, so parsing and completion are tested without a terminal.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SlashCommand:
    name: str
    args: str
    help: str
    choices: tuple[str, ...] = ()


COMMANDS: tuple[SlashCommand, ...] = (
    SlashCommand("help", "", "show this help"),
    SlashCommand("model", "[NAME]", "show or switch the model (Tab completes)"),
    SlashCommand("profile", "[NAME]", "show or switch the backend; chat kept"),
    SlashCommand("system", "[TEXT]", "show or set the system prompt (- clears)"),
    SlashCommand("role", "[NAME|-]", "show, pick or drop (-) a role"),
    SlashCommand(
        "reasoning",
        "[show|hide|collapse]",
        "say or set how reasoning is shown",
        ("show", "hide", "collapse"),
    ),
    SlashCommand("retry", "", "ask again for the last answer"),
    SlashCommand("undo", "[N]", "drop the last exchange (N: the last N)"),
    SlashCommand("edit-last", "[N]", "edit your (N-th) last message, as a branch"),
    SlashCommand("branches", "", "list this chat's branches"),
    SlashCommand("branch", "N", "go on from the branch through message N"),
    SlashCommand("edit", "", "write the next message in $EDITOR"),
    SlashCommand("file", "[PATH...|-]", "attach files to the next message (- drops)"),
    SlashCommand("clear", "", "start a new conversation"),
    SlashCommand("save", "FILE", "save as .md or .json (logged or not)"),
    SlashCommand(
        "cache",
        "save|restore NAME",
        "save or restore the KV cache (llama.cpp)",
        ("save", "restore"),
    ),
    SlashCommand("usage", "", "tokens and cost of this conversation"),
    SlashCommand("copy", "[N]", "copy the last answer, or its N-th code block"),
    SlashCommand("exit", "", "leave (Ctrl-D does too)"),
)
BY_NAME = {command.name: command for command in COMMANDS}


@dataclass(frozen=True, slots=True)
class SlashCall:
    name: str
    argument: str


class UnknownCommand(Exception):
    """A slash command that does not exist; ``suggestion`` is the nearest one, if any."""

    def __init__(self, name: str, suggestion: str | None, ambiguous: tuple[str, ...] = ()) -> None:
        if ambiguous:
            names = " or ".join(f"/{command}" for command in ambiguous)
            message = f"/{name} is ambiguous: {names}"
        else:
            hint = f" (did you mean /{suggestion}?)" if suggestion else ""
            message = f"unknown command /{name}{hint}; /help lists them"
        super().__init__(message)
        self.suggestion = suggestion
        self.ambiguous = ambiguous


def is_slash(text: str) -> bool:
    """A line is a command when it starts with one slash; ``//`` sends a literal slash."""
    stripped = text.lstrip()
    return stripped.startswith("/") and not stripped.startswith("//")


def parse(text: str) -> SlashCall:
    """``/name argument...`` -> SlashCall; unknown names raise ``UnknownCommand``."""
    body = text.strip()[1:]
    name, _, argument = body.partition(" ")
    name = name.lower()
    if name in BY_NAME:
        return SlashCall(name, argument.strip())
    # A unique prefix is as good as the name: /re is ambiguous, /ret is /retry.
    matches = [command for command in BY_NAME if name and command.startswith(name)]
    if len(matches) == 1:
        return SlashCall(matches[0], argument.strip())
    if len(matches) > 1:
        raise UnknownCommand(name, None, tuple(matches))
    close = difflib.get_close_matches(name, list(BY_NAME), n=1, cutoff=0.5)
    raise UnknownCommand(name, close[0] if close else None)


def help_text() -> str:
    width = max(len(f"/{c.name} {c.args}") for c in COMMANDS)
    lines = [f"  {f'/{c.name} {c.args}'.ljust(width)}  {c.help}" for c in COMMANDS]
    lines.append("  Enter sends; Alt+Enter or Esc Enter adds a line; Ctrl-C stops an answer.")
    return "\n".join(lines)
