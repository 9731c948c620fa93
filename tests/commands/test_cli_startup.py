"""Startup stays light: the CLI imports no heavy library until a command runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmcli.cli import COMMANDS

HEAVY = ("httpx", "rich", "prompt_toolkit", "sqlite3", "gguf", "numpy", "platformdirs", "asyncio")


def test_importing_the_cli_loads_no_heavy_library() -> None:
    code = (
        "import sys, llmcli.cli\nllmcli.cli.app  # the whole app, every command registered\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""


def test_version_does_not_import_the_cli_framework() -> None:
    code = (
        "import sys; sys.argv = ['llmcli', '--version']\n"
        "from llmcli.__main__ import main; main()\n"
        "print('typer' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    typer_loaded = out.stdout.split()[-1]
    assert out.stdout.startswith("llmcli ") and typer_loaded == "False"


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_a_subcommand_loads_its_own_command_module_alone(flag: str) -> None:
    code = (
        "import sys\nfrom llmcli.cli import run\n"
        f"try:\n    run(['complete', '{flag}'])\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('llmcli.commands.'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {name.rpartition(".")[2] for name in out.stdout.splitlines()[-1].split()}
    assert out.stdout.startswith("Usage: llmcli complete") and "complete" in loaded
    others = {module for module, _, _ in COMMANDS.values()} - {"complete"}
    assert not loaded & others, f"other subcommands imported: {sorted(loaded & others)}"


def test_a_lazily_built_subcommand_has_the_whole_apps_help() -> None:
    def help_of(code: str) -> str:
        return subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env={"COLUMNS": "100"}
        ).stdout

    alone = help_of("from llmcli.cli import run\nrun(['bench', 'compare', '--help'])")
    whole = help_of(
        "from llmcli.cli import app\napp(['bench', 'compare', '--help'], prog_name='llmcli')"
    )
    assert alone == whole and "Usage: llmcli bench compare" in alone


def test_completing_builds_every_command_whatever_argv_says() -> None:
    # The shell puts the words in COMP_WORDS; argv cannot say which command is meant.
    code = (
        "import sys\nfrom llmcli.cli import run\n"
        "try:\n    run(['complete'])\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('llmcli.commands.'))))"
    )
    env = {
        **os.environ,
        "_LLMCLI_COMPLETE": "bash_complete",
        "COMP_WORDS": "llmcli hist",
        "COMP_CWORD": "1",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    offered, modules = out.stdout.splitlines()
    loaded = {name.rpartition(".")[2] for name in modules.split()}
    assert offered == "history"
    assert {module for module, _, _ in COMMANDS.values()} <= loaded


def test_httpx_does_not_load_its_command_line_client(tmp_path: Path) -> None:
    # httpx imports its `httpx` command (click, pygments, rich.syntax: 40 ms) whenever click
    # can be imported, and many packages install click (Dask does). A click of our own on the
    # path makes that so here whatever the venv holds.
    (tmp_path / "click").mkdir()
    (tmp_path / "click" / "__init__.py").write_text(
        "def command(*a, **k):\n    return lambda f: f\n"
    )
    code = (
        "import sys\nimport llmcli.wire.client\n"
        "print(','.join(m for m in ('click', 'pygments', 'rich') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == ""
