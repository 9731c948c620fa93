"""``llmcli mock-server``: the project's mock backend in the foreground, for benchmarks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from llmcli.commands.boundary import command_boundary


@command_boundary
def mock_server(
    dialect: Annotated[
        str, typer.Option(metavar="[zen|llamacpp]", help="Wire dialect to speak.")
    ] = "zen",
    host: Annotated[str, typer.Option(metavar="HOST", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="INTEGER", help="Port (0: any free port).")] = 8765,
    ttft: Annotated[
        str,
        typer.Option(
            metavar="SECONDS",
            help="Seconds to the first token: a number, or a distribution drawn per request: "
            "uniform:LOW,HIGH, normal:MEAN,SD, lognormal:MEDIAN,SIGMA, exponential:MEAN.",
        ),
    ] = "0",
    itl: Annotated[
        str,
        typer.Option(
            metavar="SECONDS",
            help="Seconds between token chunks: a number, or a distribution drawn per gap.",
        ),
    ] = "0",
    tokens_per_chunk: Annotated[
        str,
        typer.Option(
            metavar="COUNT",
            help="Tokens carried by each chunk: a whole number, or a distribution drawn per "
            "chunk (uniform:1,4).",
        ),
    ] = "1",
    max_tokens: Annotated[
        int,
        typer.Option(metavar="INTEGER", help="Answer length when a request sets no max_tokens."),
    ] = 16,
    reasoning_tokens: Annotated[
        int, typer.Option(metavar="INTEGER", help="Reasoning tokens before the answer.")
    ] = 0,
    empty_chunks: Annotated[
        int,
        typer.Option(
            metavar="INTEGER",
            help="'choices: []' chunks after every token chunk (some zen models).",
        ),
    ] = 0,
    faults: Annotated[
        str,
        typer.Option(
            metavar="RATES",
            help="Fault rates, e.g. status_429=0.05,reset=0.01 (status_429, status_500, "
            "status_503, stall, reset, error_event, no_done, malformed).",
        ),
    ] = "",
    stall_seconds: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS",
            help="Seconds of silence a stall fault holds (default: 30).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option(metavar="INTEGER", help="Seed of the fault and timing draws.")
    ] = 0,
    model: Annotated[
        list[str] | None,
        typer.Option(help="A model id to serve (repeatable; default: zen's three).", metavar="ID"),
    ] = None,
    api_key: Annotated[
        list[str] | None,
        typer.Option(help="A key the server accepts (repeatable; default: any).", metavar="KEY"),
    ] = None,
    tool_script: Annotated[
        str | None,
        typer.Option(
            help='Tool calls per step, e.g. \'[[{"name": "now", "arguments": {}}]]\'.',
            metavar="JSON",
        ),
    ] = None,
    answer_tool_results: Annotated[
        bool,
        typer.Option(
            "--answer-tool-results",
            help="Answer a conversation ending in tool results with those results, in text.",
        ),
    ] = False,
    no_record: Annotated[
        bool, typer.Option("--no-record", help="Log no frame times (very long runs).")
    ] = False,
    log: Annotated[
        Path | None,
        typer.Option(
            help="Append a JSON line a request to FILE: when it arrived and when each frame "
            "left (perf_counter seconds), status, fault; never its headers.",
            metavar="FILE",
        ),
    ] = None,
    processes: Annotated[
        int,
        typer.Option(
            metavar="INTEGER", help="Server processes on the one port (Linux): for many streams."
        ),
    ] = 1,
) -> None:
    """Serve zen's or llama-server's dialect on a scripted schedule; prints the base URL.

    \b
    Examples:
      llmcli mock-server --port 0
      llmcli mock-server --dialect llamacpp --port 8080 --log mock.jsonl
      llmcli mock-server --ttft uniform:0.1,0.3 --itl 0.02 --faults status_429=0.05
    """
    from llmcli.errors import UsageError
    from llmcli.mock.options import config_from_options
    from llmcli.mock.processes import run

    try:
        config = config_from_options(
            dialect=dialect, ttft=ttft, itl=itl, tokens_per_chunk=tokens_per_chunk,
            max_tokens=max_tokens, reasoning_tokens=reasoning_tokens, empty_chunks=empty_chunks,
            faults=faults, stall_seconds=stall_seconds, seed=seed, record_frames=not no_record,
            models=model or (), api_keys=api_key or (), tool_script=tool_script,
            answer_tool_results=answer_tool_results,
        )  # fmt: skip
    except ValueError as error:
        raise UsageError(str(error)) from None
    run(config, host, port, processes=processes, log_path=log, stdout=sys.stdout)
