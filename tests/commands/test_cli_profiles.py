"""Tests for ``llmcli profiles``: list, show, add, rm and default through typer's CliRunner.

The app is mounted the way the main CLI mounts it (``add_typer(..., name="profiles")``);
stdout and stderr are asserted separately, and every variable that could reach the real
configuration or a real key is set or unset explicitly.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from llmcli.commands import profiles as profiles_command
from llmcli.ui.terminal import Terminal

SECRET = "sk-live-0123456789abcdef"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The user's file, where XDG_CONFIG_HOME=tmp_path puts it (not created here)."""
    return tmp_path / "llmcli" / "profiles.toml"


def run(config: Path, *args: str, **env: str) -> Result:
    main = typer.Typer()
    main.add_typer(profiles_command.app, name="profiles")
    base: dict[str, str | None] = {
        # LLMCLI_CONFIG only names a file that exists (a missing one is an error); on
        # Linux the XDG directory gives the same path, and other platforms get a file.
        "LLMCLI_CONFIG": str(config) if config.exists() else None,
        "XDG_CONFIG_HOME": str(config.parent.parent),
        "HOME": str(config.parent.parent),
        "LLMCLI_PROFILE": None,
        "BACKEND_URL": None,
        "BACKEND_API_KEY": None,
        "ZEN_API_KEY": None,
    }
    return CliRunner().invoke(main, ["profiles", *args], env={**base, **env})


def write(config: Path, text: str) -> None:
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text)


def test_list_plain_is_tab_separated_data_only(config: Path) -> None:
    write(config, '[profiles.gpu]\nbase_url = "http://gpu:8080/v1"\nmodel = "qwen"\n')

    result = run(config, "list", LLMCLI_PROFILE="gpu")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "zen\tdefault\thttps://opencode.ai/zen/v1\tbig-pickle\tzen\t"
        "set (profile; ZEN_API_KEY is not set)",
        "local\t-\thttp://127.0.0.1:8080/v1\t-\tllamacpp\tset (profile)",
        "demo\t-\thttp://127.0.0.1:0/v1\tsmollm2\tllamacpp\tnone",
        "gpu\tselected\thttp://gpu:8080/v1\tqwen\tauto\tnone",
    ]
    assert result.stderr == ""


def test_list_json_never_carries_a_key(config: Path) -> None:
    write(config, f'[profiles.gpu]\nbase_url = "http://gpu"\napi_key = "{SECRET}"\n')

    result = run(config, "list", "--json", ZEN_API_KEY=SECRET)

    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["default"] == data["selected"] == "zen"
    assert data["user_file"] == str(config)
    assert [p["name"] for p in data["profiles"]] == ["zen", "local", "demo", "gpu"]
    zen = data["profiles"][0]
    assert (zen["key"], zen["default"], zen["selected"]) == ("set (env ZEN_API_KEY)", True, True)
    assert data["profiles"][3]["key"] == "set (profile)"
    assert SECRET not in result.stdout + result.stderr
    assert result.stderr == ""


def test_list_in_a_terminal_prints_a_table(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    detect = Terminal.detect

    def stdout_a_terminal(**streams: Any) -> Terminal:
        return dataclasses.replace(detect(**streams), stdout_isatty=True)

    monkeypatch.setattr(Terminal, "detect", staticmethod(stdout_a_terminal))

    result = run(config, "list", NO_COLOR="1", COLUMNS="200")

    assert result.exit_code == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header == ["NAME", "BASE", "URL", "MODEL", "DIALECT", "KEY"]
    assert "https://opencode.ai/zen/v1" in result.stdout
    narrow = run(config, "list", NO_COLOR="1", COLUMNS="60").stdout
    assert "…" not in narrow  # folded, never cut short
    assert "\x1b[" not in result.stdout  # NO_COLOR
    assert result.stderr == (
        "llmcli: default profile: zen (used without -p)\n"
        f"llmcli: your profiles file: {config} (not created yet)\n"
    )
    selected = run(config, "list", NO_COLOR="1", COLUMNS="120", LLMCLI_PROFILE="local")
    assert selected.stderr.splitlines()[0] == (
        "llmcli: default profile: zen (used without -p); selected: local (LLMCLI_PROFILE)"
    )


def test_list_warns_about_a_bad_llmcli_profile_but_still_lists(config: Path) -> None:
    result = run(config, "list", LLMCLI_PROFILE="zne")

    assert result.exit_code == 0
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == ["zen", "local", "demo"]
    assert result.stderr == (
        "llmcli: warning: unknown profile 'zne' (from LLMCLI_PROFILE) "
        "(did you mean 'zen'?); known: demo, local, zen\n"
    )


def test_show_json_marks_default_and_selected(config: Path) -> None:
    result = run(config, "show", "local", "--json", LLMCLI_PROFILE="local")

    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["name"] == "local"
    assert (data["default"], data["selected"]) == (False, True)
    assert data["key"] == "set (profile)"
    assert "no-key" not in result.stdout
    assert result.stderr == ""


def test_show_without_a_name_shows_the_selected_profile_with_backend_url(config: Path) -> None:
    result = run(config, "show", BACKEND_URL="http://127.0.0.1:9000/v1", ZEN_API_KEY=SECRET)

    assert result.exit_code == 0, result.stderr
    fields = dict(line.split("\t") for line in result.stdout.splitlines())
    assert fields["name"] == "zen"
    assert fields["base_url"] == "http://127.0.0.1:9000/v1"
    assert fields["dialect"] == "auto"
    assert fields["key"] == "none (BACKEND_API_KEY is not set)"
    assert fields["overrides"] == "BACKEND_URL"
    # What is used and why, not a bare "-".
    assert fields["model"] == (
        "server default (BACKEND_URL points at another server than profile zen's,"
        " so its model big-pickle is not sent)"
    )
    assert fields["own_base_url"] == "https://opencode.ai/zen/v1"
    assert fields["dropped_model"] == "big-pickle"
    assert (fields["default"], fields["selected"]) == ("yes", "yes")
    assert SECRET not in result.stdout + result.stderr
    assert result.stderr == ""


def test_show_unknown_profile_is_one_line_on_stderr(config: Path) -> None:
    result = run(config, "show", "lcoal")

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "llmcli: error: unknown profile 'lcoal' (did you mean 'local'?); known: demo, local, zen\n"
    )


def test_broken_file_names_path_line_and_column(config: Path) -> None:
    write(config, '[profiles.x]\nbase_url = "http://h"\nmodel = \n')

    result = run(config, "list")

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"llmcli: error: {config}: line 3, column 9: Invalid value\n"


def test_add_then_list_and_show(config: Path) -> None:
    added = run(
        config,
        "add",
        "gpu",
        "--url",
        "http://gpu:8080/v1/",
        "--key-env",
        "GPU_KEY",
        "--model",
        "qwen",
        "--dialect",
        "llamacpp",
        "--default",
    )

    assert added.exit_code == 0, added.stderr
    assert added.stdout == ""
    assert added.stderr == f"llmcli: saved profile 'gpu' in {config}\n"
    assert tomllib.loads(config.read_text())["default"] == "gpu"

    shown = run(config, "show", "--json", GPU_KEY=SECRET)
    data = json.loads(shown.stdout)
    assert (data["name"], data["base_url"], data["key"]) == (
        "gpu",
        "http://gpu:8080/v1",
        "set (env GPU_KEY)",
    )
    assert SECRET not in shown.stdout + shown.stderr


def test_add_updates_an_existing_profile(config: Path) -> None:
    write(config, '[profiles.gpu]\nbase_url = "http://gpu"\nmodel = "qwen"\n')

    result = run(config, "add", "gpu", "--url", "http://gpu2")

    assert result.exit_code == 0, result.stderr
    assert tomllib.loads(config.read_text())["profiles"]["gpu"] == {
        "base_url": "http://gpu2",
        "model": "qwen",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("zen", "--url", "http://h"),
            "profile 'zen' ships with llmcli: pick another name, or edit {config} and set "
            "the fields to change under [profiles.zen]",
        ),
        (
            ("gpu", "--url", "gpu:8080"),
            "base_url in profile 'gpu': 'gpu:8080' is not an http(s) URL; "
            'use e.g. "http://127.0.0.1:8080/v1"',
        ),
    ],
)
def test_add_refusals(config: Path, args: tuple[str, ...], message: str) -> None:
    result = run(config, "add", *args)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == "llmcli: error: " + message.replace("{config}", str(config)) + "\n"
    assert not config.exists()


def test_add_requires_a_url(config: Path) -> None:
    result = run(config, "add", "gpu")

    assert result.exit_code == 2
    assert "--url" in result.stderr
    assert not config.exists()


def test_no_arguments_prints_help(config: Path) -> None:
    result = run(config)

    for command in ("list", "show", "add"):
        assert command in result.stdout + result.stderr


def test_module_imports_no_heavy_libraries() -> None:
    import subprocess
    import sys

    code = (
        "import sys, llmcli.commands.profiles; "
        "print(sorted(m for m in ('httpx', 'rich', 'prompt_toolkit', 'platformdirs') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# --- rm and default -------------------------------------------------------------------------


USER_FILE = """\
# my machines
default = "box"

[profiles.box]
base_url = "http://box:8080/v1"

# the GPU at work
[profiles.gpu]
base_url = "http://gpu:8080/v1"
model = "qwen"
"""


def test_rm_removes_the_table_and_keeps_comments(config: Path) -> None:
    write(config, USER_FILE)

    result = run(config, "rm", "gpu", "--yes")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "removed profile 'gpu'" in result.stderr
    text = config.read_text()
    assert "# my machines" in text
    assert tomllib.loads(text) == {
        "default": "box",
        "profiles": {"box": {"base_url": "http://box:8080/v1"}},
    }
    assert "gpu" not in run(config, "list").stdout


def test_rm_from_a_script_needs_yes(config: Path) -> None:
    write(config, USER_FILE)

    result = run(config, "rm", "gpu")

    assert result.exit_code == 2
    assert "pass --yes" in result.stderr
    assert result.stderr.count("\n") == 1
    assert config.read_text() == USER_FILE


@pytest.mark.parametrize(("answer", "kept"), [("n\n", True), ("y\n", False)])
def test_rm_in_a_terminal_asks(
    config: Path, monkeypatch: pytest.MonkeyPatch, answer: str, kept: bool
) -> None:
    write(config, USER_FILE)
    detect = Terminal.detect

    def detect_terminals(**streams: Any) -> Terminal:
        return dataclasses.replace(detect(**streams), stdin_isatty=True)

    monkeypatch.setattr(Terminal, "detect", staticmethod(detect_terminals))
    main = typer.Typer()
    main.add_typer(profiles_command.app, name="profiles")
    result = CliRunner().invoke(
        main,
        ["profiles", "rm", "gpu"],
        input=answer,
        env={"LLMCLI_CONFIG": str(config), "LLMCLI_PROFILE": None},
    )

    assert result.exit_code == 0, result.stderr
    assert "remove profile 'gpu'" in result.stderr
    assert ("gpu" in tomllib.loads(config.read_text())["profiles"]) is kept


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("zen", "profile 'zen' ships with llmcli and cannot be removed"),
        ("nope", "no profile 'nope' in"),
        ("box", "profile 'box' is the default"),
    ],
)
def test_rm_refusals_are_one_line(config: Path, name: str, message: str) -> None:
    write(config, USER_FILE)

    result = run(config, "rm", name)  # refused before any question

    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
    assert config.read_text() == USER_FILE


def test_rm_refuses_a_route_target(config: Path) -> None:
    write(config, USER_FILE + '\n[profiles.box.routes]\n"qwen*" = "gpu"\n')

    result = run(config, "rm", "gpu", "--yes")

    assert result.exit_code == 2
    assert "profile 'box' routes models to 'gpu'" in result.stderr


def test_default_rewrites_the_line_in_place(config: Path) -> None:
    write(config, USER_FILE)

    result = run(config, "default", "gpu")

    assert result.exit_code == 0, result.stderr
    assert "default profile is now 'gpu'" in result.stderr
    assert config.read_text() == USER_FILE.replace('default = "box"', 'default = "gpu"')
    assert run(config, "show", "--json").stdout.count('"gpu"') >= 1


def test_default_a_shipped_profile_into_a_new_file(config: Path) -> None:
    result = run(config, "default", "local")

    assert result.exit_code == 0, result.stderr
    assert config.read_text() == 'default = "local"\n'


def test_default_unknown_profile_is_one_line(config: Path) -> None:
    write(config, USER_FILE)

    result = run(config, "default", "nope")

    assert result.exit_code == 2
    assert "unknown profile 'nope'" in result.stderr
    assert result.stderr.count("\n") == 1
    assert config.read_text() == USER_FILE
