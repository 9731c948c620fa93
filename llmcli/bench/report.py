"""Finished runs as tables, JSON and CSV; results files read back for ``bench compare``.

Renderables never write: :func:`build_table` returns a rich ``Table`` and the command
prints it. Everything works on summary dictionaries (``Summary.as_dict()``), the same
form the results file stores, so a table from a run just made and one from two files
read back are built by the same code.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from rich.table import Table
from rich.text import Text

from llmcli.bench.check import LevelCheck
from llmcli.bench.metrics import FORMULAS, RequestRecord, Slo, TokenChunk, summarise
from llmcli.bench.records import BenchRun, LevelResult, level_key
from llmcli.bench.sharecheck import CLUSTER, PROCESSES
from llmcli.bench.verdict import format_ratio, headline_samples, pair_verdicts
from llmcli.bench.workload import not_utf8
from llmcli.errors import UsageError

RESULTS_FORMAT = "llmcli-bench/1"

SummaryDict = Mapping[str, Any]
# A column of the side-by-side table: its label and its summaries by load level.
Column = tuple[str, Mapping[str, SummaryDict]]

# (row label, metric, statistic, scale, lower is better) for the table's rows.
_ROWS: tuple[tuple[str, str, str, float, bool], ...] = (
    ("TTFT p50 ms", "ttft", "p50", 1000.0, True),
    ("TTFT p99 ms", "ttft", "p99", 1000.0, True),
    ("TTFA p50 ms", "ttfa", "p50", 1000.0, True),
    ("ITL p50 ms", "itl", "p50", 1000.0, True),
    ("ITL p99 ms", "itl", "p99", 1000.0, True),
    ("TPOT mean ms", "tpot", "mean", 1000.0, True),
    ("e2e p50 ms", "e2e", "p50", 1000.0, True),
    ("e2e p99 ms", "e2e", "p99", 1000.0, True),
    ("gen tok/s p50 (client)", "generation_tps", "p50", 1.0, False),
    ("gen tok/s p50 (server)", "server_generation_tps", "p50", 1.0, False),
    ("prompt tok/s p50 (server)", "server_prompt_tps", "p50", 1.0, False),
    ("prompt tokens mean (usage)", "prompt_tokens", "mean", 1.0, False),
    ("cached prompt tokens mean", "cached_tokens", "mean", 1.0, False),
    ("draft acceptance mean", "draft_acceptance", "mean", 1.0, False),
    ("client read lag p99 ms", "read_lag", "p99", 1000.0, True),
)

# A client whose reads waited a quarter of a token's time (TPOT p50) after the bytes
# arrived, and at least this long, is near merging frames. TPOT, not ITL: merged frames
# make ITL gaps zero, while TPOT spans the whole stream. Under this TPOT the server sends
# tokens faster than any client can tell apart, and merged frames say nothing of the client.
SATURATION_LAG = 0.001


def run_summaries(run: BenchRun) -> list[Column]:
    """One column per profile: its summaries by load level."""
    slo = run.settings.slo
    return [
        (
            profile.name,
            {
                level_key(level): _level_summary(level, slo, profile.input_tokens)
                for level in profile.levels
            },
        )
        for profile in run.profiles
    ]


def _level_summary(
    level: LevelResult, slo: Slo, input_tokens: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    summary = summarise(level.records, slo).as_dict()
    if input_tokens is not None:
        summary["input_tokens_target"] = input_tokens.get("target")
        summary["input_tokens_measured"] = input_tokens.get("measured_mean")
    if level.rate is not None:
        summary["target_rate"] = level.rate
        summary["actual_send_rate"] = actual_send_rate(level.send_offsets)
    return summary


def build_table(columns: Sequence[Column], title: str = "llmcli bench") -> Table:
    """Profiles (or runs) side by side, each against the first as a ratio."""
    table = Table(title=title, title_justify="left")
    table.add_column("load")
    table.add_column("metric")
    for label, _ in columns:
        table.add_column(label, justify="right")
    base_label = columns[0][0] if columns else ""
    for label, _ in columns[1:]:
        table.add_column(f"{label}/{base_label}", justify="right")
    for level, rows in table_rows(columns):
        for index, (label, cells, ratios) in enumerate(rows):
            table.add_row(level if index == 0 else "", label, *cells, *ratios)
        table.add_section()
    return table


TableRow = tuple[str, list[str], list[str]]  # metric, a cell per column, ratios to the first

# Rows that describe the workload or the client's own self-check, not how fast a backend
# is: a ratio there reads as a verdict and says nothing ("prompt tokens target 1.00x", or
# "<0.01x" for cached tokens that are simply none), so these rows have no ratio.
UNCOMPARED_ROWS = frozenset(
    {
        "prompt tokens mean (usage)",
        "cached prompt tokens mean",
        "draft acceptance mean",
        "client read lag p99 ms",
        "prompt tokens target",
        "prompt tokens mean (tokenize)",
    }
)


def table_rows(columns: Sequence[Column]) -> list[tuple[str, list[TableRow]]]:
    """The side-by-side table's rows, by load level: each metric's formatted cells and
    their ratios to the first column (the terminal table and the HTML report show these)."""
    levels: list[str] = []
    for _, by_level in columns:
        levels.extend(key for key in by_level if key not in levels)
    found = []
    for level in levels:
        rows = []
        for label, values in _level_rows([by_level.get(level) for _, by_level in columns]):
            compared = label not in UNCOMPARED_ROWS
            ratios = [_ratio(value, values[0]) if compared else "" for value in values[1:]]
            rows.append((label, [_format(value) for value in values], ratios))
        found.append((level, rows))
    return found


def _level_rows(summaries: Sequence[SummaryDict | None]) -> list[tuple[str, list[Any]]]:
    rows: list[tuple[str, list[Any]]] = [
        ("requests ok/failed", [_ok_failed(s) for s in summaries]),
        ("errors", [_errors(s) for s in summaries]),
    ]
    for label, metric, stat, scale, _lower in _ROWS:
        values = [_stat(s, metric, stat, scale) for s in summaries]
        if any(value is not None for value in values):
            rows.append((label, values))
    measured = [_get(s, "input_tokens_measured") for s in summaries]
    if any(value is not None for value in measured):
        rows.append(("prompt tokens target", [_get(s, "input_tokens_target") for s in summaries]))
        rows.append(("prompt tokens mean (tokenize)", measured))
    rows += [
        ("output tok/s (aggregate)", [_get(s, "output_tokens_per_second") for s in summaries]),
        ("requests/s", [_get(s, "requests_per_second") for s in summaries]),
        (
            "goodput req/s",
            [_get(s, "goodput_requests_per_second") for s in summaries],
        ),
        ("tokens counted from", [_sources(s) for s in summaries]),
    ]
    if any(s is not None and s.get("target_rate") for s in summaries):
        rows.append(("send rate target/actual", [_send_rate(s) for s in summaries]))
    return rows


def _send_rate(summary: SummaryDict | None) -> str | None:
    if summary is None or not summary.get("target_rate"):
        return None
    actual = summary.get("actual_send_rate")
    return f"{summary['target_rate']:g}/{actual:.2f}" if actual else f"{summary['target_rate']:g}/-"


# (title, metric, statistic, scale) for the chart against load.
_CHART: tuple[tuple[str, str | None, str, float], ...] = (
    ("TTFT p50 ms", "ttft", "p50", 1000.0),
    ("TTFT p99 ms", "ttft", "p99", 1000.0),
    ("ITL p50 ms", "itl", "p50", 1000.0),
    ("ITL p99 ms", "itl", "p99", 1000.0),
    ("output tok/s (aggregate)", None, "output_tokens_per_second", 1.0),
)
_BAR_WIDTH = 40


def incomplete_notes(run: BenchRun) -> list[str]:
    """One note a level cut short (a lost worker): its figures are what arrived."""
    from llmcli.ui.sanitize import neutralize

    return [
        neutralize(f"{profile.name} {level_key(level)}: incomplete, {level.incomplete}")
        for profile in run.profiles
        for level in profile.levels
        if level.incomplete
    ]


def saturation_notes(columns: Sequence[Column]) -> list[str]:
    """One line per level where the client fell behind its streams.

    That is where the read lag's p99 exceeds both ``SATURATION_LAG`` and a quarter of the
    level's TPOT p50 (itself at least ``SATURATION_LAG``): reads waited long enough that two
    frames of a stream could meet.
    """
    notes = []
    floor = SATURATION_LAG * 1000.0
    for label, by_level in columns:
        for level, summary in by_level.items():
            lag = _stat(summary, "read_lag", "p99", 1000.0)
            tpot = _stat(summary, "tpot", "p50", 1000.0)
            if lag is None or tpot is None or tpot < floor:
                continue
            if lag > max(floor, tpot / 4):
                notes.append(
                    f"{label} {level}: the client read bytes up to {lag:.1f} ms after they"
                    " arrived (read lag p99); chunks of a stream closer together than that may"
                    " have been read as one, so ITL there is less exact. The client is short of"
                    " CPU: spread it over more processes (--workers N, or more --cluster workers),"
                    " and keep a local server off the client's cores"
                )
    return notes


# A profile (or a file's profile) with its headline samples by load level (see verdict.py).
SampleColumn = tuple[str, Mapping[str, Mapping[str, list[float]]]]


def run_samples(run: BenchRun) -> list[SampleColumn]:
    """One entry per profile: each load level's headline samples, one value a request."""
    return [
        (
            profile.name,
            {level_key(level): headline_samples(level.records) for level in profile.levels},
        )
        for profile in run.profiles
    ]


def build_verdicts(columns: Sequence[SampleColumn]) -> list[dict[str, Any]]:
    """Every pair of a run's profiles, A the later and B the earlier: A/B reads as the
    table's ratio columns do (each profile over the first), so the two never disagree."""
    return pair_columns([(b, a) for index, a in enumerate(columns) for b in columns[index + 1 :]])


def pair_columns(pairs: Sequence[tuple[SampleColumn, SampleColumn]]) -> list[dict[str, Any]]:
    """At every load level both of a pair ran: each headline metric's ratio A/B, its 95%
    interval and sentence, as plain data (the same form in JSON, files and the table)."""
    found: list[dict[str, Any]] = []
    for (a_name, a_levels), (b_name, b_levels) in pairs:
        for level, a in a_levels.items():
            b = b_levels.get(level)
            if b is None:
                continue
            for verdict in pair_verdicts(a_name, b_name, a, b):
                found.append({"load": level, **verdict.as_dict()})
    return found


def file_pairs(
    files: Sequence[tuple[Path, Mapping[str, Any]]],
) -> list[tuple[SampleColumn, SampleColumn]]:
    """``bench compare``'s pairs: the profile of a later file (A) against the profile of
    the same name in each earlier file (B), after/before as the table's ratios read; two
    files of one profile each are paired whatever the names (one backend before and
    after, or two backends run apart)."""
    sampled = [(path, file_samples(path, data)) for path, data in files]
    pairs: list[tuple[SampleColumn, SampleColumn]] = []
    for index, (_, earlier) in enumerate(sampled):
        for _, later in sampled[index + 1 :]:
            alone = len(earlier) == 1 and len(later) == 1
            for a in earlier:
                for b in later:
                    if alone or a[0].split(":", 1)[1] == b[0].split(":", 1)[1]:
                        pairs.append((b, a))
    return pairs


def file_samples(path: Path, data: Mapping[str, Any]) -> list[SampleColumn]:
    """Each profile's headline samples by load level, from a results file's requests;
    labelled ``<file stem>:<profile>`` as :func:`file_columns` labels them."""
    return [
        (
            f"{path.stem}:{profile['name']}",
            {
                level["load"]: headline_samples(
                    record_from_json(r) for r in level.get("requests", [])
                )
                for level in profile.get("levels", [])
            },
        )
        for profile in data.get("profiles", [])
    ]


def record_from_json(data: Mapping[str, Any]) -> RequestRecord:
    """The parts of a stored request the headline metrics need (times from the run's start)."""
    return RequestRecord(
        index=int(data.get("index", 0)),
        sent_at=float(data["sent"]),
        warmup=bool(data.get("warmup")),
        first_chunk_at=data.get("first_chunk"),
        chunks=[TokenChunk(float(at), kind) for at, kind in data.get("chunks", [])],
        finish_at=data.get("finish"),
        completion_tokens=data.get("completion_tokens"),
        error_kind=data.get("error_kind"),
    )


def build_verdict_table(verdicts: Sequence[Mapping[str, Any]]) -> Table:
    """The verdicts: ratio A/B of the medians, its 95% interval, the better side, in words."""
    table = Table(title="verdicts (median ratio, 95% bootstrap CI)", title_justify="left")
    for column in ("load", "metric", "A/B", "ratio", "95% CI", "better", "in words"):
        table.add_column(column, justify="right" if column in ("ratio", "95% CI") else "left")
    for verdict in verdicts:
        ratio, interval = verdict.get("ratio"), verdict.get("ci95")
        table.add_row(
            str(verdict["load"]),
            str(verdict["label"]),
            Text(f"{verdict['a']}/{verdict['b']}"),  # Text: a name's brackets are not markup
            "-" if ratio is None else format_ratio(ratio),
            "-" if not interval else f"{format_ratio(interval[0])}–{format_ratio(interval[1])}",
            Text(f"✓ {verdict['better']}", style="bold green") if verdict.get("better") else "-",
            Text(str(verdict["sentence"])),
        )
    return table


def build_chart(columns: Sequence[Column]) -> Text:
    """Latency percentiles and throughput against load, as bars, one block per figure."""
    text = Text()
    levels: list[str] = []
    for _, by_level in columns:
        levels.extend(key for key in by_level if key not in levels)
    label_width = max((len(label) for label, _ in columns), default=0)
    level_width = max((len(level) for level in levels), default=0)
    for title, metric, stat, scale in _CHART:
        values = [
            [
                _stat(by_level.get(level), metric, stat, scale)
                if metric
                else _get(by_level.get(level), stat)
                for _, by_level in columns
            ]
            for level in levels
        ]
        top = max((v for row in values for v in row if v is not None), default=None)
        if not top:
            continue
        text.append(f"{title}\n", style="bold")
        for level, row in zip(levels, values, strict=True):
            for index, ((label, _), value) in enumerate(zip(columns, row, strict=True)):
                bar = "" if value is None else "█" * max(1, round(value / top * _BAR_WIDTH))
                text.append(
                    f"  {level if index == 0 else '':<{level_width}}  {label:<{label_width}} "
                )
                text.append(bar, style=f"color({index % 6 + 2})")
                text.append(f" {_format(value)}\n")
        text.append("\n")
    return text


def formulas_text(slo: str | None = None, *, draft: bool = False) -> Text:
    """The definitions printed under every table; the draft row only where a draft ran
    (see :func:`drafted`), as the table shows its row only then."""
    lines = [f"{name:>9}  {formula}" for name, formula in FORMULAS if draft or name != "draft"]
    if slo:
        lines.append(f"{'SLO':>9}  goodput counts successful requests with {slo}")
    lines.append(
        f"{'flags':>9}  counted from 'chunks': the server sent no usage;"
        " 'multi N': N requests had several tokens a chunk"
    )
    return Text("\n".join(lines), style="dim")


def drafted(columns: Sequence[Column]) -> bool:
    """Whether a draft ran: some request's llama.cpp timings drafted tokens (``draft_n``)."""
    return any(
        (_stat(summary, "draft_acceptance", "count", 1.0) or 0) > 0
        for _, by_level in columns
        for summary in by_level.values()
    )


def check_table(checks: Sequence[LevelCheck]) -> Table:
    """``bench check``: each level's client figures against the mock server's log, in ms."""
    table = Table(title="llmcli bench check: |client - mock log|, ms")
    for column in ("profile", "load", "matched", "unmatched"):
        table.add_column(column)
    for figure in ("TTFT", "ITL", "e2e"):
        for stat in ("p50", "p99", "max"):
            table.add_column(f"{figure} {stat}", justify="right")
    for level in checks:
        cells = [level.profile, level.load, str(level.matched), str(level.unmatched)]
        for stats in (level.ttft, level.itl, level.e2e):
            cells += [_ms(stats.p50), _ms(stats.p99), _ms(stats.max)]
        table.add_row(*cells)
    return table


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.3f}"


def _ok_failed(summary: SummaryDict | None) -> str | None:
    if summary is None:
        return None
    text = f"{summary['ok']}/{summary['failed']}"
    if summary.get("cancelled"):
        text += f" (+{summary['cancelled']} cut off)"
    return text


def _errors(summary: SummaryDict | None) -> str | None:
    if summary is None:
        return None
    errors = summary.get("errors") or {}
    return ", ".join(f"{kind} {count}" for kind, count in errors.items()) or "-"


def _sources(summary: SummaryDict | None) -> str | None:
    if summary is None:
        return None
    sources = summary.get("token_sources") or {}
    text = ", ".join(f"{source} {count}" for source, count in sources.items()) or "-"
    multi = summary.get("multi_token_chunk_requests")
    return text + (f"; multi {multi}" if multi else "")


def _stat(summary: SummaryDict | None, metric: str, stat: str, scale: float) -> float | None:
    if summary is None:
        return None
    value = summary.get("metrics", {}).get(metric, {}).get(stat)
    return value * scale if isinstance(value, int | float) else None


def _get(summary: SummaryDict | None, key: str) -> float | None:
    if summary is None:
        return None
    value = summary.get(key)
    return value if isinstance(value, int | float) else None


def _format(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return str(value)


def _ratio(value: Any, base: Any) -> str:
    # format_ratio: "<0.01x" and "3,000x", never "0.00x" or "3000.00x".
    if isinstance(value, int | float) and isinstance(base, int | float) and base and value >= 0:
        return format_ratio(value / base)
    return ""


# -- results files ----------------------------------------------------------------------------


def run_to_json(run: BenchRun) -> dict[str, Any]:
    """The whole run: settings, environment, summaries and every request's record.

    Request times are seconds from the run's start (``clock_origin``). Profiles appear by
    name and base URL only; keys and headers are never part of a result.
    """
    origin = run.clock_origin
    slo = run.settings.slo
    return {
        "format": RESULTS_FORMAT,
        "started": run.started,
        "interrupted": run.interrupted,
        **({"error": run.error} if run.error else {}),  # a run ended early by a lost worker
        "settings": run.settings.as_dict(),
        "environment": run.environment,
        "formulas": dict(FORMULAS),
        "verdicts": build_verdicts(run_samples(run)),
        **_sweep_entry(run),
        "profiles": [
            {
                "name": profile.name,
                "base_url": profile.base_url,
                "dialect": profile.dialect,
                "model": profile.model,
                "server": profile.server,
                "input_tokens": profile.input_tokens,
                "levels": [
                    {
                        "load": level_key(level),
                        **({"incomplete": level.incomplete} if level.incomplete else {}),
                        "concurrency": level.concurrency,
                        "rate": level.rate,
                        "send_offsets": [round(t, 6) for t in level.send_offsets],
                        "actual_send_rate": actual_send_rate(level.send_offsets),
                        "summary": _level_summary(level, slo, profile.input_tokens),
                        "requests": [_record_json(r, origin) for r in level.records],
                    }
                    for level in profile.levels
                ],
            }
            for profile in run.profiles
        ],
    }


def actual_send_rate(offsets: Sequence[float]) -> float | None:
    """Open loop: requests sent per second as they really went out (target: ``rate``)."""
    if len(offsets) < 2 or offsets[-1] <= offsets[0]:
        return None
    return (len(offsets) - 1) / (offsets[-1] - offsets[0])


def _sweep_entry(run: BenchRun) -> dict[str, Any]:
    """``{"sweep": ...}`` for a ``--sweep`` run, else nothing (older files have no key)."""
    from llmcli.bench.sweep import sweep_json

    data = sweep_json(run)
    return {} if data is None else {"sweep": data}


def sweep_table(data: Mapping[str, Any]) -> Table:
    """The knee search's steps, in the order tried, and each profile's knee."""
    unit = "concurrency" if data["load"] == "concurrency" else "requests/s"
    table = Table(
        title=f"knee search: a level passes when >= {data['target']:.0%} of its requests"
        " meet the SLO",
        title_justify="left",
    )
    for name in ("profile", "step", unit, "requests", "within SLO", "share", "result"):
        table.add_column(name, justify="left" if name in ("profile", "result") else "right")
    for profile in data["profiles"]:
        for number, step in enumerate(profile["steps"], 1):
            table.add_row(
                Text(profile["name"]),
                str(number),
                f"{step['level']:g}",
                str(step["requests"]),
                str(step["within_slo"]),
                f"{step['share']:.1%}",  # 89.5% must not read as a 90% that failed
                "pass" if step["passed"] else "FAIL",
            )
        table.add_row(
            Text(profile["name"]), "", "", "", "", "", Text(f"knee: {profile['knee']['summary']}")
        )
    return table


def summary_json(run: BenchRun) -> dict[str, Any]:
    """``--json`` on stdout: per profile and load level, each metric's statistics."""
    return {
        "format": RESULTS_FORMAT,
        "interrupted": run.interrupted,
        **({"error": run.error} if run.error else {}),
        "settings": run.settings.as_dict(),
        "profiles": [{"name": name, "levels": dict(levels)} for name, levels in run_summaries(run)],
        "verdicts": build_verdicts(run_samples(run)),
        **_sweep_entry(run),
        # --workers, --cluster: each level's shares checked by worker (a cluster's clocks too)
        **{key: run.environment[key] for key in (CLUSTER, PROCESSES) if key in run.environment},
    }


def _record_json(record: RequestRecord, origin: float) -> dict[str, Any]:
    def rel(value: float | None) -> float | None:
        return None if value is None else round(value - origin, 6)

    return {
        "index": record.index,
        "warmup": record.warmup,
        "nonce": record.nonce,  # the prompt's random prefix: finds it in a server's log
        "sent": rel(record.sent_at),
        "issued": rel(record.issued_at),
        "first_chunk": rel(record.first_chunk_at),
        "chunks": [[rel(chunk.at), chunk.kind] for chunk in record.chunks],
        "finish": rel(record.finish_at),
        "finish_reason": record.finish_reason,
        "closed": rel(record.closed_at),
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "cached_tokens": record.cached_tokens,
        "reasoning_tokens": record.reasoning_tokens,
        "timings": dict(record.timings) if record.timings else None,
        "error_kind": record.error_kind,
        "error": record.error,
        "stale_retry": record.stale_retry,
        "read_lag": record.read_lag,
    }


def write_results(run: BenchRun, path: Path) -> None:
    """The results file: strict JSON, written whole even when a signal comes meanwhile.

    NaN and Infinity are refused (``allow_nan=False``): no JSON reader but Python's takes
    them. Every number a run is given is checked on its way in (``Settings``), and a
    server's NaN is kept as ``null`` where it is read, so a refusal here is a bug.
    """
    from llmcli.ui.sanitize import dumps_json

    with held_signals():  # a big run takes a while to serialise: held from the start
        data = run_to_json(run)
        json.dumps(data, allow_nan=False)  # raises ValueError on NaN or Infinity
        text = dumps_json(data) + "\n"
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as error:
            raise UsageError(
                f"cannot write the results to {path}: {error.strerror or error}"
            ) from None


# Signals held back while the results file is written: it is written whole, then they act.
_HELD = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


@contextlib.contextmanager
def held_signals() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP wait until the block is over, then act as they would.

    The Python handlers are swapped, not the signals blocked: a process-directed signal
    that the main thread blocks is delivered to another thread, and Python still runs
    its handler in the main thread at once.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[signal.Signals] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        pending.append(signal.Signals(signum))

    previous = {number: signal.signal(number, hold) for number in _HELD}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if pending:  # the first acts, once: the run ends once
            _act(pending[0], previous[pending[0]])


def _act(signum: int, handler: Any) -> None:
    """What a signal held back would have done: its handler, or its default action."""
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        signal.raise_signal(signum)


def load_results(path: Path) -> dict[str, Any]:
    """A results file written by ``llmcli bench``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None
    except json.JSONDecodeError as error:
        raise UsageError(f"{path} is not JSON ({error.msg}, line {error.lineno})") from None
    except UnicodeDecodeError as error:
        raise UsageError(f"{path} is not an llmcli bench results file: {not_utf8(error)}") from None
    if not isinstance(data, dict) or data.get("format") != RESULTS_FORMAT:
        raise UsageError(f"{path} is not an llmcli bench results file ({RESULTS_FORMAT})")
    return data


def file_columns(path: Path, data: Mapping[str, Any]) -> list[Column]:
    """Columns for ``bench compare``: one per profile in the file, labelled with both."""
    columns: list[Column] = []
    for profile in data.get("profiles", []):
        levels = {level["load"]: level["summary"] for level in profile.get("levels", [])}
        columns.append((f"{path.stem}:{profile['name']}", levels))
    return columns


def summary_csv(columns: Sequence[Column]) -> str:
    """One line per (column, load level, metric): mean, p50, p90, p95, p99, max."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["profile", "load", "metric", "count", "mean", "p50", "p90", "p95", "p99", "max"]
    )
    for label, by_level in columns:
        for load, summary in by_level.items():
            for metric, stats in summary.get("metrics", {}).items():
                writer.writerow(
                    [label, load, metric]
                    + [stats.get(k) for k in ("count", "mean", "p50", "p90", "p95", "p99", "max")]
                )
            for key in (
                "requests_per_second",
                "output_tokens_per_second",
                "goodput_requests_per_second",
            ):
                writer.writerow([label, load, key, 1, summary.get(key), "", "", "", "", ""])
    return out.getvalue()
