"""Options several commands share, the checks on them, and how a command gets its backend.

``backend(name, model)`` wires ``llmcli.local.backend`` (routing, BACKEND_URL, a spawned
llama-server for the block) to the progress displays of ``llmcli.ui.progress``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llmcli.commands.completion import complete_model_names, complete_profile_names
from llmcli.errors import UsageError

if TYPE_CHECKING:
    from llmcli.config.profiles import Profile
    from llmcli.ui.terminal import Terminal

# Far beyond any context window; an answer this long is a typo.
MAX_TOKENS_LIMIT = 10_000_000

ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        "-p",
        metavar="NAME",
        help="Profile from profiles.toml (default: $LLMCLI_PROFILE, then the file's default).",
        show_default=False,
        autocompletion=complete_profile_names,
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        metavar="MODEL",
        help="Model id (default: the profile's model).",
        show_default=False,
        autocompletion=complete_model_names,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout, for scripts.")]
SystemOption = Annotated[
    str | None,
    typer.Option("--system", "-s", metavar="TEXT", help="System prompt.", show_default=False),
]
TemperatureOption = Annotated[
    float | None, typer.Option(metavar="FLOAT", help="Sampling temperature.", show_default=False)
]
TopPOption = Annotated[
    float | None,
    typer.Option("--top-p", metavar="FLOAT", help="Nucleus sampling.", show_default=False),
]
MaxTokensOption = Annotated[
    int | None,
    typer.Option(
        "--max-tokens", metavar="INTEGER", help="Longest answer, in tokens.", show_default=False
    ),
]
SeedOption = Annotated[
    int | None, typer.Option(metavar="INTEGER", help="Sampling seed.", show_default=False)
]
StopOption = Annotated[
    list[str] | None,
    typer.Option("--stop", metavar="TEXT", help="Stop sequence (repeatable).", show_default=False),
]
RawOption = Annotated[bool, typer.Option("--raw", help="Plain text, no markdown.")]
GrammarOption = Annotated[
    Path | None,
    typer.Option(
        "--grammar",
        metavar="FILE",
        help="GBNF grammar file the answer must follow (llama.cpp).",
        show_default=False,
    ),
]
JsonSchemaOption = Annotated[
    Path | None,
    typer.Option(
        "--json-schema",
        metavar="FILE",
        help="JSON schema file the answer must follow.",
        show_default=False,
    ),
]
NoLogOption = Annotated[bool, typer.Option("--no-log", help="Do not record this in the history.")]


def check_sampling(temperature: float | None, top_p: float | None, max_tokens: int | None) -> None:
    """Refuse sampling values no server takes (NaN, infinities, out of range) in one line."""
    if temperature is not None and not (math.isfinite(temperature) and 0 <= temperature <= 100):
        raise UsageError(f"--temperature {temperature}: give a number from 0 (e.g. 0.7)")
    if top_p is not None and not (math.isfinite(top_p) and 0 <= top_p <= 1):
        raise UsageError(f"--top-p {top_p}: give a number from 0 to 1 (e.g. 0.9)")
    if max_tokens is not None and not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
        raise UsageError(
            f"--max-tokens {max_tokens}: give a whole number from 1 to {MAX_TOKENS_LIMIT:,}"
        )


@contextlib.contextmanager
def backend(
    name: str | None, model: str | None = None, terminal: Terminal | None = None
) -> Iterator[Profile]:
    """The profile for ``name`` and ``model``, its server running while the block runs;
    progress on ``terminal``'s stderr (the process's own when not given)."""
    from llmcli.local.backend import resolve_profile, spawned_backend
    from llmcli.ui.progress import BackendProgress
    from llmcli.ui.terminal import Terminal

    display = BackendProgress(Terminal.detect() if terminal is None else terminal)
    with spawned_backend(resolve_profile(name, model), display) as profile:
        yield profile
