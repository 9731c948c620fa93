"""``llmcli models`` and ``llmcli health``: what a backend serves, and whether it is up.

``llmcli models --local`` lists the GGUF files in the model directories instead, and
``llmcli models pull NAME`` fetches a catalogue model (``smollm2``) into them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from llmcli.commands.boundary import command_boundary, report
from llmcli.commands.helptext import HELP_SETTINGS, Command
from llmcli.commands.options import JsonOption, ProfileOption, backend
from llmcli.errors import LlmcliError
from llmcli.ui.terminal import Terminal

if TYPE_CHECKING:
    from llmcli.config.profiles import Profile
    from llmcli.local.models import ModelInfo as LocalModel
    from llmcli.wire.client import Health, ModelInfo

app = typer.Typer(
    help="""List the models a backend serves, or the GGUF files on this machine.

\b
Examples:
  llmcli models -p zen
  llmcli models --local
  llmcli models pull smollm2""",
    no_args_is_help=False,
    add_completion=False,
    rich_markup_mode=None,
    context_settings=HELP_SETTINGS,
)


@app.callback(invoke_without_command=True)
@command_boundary
def models(
    ctx: typer.Context,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
    local: Annotated[
        bool, typer.Option("--local", help="List GGUF files in the model directories.")
    ] = False,
) -> None:
    """List the models a backend serves (--local: the GGUF files on this machine)."""
    if ctx.invoked_subcommand is not None:
        return
    terminal = Terminal.detect()
    if local:
        _list_local(as_json, terminal)
        return
    import asyncio

    from llmcli.ui.sanitize import dumps_json
    from llmcli.wire.client import Client

    async def fetch() -> list[ModelInfo]:
        async with Client(chosen) as client:
            return await client.list_models()

    with backend(profile, terminal=terminal) as chosen:
        found = asyncio.run(fetch())
    if as_json:
        print(dumps_json([_model_json(model) for model in found], indent=2))
    elif terminal.stdout_isatty:
        _print_table(found, chosen.name, terminal)
    else:
        for model in found:
            print(_safe(model.id))


def _model_json(model: ModelInfo) -> dict[str, object]:
    document: dict[str, object] = {"id": model.id, "owned_by": model.owned_by}
    if model.free is not None:
        document["free"] = model.free
    if model.meta:
        document["meta"] = dict(model.meta)
    return document


def _safe(text: str) -> str:
    from llmcli.ui.sanitize import neutralize

    return neutralize(text)


def _print_table(found: list[ModelInfo], profile: str, terminal: Terminal) -> None:
    from rich.table import Table
    from rich.text import Text

    from llmcli.ui.render import make_console

    table = Table(title=f"models on {profile}", title_justify="left")
    table.add_column("id")
    has_meta = any(model.meta for model in found)
    has_free = any(model.free is not None for model in found)
    if has_free:
        table.add_column("free")
    if has_meta:
        for column in ("context", "parameters", "size"):
            table.add_column(column, justify="right")
    for model in found:
        row = [_safe(model.id)]
        if has_free:
            row.append("yes" if model.free else "")
        if has_meta:
            meta = model.meta or {}
            row += [
                _count(meta.get("n_ctx") or meta.get("n_ctx_train")),
                _count(meta.get("n_params")),
                _bytes(meta.get("size")),
            ]
        table.add_row(*(Text(cell) for cell in row))  # Text: a server's '[...]' is not markup
    make_console(terminal.stdout, color=terminal.color_out).print(table)


def _count(value: object) -> str:
    if not isinstance(value, int):
        return ""
    for unit, size in (("B", 10**9), ("M", 10**6), ("k", 10**3)):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return str(value)


def _bytes(value: object) -> str:
    if not isinstance(value, int):
        return ""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} B"


@command_boundary
def health(profile: ProfileOption = None, as_json: JsonOption = False) -> None:
    """Is the backend reachable, and ready to answer? Exit 0 only when ready.

    \b
    Examples:
      llmcli health -p local
      llmcli health -p zen --json
      until llmcli health -p local; do sleep 1; done
    """
    import asyncio

    from llmcli.ui.sanitize import dumps_json, neutralize
    from llmcli.wire.client import Client

    async def check() -> Health:
        async with Client(chosen) as client:
            return await client.health()

    with backend(profile, terminal=Terminal.detect()) as chosen:
        try:
            state = asyncio.run(check())
        except LlmcliError as error:
            if as_json:  # --json always prints one object, unreachable or not
                print(dumps_json(_health_json(chosen, False, False, str(error), None)))
            raise
    if as_json:
        latency = round(state.latency_ms, 1)
        print(dumps_json(_health_json(chosen, state.reachable, state.ready, state.detail, latency)))
    else:
        word = "ready" if state.ready else "not ready"
        print(
            f"{chosen.name}: {chosen.base_url} {word}: {neutralize(state.detail)} ({state.latency_ms:.0f} ms)"
        )
    if not state.ready:
        raise typer.Exit(1)


def _health_json(
    profile: Profile, reachable: bool, ready: bool, detail: str, latency_ms: float | None
) -> dict[str, object]:
    return {
        "profile": profile.name,
        "url": profile.base_url,
        "reachable": reachable,
        "ready": ready,
        "detail": detail,
        "latency_ms": latency_ms,
    }


@app.command(cls=Command)
@command_boundary
def pull(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="Model to fetch: smollm2.", show_default=False)
    ],
) -> None:
    """Fetch a model into the model directory (with a checksum); prints its path.

    \b
    Examples:
      llmcli models pull smollm2
      llama-server -m "$(llmcli models pull smollm2)"
    """
    from llmcli.local.models import pull_model
    from llmcli.ui.progress import PullProgress

    with PullProgress(name, Terminal.detect()) as progress:
        result = pull_model(name, progress=progress.update)
    if result.downloaded:
        report(f"pulled {name}: {result.path} (sha256 {result.sha256})")
    else:
        report(f"{name} is already here, checksum verified: {result.path}")
    print(result.path)


def _list_local(as_json: bool, terminal: Terminal) -> None:
    from llmcli.local.models import iter_local_models, model_dirs, read_model_info
    from llmcli.ui.sanitize import dumps_json

    found = [read_model_info(path) for path in iter_local_models()]
    if as_json:
        print(dumps_json([info.describe() for info in found], indent=2))
        return
    if not found:
        searched = ", ".join(str(directory) for directory in model_dirs())
        report(f"no GGUF files in {searched}; try 'llmcli models pull smollm2'")
        return
    if terminal.stdout_isatty:
        _print_local_table(found, terminal)
        return
    for info in found:
        print("\t".join(_local_row(info)))


def _local_row(info: LocalModel) -> list[str]:
    if info.error:
        return [_safe(str(info.path)), "", "", "", "", "", _bytes(info.size), info.error]
    return [
        _safe(str(info.path)),
        _safe(info.architecture or ""),
        _count(info.parameters),
        _safe(info.quantization or ""),
        str(info.context_length or ""),
        "yes" if info.chat_template else "no",
        _bytes(info.size),
    ]


def _print_local_table(found: list[LocalModel], terminal: Terminal) -> None:
    from rich.table import Table
    from rich.text import Text

    from llmcli.ui.render import make_console

    table = Table(title="GGUF models on this machine", title_justify="left")
    for column in ("path", "architecture", "parameters", "quantization", "context"):
        table.add_column(column, justify="left" if column in ("path", "architecture") else "right")
    table.add_column("template")
    table.add_column("size", justify="right")
    for info in found:
        table.add_row(*(Text(cell) for cell in _local_row(info)[:7]))
    make_console(terminal.stdout, color=terminal.color_out).print(table)
