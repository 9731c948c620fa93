"""One ``llmcli bench`` as the command makes it: the settings from the option text, the
run under signals with its progress display, then the results file and the summary.

The command parses its options, opens the backends and maps errors to exit codes; this
module does the rest. A run ended by Ctrl-C, SIGTERM or SIGHUP is summed up too: what
arrived is written (marked interrupted) before the ending goes on to the command's
boundary, which exits with the conventional code. A level cut short by a lost worker
(:class:`~llmcli.bench.workers.LevelLost`) is written the same way, marked incomplete,
before its one error line. A run in which a profile had no
successful request is summed up in full, then ends as an error (exit 1) naming it.

Without ``--out`` the results file goes to the data directory's ``bench/`` folder
(:func:`results_dir`), never the working directory, and its path is printed on stderr.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llmcli.bench.metrics import parse_duration, parse_slo
from llmcli.bench.output import BenchOutput
from llmcli.bench.records import BenchRun
from llmcli.bench.workload import Message, Settings, parse_levels, request_constraints
from llmcli.config.paths import data_dir
from llmcli.errors import LlmcliError, UsageError

if TYPE_CHECKING:
    from llmcli.bench.sweep import SweepBounds
    from llmcli.config.profiles import Profile

DEFAULT_REQUESTS = 10  # measured requests per level when neither --requests nor --duration


def results_dir(env: Mapping[str, str]) -> Path:
    """Where a results file goes without ``--out``: the data directory's ``bench/``."""
    return data_dir(env) / "bench"


def default_results_path(directory: Path, now: float | None = None) -> Path:
    """``bench-<time>.json`` in ``directory``, numbered on when a run of that second has one."""
    stem = time.strftime("bench-%Y%m%d-%H%M%S", time.localtime(now))
    path = directory / f"{stem}.json"
    number = 1
    while path.exists():
        number += 1
        path = directory / f"{stem}-{number}.json"
    return path


def profiles_without_success(run: BenchRun) -> list[str]:
    """The profiles none of whose measured requests succeeded (see ``metrics.measure``)."""
    return [
        profile.name
        for profile in run.profiles
        if not any(
            record.error_kind is None and record.chunks
            for level in profile.levels
            for record in level.records
            if not record.warmup
        )
    ]


def settings_from_options(
    *,
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
    """The run's settings from the options' text; a bad value is one ``UsageError``."""
    if arrival not in ("poisson", "constant"):
        raise UsageError(f"--arrival {arrival!r}: use poisson or constant")
    try:
        seconds = parse_duration(duration) if duration else None
        objectives = parse_slo(slo)
    except ValueError as error:
        raise UsageError(str(error)) from None
    return Settings(
        concurrency=parse_levels(concurrency),
        requests=requests if requests is not None or seconds is not None else DEFAULT_REQUESTS,
        duration=seconds,
        warmup=warmup,
        input_tokens=input_tokens,
        max_tokens=max_tokens,
        model=model,
        prompts_file=str(prompts) if prompts else None,
        cache=cache,
        rate=rate,
        arrival=arrival,  # type: ignore[arg-type]  # checked above
        slo=objectives,
        workers=workers,
    )


DEFAULT_SLO = "ttft=500ms,tpot=50ms"


def sweep_from_options(
    settings: Settings,
    *,
    sweep: bool,
    slo: str | None,
    sweep_max: float | None,
    steps: int,
    target: float,
    interleave: bool,
) -> SweepBounds | None:
    """The knee search's bounds from the options, or ``None`` without ``--sweep``.

    It starts at the one ``--concurrency`` level (closed loop) or at ``--rate`` (open
    loop), and needs an explicit ``--slo``: the knee is where that objective stops being met.
    """
    from llmcli.bench.sweep import SweepBounds

    if not sweep:
        if sweep_max is not None:
            raise UsageError("--sweep-max needs --sweep")
        return None
    if slo is None:
        raise UsageError("--sweep needs --slo: say which objective the knee is measured against")
    if len(settings.concurrency) > 1 and settings.rate is None:
        raise UsageError("--sweep searches the concurrency itself: give one --concurrency start")
    if interleave:
        raise UsageError("--sweep measures one profile at a time: leave out --interleave")
    closed = settings.rate is None
    start = float(settings.concurrency[0]) if closed else float(settings.rate or 0)
    default_max = 256.0 if closed else start * 64
    bounds = SweepBounds(
        start=start,
        limit=sweep_max if sweep_max is not None else min(default_max, 10_000.0),
        max_steps=steps,
        target=target,
        integer=closed,
    )
    try:
        bounds.check()
    except ValueError as error:
        raise UsageError(str(error)) from None
    return bounds


@dataclass(frozen=True, slots=True)
class Summary:
    """How a finished (or interrupted) run is reported: the results file, an optional
    plot and HTML report, and the summary on stdout as JSON, CSV or the table.

    The results file is ``out``, else a new ``bench-<time>.json`` in ``directory`` (by
    default :func:`results_dir` of the process's environment), made if missing.
    """

    output: BenchOutput
    out: Path | None = None
    as_json: bool = False
    as_csv: bool = False
    plot: Path | None = None
    directory: Path | None = None
    html: Path | None = None

    def check_out(self) -> None:
        """Refuse an ``--out`` (or ``--html``) that cannot be written now, not after the run."""
        if self.out is not None and (self.out.is_dir() or not self.out.parent.is_dir()):
            raise UsageError(f"--out {self.out}: give a file in a directory that exists")
        if self.html is not None:
            from llmcli.bench.html import check_html_path

            check_html_path(self.html)

    def write(self, run: BenchRun) -> None:
        """Write the results file, then the summary: JSON, CSV or the table.

        An ``--html`` report that cannot be written is raised after the summary is shown:
        the results file and the table come first, so nothing measured is lost."""
        from llmcli.bench.report import (
            build_chart,
            build_table,
            build_verdict_table,
            build_verdicts,
            drafted,
            formulas_text,
            incomplete_notes,
            run_samples,
            run_summaries,
            saturation_notes,
            summary_csv,
            summary_json,
            sweep_table,
            write_results,
        )
        from llmcli.bench.sweep import sweep_json
        from llmcli.ui.sanitize import dumps_json

        output = self.output
        path = self.out or self._default_path()
        write_results(run, path)
        ended = " (interrupted run)" if run.interrupted else " (ended early)" if run.error else ""
        output.note(f"results written to {path}{ended}")
        if self.plot is not None:
            from llmcli.bench.plot import write_plot

            write_plot(run_summaries(run), self.plot)
            output.note(f"plot written to {self.plot}")
        html_error = self._write_html(path)
        if self.as_json:
            output.line(dumps_json(summary_json(run)))
        elif self.as_csv:
            output.write(summary_csv(run_summaries(run)))
        else:
            columns = run_summaries(run)
            legend = formulas_text(run.settings.slo.describe(), draft=drafted(columns))
            output.show(build_table(columns), legend)
            sweep = sweep_json(run)
            if sweep is not None:
                output.show("", sweep_table(sweep))
            verdicts = build_verdicts(run_samples(run))
            if verdicts:
                output.show("", build_verdict_table(verdicts))
            from llmcli.bench.sharecheck import share_tables

            for table in share_tables(run.environment):  # --workers, --cluster: each share
                output.show("", table)
            if max((len(levels) for _, levels in columns), default=0) > 1:
                output.show("", build_chart(columns))
        for note in [*incomplete_notes(run), *saturation_notes(run_summaries(run))]:
            output.note(note)
        if html_error is not None and (run.interrupted or run.error):
            output.note(str(html_error))  # the ending is the run's: its exit code stays
        elif html_error is not None:
            raise html_error

    def _write_html(self, results: Path) -> LlmcliError | None:
        """The ``--html`` report, from the results file just written (read back: faster
        than making its data again, and the page shows exactly what was saved); its error
        is returned."""
        if self.html is None:
            return None
        from llmcli.bench.html import build_html, write_html
        from llmcli.bench.report import load_results

        try:
            data = load_results(results)
            write_html(build_html([(None, data)], data["verdicts"]), self.html)
        except LlmcliError as error:
            return error
        self.output.note(f"report written to {self.html}")
        return None

    def _default_path(self) -> Path:
        directory = self.directory or results_dir(os.environ)
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise UsageError(
                f"cannot make {directory} for the results: {error.strerror or error};"
                " give --out FILE"
            ) from None
        return default_results_path(directory)


def run_session(
    settings: Settings,
    profiles: Sequence[Profile],
    summary: Summary,
    *,
    prompts: Sequence[Sequence[Message]] | None = None,
    interleave: bool = False,
    sweep: SweepBounds | None = None,
    cluster: str | None = None,
) -> BenchRun:
    """Check every profile can take the run's constraints, run the bench with its progress
    display, then write the summary; on Ctrl-C, SIGTERM or SIGHUP the summary is written
    too (what arrived, marked interrupted) and the ending is raised on. When a profile had
    no successful request, an ``LlmcliError`` (exit 1) names it after the summary."""
    from llmcli.bench.run import new_run, run_bench
    from llmcli.bench.workers import LevelLost
    from llmcli.endings import SignalEnding, run_until_signalled
    from llmcli.net import eventloop

    for profile in profiles:  # a constraint a backend cannot apply: refused before any request
        if profile.dialect is not None:
            request_constraints(settings, profile.dialect)
    run = new_run(settings, sweep=sweep)
    try:
        with summary.output.tracker() as tracker:
            main = run_bench(
                run, profiles, prompts=prompts, progress=tracker, interleave=interleave,
                cluster=cluster,
            )  # fmt: skip
            eventloop.run(run_until_signalled(main))
    except (KeyboardInterrupt, SignalEnding):
        run.interrupted = True
        summary.write(run)
        raise
    except LevelLost as lost:  # a worker lost mid-run: what arrived is written, then the line
        run.error = str(lost)
        summary.write(run)
        raise
    summary.write(run)
    failed = profiles_without_success(run)
    if failed:
        names = ", ".join(failed)
        raise LlmcliError(
            f"no successful request from profile {names} (every request failed; the"
            " errors are in the summary and the results file): check its server and profile"
        )
    return run
