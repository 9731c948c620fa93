"""A mistake on the command line is one line on stderr and exit 2, like every other error.

Run as real processes (the installed ``llmcli`` entry point) and through CliRunner, since
the lazy app holds one command and the tests' app holds all of them.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from llmcli.cli import app

CASES = [
    (
        ["complete", "--max-tokens", "abc", "hi"],
        "llmcli: error: invalid value for '--max-tokens': 'abc' is not a valid int (llmcli complete -h for help)",
    ),
    (
        ["complete", "--bogus", "hi"],
        "llmcli: error: no such option: --bogus (llmcli complete -h for help)",
    ),
    (["roles", "show"], "llmcli: error: missing argument 'NAME' (llmcli roles show -h for help)"),
    (["nosuch"], "llmcli: error: no such command 'nosuch' (llmcli -h for help)"),
    (
        ["history", "show", "--branch", "0", "x"],
        "llmcli: error: invalid value for '--branch' / '-b': 0 is not in the range x>=1 (llmcli history show -h for help)",
    ),
    (
        ["embed", "--format", "nope", "x"],
        "llmcli: error: invalid value for '--format': 'nope' is not one of 'ndjson', 'json', 'csv', 'npy' (llmcli embed -h for help)",
    ),
]


def run_llmcli(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmcli", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


@pytest.mark.parametrize(("args", "line"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_a_usage_error_is_one_line(args: list[str], line: str) -> None:
    done = run_llmcli(args)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", line + "\n")


@pytest.mark.parametrize(("args", "line"), CASES[:2], ids=["type", "option"])
def test_the_whole_app_says_the_same(args: list[str], line: str) -> None:
    result = CliRunner().invoke(app, args, prog_name="llmcli")
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", line + "\n")


def test_what_the_user_typed_cannot_drive_the_terminal() -> None:
    done = run_llmcli(["complete", "--bogus\x1b]0;pwned\x07"])
    assert done.returncode == 2
    assert "\x1b" not in done.stderr and "\x07" not in done.stderr
    assert done.stderr.count("\n") == 1


def test_a_group_without_a_command_still_shows_its_help() -> None:
    done = run_llmcli(["history"])
    assert done.stderr.startswith("Usage: llmcli history [OPTIONS] COMMAND")
    assert "Commands:" in done.stderr
