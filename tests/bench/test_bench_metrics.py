"""Benchmark statistics on scripted timelines: every figure checkable by hand."""

from __future__ import annotations

import math

import pytest

from llmcli.bench.metrics import (
    RequestRecord,
    Slo,
    TokenChunk,
    describe,
    measure,
    parse_duration,
    parse_slo,
    percentile,
    summarise,
)


def record(
    sent: float,
    chunks: list[tuple[float, str]],
    *,
    first: float | None = None,
    finish: float | None = None,
    usage: int | None = None,
    closed: float | None = None,
    error: str | None = None,
    index: int = 0,
    warmup: bool = False,
) -> RequestRecord:
    return RequestRecord(
        index=index,
        sent_at=sent,
        warmup=warmup,
        first_chunk_at=first,
        chunks=[TokenChunk(at, kind) for at, kind in chunks],  # type: ignore[arg-type]
        finish_at=finish,
        closed_at=closed,
        completion_tokens=usage,
        error_kind=error,
    )


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1.0], 99, 1.0),
        ([1.0, 2.0], 50, 1.5),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 90, 4.6),
        ([float(i) for i in range(1, 101)], 99, 99.01),
        ([0.0, 10.0], 0, 0.0),
        ([0.0, 10.0], 100, 10.0),
    ],
)
def test_percentile_linear_interpolation(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_rejects_empty_and_out_of_range() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_describe() -> None:
    stats = describe([3.0, 1.0, 2.0, 4.0])
    assert (stats.count, stats.mean, stats.p50, stats.max) == (4, 2.5, 2.5, 4.0)
    assert describe([]).mean is None and describe([]).count == 0


def test_role_chunk_does_not_start_ttft() -> None:
    # Role-only chunk at 0.1 (first_chunk_at), first content at 0.3.
    m = measure(record(0.0, [(0.3, "content"), (0.4, "content")], first=0.1, finish=0.4, usage=2))
    assert m.ttfb == pytest.approx(0.1)
    assert m.ttft == pytest.approx(0.3)
    assert m.ttfa == pytest.approx(0.3)


def test_reasoning_starts_ttft_but_not_ttfa() -> None:
    chunks = [(0.2, "reasoning"), (0.3, "reasoning"), (0.5, "content"), (0.6, "content")]
    m = measure(record(0.0, chunks, first=0.1, finish=0.6, usage=4))
    assert m.ttft == pytest.approx(0.2)
    assert m.ttfa == pytest.approx(0.5)
    assert m.itl == pytest.approx((0.1, 0.2, 0.1))


@pytest.mark.parametrize(
    ("chunks", "finish", "usage", "e2e", "tpot", "itl"),
    [
        # one token per chunk, finish in the last content's instant
        ([(1.0, "content"), (1.5, "content"), (2.0, "content")], 2.0, 3, 2.0, 0.5, (0.5, 0.5)),
        # finish chunk after the last token extends e2e (and TPOT), not ITL
        ([(1.0, "content"), (1.5, "content")], 2.5, 2, 2.5, 1.5, (0.5,)),
        # 2 tokens per chunk: ITL is per token; TPOT over 6 tokens
        ([(1.0, "content"), (2.0, "content"), (3.0, "content")], 3.0, 6, 3.0, 0.4, (0.5, 0.5)),
    ],
)
def test_e2e_tpot_itl(
    chunks: list[tuple[float, str]],
    finish: float,
    usage: int,
    e2e: float,
    tpot: float,
    itl: tuple[float, ...],
) -> None:
    # usage arrives at closed=9.0: it must not extend e2e
    m = measure(record(0.0, chunks, first=0.9, finish=finish, usage=usage, closed=9.0))
    assert m.ok
    assert m.e2e == pytest.approx(e2e)
    assert m.tpot == pytest.approx(tpot)
    assert m.itl == pytest.approx(itl)
    assert m.token_source == "usage"


@pytest.mark.parametrize(
    "chunks",
    [
        [(0.5, "content")],
        [(0.5, "content"), (0.7, "reasoning"), (1.9, "content")],
        [(0.1, "content"), (0.1, "content"), (0.4, "tool"), (2.0, "content")],
    ],
)
@pytest.mark.parametrize("finish", [None, 2.0, 3.5])
def test_invariant_e2e_minus_ttft_is_sum_of_gaps(
    chunks: list[tuple[float, str]], finish: float | None
) -> None:
    m = measure(record(0.25, chunks, finish=finish, usage=len(chunks), closed=5.0))
    assert m.e2e is not None and m.ttft is not None
    assert m.e2e - m.ttft == pytest.approx(math.fsum(m.gaps))


def test_usage_chunk_does_not_extend_e2e() -> None:
    base = record(0.0, [(1.0, "content"), (2.0, "content")], finish=2.0, usage=2, closed=2.0)
    late = record(0.0, [(1.0, "content"), (2.0, "content")], finish=2.0, usage=2, closed=30.0)
    assert measure(base).e2e == measure(late).e2e == 2.0


def test_usage_only_stream_is_a_failure() -> None:
    m = measure(record(0.0, [], first=0.1, finish=0.2, usage=0, closed=0.3))
    assert not m.ok and m.error_kind == "empty"
    assert m.ttft is None and m.e2e is None


def test_error_event_in_a_200_stream_is_a_failure() -> None:
    m = measure(record(0.0, [(0.1, "content"), (0.2, "content")], error="stream"))
    assert not m.ok and m.error_kind == "stream"
    assert m.tpot is None and m.output_tps is None


def test_multi_token_chunks_count_their_tokens() -> None:
    m = measure(record(0.0, [(1.0, "content"), (2.0, "content")], finish=2.0, usage=8))
    assert m.output_tokens == 8
    assert m.tokens_per_chunk == 4.0
    assert m.itl == pytest.approx((0.25,))
    assert m.tpot == pytest.approx(1.0 / 7)


def test_chunk_count_fallback_is_flagged() -> None:
    m = measure(record(0.0, [(1.0, "content"), (2.0, "content"), (3.0, "content")], finish=3.0))
    assert m.output_tokens == 3 and m.token_source == "chunks"


def test_rates_per_request() -> None:
    m = measure(record(0.0, [(1.0, "content"), (2.0, "content"), (3.0, "content")], usage=3))
    assert m.output_tps == pytest.approx(1.0)  # 3 tokens / 3 s
    assert m.generation_tps == pytest.approx(1.0)  # 2 tokens / 2 s after the first


def test_summary_keeps_failures_and_counts_them_by_kind() -> None:
    records = [
        record(0.0, [(0.1, "content"), (0.3, "content")], finish=0.3, usage=2, index=0),
        record(0.0, [(0.2, "content"), (0.4, "content")], finish=0.4, usage=2, index=1),
        record(0.5, [], error="http_429", index=2),
        record(0.5, [(0.6, "content")], error="stream", index=3),
        record(0.5, [], usage=0, index=4),
        record(0.5, [], error="cancelled", index=5),
        record(0.0, [(9.0, "content")], usage=1, index=6, warmup=True),
    ]
    summary = summarise(records, Slo(ttft=0.15))
    assert summary.requests == 5
    assert (summary.ok, summary.failed, summary.cancelled) == (2, 3, 1)
    assert summary.errors == {"empty": 1, "http_429": 1, "stream": 1}
    assert summary.duration == pytest.approx(0.6)  # first send 0.0, last end 0.6 (failed one)
    assert summary.output_tokens == 4
    assert summary.output_tokens_per_second == pytest.approx(4 / 0.6)
    assert summary.requests_per_second == pytest.approx(2 / 0.6)
    assert summary.good == 1  # ttft 0.1 meets 150 ms, 0.2 does not
    assert summary.metrics["ttft"].count == 2
    assert summary.metrics["itl"].count == 2
    assert summary.as_dict()["errors"] == {"empty": 1, "http_429": 1, "stream": 1}


def test_goodput_needs_every_slo() -> None:
    good = record(0.0, [(0.1, "content"), (0.2, "content")], usage=2)
    slow_tokens = record(0.0, [(0.1, "content"), (0.5, "content")], usage=2)
    slo = parse_slo("ttft=500ms,tpot=50ms")
    assert slo == Slo(ttft=0.5, tpot=0.05)
    assert slo.met_by(measure(good)) is False  # tpot 100 ms
    assert Slo(ttft=0.5, tpot=0.1).met_by(measure(good))
    assert not Slo(ttft=0.5, tpot=0.1).met_by(measure(slow_tokens))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("60s", 60.0), ("2m", 120.0), ("1.5", 1.5), ("1h", 3600.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["ttft", "latency=5ms", "ttft=fast"])
def test_parse_slo_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_slo(text)


def test_cached_tokens_from_usage_else_llama_timings() -> None:
    chunks = [(1.0, "content")]
    from_usage = record(0.0, chunks, usage=1)
    from_usage.cached_tokens, from_usage.prompt_tokens = 5, 9
    from_timings = record(0.0, chunks, usage=1)
    from_timings.timings = {"cache_n": 7, "predicted_per_second": 80.0}
    assert (measure(from_usage).cached_tokens, measure(from_usage).prompt_tokens) == (5, 9)
    assert measure(from_timings).cached_tokens == 7
    assert measure(from_timings).server_generation_tps == 80.0


@pytest.mark.parametrize(
    ("timings", "expected"),
    [
        ({"draft_n": 12, "draft_n_accepted": 9}, 0.75),
        ({"draft_n": 0, "draft_n_accepted": 0}, None),
        ({"predicted_n": 5}, None),
    ],
)
def test_draft_acceptance_from_llama_timings(
    timings: dict[str, int], expected: float | None
) -> None:
    chunks = [(0.3, "content"), (0.4, "content")]
    drafted = record(0.0, chunks, finish=0.4, usage=2)
    drafted.timings = dict(timings)
    assert measure(drafted).draft_acceptance == expected
    summary = summarise([drafted])
    assert summary.metrics["draft_acceptance"].mean == expected
