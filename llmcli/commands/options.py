"""Options several commands share, and the one place a profile is chosen from them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from llmcli.profiles import Profile

ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        "-p",
        help="Profile from profiles.toml (default: $LLMCLI_PROFILE, then the file's default).",
        show_default=False,
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", help="Model id (default: the profile's model).", show_default=False
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout, for scripts.")]


def resolve_profile(name: str | None) -> Profile:
    """The profile the user asked for, with BACKEND_URL applied."""
    from llmcli.profiles import load_profiles, select_profile

    return select_profile(load_profiles(), name)
