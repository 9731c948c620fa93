"""Routing model names to profiles: route() as a table, the checks, and ``-m`` on the CLI."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import WriteProfiles
from rig.profiles import make_profile
from typer.testing import CliRunner

from llmcli.cli import app
from llmcli.config.profiles import Profile, load_profiles
from llmcli.config.routes import route
from llmcli.errors import ConfigError
from llmcli.local.backend import resolve_profile
from llmcli.mock import MockConfig, MockServerThread


def named(name: str, *routes: tuple[str, str]) -> Profile:
    return dataclasses.replace(make_profile(f"http://{name}.test/v1"), name=name, routes=routes)


PROFILES = {
    profile.name: profile
    for profile in (
        named("hub", ("smollm2*", "demo"), ("big-pickle", "zen"), ("*-free", "zen"), ("qwen?", "mid")),
        named("mid", ("qwen3", "demo")),
        named("demo"),
        named("zen"),
    )
}  # fmt: skip


@pytest.mark.parametrize(
    ("start", "model", "expected"),
    [
        ("hub", None, "hub"),
        ("hub", "", "hub"),
        ("hub", "smollm2", "demo"),
        ("hub", "smollm2-135m", "demo"),
        ("hub", "big-pickle", "zen"),
        ("hub", "big-pickle-2", "hub"),  # a pattern is the whole name
        ("hub", "Big-Pickle", "hub"),  # and case counts
        ("hub", "glm-4.6-free", "zen"),
        ("hub", "qwen3", "demo"),  # hub -> mid -> demo
        ("hub", "qwen2", "mid"),  # mid has no route for it: it stays there
        ("hub", "gpt-4o", "hub"),
        ("demo", "smollm2", "demo"),  # only the asked profile's routes count
    ],
)
def test_route(start: str, model: str | None, expected: str) -> None:
    assert route(PROFILES, PROFILES[start], model).name == expected


def test_first_matching_pattern_wins() -> None:
    profile = named("hub", ("smol*", "demo"), ("smollm2", "zen"))
    assert route({**PROFILES, "hub": profile}, profile, "smollm2").name == "demo"


def test_route_refuses_what_load_profiles_would_have_refused() -> None:
    looping = {"a": named("a", ("*", "b")), "b": named("b", ("*", "a"))}
    with pytest.raises(ConfigError, match="cycle: a -> b -> a"):
        route(looping, looping["a"], "x")
    with pytest.raises(ConfigError, match="routes 'x' to 'gone'"):
        route({}, named("a", ("*", "gone")), "x")


# --- the profiles file ------------------------------------------------------------------

BOX = '[profiles.box]\nbase_url = "http://127.0.0.1:1/v1"\n'


def test_routes_load_in_file_order(write_profiles: WriteProfiles) -> None:
    write_profiles(BOX + 'routes = { "smollm2*" = "demo", "big-pickle" = "zen" }\n')
    box = load_profiles().profiles["box"]
    assert box.routes == (("smollm2*", "demo"), ("big-pickle", "zen"))
    assert box.describe()["routes"] == {"smollm2*": "demo", "big-pickle": "zen"}


def test_user_routes_merge_key_by_key(write_profiles: WriteProfiles, tmp_path: Any) -> None:
    write_profiles(
        BOX + 'routes = { "a*" = "zen", "b*" = "zen" }\n'
        '[profiles.local]\nroutes = { "smollm2" = "demo" }\n'
    )
    assert load_profiles().profiles["local"].routes == (("smollm2", "demo"),)


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ('routes = "demo"', "routes in profile 'box' must be a table of model patterns"),
        ('routes = { "x" = 1 }', "'x' must name a profile"),
        ('routes = { " " = "demo" }', "an empty model pattern"),
        ('routes = { "x" = "dmeo" }', "'x' goes to 'dmeo', which is not a profile (did you mean 'demo'?)"),
        ('routes = { "x" = "box" }', "routes form a cycle (box -> box)"),
    ],
)  # fmt: skip
def test_bad_routes(write_profiles: WriteProfiles, routes: str, message: str) -> None:
    path = write_profiles(BOX + routes + "\n")
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        load_profiles()
    assert str(info.value).startswith(str(path))


def test_a_cycle_through_several_profiles(write_profiles: WriteProfiles) -> None:
    write_profiles(
        BOX + 'routes = { "m*" = "zen" }\n'
        '[profiles.zen]\nroutes = { "*" = "local" }\n'
        '[profiles.local]\nroutes = { "model" = "box" }\n'
    )
    with pytest.raises(ConfigError, match=r"cycle \(zen -> local -> box -> zen\)"):
        load_profiles()


def test_backend_url_turns_routing_off(
    write_profiles: WriteProfiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_profiles(BOX + 'routes = { "smollm2" = "demo" }\n')
    assert resolve_profile("box", "smollm2").name == "demo"
    monkeypatch.setenv("BACKEND_URL", "http://127.0.0.1:2/v1")
    routed = resolve_profile("box", "smollm2")
    assert (routed.name, routed.base_url) == ("box", "http://127.0.0.1:2/v1")


# --- the CLI: -m picks the backend ------------------------------------------------------


@pytest.fixture
def two_backends(
    write_profiles: WriteProfiles,
) -> Iterator[tuple[MockServerThread, MockServerThread]]:
    # Each serves only its own models: a request sent to the wrong one fails with 401.
    near = MockServerThread(MockConfig(models=("big-pickle",)))
    far = MockServerThread(MockConfig(models=("far-free", "far-x-free")))
    near.start()
    far.start()
    try:
        write_profiles(
            f'default = "near"\n'
            f'[profiles.near]\nbase_url = "{near.base_url}"\ndialect = "zen"\n'
            'model = "big-pickle"\nroutes = { "far-*" = "far" }\n'
            f'[profiles.far]\nbase_url = "{far.base_url}"\ndialect = "zen"\n'
        )
        yield near, far
    finally:
        near.stop()
        far.stop()


def chat_requests(server: MockServerThread) -> list[str]:
    return [r.body["model"] for r in server.server.requests if r.path.endswith("/chat/completions")]


def test_model_picks_the_backend(two_backends: tuple[MockServerThread, MockServerThread]) -> None:
    near, far = two_backends
    result = CliRunner().invoke(app, ["complete", "-m", "far-free", "--json", "--no-log", "hi"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["profile"] == "far"
    result = CliRunner().invoke(app, ["complete", "-m", "big-pickle", "--no-log", "hi"])
    assert result.exit_code == 0, result.stderr
    result = CliRunner().invoke(app, ["chat", "-m", "far-x-free", "--no-log"], input="hi\n")
    assert result.exit_code == 0, result.stderr
    assert (chat_requests(near), chat_requests(far)) == (["big-pickle"], ["far-free", "far-x-free"])


def test_model_switch_in_chat_follows_the_routes(
    two_backends: tuple[MockServerThread, MockServerThread],
) -> None:
    near, far = two_backends
    script = "one\n/model far-free\ntwo\n/model big-pickle\nthree\n"
    result = CliRunner().invoke(app, ["chat", "--no-log"], input=script)
    assert result.exit_code == 0, result.stderr
    assert (chat_requests(near), chat_requests(far)) == (["big-pickle", "big-pickle"], ["far-free"])
    assert f"llmcli: profile: far at {far.base_url}; model: server default" in result.stderr
