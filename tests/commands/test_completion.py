"""Shell completion: the scripts typer generates, and what Tab offers in a real bash.

Each bash test sources the script ``_LLMCLI_COMPLETE=bash_source llmcli`` prints, sets
``COMP_WORDS``/``COMP_CWORD`` as bash does on Tab, calls the completion function and
reads ``COMPREPLY``. The profiles file and the history live under ``tmp_path``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llmcli.cli import typer_instruction
from llmcli.commands.completion import (
    complete_conversation_ids,
    complete_model_names,
    complete_profile_names,
)
from llmcli.storage.store import Store, default_path

BASH = shutil.which("bash")
ZSH = shutil.which("zsh")
FISH = shutil.which("fish")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    config = tmp_path / "profiles.toml"
    config.write_text(
        '[profiles.gpu]\nbase_url = "http://gpu:8080/v1"\nmodel = "qwen"\n'
        'routes = { "llama*" = "local", "big-pickle" = "zen" }\n'
    )
    data = tmp_path / "data"
    data.mkdir()
    values = {"LLMCLI_CONFIG": str(config), "LLMCLI_DATA_DIR": str(data)}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("_LLMCLI_COMPLETE", raising=False)
    return {**os.environ, **values}


def llmcli_script(tmp_path: Path) -> Path:
    """An ``llmcli`` on PATH that runs this checkout with this interpreter."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "llmcli"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m llmcli "$@"\n')
    script.chmod(0o755)
    return bin_dir


def on_path(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**env, "PATH": f"{llmcli_script(tmp_path)}{os.pathsep}{env['PATH']}"}


def tab(words: list[str], env: dict[str, str], tmp_path: Path) -> list[str]:
    """What bash offers for the last of ``words`` (``""`` completes an empty word)."""
    assert BASH is not None
    env = on_path(env, tmp_path)
    quoted = " ".join(f"'{word}'" for word in words)
    program = (
        'eval "$(_LLMCLI_COMPLETE=bash_source llmcli)"\n'
        f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}\n"
        "_llmcli_completion llmcli\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        [BASH, "--norc", "-c", program], capture_output=True, text=True, env=env, check=True
    )
    assert done.stderr == ""
    return done.stdout.split()


needs_bash = pytest.mark.skipif(BASH is None, reason="bash is not installed")


@needs_bash
def test_bash_completes_a_command_name(env: dict[str, str], tmp_path: Path) -> None:
    assert tab(["llmcli", "comp"], env, tmp_path) == ["complete"]


@needs_bash
def test_bash_completes_options(env: dict[str, str], tmp_path: Path) -> None:
    offered = tab(["llmcli", "complete", "--pro"], env, tmp_path)
    assert offered == ["--profile"]


@needs_bash
def test_bash_completes_profile_names(env: dict[str, str], tmp_path: Path) -> None:
    offered = tab(["llmcli", "complete", "-p", ""], env, tmp_path)
    assert {"zen", "local", "demo", "gpu"} <= set(offered)
    # bench declares its own repeatable -p: it completes the same names
    assert {"zen", "local", "demo", "gpu"} <= set(tab(["llmcli", "bench", "-p", ""], env, tmp_path))


@needs_bash
def test_bash_completes_conversation_ids(env: dict[str, str], tmp_path: Path) -> None:
    with Store.open(default_path()) as store:
        first = store.new_conversation(profile="local", model=None)
    assert tab(["llmcli", "history", "show", ""], env, tmp_path) == [first]


@pytest.mark.skipif(FISH is None, reason="fish is not installed")
def test_fish_completes_commands_profiles_and_ids(env: dict[str, str], tmp_path: Path) -> None:
    assert FISH is not None
    with Store.open(default_path()) as store:
        first = store.new_conversation(profile="local", model=None)
    program = (
        "_LLMCLI_COMPLETE=fish_source llmcli | source\n"
        'complete -C "llmcli comp"; echo ==; complete -C "llmcli complete -p "; echo ==\n'
        'complete -C "llmcli history show "\n'
    )
    done = subprocess.run(
        [FISH, "--no-config", "-c", program],
        capture_output=True,
        text=True,
        env=on_path(env, tmp_path),
        check=True,
    )
    commands, profiles, ids = (
        [line.split("\t")[0] for line in part.split("\n") if line]
        for part in done.stdout.split("==\n")
    )
    assert commands == ["complete"]
    assert {"zen", "local", "demo", "gpu"} <= set(profiles)
    assert ids == [first]


@pytest.mark.skipif(ZSH is None, reason="zsh is not installed")
def test_zsh_script_offers_profile_names(env: dict[str, str], tmp_path: Path) -> None:
    assert ZSH is not None
    # compsys needs an interactive line editor; stand-ins print what the script asks it
    # to offer, so the real zsh still evaluates the script and llmcli's answer.
    program = (
        'compdef() { :; }; _arguments() { print -r -- "$@"; }\n'
        'eval "$(_LLMCLI_COMPLETE=zsh_source llmcli)"\n'
        'words=(llmcli complete -p ""); CURRENT=4; _llmcli_completion\n'
    )
    done = subprocess.run(
        [ZSH, "-f", "-c", program],
        capture_output=True,
        text=True,
        env=on_path(env, tmp_path),
        check=True,
    )
    for name in ("zen", "local", "demo", "gpu"):
        assert f'"{name}"' in done.stdout


def test_profile_names_filter_by_prefix(env: dict[str, str]) -> None:
    assert complete_profile_names("gp") == ["gpu"]


def test_a_broken_profiles_file_offers_nothing(env: dict[str, str]) -> None:
    Path(env["LLMCLI_CONFIG"]).write_text("[profiles.gpu\n")
    assert complete_profile_names("") == []
    assert complete_model_names("") == []


def test_model_names_come_from_models_and_literal_routes(env: dict[str, str]) -> None:
    offered = complete_model_names("")
    assert "qwen" in offered and "big-pickle" in offered
    assert not [name for name in offered if "*" in name]


def test_no_history_offers_no_ids_and_creates_none(env: dict[str, str]) -> None:
    assert complete_conversation_ids("") == []
    assert list(Path(env["LLMCLI_DATA_DIR"]).iterdir()) == []


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_each_shell_gets_a_script(shell: str, env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "llmcli"],
        env={**env, "_LLMCLI_COMPLETE": f"{shell}_source"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"_LLMCLI_COMPLETE=complete_{shell}" in done.stdout


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("bash_source", "source_bash"),
        ("zsh_complete", "complete_zsh"),
        ("source_fish", "source_fish"),
        ("complete_bash", "complete_bash"),
        ("nonsense", "nonsense"),
    ],
)
def test_click_and_typer_spellings_both_work(given: str, expected: str) -> None:
    assert typer_instruction(given) == expected


def test_show_completion_is_an_option(env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "llmcli", "--show-completion", "bash"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "complete -o default -F _llmcli_completion llmcli" in done.stdout


@pytest.mark.parametrize(
    ("shell", "installed"),
    [
        ("bash", ".bash_completions/llmcli.sh"),
        ("zsh", ".zfunc/_llmcli"),
        ("fish", ".config/fish/completions/llmcli.fish"),
    ],
)
def test_install_completion_writes_the_script_for_the_shell_it_runs_in(
    shell: str, installed: str, env: dict[str, str], tmp_path: Path
) -> None:
    executable = shutil.which(shell)
    if executable is None:
        pytest.skip(f"{shell} is not installed")
    home = tmp_path / "home"
    home.mkdir()
    # "; true" keeps the shell alive as llmcli's parent, where typer looks for it.
    done = subprocess.run(
        [executable, "-c", "llmcli --install-completion; true"],
        capture_output=True,
        text=True,
        env={**on_path(env, tmp_path), "HOME": str(home)},
        check=True,
    )
    assert done.stdout.startswith(f"{shell} completion installed")
    assert "_LLMCLI_COMPLETE=complete_" in (home / installed).read_text()
