"""llmcli profiles pointed at rig servers, built from the shipped ``local`` profile."""

from __future__ import annotations

import dataclasses
from typing import Any

from llmcli.config.profiles import Profile, load_profiles, select_profile


def make_profile(base_url: str, **changes: Any) -> Profile:
    """The shipped ``local`` profile with ``base_url`` and any field changed.

    Only the shipped file is read: a developer's own profiles must not leak into tests.
    """
    shipped = load_profiles(env={"XDG_CONFIG_HOME": "/nonexistent"})
    local = select_profile(shipped, "local", env={})
    return dataclasses.replace(local, base_url=base_url, **changes)
