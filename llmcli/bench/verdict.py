"""Which profile is faster, by how much, and is it real: ratios with bootstrap intervals.

Pure functions: no I/O, and the randomness is a ``random.Random`` the caller seeds. For two
profiles A and B at one load level and each headline metric:

- the values are one per successful request: TTFT, e2e, output tok/s (tokens / e2e), and
  for ITL the request's own median ITL (so the unit resampled is the request, as for the
  others; the table's ITL p50 pools every gap and can differ a little);
- the statistic is the median (p50) of those values, and the ratio is median(A) / median(B);
- the 95% CI is the percentile bootstrap: ``RESAMPLES`` times, resample A's requests with
  replacement and, independently, B's; take the ratio of the two resamples' medians; the
  interval is the 2.5th and 97.5th percentiles of those ratios.

A resample's median is drawn exactly, not by building the resample: with the sample
sorted, x(1) <= ... <= x(n), a resample is x(ceil(n U_i)) for n uniforms U_i, and the map
is monotone, so its k-th smallest value is x(ceil(n U_(k))), where the k-th order statistic
of n uniforms U_(k) ~ Beta(k, n - k + 1). For an even n the median also needs the next
one: U_(k+1) = U_(k) + (1 - U_(k)) Beta(1, n - k). A resample costs two Beta draws whatever
n is, so 2,000 resamples of 10,000 requests take milliseconds.

Why 2,000 resamples: a percentile interval's ends are the 50th ratio from each side; the
Monte-Carlo error of a 2.5% tail estimated from B draws is sqrt(0.025 * 0.975 / B), 0.35
percentage points at B = 2,000 (Efron and Tibshirani advise 1,000 to 2,000 for intervals),
small beside the interval itself, and each resample is cheap (above).

No verdict (``None`` with a reason) when either side has fewer than ``MIN_REQUESTS`` values
(a bootstrap of 1 to 4 values can take only a few medians and understates the spread), or
when a median, in the sample or in a resample, is 0 (the ratio would be 0 or infinite).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmcli.bench.metrics import RequestRecord, measure, percentile

RESAMPLES = 2000
SEED = 15  # fixed: the same results give the same intervals, run after run
CONFIDENCE = 0.95
MIN_REQUESTS = 5


@dataclass(frozen=True, slots=True)
class Headline:
    """A headline metric: its key in the summaries, its words, and which way is better."""

    metric: str
    label: str
    lower_is_better: bool
    better: str  # said of the better side: "local reaches the first token 2.3x sooner"


HEADLINES: tuple[Headline, ...] = (
    Headline("ttft", "TTFT p50", True, "reaches the first token {} sooner"),
    Headline("itl", "ITL p50 (of request medians)", True, "streams tokens {} faster"),
    Headline("e2e", "e2e p50", True, "finishes a request {} sooner"),
    Headline("output_tps", "tok/s p50 (per request)", False, "generates output {} faster"),
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One metric's ratio A/B with its interval and sentence; ``ratio`` is ``None``
    (and ``reason`` says why) when there is no verdict."""

    metric: str
    label: str
    a: str
    b: str
    ratio: float | None
    low: float | None
    high: float | None
    better: str | None  # the better profile's name; None: no clear difference or no verdict
    sentence: str
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "label": self.label,
            "a": self.a,
            "b": self.b,
            "ratio": self.ratio,
            "ci95": None if self.low is None else [self.low, self.high],
            "better": self.better,
            "sentence": self.sentence,
            "reason": self.reason,
        }


def headline_samples(records: Iterable[RequestRecord]) -> dict[str, list[float]]:
    """Each headline metric's values, one per successful measured request (see above)."""
    samples: dict[str, list[float]] = {headline.metric: [] for headline in HEADLINES}
    for record in records:
        if record.warmup:
            continue
        m = measure(record)
        if not m.ok:
            continue
        if m.ttft is not None:
            samples["ttft"].append(m.ttft)
        if m.itl:
            samples["itl"].append(percentile(sorted(m.itl), 50.0))
        if m.e2e is not None:
            samples["e2e"].append(m.e2e)
        if m.output_tps is not None:
            samples["output_tps"].append(m.output_tps)
    return samples


def median_sorted(ordered: Sequence[float]) -> float:
    """The median of an already sorted, non-empty sample."""
    return percentile(ordered, 50.0)


def resample_median(ordered: Sequence[float], rng: random.Random) -> float:
    """The median of one bootstrap resample of ``ordered``, drawn exactly (module docstring)."""
    n = len(ordered)
    k = (n + 1) // 2
    u_k = rng.betavariate(k, n - k + 1)
    low = ordered[min(n - 1, math.ceil(n * u_k) - 1)] if u_k > 0 else ordered[0]
    if n % 2:
        return low
    u_next = u_k + (1.0 - u_k) * rng.betavariate(1, n - k)
    high = ordered[min(n - 1, max(0, math.ceil(n * u_next) - 1))]
    return (low + high) / 2.0


def ratio_interval(
    a: Sequence[float],
    b: Sequence[float],
    rng: random.Random,
    resamples: int = RESAMPLES,
) -> tuple[float, float, float] | None:
    """median(a) / median(b) and its percentile-bootstrap 95% interval; ``None`` when
    either sample is shorter than ``MIN_REQUESTS`` or a median is 0."""
    if len(a) < MIN_REQUESTS or len(b) < MIN_REQUESTS:
        return None
    sorted_a, sorted_b = sorted(a), sorted(b)
    point_a, point_b = median_sorted(sorted_a), median_sorted(sorted_b)
    if point_a <= 0 or point_b <= 0:
        return None
    ratios = []
    for _ in range(resamples):
        top = resample_median(sorted_a, rng)
        bottom = resample_median(sorted_b, rng)
        if top <= 0 or bottom <= 0:
            return None
        ratios.append(top / bottom)
    ratios.sort()
    tail = (1.0 - CONFIDENCE) / 2.0 * 100.0
    return point_a / point_b, percentile(ratios, tail), percentile(ratios, 100.0 - tail)


def format_ratio(value: float) -> str:
    """A ratio a person can read: ``<0.01x``, ``0.42x``, ``2.30x``, ``23.5x``, ``3,000x``."""
    if value < 0.01:
        return "<0.01x"
    if value < 10:
        return f"{value:.2f}x"
    if value < 100:
        return f"{value:.1f}x"
    return f"{value:,.0f}x"


def judge(
    headline: Headline,
    a_name: str,
    b_name: str,
    a: Sequence[float],
    b: Sequence[float],
    rng: random.Random,
    resamples: int = RESAMPLES,
) -> Verdict:
    """One metric's verdict on A against B, as a plain sentence (module docstring)."""
    found = ratio_interval(a, b, rng, resamples)
    if found is None:
        reason = (
            f"too few successful requests (under {MIN_REQUESTS})"
            if min(len(a), len(b)) < MIN_REQUESTS
            else "a median of 0: no ratio"
        )
        sentence = f"{headline.label}: no verdict ({reason})"
        return Verdict(
            headline.metric,
            headline.label,
            a_name,
            b_name,
            None,
            None,
            None,
            None,
            sentence,
            reason,
        )
    ratio, low, high = found
    if low <= 1.0 <= high:
        sentence = (
            f"no clear difference between {a_name} and {b_name} in {headline.label}"
            f" ({a_name}/{b_name} 95% CI {format_ratio(low)}–{format_ratio(high)})"
        )
        return Verdict(
            headline.metric, headline.label, a_name, b_name, ratio, low, high, None, sentence
        )
    a_lower = high < 1.0
    a_better = a_lower == headline.lower_is_better
    winner, loser = (a_name, b_name) if a_better else (b_name, a_name)
    # The factor is always >= 1, said of the better side: "2.3x sooner", never "0.43x".
    if a_lower:
        factor, f_low, f_high = 1.0 / ratio, 1.0 / high, 1.0 / low
    else:
        factor, f_low, f_high = ratio, low, high
    phrase = headline.better.format(format_ratio(factor))
    sentence = (
        f"{winner} {phrase} than {loser} (95% CI {format_ratio(f_low)}–{format_ratio(f_high)})"
    )
    return Verdict(
        headline.metric, headline.label, a_name, b_name, ratio, low, high, winner, sentence
    )


def pair_verdicts(
    a_name: str,
    b_name: str,
    a: Mapping[str, Sequence[float]],
    b: Mapping[str, Sequence[float]],
    seed: int = SEED,
    resamples: int = RESAMPLES,
) -> list[Verdict]:
    """Every headline metric's verdict on A against B, from one seeded generator."""
    rng = random.Random(seed)
    return [
        judge(h, a_name, b_name, a.get(h.metric, ()), b.get(h.metric, ()), rng, resamples)
        for h in HEADLINES
    ]
