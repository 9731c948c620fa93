"""Startup stays light: the CLI imports no heavy library until a command runs."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("httpx", "rich", "prompt_toolkit", "sqlite3", "gguf", "numpy", "platformdirs", "asyncio")


def test_importing_the_cli_loads_no_heavy_library() -> None:
    code = f"import sys, llmcli.cli\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
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
