"""Tests for llmcli.config.paths: the data and config directories, for each environment."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from llmcli.config.paths import config_dir, data_dir, expand_home, user_config_path

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the XDG rule is Linux's"
)


@linux_only
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LLMCLI_DATA_DIR": "/srv/llm", "XDG_DATA_HOME": "/x", "HOME": "/h"}, "/srv/llm"),
        ({"LLMCLI_DATA_DIR": "  /srv/llm  ", "HOME": "/h"}, "/srv/llm"),
        # Blank means unset, and so does a relative XDG path (the XDG spec ignores it).
        ({"LLMCLI_DATA_DIR": "  ", "HOME": "/h"}, "/h/.local/share/llmcli"),
        ({"XDG_DATA_HOME": "/x", "HOME": "/h"}, "/x/llmcli"),
        ({"XDG_DATA_HOME": " /x ", "HOME": "/h"}, "/x/llmcli"),
        ({"XDG_DATA_HOME": "rel", "HOME": "/h"}, "/h/.local/share/llmcli"),
        ({"XDG_DATA_HOME": "", "HOME": "/h"}, "/h/.local/share/llmcli"),
        ({"HOME": "/h"}, "/h/.local/share/llmcli"),
    ],
)
def test_data_dir(env: dict[str, str], expected: str) -> None:
    assert data_dir(env) == Path(expected)


def test_data_dir_expands_a_tilde_in_llmcli_data_dir() -> None:
    # As before the move: the account's home (os.path.expanduser), not env's HOME.
    assert data_dir({"LLMCLI_DATA_DIR": "~/d", "HOME": "/elsewhere"}) == Path("~/d").expanduser()


@linux_only
def test_data_dir_without_home_is_the_accounts_home() -> None:
    assert data_dir({}) == Path.home() / ".local" / "share" / "llmcli"
    assert data_dir({"HOME": ""}) == Path.home() / ".local" / "share" / "llmcli"


@linux_only
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"HOME": "/h"}, "/h/.config/llmcli"),
        ({"HOME": "/h", "XDG_CONFIG_HOME": "/x"}, "/x/llmcli"),
        ({"HOME": "/h", "XDG_CONFIG_HOME": " /x "}, "/x/llmcli"),
        ({"HOME": "/h", "XDG_CONFIG_HOME": ""}, "/h/.config/llmcli"),
        ({"HOME": "/h", "XDG_CONFIG_HOME": "rel"}, "/h/.config/llmcli"),
        # LLMCLI_CONFIG names the profiles file; the directory does not follow it.
        ({"HOME": "/h", "LLMCLI_CONFIG": "/c/p.toml"}, "/h/.config/llmcli"),
        ({}, str(Path.home() / ".config" / "llmcli")),
    ],
)
def test_config_dir(env: dict[str, str], expected: str) -> None:
    assert config_dir(env) == Path(expected)


@linux_only
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"HOME": "/h"}, "/h/.config/llmcli/profiles.toml"),
        ({"HOME": "/h", "XDG_CONFIG_HOME": "/x"}, "/x/llmcli/profiles.toml"),
        ({"HOME": "/h", "LLMCLI_CONFIG": "/c/p.toml"}, "/c/p.toml"),
        # LLMCLI_CONFIG's tilde is env's HOME; the value is taken as it is, not stripped.
        ({"HOME": "/h", "LLMCLI_CONFIG": "~/p.toml"}, "/h/p.toml"),
        ({"HOME": "/h", "LLMCLI_CONFIG": " /c/p.toml"}, " /c/p.toml"),
        ({"HOME": "/h", "LLMCLI_CONFIG": ""}, "/h/.config/llmcli/profiles.toml"),
    ],
)
def test_user_config_path(env: dict[str, str], expected: str) -> None:
    assert user_config_path(env) == Path(expected)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("~", "/h"),
        ("~/a/b.pem", "/h/a/b.pem"),
        ("~other/b.pem", "~other/b.pem"),
        ("a/~/b", "a/~/b"),
        ("/abs/b.pem", "/abs/b.pem"),
    ],
)
def test_expand_home_uses_the_given_home(path: str, expected: str) -> None:
    assert expand_home(path, {"HOME": "/h"}) == Path(expected)


@linux_only
def test_the_directories_never_read_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMCLI_DATA_DIR", "/from/os/environ")
    monkeypatch.setenv("LLMCLI_CONFIG", "/from/os/environ.toml")
    env = {"LLMCLI_DATA_DIR": "/given", "HOME": "/h", "XDG_CONFIG_HOME": "/x"}
    assert data_dir(env) == Path("/given")
    assert user_config_path(env) == Path("/x/llmcli/profiles.toml")
