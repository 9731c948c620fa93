"""Routing: a profile's ``routes`` send some model names to other profiles.

``routes = { "smollm2*" = "demo", "big-pickle" = "zen" }`` under one profile makes
``-m smollm2`` use ``demo`` and ``-m big-pickle`` use ``zen``. Patterns are shell globs,
matched case-sensitively against the whole name, in file order; the first match wins, and
the profile it names may route on in turn (``load_profiles`` refuses cycles). A name no
pattern matches stays with the profile. Pure: no I/O, no environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase

from llmcli.config.profiles import BACKEND_URL_ENV, Profile, ProfileSet
from llmcli.errors import ConfigError


def route(profiles: Mapping[str, Profile], profile: Profile, model: str | None) -> Profile:
    """The profile that serves ``model`` when asked of ``profile``."""
    seen = [profile.name]
    while model:
        target = next((to for pattern, to in profile.routes if fnmatchcase(model, pattern)), None)
        if target is None:
            break
        if target not in profiles:
            raise ConfigError(
                f"profile {profile.name!r} routes {model!r} to {target!r}, which is not a profile"
            )
        if target in seen:
            raise ConfigError(f"routes form a cycle: {' -> '.join([*seen, target])}")
        seen.append(target)
        profile = profiles[target]
    return profile


def pinned(profile: Profile) -> bool:
    """BACKEND_URL names the one server to use: no routing, no switching profile by model."""
    return BACKEND_URL_ENV in profile.overrides


def routed(profiles: ProfileSet, start: Profile, model: str | None) -> Profile:
    """The profile that serves ``model`` when asked of ``start`` (``start`` itself if pinned)."""
    return start if pinned(start) else route(profiles.profiles, start, model)
