"""The verdict's pure functions: ratios, bootstrap intervals, sentences, readable ratios."""

from __future__ import annotations

import json
import random
import statistics
import time

import pytest

from llmcli.bench.metrics import RequestRecord, TokenChunk
from llmcli.bench.verdict import (
    HEADLINES,
    Headline,
    format_ratio,
    headline_samples,
    judge,
    pair_verdicts,
    ratio_interval,
    resample_median,
)

TTFT = HEADLINES[0]
TPS = HEADLINES[3]
SPREAD = [0.09, 0.095, 0.1, 0.1, 0.105, 0.11, 0.1, 0.098, 0.102, 0.1]


@pytest.mark.parametrize(
    ("a", "b", "contains_one", "ratio"),
    [
        (SPREAD, SPREAD, True, 1.0),  # identical samples
        ([2 * v for v in SPREAD], SPREAD, False, 2.0),  # A twice B's latency
        (SPREAD, [3000 * v for v in SPREAD], False, 1 / 3000),
        ([1.0, 1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0], True, 1.0),  # no spread
    ],
)
def test_ratio_interval(a: list[float], b: list[float], contains_one: bool, ratio: float) -> None:
    found = ratio_interval(a, b, random.Random(1))
    assert found is not None
    point, low, high = found
    assert point == pytest.approx(ratio)
    assert low <= point <= high
    assert (low <= 1.0 <= high) is contains_one


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ([], SPREAD),  # empty
        (SPREAD, [0.1, 0.1]),  # tiny
        ([0.0] * 6, SPREAD),  # a median of 0
        (SPREAD, [0.0] * 6),
    ],
)
def test_no_verdict_rather_than_inf_or_nan(a: list[float], b: list[float]) -> None:
    assert ratio_interval(a, b, random.Random(1)) is None
    verdict = judge(TTFT, "a", "b", a, b, random.Random(1))
    assert verdict.ratio is None and verdict.better is None
    assert "no verdict" in verdict.sentence
    json.dumps(verdict.as_dict(), allow_nan=False)


@pytest.mark.parametrize(
    ("headline", "a", "b", "better", "words"),
    [
        (TTFT, SPREAD, [2 * v for v in SPREAD], "local", "local reaches the first token 2.00x"),
        (TTFT, [2 * v for v in SPREAD], SPREAD, "zen", "zen reaches the first token 2.00x"),
        (TPS, [2 * v for v in SPREAD], SPREAD, "local", "local generates output 2.00x faster"),
        (TPS, SPREAD, SPREAD, None, "no clear difference between local and zen"),
    ],
)
def test_sentences_name_the_better_side(
    headline: Headline, a: list[float], b: list[float], better: str | None, words: str
) -> None:
    verdict = judge(headline, "local", "zen", a, b, random.Random(3))
    assert verdict.better == better
    assert verdict.sentence.startswith(words) or words in verdict.sentence
    assert "95% CI" in verdict.sentence


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.0001, "<0.01x"), (0.4242, "0.42x"), (2.3, "2.30x"), (23.46, "23.5x"), (3000.4, "3,000x")],
)
def test_format_ratio(value: float, text: str) -> None:
    assert format_ratio(value) == text


@pytest.mark.parametrize("n", [5, 6, 101, 1000])
def test_resample_median_matches_a_built_resample(n: int) -> None:
    # The exact order-statistic draw has the distribution of a median of n draws with
    # replacement: their means over many resamples agree.
    data = sorted(random.Random(n).expovariate(1.0) for _ in range(n))
    rng = random.Random(7)
    drawn = [resample_median(data, rng) for _ in range(3000)]
    built = [statistics.median(rng.choices(data, k=n)) for _ in range(3000)]
    spread = statistics.stdev(built)
    assert statistics.fmean(drawn) == pytest.approx(statistics.fmean(built), abs=spread / 10)
    assert statistics.stdev(drawn) == pytest.approx(spread, rel=0.15)


def test_seeded_verdicts_repeat() -> None:
    a = {"ttft": SPREAD, "e2e": SPREAD}
    b = {"ttft": [v * 1.01 for v in SPREAD], "e2e": SPREAD}
    assert pair_verdicts("a", "b", a, b) == pair_verdicts("a", "b", a, b)


def test_headline_samples_one_value_per_successful_request() -> None:
    ok = RequestRecord(0, sent_at=0.0, chunks=[TokenChunk(0.1, "content"),
                       TokenChunk(0.2, "content"), TokenChunk(0.4, "content")], finish_at=0.4)  # fmt: skip
    failed = RequestRecord(1, sent_at=0.0, error_kind="status")
    warm = RequestRecord(2, sent_at=0.0, warmup=True, chunks=[TokenChunk(0.1, "content")])
    samples = headline_samples([ok, failed, warm])
    assert samples["ttft"] == [pytest.approx(0.1)]
    assert samples["itl"] == [pytest.approx(0.15)]  # median of the gaps 0.1 and 0.2
    assert samples["e2e"] == [pytest.approx(0.4)]
    assert samples["output_tps"] == [pytest.approx(3 / 0.4)]


def test_cost_of_a_large_comparison_is_printed_not_asserted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rng = random.Random(0)
    a = {h.metric: [rng.random() + 0.1 for _ in range(10_000)] for h in HEADLINES}
    b = {h.metric: [rng.random() + 0.2 for _ in range(10_000)] for h in HEADLINES}
    start = time.perf_counter()
    verdicts = pair_verdicts("a", "b", a, b)
    with capsys.disabled():
        print(
            f"\n4 metrics x 2,000 resamples x 10,000 requests: {time.perf_counter() - start:.3f} s"
        )
    assert all(v.better == "a" for v in verdicts[:3])
