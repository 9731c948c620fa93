"""``llmcli bench``: one workload against one or more profiles, side by side; ``compare``."""

from __future__ import annotations

import contextlib
import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from llmcli.commands.boundary import command_boundary
from llmcli.commands.options import GrammarOption, JsonOption, JsonSchemaOption, ModelOption

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from llmcli.bench.progress import Tracker
    from llmcli.bench.records import BenchRun
    from llmcli.bench.workload import Message, Settings
    from llmcli.config.profiles import Profile

app = typer.Typer(
    help="Measure latency and throughput (TTFT, ITL, TPOT, e2e, tokens/s) of profiles.",
    invoke_without_command=True,
    no_args_is_help=False,
)

CsvOption = Annotated[bool, typer.Option("--csv", help="Print the summary as CSV on stdout.")]


@app.callback()
@command_boundary
def bench(
    ctx: typer.Context,
    profiles: Annotated[
        list[str] | None,
        typer.Option(
            "--profile",
            "-p",
            help="Profile to measure (repeatable: side by side).",
            show_default=False,
        ),
    ] = None,
    concurrency: Annotated[
        str, typer.Option(help="Closed-loop concurrency levels, e.g. 1,4,16.")
    ] = "1",
    requests: Annotated[
        int | None,
        typer.Option(help="Measured requests per level (default 10).", show_default=False),
    ] = None,
    duration: Annotated[
        str | None,
        typer.Option(
            help="Run each level this long instead (60s, 2m; at most 1000000 requests).",
            show_default=False,
        ),
    ] = None,
    warmup: Annotated[int, typer.Option(help="Warm-up requests per level, not measured.")] = 0,
    input_tokens: Annotated[int, typer.Option(help="Synthetic prompt length, in tokens.")] = 64,
    max_tokens: Annotated[int, typer.Option(help="Requested output length, in tokens.")] = 64,
    model: ModelOption = None,
    prompts: Annotated[
        Path | None,
        typer.Option(
            help="Prompt file (UTF-8; another encoding is refused): one prompt a line, or"
            " JSONL messages.",
            show_default=False,
        ),
    ] = None,
    cache: Annotated[
        bool, typer.Option("--cache", help="Repeat prompts exactly, to measure the prompt cache.")
    ] = False,
    rate: Annotated[
        float | None,
        typer.Option(
            help="Open loop: requests/s on a schedule made in advance.", show_default=False
        ),
    ] = None,
    arrival: Annotated[
        str, typer.Option(help="Open-loop arrivals: poisson or constant.")
    ] = "poisson",
    slo: Annotated[str, typer.Option(help="Goodput objectives.")] = "ttft=500ms,tpot=50ms",
    interleave: Annotated[
        bool, typer.Option("--interleave", help="Each level against every profile, in turn.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Results JSON (default: bench-<time>.json here).", show_default=False),
    ] = None,
    workers: Annotated[
        int, typer.Option(help="Processes to spread each level's streams over.")
    ] = 1,
    grammar: GrammarOption = None,
    json_schema: JsonSchemaOption = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            help="Also draw latency and throughput against load to FILE.png (needs matplotlib).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Run the same workload against each profile in turn; print them side by side."""
    if ctx.invoked_subcommand is not None:
        return
    from llmcli.bench.run import new_run
    from llmcli.bench.workload import load_prompts, read_constraints, request_constraints
    from llmcli.commands.options import backend
    from llmcli.errors import UsageError

    settings = _settings(
        concurrency, requests, duration, warmup, input_tokens, max_tokens, model, prompts,
        cache, rate, arrival, slo, workers,
    )  # fmt: skip
    settings = read_constraints(settings, grammar, json_schema)
    if out is not None and (out.is_dir() or not out.parent.is_dir()):  # now, not after the run
        raise UsageError(f"--out {out}: give a file in a directory that exists")
    conversations = load_prompts(prompts) if prompts else None
    names: list[str | None] = list(profiles) if profiles else [None]
    with contextlib.ExitStack() as servers:
        # Spawned profiles start their servers once, for the whole run.
        chosen = [servers.enter_context(backend(name)) for name in names]
        for profile in chosen:  # a constraint a backend cannot apply: refused before any request
            if profile.dialect is not None:
                request_constraints(settings, profile.dialect)
        run = new_run(settings)
        finish = functools.partial(_finish, run, out, as_json=as_json, as_csv=as_csv, plot=plot)
        _measure(run, chosen, conversations, interleave, finish)


def _measure(
    run: BenchRun,
    profiles: Sequence[Profile],
    prompts: Sequence[Sequence[Message]] | None,
    interleave: bool,
    finish: Callable[[], None],
) -> None:
    """Run the bench, then ``finish`` it; a run ended by Ctrl-C, SIGTERM or SIGHUP is
    finished too (what arrived is written), and the ending goes on to the boundary."""
    from llmcli.bench.run import run_bench
    from llmcli.endings import SignalEnding, run_until_signalled
    from llmcli.net import eventloop

    try:
        with _tracker() as tracker:
            main = run_bench(
                run, profiles, prompts=prompts, progress=tracker, interleave=interleave
            )
            eventloop.run(run_until_signalled(main))
    except (KeyboardInterrupt, SignalEnding):
        run.interrupted = True
        finish()
        raise
    finish()


@app.command()
@command_boundary
def compare(
    files: Annotated[list[Path], typer.Argument(help="Results files written by llmcli bench.")],
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Read runs back and put them side by side (the first is the base of the ratios)."""
    from llmcli.bench.report import build_table, file_columns, formulas_text, load_results
    from llmcli.bench.report import summary_csv as to_csv
    from llmcli.ui.sanitize import dumps_json

    columns = [column for path in files for column in file_columns(path, load_results(path))]
    if as_json:
        print(dumps_json({label: dict(levels) for label, levels in columns}))
    elif as_csv:
        sys.stdout.write(to_csv(columns))
    else:
        _print(build_table(columns, title="llmcli bench compare"), formulas_text())


@app.command()
@command_boundary
def check(
    results: Annotated[Path, typer.Argument(help="A results file written by llmcli bench.")],
    log: Annotated[Path, typer.Argument(help="The log of llmcli mock-server --log FILE.")],
    as_json: JsonOption = False,
) -> None:
    """Check a run against the mock server's log: its TTFT, ITL and e2e errors."""
    from llmcli.bench.check import check_run, load_mock_log
    from llmcli.bench.report import check_table, load_results
    from llmcli.errors import UsageError
    from llmcli.ui.sanitize import dumps_json

    checks = check_run(load_results(results), load_mock_log(log))
    if not any(level.matched for level in checks):
        raise UsageError(f"no request of {results} is in {log}: was the run made against it?")
    served = {level.profile for level in checks if level.matched}
    for profile in sorted({level.profile for level in checks} - served):
        _progress(f"{profile}: no request of it is in {log} (another server's profile); left out")
    checks = [level for level in checks if level.profile in served]
    if as_json:
        print(dumps_json([level.as_dict() for level in checks]))
        return
    _print(check_table(checks))


def _settings(
    concurrency: str,
    requests: int | None,
    duration: str | None,
    warmup: int,
    input_tokens: int,
    max_tokens: int,
    model: str | None,
    prompts: Path | None,
    cache: bool,
    rate: float | None,
    arrival: str,
    slo: str,
    workers: int,
) -> Settings:
    from llmcli.bench.metrics import parse_duration, parse_slo
    from llmcli.bench.workload import Settings, parse_levels
    from llmcli.errors import UsageError

    if arrival not in ("poisson", "constant"):
        raise UsageError(f"--arrival {arrival!r}: use poisson or constant")
    try:
        seconds = parse_duration(duration) if duration else None
        objectives = parse_slo(slo)
    except ValueError as error:
        raise UsageError(str(error)) from None
    return Settings(
        concurrency=parse_levels(concurrency),
        requests=requests if requests is not None or seconds is not None else 10,
        duration=seconds,
        warmup=warmup,
        input_tokens=input_tokens,
        max_tokens=max_tokens,
        model=model,
        prompts_file=str(prompts) if prompts else None,
        cache=cache,
        rate=rate,
        arrival=arrival,  # type: ignore[arg-type]
        slo=objectives,
        workers=workers,
    )


def _finish(
    run: BenchRun, out: Path | None, *, as_json: bool, as_csv: bool, plot: Path | None = None
) -> None:
    """Write the results file, then the summary: JSON, CSV or the table."""
    import time

    from llmcli.bench.report import (
        build_chart,
        build_table,
        formulas_text,
        run_summaries,
        saturation_notes,
        summary_csv,
        summary_json,
        write_results,
    )
    from llmcli.ui.sanitize import dumps_json

    path = out or Path(time.strftime("bench-%Y%m%d-%H%M%S.json"))
    write_results(run, path)
    _progress(f"results written to {path}" + (" (interrupted run)" if run.interrupted else ""))
    if plot is not None:
        from llmcli.bench.plot import write_plot

        write_plot(run_summaries(run), plot)
        _progress(f"plot written to {plot}")
    if as_json:
        print(dumps_json(summary_json(run)))
    elif as_csv:
        sys.stdout.write(summary_csv(run_summaries(run)))
    else:
        columns = run_summaries(run)
        _print(build_table(columns), formulas_text(run.settings.slo.describe()))
        if max((len(levels) for _, levels in columns), default=0) > 1:
            _print("", build_chart(columns))
    for note in saturation_notes(run_summaries(run)):
        _progress(note)


def _print(*renderables: Any) -> None:
    from llmcli.ui.render import OutputMode, make_console

    mode = OutputMode.detect()
    console = make_console(sys.stdout, color=mode.color_out)
    if not sys.stdout.isatty():
        console.width = max(console.width, 160)  # a pipe or file: never wrap the table
    for renderable in renderables:
        console.print(renderable)


@contextlib.contextmanager
def _tracker() -> Iterator[Tracker]:
    """A live display on a terminal's stderr; plain lines when stderr is a pipe or file."""
    from llmcli.bench.progress import LineProgress, LiveProgress

    if not sys.stderr.isatty():
        yield LineProgress(_progress)
        return
    from llmcli.ui.render import OutputMode, make_console

    console = make_console(sys.stderr, color=OutputMode.detect().color_err)
    with LiveProgress(console) as live:
        yield live


def _progress(message: str) -> None:
    sys.stderr.write(f"llmcli bench: {message}\n")
    sys.stderr.flush()
