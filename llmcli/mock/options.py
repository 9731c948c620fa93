"""The mock server's command line, read once: ``llmcli mock-server``'s option text to a
:class:`~llmcli.mock.config.MockConfig`.

The command (``llmcli.commands.mock_server``) only declares the options; every value is
parsed and checked here, and anything wrong is one ``ValueError`` whose message is the line
a user sees.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from llmcli.mock.config import FAULT_NAMES, Faults, MockConfig, ScriptedCall, ToolStep
from llmcli.mock.timing import parse_chunk_tokens, parse_timing


def parse_fault_rates(text: str) -> dict[str, float]:
    """``status_429=0.05,reset=0.01``: each fault's rate; a bare name is certain (1.0)."""
    rates: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, rate = item.partition("=")
        if name not in FAULT_NAMES:
            raise ValueError(f"unknown fault {name!r}: use one of {', '.join(FAULT_NAMES)}")
        try:
            rates[name] = float(rate) if sep else 1.0
        except ValueError:
            raise ValueError(f"fault {name}: {rate!r} is not a rate between 0 and 1") from None
    return rates


def parse_tool_script(text: str) -> tuple[ToolStep, ...]:
    """``--tool-script``: a JSON list of steps, each a list of ``{"name", "arguments"}``."""
    try:
        steps = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--tool-script is not JSON: {exc}") from None
    if not isinstance(steps, list) or not all(isinstance(step, list) for step in steps):
        raise ValueError("--tool-script is a list of steps, each a list of calls")
    script = []
    for step in steps:
        calls = []
        for call in step:
            if not isinstance(call, dict) or not isinstance(call.get("name"), str):
                raise ValueError('--tool-script: each call is {"name": ..., "arguments": ...}')
            arguments = call.get("arguments", {})
            text_arguments = arguments if isinstance(arguments, str) else json.dumps(arguments)
            calls.append(ScriptedCall(call["name"], text_arguments))
        script.append(tuple(calls))
    return tuple(script)


def config_from_options(
    *,
    dialect: str = "zen",
    ttft: str = "0",
    itl: str = "0",
    tokens_per_chunk: str = "1",
    max_tokens: int = 16,
    reasoning_tokens: int = 0,
    empty_chunks: int = 0,
    faults: str = "",
    stall_seconds: float | None = None,
    seed: int = 0,
    record_frames: bool = True,
    models: Sequence[str] = (),
    api_keys: Sequence[str] = (),
    tool_script: str | None = None,
    answer_tool_results: bool = False,
) -> MockConfig:
    """The configuration the options describe; ``ValueError`` says what is wrong."""
    fields: dict[str, Any] = {}
    fault_fields: dict[str, Any] = parse_fault_rates(faults)
    if stall_seconds is not None:  # else Faults' own default
        fault_fields["stall_seconds"] = stall_seconds
    if models:
        fields["models"] = tuple(models)
    if api_keys:
        fields["api_keys"] = frozenset(api_keys)
    return MockConfig(
        dialect=dialect,  # type: ignore[arg-type]  # MockConfig checks it
        ttft=parse_timing(ttft),
        itl=parse_timing(itl),
        tokens_per_chunk=parse_chunk_tokens(tokens_per_chunk),
        default_max_tokens=max_tokens,
        reasoning_tokens=reasoning_tokens,
        empty_chunks=empty_chunks,
        record_frames=record_frames,
        faults=Faults(**fault_fields),
        seed=seed,
        tool_script=parse_tool_script(tool_script) if tool_script else (),
        answer_tool_results=answer_tool_results,
        **fields,
    )
