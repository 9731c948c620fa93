"""``llmcli profiles``: list, show, add and remove backend profiles, and pick the default.

The work happens in ``llmcli.config.profiles``; this module parses arguments and prints. Data
goes to stdout (a table in a terminal, tab-separated lines when piped, JSON with
``--json``); notes go to stderr. Keys are never printed, only where they come from.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Annotated

import typer

from llmcli.commands.boundary import command_boundary, report
from llmcli.commands.helptext import HELP_SETTINGS, Command
from llmcli.config.profiles import (
    DIALECTS,
    Profile,
    ProfileSet,
    add_profile,
    describe_key,
    describe_model,
    load_profiles,
    remove_profile,
    select_profile,
    set_default,
    user_config_path,
)
from llmcli.errors import ConfigError, UsageError
from llmcli.ui.tables import print_rows
from llmcli.ui.terminal import Terminal

app = typer.Typer(
    help="""List, show, add and remove backend profiles (where llmcli sends requests, and how).

\b
Examples:
  llmcli profiles list
  llmcli profiles show zen
  llmcli profiles add box --url http://192.168.1.20:8080/v1 --default
  llmcli profiles default zen""",
    no_args_is_help=True,
    context_settings=HELP_SETTINGS,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.command("list", cls=Command)
@command_boundary
def list_command(as_json: JsonFlag = False) -> None:
    """List every profile; which is the default and which is selected is said too.

    \b
    Examples:
      llmcli profiles list
      llmcli profiles list --json | jq -r '.profiles[].name'
    """
    env = os.environ
    profile_set = load_profiles(env)
    selected = _selected_name(profile_set, env)
    if as_json:
        _print_json(
            {
                "default": profile_set.default,
                "selected": selected,
                "files": [str(path) for path in profile_set.files],
                "user_file": str(user_config_path(env)),
                "profiles": [
                    _describe(profile, profile_set, selected)
                    for profile in profile_set.profiles.values()
                ],
            }
        )
        return
    terminal = Terminal.detect()
    rows = [
        (
            profile.name,
            # A column of "-" costs a table the width its URLs need: a note says it instead.
            *(() if terminal.stdout_isatty else (_marks(profile.name, profile_set, selected),)),
            profile.base_url,
            profile.model or "-",
            profile.dialect or "auto",
            describe_key(profile),
        )
        for profile in profile_set.profiles.values()
    ]
    if terminal.stdout_isatty:
        columns = ("NAME", "BASE URL", "MODEL", "DIALECT", "KEY")
        print_rows(columns, rows, terminal=terminal, prose=("MODEL", "KEY"))
        report(_default_and_selected(profile_set, selected))
        user_file = user_config_path(env)
        state = "" if user_file in profile_set.files else " (not created yet)"
        report(f"your profiles file: {user_file}{state}")
    else:
        print_rows((), rows, terminal=terminal)
    if env.get("BACKEND_URL", "").strip():
        report("BACKEND_URL is set: 'llmcli profiles show' prints what the selected one uses")


@app.command("show", cls=Command)
@command_boundary
def show_command(
    name: Annotated[
        str | None,
        typer.Argument(metavar="NAME", help="Profile to show; the selected one when omitted."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show one profile as it would be used, BACKEND_URL included; never its key.

    \b
    Examples:
      llmcli profiles show
      llmcli profiles show local --json
      BACKEND_URL=http://127.0.0.1:9000/v1 llmcli profiles show
    """
    env = os.environ
    profile_set = load_profiles(env)
    profile = select_profile(profile_set, name, env)
    selected = profile.name if not name else _selected_name(profile_set, env)
    description = _describe(profile, profile_set, selected)
    if as_json:
        _print_json(description)
        return
    # For people: what is actually used and why, not a bare "-".
    description["model"] = describe_model(profile)
    description["dialect"] = profile.dialect or "auto"
    for key in ("own_base_url", "dropped_model"):
        if description[key] is None:
            del description[key]
    rows = [(key, _text(value)) for key, value in description.items()]
    print_rows(("FIELD", "VALUE"), rows, terminal=Terminal.detect())


@app.command("add", cls=Command)
@command_boundary
def add_command(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="Profile name: letters, digits, '_' and '-'.")
    ],
    url: Annotated[
        str,
        typer.Option("--url", metavar="URL", help="Base URL, e.g. http://127.0.0.1:8080/v1."),
    ],
    key_env: Annotated[
        str | None,
        typer.Option(
            "--key-env",
            metavar="VAR",
            help="Environment variable that holds the key (a key itself is never stored).",
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", metavar="MODEL", help="Default model.")
    ] = None,
    dialect: Annotated[
        str | None,
        typer.Option(
            "--dialect",
            metavar=f"[{'|'.join(DIALECTS)}]",
            help="Wire dialect; omitted: from the URL, else asked of the server.",
        ),
    ] = None,
    make_default: Annotated[
        bool, typer.Option("--default", help="Make it the default profile.")
    ] = False,
) -> None:
    """Add a profile to your profiles file, or update one added before.

    Updating NAME replaces the fields given here and keeps the others. The shipped
    profiles (zen, local) are not replaced here: edit the file to override their fields.

    \b
    Examples:
      llmcli profiles add box --url http://192.168.1.20:8080/v1 --dialect llamacpp
      llmcli profiles add work --url https://api.example.com/v1 --key-env WORK_API_KEY
      llmcli profiles add box --url http://192.168.1.20:8080/v1 --model qwen3-8b --default
    """
    path = user_config_path(os.environ)
    add_profile(
        path,
        name,
        base_url=url,
        api_key_env=key_env,
        model=model,
        dialect=dialect,
        make_default=make_default,
    )
    report(f"saved profile {name!r} in {path}")


NameArgument = Annotated[str, typer.Argument(metavar="NAME", help="Profile name.")]


@app.command("rm", cls=Command)
@command_boundary
def rm_command(
    name: NameArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Remove without asking.")] = False,
) -> None:
    """Remove a profile from your profiles file (shipped profiles stay).

    \b
    Examples:
      llmcli profiles rm box
      llmcli profiles rm box --yes
    """
    path = user_config_path(os.environ)

    def confirm() -> bool:  # asked only once NAME is known to be removable
        if yes:
            return True
        if not Terminal.detect().stdin_isatty:
            raise UsageError("not removing without confirmation: pass --yes to rm from a script")
        return typer.confirm(f"remove profile {name!r} from {path}?", err=True)

    if remove_profile(path, name, confirm=confirm):
        report(f"removed profile {name!r} from {path}")
    else:
        report("nothing removed")


@app.command("default", cls=Command)
@command_boundary
def default_command(name: NameArgument) -> None:
    """Make NAME the default profile, in your profiles file.

    \b
    Examples:
      llmcli profiles default local
      llmcli profiles default box
    """
    path = user_config_path(os.environ)
    set_default(path, name)
    report(f"default profile is now {name!r} (in {path})")


def _selected_name(profile_set: ProfileSet, env: Mapping[str, str]) -> str | None:
    """Name the profile used without --profile; a broken LLMCLI_PROFILE is only a warning here."""
    try:
        return select_profile(profile_set, None, env).name
    except ConfigError as error:
        report(f"warning: {error}")
        return None


def _describe(profile: Profile, profile_set: ProfileSet, selected: str | None) -> dict[str, object]:
    return {
        **profile.describe(),
        "default": profile.name == profile_set.default,
        "selected": profile.name == selected,
    }


def _default_and_selected(profile_set: ProfileSet, selected: str | None) -> str:
    default = f"default profile: {profile_set.default} (used without -p)"
    if selected is None or selected == profile_set.default:
        return default
    return f"{default}; selected: {selected} (LLMCLI_PROFILE)"


def _marks(name: str, profile_set: ProfileSet, selected: str | None) -> str:
    marks = [
        mark
        for mark, on in (("default", name == profile_set.default), ("selected", name == selected))
        if on
    ]
    return ",".join(marks) or "-"


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "-"
    if isinstance(value, dict):
        return json.dumps(value) if value else "-"
    return str(value)


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
