"""Tools a user declares in a file: a JSON schema for the arguments and a command to run.

The file is TOML (``.toml``) or JSON (any other name), one table per tool::

    [tools.word_count]
    description = "Count the words in a text"
    command = ["wc", "-w"]          # argv, no shell; a relative path with a "/" in it is
                                    # relative to this file's directory
    parameters = { type = "object", properties = { text = { type = "string" } }, required = ["text"] }
    safe = true                     # run without asking (default false: ask every call)
    timeout = 5                     # seconds (default 10)
    env = ["WEATHER_KEY"]           # secrets this tool may see (default: none)

JSON: ``{"tools": {"word_count": {"description": ..., "command": [...], ...}}}``.

A call runs the command with the arguments as JSON on stdin; its stdout is the result. A
non-zero exit, a time-out or a command that cannot start is an error result for the model.
The command gets this process's environment without its secrets (API keys, tokens,
passwords: the rule is in :mod:`llmcli.tools.environment`), since whatever it prints goes
to the model; ``env`` lists the variables it may see anyway, by name.
Everything in the file is checked when it loads, so a typo fails there, with the file and
tool named, and not in the middle of a conversation.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shlex
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from llmcli.errors import ConfigError
from llmcli.tools.environment import VARIABLE_NAME, tool_environment
from llmcli.tools.process import OUTPUT_CAP, run_process
from llmcli.tools.schema import SchemaError, check_schema
from llmcli.tools.tool import DEFAULT_TIMEOUT, Tool, ToolError
from llmcli.ui.stdin_text import bad_byte

TOOL_FIELDS: Final = ("description", "command", "parameters", "safe", "timeout", "env")
MAX_TIMEOUT: Final = 600.0
STDERR_TAIL: Final = 2000
# OpenAI's rule for function names.
_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


def load_user_tools(
    path: Path, *, reserved: frozenset[str] = frozenset(), key_variables: Iterable[str] = ()
) -> list[Tool]:
    """The tools declared in ``path``; raises ``ConfigError`` naming what is wrong and where.

    ``reserved``: names already taken (the built-in tools). ``key_variables``: the
    variables profiles read their keys from, kept from every tool that does not ask for
    them by name.
    """
    keys = frozenset(key_variables)
    document = _read(path)
    tables = document.get("tools") if isinstance(document, Mapping) else None
    if not isinstance(tables, Mapping) or not tables:
        raise ConfigError(f"{path}: no tools: declare each as a [tools.NAME] table")
    if isinstance(document, Mapping) and (unknown := set(document) - {"tools"}):
        raise ConfigError(f"{path}: unknown top-level key {sorted(unknown)[0]!r}: only 'tools'")
    return [_tool(path, name, table, reserved, keys) for name, table in tables.items()]


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read the tools file {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text ({bad_byte(error)}); save it as UTF-8") from None
    try:
        if path.suffix.lower() == ".toml":
            return tomllib.loads(text)
        return json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        raise ConfigError(f"{path}: not valid {kind}: {error}") from None


def _tool(
    path: Path, name: str, table: object, reserved: frozenset[str], keys: frozenset[str]
) -> Tool:
    where = f"{path}: tool {name!r}"
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{where}: a name is 1 to 64 letters, digits, '_' or '-'")
    if name in reserved:
        raise ConfigError(f"{where}: the name is taken by a built-in tool; pick another")
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: must be a table")
    for key in table:
        if key not in TOOL_FIELDS:
            close = difflib.get_close_matches(key, TOOL_FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"{where}: unknown field {key!r}{hint}; fields: {', '.join(TOOL_FIELDS)}"
            )
    command = table.get("command")
    if (
        not isinstance(command, list)
        or not command
        or not all(isinstance(part, str) and part for part in command)
    ):
        raise ConfigError(f"{where}: command must be a non-empty list of strings (argv, no shell)")
    description = table.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{where}: description must be a string")
    safe = table.get("safe", False)
    if not isinstance(safe, bool):
        raise ConfigError(f"{where}: safe must be true or false")
    timeout = table.get("timeout", DEFAULT_TIMEOUT)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= MAX_TIMEOUT
    ):
        raise ConfigError(
            f"{where}: timeout must be a number of seconds, above 0 and at most {MAX_TIMEOUT:g}"
        )
    parameters = table.get("parameters", {"type": "object", "properties": {}})
    try:
        check_schema(parameters)
    except SchemaError as error:
        raise ConfigError(f"{where}: {error}") from None
    if not isinstance(parameters, Mapping) or parameters.get("type") != "object":
        raise ConfigError(f'{where}: parameters must be an object schema (type = "object")')
    passed = table.get("env", [])
    if not isinstance(passed, list) or not all(
        isinstance(variable, str) and VARIABLE_NAME.fullmatch(variable) for variable in passed
    ):
        raise ConfigError(
            f'{where}: env must be a list of variable names, e.g. env = ["WEATHER_KEY"]'
        )
    argv = _resolve_command(path, command)
    return _command_tool(
        name,
        description,
        dict(parameters),
        argv,
        safe=safe,
        timeout=float(timeout),
        keys=keys,
        passed=frozenset(passed),
    )


def _resolve_command(path: Path, command: list[str]) -> list[str]:
    program = command[0]
    if program.startswith("~"):
        program = str(Path(program).expanduser())
    elif "/" in program and not Path(program).is_absolute():
        program = str(path.parent / program)  # next to the file, not wherever we run
    return [program, *command[1:]]


def _command_tool(
    name: str,
    description: str,
    parameters: dict[str, Any],
    argv: list[str],
    *,
    safe: bool,
    timeout: float,
    keys: frozenset[str],
    passed: frozenset[str],
) -> Tool:
    async def run(arguments: dict[str, Any]) -> str:
        stdin = json.dumps(arguments, ensure_ascii=False).encode()
        # Read at each call, as an inherited environment would be.
        env = tool_environment(os.environ, key_variables=keys, passed=passed)
        result = await run_process(argv, stdin=stdin, timeout=timeout, cap=OUTPUT_CAP, env=env)
        if result.returncode != 0 and not result.truncated:
            tail = result.stderr[-STDERR_TAIL:].strip()
            raise ToolError(f"exit status {result.returncode}" + (f": {tail}" if tail else ""))
        if result.truncated:
            return (
                result.stdout
                + f"\n[truncated: output over {OUTPUT_CAP} bytes; the program was stopped]"
            )
        return result.stdout

    def preview(arguments: dict[str, Any]) -> str:
        shown = f"$ {shlex.join(argv)}\nstdin: {json.dumps(arguments, ensure_ascii=False)}"
        # The user approving a call should know which of their secrets it can read.
        return shown + (f"\nenv: {', '.join(sorted(passed))}" if passed else "")

    return Tool(
        name=name,
        description=description,
        parameters=parameters,
        run=run,
        confirm=not safe,
        preview=preview,
        timeout=timeout + 5,  # the process's own limit fires first and says so
    )
