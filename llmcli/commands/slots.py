"""``llmcli slots``: list, save, restore and erase llama-server's KV cache slots.

Saving and restoring need a server started with ``--slot-save-path`` (a spawned profile
always has one). Results are one line each on stdout, or JSON with ``--json``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from llmcli.commands.boundary import command_boundary
from llmcli.commands.helptext import HELP_SETTINGS, Command
from llmcli.commands.options import JsonOption, ProfileOption, backend

if TYPE_CHECKING:
    from llmcli.config.profiles import Profile
    from llmcli.local.slots import SlotResult
    from llmcli.wire.client import Client

T = TypeVar("T")

app = typer.Typer(
    help="""KV cache slots of a llama-server: list, save NAME, restore NAME, erase.

\b
Examples:
  llmcli slots list -p demo
  llmcli slots save -p demo warm.bin
  llmcli slots restore -p demo warm.bin""",
    no_args_is_help=True,
    context_settings=HELP_SETTINGS,
)
NameArgument = Annotated[
    str, typer.Argument(metavar="NAME", help="File name in the server's slot directory.")
]
SlotOption = Annotated[
    int | None,
    typer.Option(
        "--slot",
        metavar="INTEGER",
        help="Slot id (default: the one used last).",
        show_default=False,
    ),
]


def _run(profile: str | None, work: Callable[[Client], Awaitable[T]]) -> T:
    import asyncio

    from llmcli.wire.client import Client

    async def run(chosen: Profile) -> T:
        async with Client(chosen) as client:
            return await work(client)

    with backend(profile) as chosen:
        return asyncio.run(run(chosen))


def _print(results: list[SlotResult], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([{n: getattr(r, n) for n in r.__slots__} for r in results]))
        return
    for result in results:
        typer.echo(result.describe())


@app.command("list", cls=Command)
@command_boundary
def list_command(profile: ProfileOption = None, as_json: JsonOption = False) -> None:
    """List the server's slots: id, context size, busy, latest task, prompt tokens.

    \b
    Examples:
      llmcli slots list -p local
      llmcli slots list -p demo --json
    """
    from llmcli.local.slots import list_slots

    found = _run(profile, list_slots)
    if as_json:
        typer.echo(json.dumps([{n: getattr(s, n) for n in s.__slots__} for s in found]))
        return
    for slot in found:
        state = "busy" if slot.is_processing else "idle"
        task = "-" if slot.id_task is None else str(slot.id_task)
        prompt = "-" if slot.n_prompt_tokens is None else str(slot.n_prompt_tokens)
        typer.echo(f"slot {slot.id}  n_ctx {slot.n_ctx}  {state}  task {task}  prompt {prompt}")


@app.command(cls=Command)
@command_boundary
def save(
    name: NameArgument,
    profile: ProfileOption = None,
    slot: SlotOption = None,
    as_json: JsonOption = False,
) -> None:
    """Save a slot's KV cache to NAME.

    \b
    Examples:
      llmcli slots save -p demo warm.bin
      llmcli slots save -p local --slot 1 long-prompt.bin
    """
    from llmcli.local.slots import save_slot

    _print([_run(profile, lambda client: save_slot(client, name, slot))], as_json)


@app.command(cls=Command)
@command_boundary
def restore(
    name: NameArgument,
    profile: ProfileOption = None,
    slot: SlotOption = None,
    as_json: JsonOption = False,
) -> None:
    """Restore a KV cache saved as NAME into a slot.

    \b
    Examples:
      llmcli slots restore -p demo warm.bin
      llmcli slots restore -p local --slot 1 long-prompt.bin
    """
    from llmcli.local.slots import restore_slot

    _print([_run(profile, lambda client: restore_slot(client, name, slot))], as_json)


@app.command(cls=Command)
@command_boundary
def erase(
    profile: ProfileOption = None,
    slot: Annotated[
        int | None,
        typer.Option("--slot", metavar="INTEGER", help="Slot id (default: every slot)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Empty one slot's KV cache, or every slot's.

    \b
    Examples:
      llmcli slots erase -p demo
      llmcli slots erase -p local --slot 0
    """
    from llmcli.local.slots import erase_slots

    _print(_run(profile, lambda client: erase_slots(client, slot)), as_json)
