"""Bench reports from summary dictionaries: the side-by-side table, the chart, CSV, files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from llmcli.bench.metrics import RequestRecord, Slo, TokenChunk, summarise
from llmcli.bench.report import (
    build_chart,
    build_table,
    drafted,
    file_columns,
    formulas_text,
    load_results,
    saturation_notes,
    summary_csv,
)
from llmcli.errors import UsageError


def summary(
    ttft: float, tokens: int = 4, read_lag: float | None = None, gap: float = 0.01
) -> dict[str, Any]:
    chunks = [TokenChunk(ttft + gap * i, "content") for i in range(tokens)]
    record = RequestRecord(
        index=0, sent_at=0.0, chunks=chunks, completion_tokens=tokens, read_lag=read_lag
    )
    return summarise([record], Slo(ttft=0.5)).as_dict()


def render(renderable: Any) -> str:
    console = Console(width=200, no_color=True, highlight=False)
    with console.capture() as captured:
        console.print(renderable)
    return captured.get()


def test_table_puts_profiles_side_by_side_with_ratios_to_the_first() -> None:
    columns = [
        ("zen", {"c=1": summary(0.2)}),
        ("local", {"c=1": summary(0.1), "c=4": summary(0.4)}),
    ]
    text = render(build_table(columns))
    assert "local/zen" in text
    row = next(line for line in text.splitlines() if "TTFT p50 ms" in line and "c=1" not in line)
    assert "200" in row and "100" in row and "0.50x" in row
    assert "c=4" in text  # a level only one profile ran is still shown
    assert "ok/failed" in text


def test_formulas_and_chart() -> None:
    assert "(e2e - TTFT) / (output tokens - 1)" in render(formulas_text("ttft<=500ms"))
    chart = render(build_chart([("a", {"c=1": summary(0.2), "c=2": summary(0.4)})]))
    lines = [line for line in chart.splitlines() if "█" in line]
    assert lines and max(line.count("█") for line in lines) == 40


def test_csv_has_every_statistic() -> None:
    rows = summary_csv([("zen", {"c=1": summary(0.2)})]).splitlines()
    assert rows[0] == "profile,load,metric,count,mean,p50,p90,p95,p99,max"
    assert any(row.startswith("zen,c=1,ttft,1,0.2,") for row in rows)


def test_results_file_round_trip_and_rejects(tmp_path: Path) -> None:
    good = tmp_path / "run.json"
    good.write_text(
        json.dumps(
            {
                "format": "llmcli-bench/1",
                "profiles": [{"name": "zen", "levels": [{"load": "c=1", "summary": summary(0.2)}]}],
            }
        )
    )
    [(label, levels)] = file_columns(good, load_results(good))
    assert label == "run:zen" and set(levels) == {"c=1"}
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "other"}')
    for path in (bad, tmp_path / "missing.json"):
        with pytest.raises(UsageError):
            load_results(path)


def test_a_client_that_fell_behind_is_said_so_per_level() -> None:
    columns = [
        (
            "local",
            {
                "c=1": summary(0.1, read_lag=0.00004),
                "c=4": summary(0.1, read_lag=0.0018),  # under a quarter of its 10 ms TPOT
                "c=8": summary(0.1, read_lag=0.002, gap=0.0002),  # tokens 0.2 ms apart
                "c=256": summary(0.1, read_lag=0.021),
            },
        ),
        ("zen", {"c=1": summary(0.2)}),  # over TLS: no kernel stamps, no read lag
    ]
    notes = saturation_notes(columns)
    assert len(notes) == 1
    assert notes[0].startswith("local c=256: the client read bytes up to 21.0 ms")
    assert "--workers" in notes[0]
    row = next(line for line in render(build_table(columns)).splitlines() if "read lag" in line)
    assert "0.04" in row and "-" in row  # local's c=1 figure; zen has none


def drafted_summary(timings: dict[str, Any] | None) -> dict[str, Any]:
    chunks = [TokenChunk(0.1 + 0.01 * i, "content") for i in range(4)]
    record = RequestRecord(index=0, sent_at=0.0, chunks=chunks, completion_tokens=4)
    record.timings = timings
    return summarise([record], Slo()).as_dict()


@pytest.mark.parametrize(
    ("timings", "ran"),
    [
        (None, False),  # no llama.cpp timings (zen, the mock)
        ({"predicted_n": 4}, False),  # llama.cpp without a draft model
        ({"draft_n": 0, "draft_n_accepted": 0}, False),  # nothing drafted: no row either
        ({"draft_n": 8, "draft_n_accepted": 6}, True),
    ],
)
def test_the_legend_lists_draft_acceptance_only_when_a_draft_ran(
    timings: dict[str, Any] | None, ran: bool
) -> None:
    columns = [("plain", {"c=1": summary(0.2)}), ("local", {"c=1": drafted_summary(timings)})]
    assert drafted(columns) is ran
    legend = render(formulas_text("ttft<=500ms", draft=drafted(columns)))
    assert ("speculative decoding" in legend) is ran
    assert ("draft acceptance mean" in render(build_table(columns))) is ran  # legend = rows
    assert "(e2e - TTFT) / (output tokens - 1)" in legend


def test_the_side_by_side_tables_ratios_are_readable() -> None:
    def level(ttft: float) -> dict[str, object]:
        return {"ok": 1, "failed": 0, "metrics": {"ttft": {"p50": ttft}}}

    columns = [
        ("a", {"c=1": level(1.0)}),
        ("b", {"c=1": level(3000.0)}),
        ("c", {"c=1": level(0.00001)}),
    ]
    console = Console(width=200, record=True, color_system=None)
    console.print(build_table(columns))
    shown = console.export_text()
    assert "3,000x" in shown and "<0.01x" in shown and "0.00x" not in shown


def test_rows_about_the_workload_or_the_client_have_no_ratio() -> None:
    from llmcli.bench.report import UNCOMPARED_ROWS, table_rows

    def level(ttft: float, prompt: float, cached: float, lag: float) -> dict[str, object]:
        metrics = {
            "ttft": {"p50": ttft},
            "prompt_tokens": {"mean": prompt},
            "cached_tokens": {"mean": cached},
            "read_lag": {"p99": lag},
        }
        return {"ok": 1, "failed": 0, "metrics": metrics}

    columns = [
        ("demo", {"c=1": level(0.2, 95.0, 21.8, 0.005)}),
        ("mock", {"c=1": level(0.1, 64.0, 0.0, 0.0003)}),
    ]
    ((_, rows),) = table_rows(columns)
    ratios = {label: ratio for label, _cells, (ratio,) in rows}
    assert ratios["TTFT p50 ms"] == "0.50x"
    shown = {"prompt tokens mean (usage)", "cached prompt tokens mean", "client read lag p99 ms"}
    assert shown <= UNCOMPARED_ROWS and shown <= set(ratios)
    assert {ratios[label] for label in shown} == {""}
