"""Every command's help teaches: examples, one style of placeholder, the choices, and -h."""

from __future__ import annotations

import re
import typing

import pytest
import typer
from typer.testing import CliRunner

from llmcli.chat.session import REASONING_MODES, parse_reasoning
from llmcli.cli import COMMANDS, app
from llmcli.config.profiles import DIALECTS
from llmcli.mock.config import Dialect


def _walk(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    children: dict[str, object] = getattr(command, "commands", {})
    return [path] + [p for name, child in children.items() for p in _walk(child, (*path, name))]


ROOT = typer.main.get_command(app)
PATHS = _walk(ROOT)


def help_of(path: tuple[str, ...], flag: str = "--help") -> str:
    result = CliRunner().invoke(app, [*path, flag], prog_name="llmcli", env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    return result.stdout


def sections(text: str) -> dict[str, list[str]]:
    """The help's lines by section ("Usage", "Options", "Examples"...), unindented."""
    found: dict[str, list[str]] = {}
    current = "Description"
    for line in text.splitlines():
        header = re.fullmatch(r"\s*(Usage|Arguments|Options|Commands|Examples):(.*)", line)
        if header:
            current = header.group(1)
            found.setdefault(current, []).append(header.group(2).strip())
        elif line.strip():
            found.setdefault(current, []).append(line)
    return found


def first_column(lines: list[str]) -> list[str]:
    """An Options or Arguments section's names and placeholders, one entry a parameter."""
    return [re.split(r"\s{2,}", line.strip())[0] for line in lines if re.match(r"  \S", line)]


def test_the_tree_holds_every_command() -> None:
    assert {path[0] for path in PATHS if len(path) == 1} == set(COMMANDS)
    assert len(PATHS) > len(COMMANDS) + 1  # the groups' subcommands are walked too


@pytest.mark.parametrize("path", [pytest.param(p, id=" ".join(p) or "llmcli") for p in PATHS])
def test_h_is_help(path: tuple[str, ...]) -> None:
    long = help_of(path)
    assert long.startswith("Usage: " + " ".join(("llmcli", *path)))
    assert help_of(path, "-h") == long


@pytest.mark.parametrize("path", [pytest.param(p, id=" ".join(p) or "llmcli") for p in PATHS])
def test_help_shows_examples(path: tuple[str, ...]) -> None:
    examples = sections(help_of(path)).get("Examples", [])
    runs = [line.strip() for line in examples if "llmcli " in line]
    assert len(runs) >= 2, examples
    # The examples show the command they are the help of, not only others.
    assert any(" ".join(("llmcli", *path)) in run for run in runs), runs


@pytest.mark.parametrize("path", [pytest.param(p, id=" ".join(p) or "llmcli") for p in PATHS])
def test_placeholders_are_upper_case_words_or_choices(path: tuple[str, ...]) -> None:
    found = sections(help_of(path))
    usage = found["Usage"][0].split()[len(path) + 1 :]
    assert all(re.fullmatch(r"\[?[A-Z][A-Z_]*(\.\.\.)?\]?(\.\.\.)?", word) for word in usage), usage
    for entry in first_column(found.get("Arguments", [])):
        assert re.fullmatch(r"[A-Z][A-Z_]*(\.\.\.)?", entry), entry
    for entry in first_column(found.get("Options", [])):
        words = [word.rstrip(",") for word in entry.split() if word != "/"]
        placeholders = [word for word in words if not word.startswith("-")]
        assert all(re.fullmatch(r"[A-Z][A-Z_]*|\[[\w|]+\]", word) for word in placeholders), entry


def choices_of(path: tuple[str, ...], option: str) -> list[str]:
    for entry in first_column(sections(help_of(path)).get("Options", [])):
        match = re.fullmatch(rf"{option} \[([\w|]+)\]", entry)
        if match:
            return match.group(1).split("|")
    raise AssertionError(f"{option} lists no choices in {' '.join(path)}'s help")


def test_reasoning_lists_every_mode_chat_takes() -> None:
    listed = choices_of(("chat",), "--reasoning")
    assert listed == list(REASONING_MODES)
    assert all(parse_reasoning(mode) == mode for mode in listed)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("profiles", "add"), list(DIALECTS)),
        (("mock-server",), list(typing.get_args(Dialect))),
    ],
)
def test_dialect_lists_its_choices(path: tuple[str, ...], expected: list[str]) -> None:
    assert choices_of(path, "--dialect") == expected


def test_embed_format_lists_its_choices() -> None:
    assert choices_of(("embed",), "--format") == ["ndjson", "json", "csv", "npy"]


def test_bench_help_leads_with_bench_p() -> None:
    runs = [line.strip() for line in sections(help_of(("bench",)))["Examples"] if line.strip()]
    assert runs[0].startswith("llmcli bench -p ")
    assert any(run.count(" -p ") >= 2 for run in runs)  # several profiles side by side
