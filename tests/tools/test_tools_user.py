"""Tools from a user's TOML or JSON file: loading, checking, and running with JSON on stdin."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from llmcli.errors import ConfigError
from llmcli.tools.tool import ConfirmRequest, Decision, ToolRun
from llmcli.tools.toolbox import Toolbox
from llmcli.tools.user import load_user_tools
from llmcli.wire.events import ToolCall

# Reads the arguments from stdin and shows exactly what it got.
ECHO = "import json, sys; args = json.load(sys.stdin); print(json.dumps(args, sort_keys=True))"
SHOUT = "import json, sys; print(json.load(sys.stdin)['text'].upper(), end='')"


def toml_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid TOML basic string


def write_toml(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "tools.toml"
    path.write_text(body)
    return path


async def _approve(request: ConfirmRequest) -> Decision:
    return Decision(True)


def run(path: Path, name: str, arguments: Any) -> ToolRun:
    toolbox = Toolbox(load_user_tools(path), confirm=_approve)
    call = ToolCall(index=0, id="call_0", name=name, arguments=json.dumps(arguments))
    return asyncio.run(toolbox.run_call(call))


def test_toml_tool_gets_its_arguments_as_json_on_stdin(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path,
        f"""
[tools.shout]
description = "Upper-case a text"
command = [{toml_string(sys.executable)}, "-c", {toml_string(SHOUT)}]
safe = true
timeout = 5
parameters = {{ type = "object", properties = {{ text = {{ type = "string" }} }}, required = ["text"] }}

[tools.echo]
command = [{toml_string(sys.executable)}, "-c", {toml_string(ECHO)}]
""",
    )
    shout, echo = load_user_tools(path)
    assert (shout.name, shout.description, shout.confirm, shout.timeout) == (
        "shout",
        "Upper-case a text",
        False,
        10.0,  # the process's own 5 s limit fires first; the toolbox's is a backstop
    )
    assert echo.confirm and echo.parameters == {"type": "object", "properties": {}}
    assert run(path, "shout", {"text": "héllo"}).content == "HÉLLO"
    assert json.loads(run(path, "echo", {"b": [1, 2], "a": None}).content) == {
        "a": None,
        "b": [1, 2],
    }
    bad = run(path, "shout", {"text": 3})
    assert bad.error == "invalid arguments: arguments.text: expected string, got integer"
    assert "$ " + sys.executable in echo.show_call(
        {"a": 1}
    ) and 'stdin: {"a": 1}' in echo.show_call({"a": 1})


def test_json_file_and_failures(tmp_path: Path) -> None:
    path = tmp_path / "tools.json"
    fail = "import sys; sys.stderr.write('no such city'); sys.exit(2)"
    path.write_text(
        json.dumps(
            {
                "tools": {
                    "fail": {"command": [sys.executable, "-c", fail], "safe": True},
                    "slow": {
                        "command": [sys.executable, "-c", "import time; time.sleep(30)"],
                        "timeout": 0.5,
                    },
                    "missing": {"command": ["/no/such/tool"]},
                }
            }
        )
    )
    assert run(path, "fail", {}).error == "exit status 2: no such city"
    assert run(path, "slow", {}).error == "timed out after 0.5 s (the program was stopped)"
    assert run(path, "missing", {}).error == "cannot run '/no/such/tool': No such file or directory"


def test_relative_command_is_next_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "mytools"
    folder.mkdir()
    script = folder / "hello.py"
    script.write_text(f"#!{sys.executable}\nprint('hello from a script')\n")
    script.chmod(0o755)
    path = folder / "tools.toml"
    path.write_text('[tools.hello]\ncommand = ["./hello.py"]\nsafe = true\n')
    monkeypatch.chdir(tmp_path)  # not the file's directory
    assert run(path, "hello", {}).content == "hello from a script\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "no tools: declare each as a [tools.NAME] table"),
        ("tools = 1", "no tools"),
        ('[tool.x]\ncommand = ["a"]', "no tools"),
        ('other = 1\n[tools.x]\ncommand = ["a"]', "unknown top-level key 'other'"),
        (
            '[tools.x]\ncommand = "ls -l"',
            "command must be a non-empty list of strings (argv, no shell)",
        ),
        ("[tools.x]\ncommand = []", "command must be a non-empty list"),
        ('[tools.x]\ncommand = ["ls", 1]', "command must be a non-empty list"),
        ("[tools.x]\ndescription = 'no command'", "command must be a non-empty list"),
        (
            '[tools.x]\ncommand = ["ls"]\ncomand = 1',
            "unknown field 'comand' (did you mean 'command'?)",
        ),
        ('[tools.x]\ncommand = ["ls"]\nsafe = "yes"', "safe must be true or false"),
        ('[tools.x]\ncommand = ["ls"]\ntimeout = 0', "timeout must be a number of seconds"),
        ('[tools.x]\ncommand = ["ls"]\ntimeout = 9999', "timeout must be a number of seconds"),
        ('[tools.x]\ncommand = ["ls"]\ndescription = 3', "description must be a string"),
        (
            '[tools.x]\ncommand = ["ls"]\nparameters = { type = "array" }',
            'parameters must be an object schema (type = "object")',
        ),
        (
            '[tools.x]\ncommand = ["ls"]\nparameters = { type = "object", properties = { a = { type = "strng" } } }',
            "parameters.properties.a.type: must be a type name",
        ),
        ('[tools."bad name"]\ncommand = ["ls"]', "a name is 1 to 64 letters, digits, '_' or '-'"),
        ('[tools.calculator]\ncommand = ["ls"]', "the name is taken by a built-in tool"),
        ("[tools.x\n", "not valid TOML"),
    ],
)
def test_bad_files(tmp_path: Path, body: str, message: str) -> None:
    path = write_toml(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_user_tools(path, reserved=frozenset({"calculator"}))
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_unreadable_or_invalid_json(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the tools file"):
        load_user_tools(tmp_path / "nope.toml")
    bad = tmp_path / "tools.json"
    bad.write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_user_tools(bad)
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'[tools.caf\xe9]\ncommand = ["true"]\n')
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 0xe9 at offset 10\); save it"):
        load_user_tools(latin)
