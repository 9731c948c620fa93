"""``llmcli models`` and ``llmcli health``: what a backend serves, and whether it is up."""

from __future__ import annotations

import sys

import typer

from llmcli.commands.boundary import command_boundary
from llmcli.commands.options import JsonOption, ProfileOption, resolve_profile


@command_boundary
def models(profile: ProfileOption = None, as_json: JsonOption = False) -> None:
    """List the models a backend serves."""
    import asyncio

    from llmcli.client import Client
    from llmcli.sanitize import dumps_json

    chosen = resolve_profile(profile)

    async def fetch() -> list:  # type: ignore[type-arg]
        async with Client(chosen) as client:
            return await client.list_models()

    found = asyncio.run(fetch())
    if as_json:
        print(dumps_json([_model_json(model) for model in found], indent=2))
    elif sys.stdout.isatty():
        _print_table(found, chosen.name)
    else:
        for model in found:
            print(_safe(model.id))


def _model_json(model: object) -> dict[str, object]:
    document = {"id": model.id, "owned_by": model.owned_by}  # type: ignore[attr-defined]
    if model.free is not None:  # type: ignore[attr-defined]
        document["free"] = model.free  # type: ignore[attr-defined]
    if model.meta:  # type: ignore[attr-defined]
        document["meta"] = dict(model.meta)  # type: ignore[attr-defined]
    return document


def _safe(text: str) -> str:
    from llmcli.sanitize import neutralize

    return neutralize(text)


def _print_table(found: list, profile: str) -> None:  # type: ignore[type-arg]
    from rich.table import Table

    from llmcli.render import OutputMode, make_console

    mode = OutputMode.detect()
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
        table.add_row(*row)
    make_console(sys.stdout, color=mode.color_out).print(table)


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
    """Is the backend reachable, and ready to answer? Exit 0 only when ready."""
    import asyncio

    from llmcli.client import Client
    from llmcli.sanitize import dumps_json, neutralize

    chosen = resolve_profile(profile)

    async def check():  # type: ignore[no-untyped-def]
        async with Client(chosen) as client:
            return await client.health()

    report = asyncio.run(check())
    if as_json:
        print(
            dumps_json(
                {
                    "profile": chosen.name,
                    "url": chosen.base_url,
                    "reachable": report.reachable,
                    "ready": report.ready,
                    "detail": report.detail,
                    "latency_ms": round(report.latency_ms, 1),
                }
            )
        )
    else:
        state = "ready" if report.ready else "not ready"
        print(
            f"{chosen.name}: {chosen.base_url} {state}: {neutralize(report.detail)} ({report.latency_ms:.0f} ms)"
        )
    if not report.ready:
        raise typer.Exit(1)
