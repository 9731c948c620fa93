"""``llmcli bench``: one workload against one or more profiles, side by side; ``compare``."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from llmcli.commands.boundary import command_boundary
from llmcli.commands.completion import complete_profile_names
from llmcli.commands.helptext import HELP_SETTINGS, Command
from llmcli.commands.options import GrammarOption, JsonOption, JsonSchemaOption, ModelOption

app = typer.Typer(
    help="""Measure latency and throughput (TTFT, ITL, TPOT, e2e, tokens/s) of profiles.

Give each profile to measure with -p; several run the same workload side by side. Exits 1,
after the summary and the results file, when a profile had no successful request.

\b
Examples:
  llmcli bench -p local
  llmcli bench -p zen -p local --concurrency 1,4,16 --requests 20
  llmcli bench -p local --rate 2 --duration 60s --out run.json
  llmcli bench -p local --sweep --slo ttft=500ms --requests 40
  llmcli bench -p local --concurrency 256 --cluster dask --workers 2
  llmcli bench -p local -p mock --concurrency 1,4 --html report.html
  llmcli bench compare before.json after.json""",
    invoke_without_command=True,
    no_args_is_help=False,
    context_settings=HELP_SETTINGS,
)

CsvOption = Annotated[bool, typer.Option("--csv", help="Print the summary as CSV on stdout.")]
HtmlOption = Annotated[
    Path | None,
    typer.Option(
        metavar="FILE",
        help="Also write a self-contained HTML report to FILE (tables, verdicts, charts,"
        " settings, servers, formulas; nothing fetched when viewed).",
        show_default=False,
    ),
]


@app.callback()
@command_boundary
def bench(
    ctx: typer.Context,
    profiles: Annotated[
        list[str] | None,
        typer.Option(
            "--profile",
            "-p",
            metavar="NAME",
            help="Profile to measure (repeatable: side by side).",
            show_default=False,
            autocompletion=complete_profile_names,
        ),
    ] = None,
    concurrency: Annotated[
        str, typer.Option(metavar="LEVELS", help="Closed-loop concurrency levels, e.g. 1,4,16.")
    ] = "1",
    requests: Annotated[
        int | None,
        typer.Option(
            metavar="INTEGER", help="Measured requests per level (default 10).", show_default=False
        ),
    ] = None,
    duration: Annotated[
        str | None,
        typer.Option(
            metavar="DURATION",
            help="Run each level this long instead (60s, 2m; at most 1000000 requests).",
            show_default=False,
        ),
    ] = None,
    warmup: Annotated[
        int, typer.Option(metavar="INTEGER", help="Warm-up requests per level, not measured.")
    ] = 0,
    input_tokens: Annotated[
        int, typer.Option(metavar="INTEGER", help="Synthetic prompt length, in tokens.")
    ] = 64,
    max_tokens: Annotated[
        int, typer.Option(metavar="INTEGER", help="Requested output length, in tokens.")
    ] = 64,
    model: ModelOption = None,
    prompts: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
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
            metavar="FLOAT",
            help="Open loop: requests/s on a schedule made in advance.",
            show_default=False,
        ),
    ] = None,
    arrival: Annotated[
        str, typer.Option(metavar="[poisson|constant]", help="Open-loop arrivals.")
    ] = "poisson",
    slo: Annotated[
        str | None,
        typer.Option(
            metavar="OBJECTIVES", help="Goodput objectives (default ttft=500ms,tpot=50ms)."
        ),
    ] = None,
    sweep: Annotated[
        bool,
        typer.Option(
            "--sweep",
            help="Find the knee: double the concurrency (or --rate) from its start until a"
            " level misses --slo, then bisect between the last pass and the first fail.",
        ),
    ] = False,
    sweep_max: Annotated[
        float | None,
        typer.Option(
            metavar="LEVEL",
            help="Highest level the sweep tries (default 256, or 64 x --rate).",
            show_default=False,
        ),
    ] = None,
    sweep_steps: Annotated[
        int, typer.Option(metavar="INTEGER", help="Most levels the sweep measures.")
    ] = 8,
    sweep_target: Annotated[
        float,
        typer.Option(metavar="SHARE", help="A level passes when this share meets --slo."),
    ] = 0.9,
    interleave: Annotated[
        bool, typer.Option("--interleave", help="Each level against every profile, in turn.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Results JSON. Default: a new bench-<time>.json in the data directory's"
            " bench/ folder (~/.local/share/llmcli/bench on Linux), never the working"
            " directory; its path is printed on stderr.",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(metavar="INTEGER", help="Processes to spread each level's streams over.")
    ] = 1,
    cluster: Annotated[
        str | None,
        typer.Option(
            metavar="CLUSTER",
            help="Spread each level's streams over a Dask cluster's workers: 'dask' starts a"
            " local cluster (--workers processes), 'tcp://HOST:PORT' uses a running"
            " scheduler's workers, 'tls://HOST:PORT' the same over TLS with Dask's TLS"
            " settings (DASK_DISTRIBUTED__COMM__TLS__CA_FILE, __CLIENT__CERT, __CLIENT__KEY)"
            " (needs pip install 'llmcli[cluster]').",
            show_default=False,
        ),
    ] = None,
    grammar: GrammarOption = None,
    json_schema: JsonSchemaOption = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Also draw latency and throughput against load to FILE.png (needs matplotlib).",
            show_default=False,
        ),
    ] = None,
    html: HtmlOption = None,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Run the same workload against each profile in turn; print them side by side."""
    if ctx.invoked_subcommand is not None:
        return
    from llmcli.bench.output import BenchOutput
    from llmcli.bench.session import (
        DEFAULT_SLO,
        Summary,
        run_session,
        settings_from_options,
        sweep_from_options,
    )
    from llmcli.bench.workload import load_prompts, read_constraints
    from llmcli.commands.options import backend
    from llmcli.ui.terminal import Terminal

    terminal = Terminal.detect()
    settings = settings_from_options(
        concurrency=concurrency, requests=requests, duration=duration, warmup=warmup,
        input_tokens=input_tokens, max_tokens=max_tokens, model=model, prompts=prompts,
        cache=cache, rate=rate, arrival=arrival, slo=slo or DEFAULT_SLO, workers=workers,
    )  # fmt: skip
    bounds = sweep_from_options(
        settings, sweep=sweep, slo=slo, sweep_max=sweep_max, steps=sweep_steps,
        target=sweep_target, interleave=interleave,
    )  # fmt: skip
    settings = read_constraints(settings, grammar, json_schema)
    if cluster is not None:
        from llmcli.bench.cluster import parse_cluster

        cluster = parse_cluster(cluster)
    summary = Summary(
        BenchOutput(terminal), out, as_json=as_json, as_csv=as_csv, plot=plot, html=html
    )
    summary.check_out()
    conversations = load_prompts(prompts) if prompts else None
    names: list[str | None] = list(profiles) if profiles else [None]
    with contextlib.ExitStack() as servers:
        # Spawned profiles start their servers once, for the whole run.
        chosen = [servers.enter_context(backend(name, terminal=terminal)) for name in names]
        run_session(
            settings, chosen, summary, prompts=conversations, interleave=interleave,
            sweep=bounds, cluster=cluster,
        )  # fmt: skip


@app.command(cls=Command)
@command_boundary
def compare(
    files: Annotated[
        list[Path],
        typer.Argument(metavar="FILE...", help="Results files written by llmcli bench."),
    ],
    html: HtmlOption = None,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Read runs back and put them side by side (the first is the base of the ratios),
    with verdicts: a profile against the profile of the same name in each later file
    (two files of one profile each are paired whatever the names).

    \b
    Examples:
      llmcli bench compare before.json after.json
      llmcli bench compare before.json after.json --csv > runs.csv
      llmcli bench compare run.json --html run.html
    """
    from llmcli.bench.output import BenchOutput
    from llmcli.bench.report import (
        build_table,
        build_verdict_table,
        drafted,
        file_columns,
        file_pairs,
        formulas_text,
        load_results,
        pair_columns,
    )
    from llmcli.bench.report import summary_csv as to_csv
    from llmcli.ui.sanitize import dumps_json
    from llmcli.ui.terminal import Terminal

    output = BenchOutput(Terminal.detect())
    loaded = [(path, load_results(path)) for path in files]
    columns = [column for path, data in loaded for column in file_columns(path, data)]
    verdicts = pair_columns(file_pairs(loaded))
    if as_json:
        # Labels are "<file>:<profile>", so the "verdicts" key cannot meet one of them.
        data = {label: dict(levels) for label, levels in columns}
        output.line(dumps_json({**data, "verdicts": verdicts}))
    elif as_csv:
        output.write(to_csv(columns))
    else:
        table = build_table(columns, title="llmcli bench compare")
        output.show(table, formulas_text(draft=drafted(columns)))
        if verdicts:
            output.show("", build_verdict_table(verdicts))
    if html is not None:
        from llmcli.bench.html import build_html, check_html_path, write_html

        check_html_path(html)
        write_html(build_html([(path.stem, data) for path, data in loaded], verdicts), html)
        output.note(f"report written to {html}")


@app.command(cls=Command)
@command_boundary
def check(
    results: Annotated[
        Path, typer.Argument(metavar="RESULTS", help="A results file written by llmcli bench.")
    ],
    log: Annotated[
        Path, typer.Argument(metavar="LOG", help="The log of llmcli mock-server --log FILE.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Check a run against the mock server's log: its TTFT, ITL and e2e errors.

    \b
    Examples:
      llmcli mock-server --dialect llamacpp --port 8080 --log mock.jsonl
      llmcli bench -p local --out run.json
      llmcli bench check run.json mock.jsonl
    """
    from llmcli.bench.check import check_run, load_mock_log
    from llmcli.bench.output import BenchOutput
    from llmcli.bench.report import check_table, load_results
    from llmcli.errors import UsageError
    from llmcli.ui.sanitize import dumps_json
    from llmcli.ui.terminal import Terminal

    output = BenchOutput(Terminal.detect())
    checks = check_run(load_results(results), load_mock_log(log))
    if not any(level.matched for level in checks):
        raise UsageError(f"no request of {results} is in {log}: was the run made against it?")
    served = {level.profile for level in checks if level.matched}
    for profile in sorted({level.profile for level in checks} - served):
        output.note(f"{profile}: no request of it is in {log} (another server's profile); left out")
    checks = [level for level in checks if level.profile in served]
    if as_json:
        output.line(dumps_json([level.as_dict() for level in checks]))
        return
    output.show(check_table(checks))
