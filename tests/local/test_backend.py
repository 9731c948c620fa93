"""``llmcli.local.backend``: BACKEND_URL pins a profile against routing; a profile that
spawns nothing is used as it is, and the display hears of nothing."""

from __future__ import annotations

import dataclasses
from contextlib import AbstractContextManager

import pytest
from rig.profiles import make_profile

from llmcli.config.profiles import BACKEND_URL_ENV, Profile, ProfileSet
from llmcli.config.routes import pinned, routed
from llmcli.local.backend import PullDisplay, StartDisplay, spawned_backend


def profiles(*named: Profile) -> ProfileSet:
    return ProfileSet(profiles={p.name: p for p in named}, default=named[0].name, files=())


HOME = make_profile("http://127.0.0.1:1/v1", name="home", routes=(("small*", "other"),))
OTHER = make_profile("http://127.0.0.1:2/v1", name="other")
PINNED = dataclasses.replace(HOME, overrides=(BACKEND_URL_ENV,))


@pytest.mark.parametrize(
    ("start", "model", "expected"),
    [
        (HOME, "small-1", "other"),  # the route applies
        (HOME, "big", "home"),  # no pattern matches: stays
        (HOME, None, "home"),
        (PINNED, "small-1", "home"),  # BACKEND_URL turns routing off
    ],
)
def test_routed(start: Profile, model: str | None, expected: str) -> None:
    chosen = routed(profiles(HOME, OTHER), start, model)
    assert chosen.name == expected
    assert pinned(chosen) is (start is PINNED)


class Silent:
    """A display that fails the test if anything is shown."""

    def say(self, text: str) -> None:
        raise AssertionError(f"said {text!r}")

    def starting(self, profile: str) -> StartDisplay:
        raise AssertionError(f"started {profile}")

    def pulling(self, name: str) -> AbstractContextManager[PullDisplay]:
        raise AssertionError(f"pulled {name}")


def test_a_profile_that_spawns_nothing_is_used_as_it_is() -> None:
    assert HOME.spawn is None
    with spawned_backend(HOME, Silent()) as chosen:
        assert chosen is HOME
