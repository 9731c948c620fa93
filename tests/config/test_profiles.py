"""Tests for llmcli.config.profiles: layering, selection, BACKEND_URL, errors, writing, redaction.

Every test passes an explicit environment and writes its files under tmp_path; the real
~/.config and os.environ are never read.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import REPO

from llmcli.config import profiles as profiles_module
from llmcli.config.profiles import (
    BACKEND_URL_ENV,
    SHIPPED_PATH,
    SPAWN_DEFAULT_URL,
    Profile,
    ProfileSet,
    SpawnSpec,
    add_profile,
    describe_model,
    describe_url,
    detect_dialect,
    load_profiles,
    select_profile,
    user_config_path,
)
from llmcli.errors import ConfigError

SECRET = "sk-live-0123456789abcdef"


def write_config(tmp_path: Path, text: str, **env: str) -> dict[str, str]:
    """Write a user file and return an environment naming it (and a fake HOME)."""
    path = tmp_path / "profiles.toml"
    path.write_text(text, encoding="utf-8")
    return {"LLMCLI_CONFIG": str(path), "HOME": str(tmp_path / "home"), **env}


def load(tmp_path: Path, text: str, **env: str) -> ProfileSet:
    return load_profiles(write_config(tmp_path, text, **env))


def config_error(tmp_path: Path, text: str, **env: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, **env)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- shipped defaults and layering -----------------------------------------------------


def test_shipped_defaults_without_a_user_file(tmp_path: Path) -> None:
    profiles = load_profiles({"HOME": str(tmp_path)})

    assert profiles.default == "zen"
    assert profiles.files == (SHIPPED_PATH,)
    assert list(profiles.profiles) == ["zen", "local", "demo"]
    zen, local = profiles.profiles["zen"], profiles.profiles["local"]
    assert (zen.base_url, zen.model, zen.dialect) == (
        "https://opencode.ai/zen/v1",
        "big-pickle",
        "zen",
    )
    assert (zen.api_key, zen.key_source, zen.api_key_env) == ("public", "profile", "ZEN_API_KEY")
    assert (local.base_url, local.api_key, local.dialect) == (
        "http://127.0.0.1:8080/v1",
        "no-key",
        "llamacpp",
    )
    assert (zen.connect_timeout, zen.read_timeout) == (10.0, 300.0)
    assert zen.source == str(SHIPPED_PATH)


def test_top_level_symlink_points_at_the_shipped_file() -> None:
    link = REPO / "profiles.toml"
    assert link.is_symlink()
    assert link.resolve() == SHIPPED_PATH.resolve()


def test_user_file_overrides_field_by_field(tmp_path: Path) -> None:
    profiles = load(
        tmp_path,
        """
        default = "gpu"
        [profiles.zen]
        model = "glm-4.6"
        [profiles.gpu]
        base_url = "http://gpu.lan:8080/v1/"
        """,
    )
    zen, gpu = profiles.profiles["zen"], profiles.profiles["gpu"]
    user_file = str(tmp_path / "profiles.toml")

    assert zen.model == "glm-4.6"
    assert zen.base_url == "https://opencode.ai/zen/v1"  # kept from the shipped file
    assert zen.api_key == "public"
    assert zen.source == user_file
    assert profiles.profiles["local"].source == str(SHIPPED_PATH)
    assert gpu.base_url == "http://gpu.lan:8080/v1"  # no trailing slash
    assert gpu.dialect is None  # not opencode.ai: the client asks the server
    assert profiles.default == "gpu"
    assert list(profiles.profiles) == ["zen", "local", "demo", "gpu"]
    assert profiles.files == (SHIPPED_PATH, tmp_path / "profiles.toml")


def test_headers_and_params_merge_key_by_key_and_timeout_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = tmp_path / "shipped.toml"
    shipped.write_text(
        """
        default = "box"
        [profiles.box]
        base_url = "http://box:8080/v1"
        timeout = {connect = 3, read = 30}
        headers = {X-One = "1", X-Two = "2"}
        params = {cache_prompt = false, seed = 1}
        """
    )
    monkeypatch.setattr(profiles_module, "SHIPPED_PATH", shipped)

    profiles = load(
        tmp_path,
        """
        [profiles.box]
        timeout = {read = 60}
        headers = {x-two = "two", X-Three = "3"}
        params = {seed = 2, stop = ["END"]}
        """,
    )

    box = profiles.profiles["box"]
    assert dict(box.headers) == {"X-One": "1", "x-two": "two", "X-Three": "3"}
    assert box.request_params() == {"cache_prompt": False, "seed": 2, "stop": ["END"]}
    # timeout is one value: the user's table replaces the shipped one, defaults fill in.
    assert (box.connect_timeout, box.read_timeout) == (10.0, 60.0)
    assert box.base_url == "http://box:8080/v1"


def test_missing_user_file_is_fine_but_a_missing_llmcli_config_is_not(tmp_path: Path) -> None:
    home = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "nowhere")}
    assert load_profiles(home).files == (SHIPPED_PATH,)

    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError) as caught:
        load_profiles({**home, "LLMCLI_CONFIG": str(missing)})
    assert str(caught.value) == (
        f"{missing}: no such file (named by LLMCLI_CONFIG); create it with "
        "'llmcli profiles add' or unset LLMCLI_CONFIG"
    )
    assert caught.value.exit_code == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG paths are Linux's")
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"HOME": "/h"}, "/h/.config/llmcli/profiles.toml"),
        ({"HOME": "/h", "XDG_CONFIG_HOME": "/x"}, "/x/llmcli/profiles.toml"),
        ({"HOME": "/h", "XDG_CONFIG_HOME": ""}, "/h/.config/llmcli/profiles.toml"),
        # The XDG spec: a relative path is invalid and ignored.
        ({"HOME": "/h", "XDG_CONFIG_HOME": "rel"}, "/h/.config/llmcli/profiles.toml"),
        ({"HOME": "/h", "LLMCLI_CONFIG": "/c/p.toml"}, "/c/p.toml"),
        ({"HOME": "/h", "LLMCLI_CONFIG": "~/p.toml"}, "/h/p.toml"),
        ({"HOME": "/h", "LLMCLI_CONFIG": ""}, "/h/.config/llmcli/profiles.toml"),
    ],
)
def test_user_config_path(env: dict[str, str], expected: str) -> None:
    assert user_config_path(env) == Path(expected)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG paths are Linux's")
def test_user_file_is_found_in_the_xdg_config_dir(tmp_path: Path) -> None:
    config_dir = tmp_path / "xdg" / "llmcli"
    config_dir.mkdir(parents=True)
    (config_dir / "profiles.toml").write_text('default = "local"\n')

    profiles = load_profiles({"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "xdg")})

    assert profiles.default == "local"
    assert profiles.files == (SHIPPED_PATH, config_dir / "profiles.toml")


# --- keys -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "env", "key", "source"),
    [
        ('api_key_env = "K"\napi_key = "fallback"', {"K": "from-env"}, "from-env", "env K"),
        ('api_key_env = "K"\napi_key = "fallback"', {}, "fallback", "profile"),
        ('api_key_env = "K"\napi_key = "fallback"', {"K": ""}, "fallback", "profile"),
        ('api_key_env = "K"\napi_key = "fallback"', {"K": "  "}, "fallback", "profile"),
        ('api_key_env = "K"', {"K": " padded\n"}, "padded", "env K"),
        ('api_key_env = "K"', {}, None, "none"),
        ('api_key = "literal"', {"K": "ignored"}, "literal", "profile"),
        ("", {}, None, "none"),
    ],
)
def test_key_resolution(
    tmp_path: Path, table: str, env: dict[str, str], key: str | None, source: str
) -> None:
    text = f'[profiles.p]\nbase_url = "http://h/v1"\n{table}\n'
    profile = load(tmp_path, text, **env).profiles["p"]
    assert (profile.api_key, profile.key_source) == (key, source)


def test_zen_key_from_environment(tmp_path: Path) -> None:
    zen = load_profiles({"HOME": str(tmp_path), "ZEN_API_KEY": SECRET}).profiles["zen"]
    assert (zen.api_key, zen.key_source) == (SECRET, "env ZEN_API_KEY")


# --- timeouts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "connect", "read"),
    [
        ("", 10.0, 300.0),
        ("timeout = 42", 42.0, 42.0),
        ("timeout = 2.5", 2.5, 2.5),
        ("timeout = {connect = 5, read = 600}", 5.0, 600.0),
        ("timeout = {connect = 5}", 5.0, 300.0),
        ("timeout = {read = 1}", 10.0, 1.0),
    ],
)
def test_timeouts(tmp_path: Path, line: str, connect: float, read: float) -> None:
    profile = load(tmp_path, f'[profiles.p]\nbase_url = "http://h"\n{line}\n').profiles["p"]
    assert (profile.connect_timeout, profile.read_timeout) == (connect, read)


# --- selection --------------------------------------------------------------------------

SELECTION_FILE = """
default = "local"
[profiles.a]
base_url = "http://a"
[profiles.b]
base_url = "http://b"
"""


@pytest.mark.parametrize(
    ("flag", "env_profile", "expected"),
    [
        ("a", "b", "a"),  # the flag wins
        (None, "b", "b"),  # then LLMCLI_PROFILE
        (None, None, "local"),  # then the file's default
        (None, "", "local"),  # an empty variable counts as unset
        ("", "b", "b"),
    ],
)
def test_selection_order(
    tmp_path: Path, flag: str | None, env_profile: str | None, expected: str
) -> None:
    env = write_config(tmp_path, SELECTION_FILE)
    if env_profile is not None:
        env["LLMCLI_PROFILE"] = env_profile
    profiles = load_profiles(env)
    assert select_profile(profiles, flag, env).name == expected


@pytest.mark.parametrize(
    ("flag", "env", "message"),
    [
        ("zne", {}, "unknown profile 'zne' (did you mean 'zen'?); known: demo, local, zen"),
        ("foo", {}, "unknown profile 'foo'; known: demo, local, zen"),
        (
            None,
            {"LLMCLI_PROFILE": "lokal"},
            "unknown profile 'lokal' (from LLMCLI_PROFILE) (did you mean 'local'?); "
            "known: demo, local, zen",
        ),
    ],
)
def test_unknown_profile(
    tmp_path: Path, flag: str | None, env: dict[str, str], message: str
) -> None:
    full_env = {"HOME": str(tmp_path), **env}
    profiles = load_profiles(full_env)
    with pytest.raises(ConfigError) as caught:
        select_profile(profiles, flag, full_env)
    assert str(caught.value) == message


# --- BACKEND_URL ------------------------------------------------------------------------

BACKEND_FILE = """
[profiles.zen]
headers = {X-Secret = "kept-at-home"}
[profiles.lan]
base_url = "http://gpu.lan:8080/v1"
api_key_env = "LAN_KEY"
model = "qwen"
dialect = "llamacpp"
params = {cache_prompt = false}
"""


@pytest.mark.parametrize(
    ("name", "env", "expected"),
    [
        # zen pointed at llama-server: nothing of zen's server goes along.
        (
            "zen",
            {"BACKEND_URL": "http://127.0.0.1:8080/v1/", "ZEN_API_KEY": SECRET},
            {
                "base_url": "http://127.0.0.1:8080/v1",
                "api_key": None,
                "key_source": "none",
                "api_key_env": "BACKEND_API_KEY",
                "model": None,
                "dialect": None,
                "headers": {},
                "overrides": ("BACKEND_URL",),
                "own_base_url": "https://opencode.ai/zen/v1",
                "dropped_model": "big-pickle",
            },
        ),
        # ... unless the new server gets its own key.
        (
            "zen",
            {"BACKEND_URL": "http://127.0.0.1:8080/v1", "BACKEND_API_KEY": "k2"},
            {"api_key": "k2", "key_source": "env BACKEND_API_KEY", "dialect": None},
        ),
        # The same origin on another path: everything stays.
        (
            "lan",
            {"BACKEND_URL": "http://GPU.lan:8080/other", "LAN_KEY": SECRET},
            {
                "base_url": "http://GPU.lan:8080/other",
                "api_key": SECRET,
                "key_source": "env LAN_KEY",
                "model": "qwen",
                "dialect": "llamacpp",
                "params": {"cache_prompt": False},
                "own_base_url": "http://gpu.lan:8080/v1",
                "dropped_model": None,
            },
        ),
        # Same host, another port: another server.
        (
            "lan",
            {"BACKEND_URL": "http://gpu.lan:9090/v1", "LAN_KEY": SECRET},
            {"api_key": None, "model": None, "dialect": None, "params": {"cache_prompt": False}},
        ),
        # Same host, https instead of http: another origin as well.
        ("lan", {"BACKEND_URL": "https://gpu.lan:8080/v1", "LAN_KEY": SECRET}, {"api_key": None}),
        # Same origin, and BACKEND_API_KEY says which key to use.
        (
            "lan",
            {"BACKEND_URL": "http://gpu.lan:8080/v1", "LAN_KEY": SECRET, "BACKEND_API_KEY": "k3"},
            {"api_key": "k3", "key_source": "env BACKEND_API_KEY", "model": "qwen"},
        ),
        # A local profile sent to zen: the URL says the dialect.
        (
            "local",
            {"BACKEND_URL": "https://opencode.ai/zen/v1"},
            {"dialect": "zen", "api_key": None, "key_source": "none"},
        ),
        # BACKEND_API_KEY alone changes nothing.
        (
            "lan",
            {"BACKEND_API_KEY": "k4", "LAN_KEY": SECRET},
            {"api_key": SECRET, "overrides": (), "own_base_url": None},
        ),
        # An empty BACKEND_URL is unset.
        ("zen", {"BACKEND_URL": " "}, {"base_url": "https://opencode.ai/zen/v1"}),
    ],
)
def test_backend_url_override(
    tmp_path: Path, name: str, env: dict[str, str], expected: dict[str, object]
) -> None:
    full_env = write_config(tmp_path, BACKEND_FILE, **env)
    profile = select_profile(load_profiles(full_env), name, full_env)
    actual = {
        "headers": dict(profile.headers),
        "params": profile.request_params(),
        **{key: getattr(profile, key) for key in expected if key not in ("headers", "params")},
    }
    assert {key: actual[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "127.0.0.1:8080",
            "BACKEND_URL: '127.0.0.1:8080' is not an http(s) URL; "
            'use e.g. "http://127.0.0.1:8080/v1"',
        ),
        (
            "ftp://h/v1",
            "BACKEND_URL: 'ftp://h/v1' is not an http(s) URL; use e.g. \"http://127.0.0.1:8080/v1\"",
        ),
    ],
)
def test_bad_backend_url(tmp_path: Path, url: str, message: str) -> None:
    env = {"HOME": str(tmp_path), "BACKEND_URL": url}
    with pytest.raises(ConfigError) as caught:
        select_profile(load_profiles(env), None, env)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("url", "dialect"),
    [
        ("https://opencode.ai/zen/v1", "zen"),
        ("https://OPENCODE.AI/zen/v1", "zen"),
        ("https://api.opencode.ai/v1", "zen"),
        ("https://notopencode.ai/v1", None),
        ("https://opencode.ai.evil.example/v1", None),
        ("http://127.0.0.1:8080/v1", None),
        ("not a url", None),
    ],
)
def test_detect_dialect(url: str, dialect: str | None) -> None:
    assert detect_dialect(url) == dialect


# --- errors -----------------------------------------------------------------------------

PROFILE = '[profiles.x]\nbase_url = "http://h/v1"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # Broken TOML: path, line, column, reason.
        (
            'default = "zen"\n[profiles.x\nbase_url = "http://h"\n',
            "{path}: line 2, column 12: Expected ']' at the end of a table declaration",
        ),
        ("a = 1\nb = ", "{path}: line 2, column 5: Invalid value at end of file"),
        (
            '[profiles.x]\nmodel = "open',
            "{path}: line 2, column 14: Unterminated string at end of file",
        ),
        # Unknown names, with the closest valid one.
        (
            '[profiles.x]\nbase_ur = "http://h"\n',
            "{path}: unknown field 'base_ur' in profile 'x' (did you mean 'base_url'?)",
        ),
        (
            PROFILE + "colour = 1\n",
            "{path}: unknown field 'colour' in profile 'x'; valid fields: base_url, api_key, "
            "api_key_env, model, dialect, timeout, headers, params, ca_file, routes, spawn, model_path, ctx, "
            "parallel, threads, gpu_layers, flash_attn, embeddings, chat_template_file, "
            "extra_args, server_bin, slot_save_path, draft_model, draft_max",
        ),
        (
            'defualt = "zen"\n',
            "{path}: unknown top-level key 'defualt' (did you mean 'default'?); "
            "valid: default, profiles",
        ),
        (
            '[zen]\nmodel = "x"\n',
            "{path}: unknown top-level key 'zen' (did you mean [profiles.zen]?); "
            "valid: default, profiles",
        ),
        (
            PROFILE + 'dialect = "llama.cpp"\n',
            "{path}: dialect in profile 'x': unknown dialect 'llama.cpp' (did you mean "
            "'llamacpp'?); use one of zen, llamacpp, openai, or remove it to detect it",
        ),
        (
            PROFILE + "timeout = {conect = 5}\n",
            "{path}: timeout in profile 'x': unknown key 'conect' (did you mean 'connect'?)",
        ),
        (
            'default = "lcoal"\n',
            "{path}: default 'lcoal' is not a profile (did you mean 'local'?); known: demo, local, zen",
        ),
        # Missing or bad values.
        (
            '[profiles.x]\nmodel = "m"\n',
            "{path}: profile 'x' has no base_url; add base_url = \"http://127.0.0.1:8080/v1\" "
            "under [profiles.x]",
        ),
        (
            '[profiles.x]\nbase_url = "ftp://h/v1"\n',
            "{path}: base_url in profile 'x': 'ftp://h/v1' is not an http(s) URL; "
            'use e.g. "http://127.0.0.1:8080/v1"',
        ),
        (
            '[profiles.x]\nbase_url = "localhost:8080"\n',
            "{path}: base_url in profile 'x': 'localhost:8080' is not an http(s) URL; "
            'use e.g. "http://127.0.0.1:8080/v1"',
        ),
        (
            '[profiles.x]\nbase_url = "http://h:99999/v1"\n',
            "{path}: base_url in profile 'x': 'http://h:99999/v1' has a bad port; "
            'use e.g. "http://127.0.0.1:8080/v1"',
        ),
        (
            '[profiles.x]\nbase_url = "http://h/v1?x=1"\n',
            "{path}: base_url in profile 'x': 'http://h/v1?x=1' has a query or fragment; "
            'give only the base, e.g. "http://127.0.0.1:8080/v1"',
        ),
        # Wrong types: profile, field, expected type.
        (
            PROFILE + "model = 3\n",
            "{path}: model in profile 'x' must be a string (\"big-pickle\"), got an integer",
        ),
        (
            '[profiles.x]\nbase_url = ["http://h"]\n',
            "{path}: base_url in profile 'x' must be a string (\"http://127.0.0.1:8080/v1\"), "
            "got an array",
        ),
        (
            PROFILE + 'timeout = "5s"\n',
            "{path}: timeout in profile 'x' must be a number of seconds or a table "
            "{connect = 10, read = 300}, got a string",
        ),
        (
            PROFILE + "timeout = true\n",
            "{path}: timeout in profile 'x' must be a number of seconds or a table "
            "{connect = 10, read = 300}, got a boolean",
        ),
        (
            PROFILE + "timeout = 0\n",
            "{path}: timeout in profile 'x' must be a positive number of seconds, got 0",
        ),
        (
            PROFILE + 'timeout = {read = "long"}\n',
            "{path}: timeout in profile 'x': timeout.read must be a number of seconds, "
            "got a string",
        ),
        (
            PROFILE + "headers = {X-N = 1}\n",
            "{path}: headers in profile 'x': header 'X-N' must be a string, got an integer",
        ),
        (
            PROFILE + 'headers = "X-A: b"\n',
            "{path}: headers in profile 'x' must be a table of strings ({X-Title = \"llmcli\"}), "
            "got a string",
        ),
        (
            PROFILE + "params = {when = 2024-01-01}\n",
            "{path}: params in profile 'x': params.when must be a JSON value (string, number, "
            "boolean, array or table), got a date",
        ),
        (
            PROFILE + "params = {x = [1, nan]}\n",
            "{path}: params in profile 'x': params.x[1] must be a finite number "
            "(JSON has no nan or inf)",
        ),
        ("default = 1\n", '{path}: default must be a string (default = "zen"), got an integer'),
        (
            "profiles = 1\n",
            "{path}: profiles must be a table of [profiles.NAME] tables, got an integer",
        ),
        (
            "[profiles]\nx = 1\n",
            "{path}: profile 'x' must be a table ([profiles.x]), got an integer",
        ),
        (
            '[profiles."a b"]\nbase_url = "http://h"\n',
            "{path}: bad profile name 'a b': use letters, digits, '_' and '-'",
        ),
        (
            PROFILE + 'model = ""\n',
            "{path}: model in profile 'x' is empty; set it (\"big-pickle\") or remove the line",
        ),
        (
            PROFILE + 'headers = {Authorization = "Bearer x"}\n',
            "{path}: headers in profile 'x': do not set Authorization here; name the key's "
            "variable in api_key_env and llmcli sends it as a bearer token",
        ),
    ],
)
def test_config_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "profiles.toml"
    assert config_error(tmp_path, text) == message.replace("{path}", str(path))


@pytest.mark.parametrize(
    "text",
    [
        # A key pasted where a variable name belongs.
        f'[profiles.x]\nbase_url = "http://h"\napi_key_env = "{SECRET}"\n',
        # Credentials in the URL.
        f'[profiles.x]\nbase_url = "https://user:{SECRET}@h/v1"\n',
        f'[profiles.x]\nbase_url = "user:{SECRET}@h/v1"\n',
        # A wrongly typed key.
        '[profiles.x]\nbase_url = "http://h"\napi_key = 123456789\n',
    ],
)
def test_errors_never_echo_a_secret(tmp_path: Path, text: str) -> None:
    message = config_error(tmp_path, text)
    assert SECRET not in message
    assert "123456789" not in message
    assert "profile 'x'" in message


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_bytes(b'default = "\xff"\n')
    env = {"LLMCLI_CONFIG": str(path)}
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(bad byte at offset 11\)"):
        load_profiles(env)

    env = {"LLMCLI_CONFIG": str(tmp_path)}  # a directory
    with pytest.raises(ConfigError) as caught:
        load_profiles(env)
    assert str(caught.value).startswith(f"{tmp_path}: cannot read: ")


# --- the Profile value ------------------------------------------------------------------


def test_profile_is_frozen_hashable_and_its_mappings_immutable(tmp_path: Path) -> None:
    text = PROFILE + 'headers = {X-A = "b"}\nparams = {stop = ["a"], nested = {k = 1}}\n'
    first = load(tmp_path, text).profiles["x"]
    second = load(tmp_path, text).profiles["x"]

    assert first == second
    assert hash(first) == hash(second)
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.model = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        first.headers["X-A"] = "c"  # type: ignore[index]
    with pytest.raises(TypeError):
        first.params["nested"]["k"] = 2  # type: ignore[index]
    plain = first.request_params()
    assert plain == {"stop": ["a"], "nested": {"k": 1}}
    assert json.loads(json.dumps(plain)) == plain
    plain["stop"].append("b")  # type: ignore[attr-defined]
    assert first.request_params()["stop"] == ["a"]  # a fresh copy each time


@pytest.mark.parametrize(
    ("table", "env", "key_text"),
    [
        ('api_key_env = "K"\napi_key = "public"', {"K": SECRET}, "set (env K)"),
        ('api_key_env = "K"\napi_key = SECRET', {}, "set (profile; K is not set)"),
        ("api_key = SECRET", {}, "set (profile)"),
        ('api_key_env = "K"', {}, "none (K is not set)"),
        ("", {}, "none"),
    ],
)
def test_describe_and_repr_never_show_the_key(
    tmp_path: Path, table: str, env: dict[str, str], key_text: str
) -> None:
    text = PROFILE + table.replace("SECRET", f'"{SECRET}"') + "\n"
    text += f'headers = {{X-Api-Key = "{SECRET}"}}\n'
    profile = load(tmp_path, text, **env).profiles["x"]

    described = profile.describe()
    assert described["key"] == key_text
    assert described["headers"] == ["X-Api-Key"]
    for shown in (json.dumps(described), repr(profile), str(profile)):
        assert SECRET not in shown
        assert SECRET[:8] not in shown and SECRET[-6:] not in shown
        assert "public" not in shown


def test_describe_fields(tmp_path: Path) -> None:
    profile = load_profiles({"HOME": str(tmp_path)}).profiles["zen"]
    assert profile.describe() == {
        "name": "zen",
        "base_url": "https://opencode.ai/zen/v1",
        "model": "big-pickle",
        "dialect": "zen",
        "key": "set (profile; ZEN_API_KEY is not set)",
        "connect_timeout": 10.0,
        "read_timeout": 300.0,
        "headers": [],
        "params": {},
        "source": str(SHIPPED_PATH),
        "overrides": [],
        "spawn": None,
        "routes": {},
        "ca_file": None,
        "own_base_url": None,
        "dropped_model": None,
    }


def test_ca_file_is_read_with_home_expanded(tmp_path: Path) -> None:
    text = PROFILE + 'ca_file = "~/corp-ca.pem"\n'
    profile = load(tmp_path, text, HOME=str(tmp_path)).profiles["x"]
    assert profile.ca_file == str(tmp_path / "corp-ca.pem")
    assert profile.describe()["ca_file"] == str(tmp_path / "corp-ca.pem")


# --- spawned servers ------------------------------------------------------------------


def test_shipped_demo_spawns_smollm2(tmp_path: Path) -> None:
    demo = load_profiles({"HOME": str(tmp_path)}).profiles["demo"]
    assert demo.spawn is not None
    assert (demo.spawn.model, demo.spawn.model_path, demo.model) == ("smollm2", None, "smollm2")
    assert (demo.base_url, demo.dialect, demo.api_key) == (SPAWN_DEFAULT_URL, "llamacpp", None)
    assert demo.spawn.extra_args[:2] == ("--temp", "0.2")


def test_spawn_fields_are_read_and_merged(tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    user.write_text(
        '[profiles.box]\nspawn = true\nmodel_path = "~/m.gguf"\nctx = 8192\n'
        'flash_attn = true\nembeddings = true\nextra_args = ["--metrics"]\n'
        "[profiles.demo]\nthreads = 3\n"
    )
    profiles = load_profiles({"HOME": str(tmp_path), "LLMCLI_CONFIG": str(user)}).profiles
    box, demo = profiles["box"], profiles["demo"]
    assert box.spawn == SpawnSpec(
        model_path=os.path.expanduser("~/m.gguf"),
        ctx=8192,
        flash_attn="on",
        embeddings=True,
        extra_args=("--metrics",),
    )
    assert demo.spawn is not None and demo.spawn.threads == 3 and demo.spawn.ctx == 4096
    assert box.describe()["spawn"] == {
        "model_path": os.path.expanduser("~/m.gguf"),
        "ctx": 8192,
        "flash_attn": "on",
        "embeddings": True,
        "extra_args": ["--metrics"],
    }


def test_spawn_false_keeps_the_fields_but_spawns_nothing(tmp_path: Path) -> None:
    text = PROFILE + "spawn = false\nctx = 2048\n"
    assert load(tmp_path, text).profiles["x"].spawn is None


def test_backend_url_means_nothing_to_spawn(tmp_path: Path) -> None:
    profiles = load_profiles({"HOME": str(tmp_path)})
    chosen = select_profile(profiles, "demo", {BACKEND_URL_ENV: "http://127.0.0.1:9999/v1"})
    assert chosen.spawn is None and chosen.base_url == "http://127.0.0.1:9999/v1"
    assert describe_url(chosen) == (
        "http://127.0.0.1:9999/v1 (from BACKEND_URL, which every profile follows;"
        " profile demo's own: a llama-server llmcli starts)"
    )


@pytest.mark.parametrize(
    ("name", "backend_url", "named", "model", "url"),
    [
        # No BACKEND_URL: the profile's model, the profile's URL, no explanations.
        ("lan", None, None, "qwen", "http://gpu.lan:8080/v1"),
        ("lan", None, "other", "other", "http://gpu.lan:8080/v1"),
        # The same server on another path: the model goes along.
        (
            "lan",
            "http://gpu.lan:8080/v2",
            None,
            "qwen",
            "http://gpu.lan:8080/v2 (from BACKEND_URL, which every profile follows;"
            " profile lan's own: http://gpu.lan:8080/v1)",
        ),
        # Another server: its default, and why.
        (
            "lan",
            "http://127.0.0.1:9000/v1",
            None,
            "server default (BACKEND_URL points at another server than profile lan's,"
            " so its model qwen is not sent)",
            "http://127.0.0.1:9000/v1 (from BACKEND_URL, which every profile follows;"
            " profile lan's own: http://gpu.lan:8080/v1)",
        ),
        # A model the user named is the model, wherever the request goes.
        ("lan", "http://127.0.0.1:9000/v1", "mine", "mine", None),
        # A profile without a model lost nothing: the server's default, no reason needed.
        ("local", "http://127.0.0.1:9000/v1", None, "server default", None),
    ],
)
def test_messages_name_the_model_and_url_used_and_why(
    tmp_path: Path,
    name: str,
    backend_url: str | None,
    named: str | None,
    model: str,
    url: str | None,
) -> None:
    env = write_config(
        tmp_path, BACKEND_FILE, **({} if backend_url is None else {"BACKEND_URL": backend_url})
    )
    profile = select_profile(load_profiles(env), name, env)
    assert describe_model(profile, named) == model
    if url is not None:
        assert describe_url(profile) == url


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("model_path = 3", "model_path in profile 'x' must be a string"),
        ("ctx = -1", "ctx in profile 'x' must be at least 0, got -1"),
        ("parallel = 0", "parallel in profile 'x' must be at least 1, got 0"),
        ("threads = 1.5", "threads in profile 'x' must be an integer, got a float"),
        ("gpu_layers = true", "gpu_layers in profile 'x' must be an integer, got a boolean"),
        (
            'flash_attn = "yes"',
            "flash_attn in profile 'x' must be true, false, or one of on, off, auto",
        ),
        ('embeddings = "yes"', "embeddings in profile 'x' must be true or false, got a string"),
        ("extra_args = [1]", "extra_args in profile 'x' must be an array of strings"),
        ('extra_args = "--metrics"', "extra_args in profile 'x' must be an array of strings"),
        ('server_bin = ""', "server_bin in profile 'x' is empty"),
        ("contxt = 1", "unknown field 'contxt' in profile 'x' (did you mean 'ctx'?)"),
    ],
)
def test_spawn_field_errors(tmp_path: Path, table: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, '[profiles.x]\nspawn = true\nmodel = "m"\n' + table + "\n")
    assert message in str(raised.value)


def test_spawn_must_be_a_boolean(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[profiles.x]\nmodel = "m"\nspawn = 1\n')
    assert message.endswith("spawn in profile 'x' must be true or false, got an integer")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("spawn = true", "profile 'x' has spawn = true but no model: add model_path"),
        (
            'spawn = true\nmodel = "m"\nbase_url = "http://gpu:8080/v1"',
            "spawns its server, so base_url must be on this machine",
        ),
    ],
)
def test_spawn_profile_errors(tmp_path: Path, table: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load(tmp_path, "[profiles.x]\n" + table + "\n")


def test_profile_field_repr_flags() -> None:
    fields = {f.name: f for f in dataclasses.fields(Profile)}
    assert not fields["api_key"].repr
    assert not fields["headers"].repr


# --- add_profile ------------------------------------------------------------------------


def test_add_creates_the_file_and_the_profile_loads(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "profiles.toml"
    add_profile(
        path,
        "gpu",
        base_url="http://gpu:8080/v1/",
        api_key_env="GPU_KEY",
        model="qwen",
        dialect="llamacpp",
        make_default=True,
    )

    assert tomllib.loads(path.read_text()) == {
        "default": "gpu",
        "profiles": {
            "gpu": {
                "base_url": "http://gpu:8080/v1",
                "api_key_env": "GPU_KEY",
                "model": "qwen",
                "dialect": "llamacpp",
            }
        },
    }
    env = {"LLMCLI_CONFIG": str(path), "GPU_KEY": SECRET}
    profiles = load_profiles(env)
    gpu = select_profile(profiles, None, env)
    assert (gpu.name, gpu.api_key, gpu.model) == ("gpu", SECRET, "qwen")
    assert SECRET not in path.read_text()


def test_add_keeps_other_profiles_the_default_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    original = (
        "# my backends\n"
        'default = "box"  # the usual one\n'
        "\n"
        "[profiles.box]\n"
        'base_url = "http://box:8080/v1"  # under the desk\n'
        "timeout = {read = 900}\n"
    )
    path.write_text(original)

    add_profile(path, "gpu", base_url="http://gpu:8080/v1")

    text = path.read_text()
    assert text.startswith(original)  # appended, nothing above touched
    document = tomllib.loads(text)
    assert document["default"] == "box"
    assert document["profiles"]["box"] == {
        "base_url": "http://box:8080/v1",
        "timeout": {"read": 900},
    }
    assert document["profiles"]["gpu"] == {"base_url": "http://gpu:8080/v1"}


def test_add_with_default_replaces_only_the_default_line(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text('# mine\ndefault = "local"\n\n[profiles.box]\nbase_url = "http://box"\n')

    add_profile(path, "gpu", base_url="http://gpu", make_default=True)

    text = path.read_text()
    assert text.startswith('# mine\ndefault = "gpu"\n\n[profiles.box]\n')
    assert set(tomllib.loads(text)["profiles"]) == {"box", "gpu"}


def test_add_with_default_inserts_a_default_line(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text('[profiles.box]\nbase_url = "http://box"')  # no final newline

    add_profile(path, "gpu", base_url="http://gpu", make_default=True)

    document = tomllib.loads(path.read_text())
    assert document["default"] == "gpu"
    assert set(document["profiles"]) == {"box", "gpu"}


def test_add_on_an_existing_name_updates_the_fields_given(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text(
        'default = "box"\n[profiles.box]\nbase_url = "http://box"\nmodel = "m1"\n'
        'headers = {X-A = "b"}\n[profiles.other]\nbase_url = "http://other"\n'
    )

    add_profile(path, "box", base_url="http://box2", dialect="openai")

    document = tomllib.loads(path.read_text())
    assert document == {
        "default": "box",
        "profiles": {
            "box": {
                "base_url": "http://box2",
                "model": "m1",
                "headers": {"X-A": "b"},
                "dialect": "openai",
            },
            "other": {"base_url": "http://other"},
        },
    }


def test_add_rewrites_when_appending_cannot_work(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text('profiles = {box = {base_url = "http://box"}}\n')  # an inline table

    add_profile(path, "gpu", base_url="http://gpu")

    document = tomllib.loads(path.read_text())
    assert set(document["profiles"]) == {"box", "gpu"}


def test_add_writes_through_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "profiles.toml"
    real.parent.mkdir()
    real.write_text('[profiles.box]\nbase_url = "http://box"\n')
    link = tmp_path / "profiles.toml"
    link.symlink_to(real)

    add_profile(link, "gpu", base_url="http://gpu")

    assert link.is_symlink()
    assert "gpu" in tomllib.loads(real.read_text())["profiles"]


def test_add_keeps_the_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text('[profiles.box]\nbase_url = "http://box"\n')
    path.chmod(0o640)

    add_profile(path, "gpu", base_url="http://gpu")

    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["profiles.toml"]  # no temporary left


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        (
            "zen",
            {"base_url": "http://h"},
            "profile 'zen' ships with llmcli: pick another name, or edit {path} and set the "
            "fields to change under [profiles.zen]",
        ),
        (
            "a b",
            {"base_url": "http://h"},
            "bad profile name 'a b': use letters, digits, '_' and '-' (e.g. 'gpu-box')",
        ),
        (
            "gpu",
            {"base_url": "gpu:8080"},
            "base_url in profile 'gpu': 'gpu:8080' is not an http(s) URL; "
            'use e.g. "http://127.0.0.1:8080/v1"',
        ),
        (
            "gpu",
            {"base_url": "http://h", "dialect": "llama"},
            "dialect in profile 'gpu': unknown dialect 'llama' (did you mean 'llamacpp'?); "
            "use one of zen, llamacpp, openai, or remove it to detect it",
        ),
        (
            "gpu",
            {"base_url": "http://h", "api_key_env": SECRET},
            "api_key_env in profile 'gpu' must name an environment variable "
            "(letters, digits, '_'), not hold the key itself",
        ),
    ],
)
def test_add_refuses(tmp_path: Path, name: str, options: dict[str, str], message: str) -> None:
    path = tmp_path / "profiles.toml"
    with pytest.raises(ConfigError) as caught:
        add_profile(path, name, **options)  # type: ignore[arg-type]
    assert str(caught.value) == message.replace("{path}", str(path))
    assert not path.exists()


def test_add_refuses_to_touch_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    broken = '[profiles.box]\nbase_ur = "http://box"\n'
    path.write_text(broken)

    with pytest.raises(ConfigError, match="unknown field 'base_ur'"):
        add_profile(path, "gpu", base_url="http://gpu")

    assert path.read_text() == broken
