"""The demo's built-in tools: safe by construction, except ``python``, which asks first.

- ``calculator``: arithmetic from the syntax tree (:mod:`llmcli.tools.calculator`).
- ``now``: the time in an IANA zone (``zoneinfo``); an unknown zone is an error result.
- ``read_file`` / ``list_dir``: read-only, confined to a root (:mod:`llmcli.tools.files`).
- ``python``: only when the user allows it (``--allow-python``), every call confirmed,
  run as ``sys.executable -I -c CODE`` in the root with a scrubbed environment (no API
  keys for the code to print back to the model), a time limit and an output cap.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from llmcli.tools.calculator import evaluate, format_number
from llmcli.tools.files import Root
from llmcli.tools.process import OUTPUT_CAP, run_process
from llmcli.tools.tool import Tool, ToolError

PYTHON_TIMEOUT: Final = 10.0
# The only variables the python tool's code sees: enough to run, nothing secret.
PYTHON_ENV_KEYS: Final = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "SYSTEMROOT")
STDERR_TAIL: Final = 2000

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _string(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


def calculator_tool() -> Tool:
    async def run(arguments: dict[str, Any]) -> str:
        return format_number(evaluate(arguments["expression"]))

    return Tool(
        name="calculator",
        description="Evaluate an arithmetic expression: numbers, + - * / // % ** and parentheses.",
        parameters={
            "type": "object",
            "properties": {"expression": _string("e.g. (17 * 23) / 4")},
            "required": ["expression"],
        },
        run=run,
    )


def now_tool(clock: Clock = _utc_now) -> Tool:
    async def run(arguments: dict[str, Any]) -> str:
        name = arguments.get("timezone") or "UTC"
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ToolError(
                f"unknown time zone {name!r}: use an IANA name such as Asia/Tokyo or UTC"
            ) from None
        moment = clock().astimezone(zone)
        return f"{moment.isoformat(timespec='seconds')} ({moment:%A}, {moment.tzname()}, {name})"

    return Tool(
        name="now",
        description="The current date and time in a time zone.",
        parameters={
            "type": "object",
            "properties": {"timezone": _string("IANA time zone, e.g. Asia/Tokyo (default UTC)")},
        },
        run=run,
    )


def read_file_tool(root: Root) -> Tool:
    async def run(arguments: dict[str, Any]) -> str:
        return root.read_file(arguments["path"])

    return Tool(
        name="read_file",
        description="Read a text file (read-only, inside the working directory; long files are cut).",
        parameters={
            "type": "object",
            "properties": {"path": _string("path relative to the working directory")},
            "required": ["path"],
        },
        run=run,
    )


def list_dir_tool(root: Root) -> Tool:
    async def run(arguments: dict[str, Any]) -> str:
        return root.list_dir(arguments.get("path") or ".")

    return Tool(
        name="list_dir",
        description="List a directory inside the working directory (default: the directory itself).",
        parameters={
            "type": "object",
            "properties": {"path": _string("path relative to the working directory")},
        },
        run=run,
    )


def python_tool(root: Root, *, timeout: float = PYTHON_TIMEOUT, cap: int = OUTPUT_CAP) -> Tool:
    async def run(arguments: dict[str, Any]) -> str:
        env = {key: os.environ[key] for key in PYTHON_ENV_KEYS if key in os.environ}
        result = await run_process(
            [sys.executable, "-I", "-c", arguments["code"]],
            timeout=timeout,
            cap=cap,
            cwd=root.path,
            env=env,
        )
        if result.returncode != 0 and not result.truncated:
            tail = result.stderr[-STDERR_TAIL:].strip()
            raise ToolError(f"exit status {result.returncode}" + (f": {tail}" if tail else ""))
        text = result.stdout
        if result.truncated:
            text += f"\n[truncated: output over {cap} bytes; the program was stopped]"
        if result.stderr.strip():
            text += "\n[stderr]\n" + result.stderr[-STDERR_TAIL:]
        return text

    return Tool(
        name="python",
        description="Run a Python program (asks the user first); its printed output is the result.",
        parameters={
            "type": "object",
            "properties": {"code": _string("a complete program; print() what you need")},
            "required": ["code"],
        },
        run=run,
        confirm=True,
        preview=lambda arguments: str(arguments.get("code", "")),
        timeout=timeout + 5,  # the process's own limit fires first and says so
    )


def builtin_tools(root: Root, *, allow_python: bool = False, clock: Clock = _utc_now) -> list[Tool]:
    """Every built-in tool; ``python`` only when allowed."""
    tools = [
        calculator_tool(),
        now_tool(clock),
        read_file_tool(root),
        list_dir_tool(root),
    ]
    if allow_python:
        tools.append(python_tool(root))
    return tools
