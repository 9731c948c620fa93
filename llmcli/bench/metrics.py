"""Benchmark statistics as pure functions of per-request timestamp records.

No I/O and no clock: the runner records *when* things happened (:class:`RequestRecord`),
and everything a report shows is computed here, so every number can be checked by hand
against a scripted timeline. The definitions (printed under every table, see
``FORMULAS``):

- A *token chunk* is an event that carries generated text: content, reasoning or a
  tool-call fragment. A role-only chunk, an empty ``choices: []`` chunk, the usage chunk,
  timings and zen's cost frame are not token chunks.
- send: the moment the request was handed to the socket (llmcli's transport stamps it
  just before the write), after any connect and after the client built the request: the
  figures time the backend and the trip to it, not the client's own work nor a new
  connection. Where no stamp came (another transport; a request refused before a
  response began), send is when the runner began the request; ``issued_at`` keeps that
  moment wherever the two differ.
- TTFB: first parsed chunk (of any kind, the role chunk included) - send.
- TTFT: first token chunk (content *or* reasoning) - send. TTFA: first *content* chunk -
  send (what a user waits for behind a reasoning model).
- end: the later of the last token chunk and the finish event. The usage chunk, timings,
  ``[DONE]`` and the cost frame never extend it. e2e = end - send.
- gaps: the differences between consecutive points of [token chunks..., end]; so
  e2e - TTFT = sum(gaps), exactly.
- ITL: each gap between consecutive token chunks divided by the request's tokens per
  chunk (output tokens / token chunks), pooled over all requests. When a chunk carries
  several tokens the division keeps ITL a per-token figure; the request is flagged.
- output tokens: ``usage.completion_tokens`` (source ``usage``); when the server sent none,
  the number of token chunks (source ``chunks``, flagged: a chunk may hold several tokens).
- TPOT = (e2e - TTFT) / (output tokens - 1), for requests with at least 2 tokens.
- output tok/s per request = output tokens / e2e; generation tok/s per request =
  (output tokens - 1) / (e2e - TTFT), the client's view of llama.cpp's
  ``timings.predicted_per_second``.
- aggregate: duration = last end - first send over measured requests; requests/s = good
  (successful) requests / duration; output tok/s = their output tokens / duration;
  goodput = successful requests meeting every SLO / duration.

A request fails when the client raised (the error's kind is kept) or when a stream ended
without a single token chunk (kind ``empty``, e.g. a usage-only stream). Failed requests
stay in every total. Requests cut off by Ctrl-C (kind ``cancelled``) are counted apart
and left out of the figures: the server did not fail them.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

ChunkKind = Literal["content", "reasoning", "tool"]
TokenSource = Literal["usage", "chunks", "none"]

CANCELLED = "cancelled"  # cut off by Ctrl-C: neither a success nor the server's failure
PERCENTILES: tuple[float, ...] = (50.0, 90.0, 95.0, 99.0)

FORMULAS: tuple[tuple[str, str], ...] = (
    ("send", "request handed to the socket (after connect and building; llmcli's own stamp)"),
    ("TTFB", "first chunk of any kind - send"),
    ("TTFT", "first content or reasoning chunk - send (never the role-only chunk)"),
    ("TTFA", "first content (answer) chunk - send"),
    ("e2e", "max(last token chunk, finish event) - send (usage/[DONE]/cost excluded)"),
    ("ITL", "gap between consecutive token chunks / (output tokens / token chunks), pooled"),
    ("TPOT", "(e2e - TTFT) / (output tokens - 1), per request"),
    ("tok/s", "output tokens / e2e, per request; gen tok/s = (tokens - 1) / (e2e - TTFT)"),
    ("agg tok/s", "sum of output tokens of successful requests / (last end - first send)"),
    ("req/s", "successful requests / (last end - first send); goodput: those within the SLO"),
    ("tokens", "usage.completion_tokens; if absent, token chunks counted (flagged)"),
    ("prompt", "usage: whole templated prompt; tokenize: user content, sample mean"),
    ("draft", "speculative decoding: timings.draft_n_accepted / timings.draft_n, per request"),
    (
        "read lag",
        "client self-check: longest a request's bytes waited to be read after the kernel"
        " received them (times are the kernel's); chunks closer than it may merge",
    ),
)


class TokenChunk(NamedTuple):
    """When a chunk carrying generated text arrived, and what it carried (one a frame: a
    named tuple costs half what a frozen dataclass does to make)."""

    at: float
    kind: ChunkKind


@dataclass(slots=True)
class RequestRecord:
    """What the runner saw of one request; times are readings of the runner's clock (s)."""

    index: int
    # When the request was sent: handed to the socket, by the transport's stamp where it
    # gives one (llmcli.net.streamhttp), else when the runner began it (``issued_at``).
    sent_at: float
    warmup: bool = False
    first_chunk_at: float | None = None
    chunks: list[TokenChunk] = field(default_factory=list)
    finish_at: float | None = None
    finish_reason: str | None = None
    closed_at: float | None = None  # the stream ended (after usage, [DONE], cost)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    timings: Mapping[str, float | int | None] | None = None
    error_kind: str | None = None
    error: str | None = None
    nonce: str | None = None  # the prompt's random prefix: matches a request to a server log
    stale_retry: bool = False  # sent again after a dead keep-alive connection (see runner)
    # The longest its bytes waited to be read after the kernel received them (kernel-stamped
    # connections only): a client falling behind shows here.
    read_lag: float | None = None
    # When the runner began the request, where the transport stamped a later send: the
    # difference is the client building it (and opening a connection, if it needed one).
    issued_at: float | None = None


@dataclass(frozen=True, slots=True)
class RequestMetrics:
    """One request's figures (seconds); ``None`` where a figure does not exist."""

    index: int
    ok: bool
    error_kind: str | None
    ttfb: float | None
    ttft: float | None
    ttfa: float | None
    e2e: float | None
    tpot: float | None
    itl: tuple[float, ...]
    gaps: tuple[float, ...]
    output_tokens: int
    token_source: TokenSource
    token_chunks: int
    tokens_per_chunk: float | None
    output_tps: float | None
    generation_tps: float | None
    server_generation_tps: float | None
    server_prompt_tps: float | None
    prompt_tokens: int | None
    cached_tokens: int | None
    start: float
    end: float | None
    # Speculative decoding: draft tokens accepted / drafted, from llama.cpp's timings.
    draft_acceptance: float | None = None
    read_lag: float | None = None  # see RequestRecord


@dataclass(frozen=True, slots=True)
class Stats:
    """mean, p50, p90, p95, p99 and max of a sample (all ``None`` when it is empty)."""

    count: int
    mean: float | None
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None
    max: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            "mean": self.mean,
            "p50": self.p50,
            "p90": self.p90,
            "p95": self.p95,
            "p99": self.p99,
            "max": self.max,
        }


@dataclass(frozen=True, slots=True)
class Slo:
    """Service-level objectives for goodput, in seconds (``None``: no objective)."""

    ttft: float | None = None
    tpot: float | None = None
    e2e: float | None = None

    def met_by(self, metrics: RequestMetrics) -> bool:
        if not metrics.ok:
            return False
        for limit, value in (
            (self.ttft, metrics.ttft),
            (self.tpot, metrics.tpot),
            (self.e2e, metrics.e2e),
        ):
            if limit is not None and (value is None or value > limit):
                return False
        return True

    def describe(self) -> str:
        parts = [
            f"{name}<={limit * 1000:g}ms"
            for name, limit in (("ttft", self.ttft), ("tpot", self.tpot), ("e2e", self.e2e))
            if limit is not None
        ]
        return ",".join(parts) or "none"


@dataclass(frozen=True, slots=True)
class Summary:
    """A level's aggregate: every metric's :class:`Stats`, rates, counts, flags."""

    requests: int
    ok: int
    failed: int
    cancelled: int
    errors: Mapping[str, int]
    duration: float
    requests_per_second: float | None
    output_tokens: int
    output_tokens_per_second: float | None
    goodput: float | None
    good: int
    slo: Slo
    token_sources: Mapping[str, int]
    multi_token_chunks: int
    metrics: Mapping[str, Stats]

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "ok": self.ok,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "errors": dict(self.errors),
            "duration_s": self.duration,
            "requests_per_second": self.requests_per_second,
            "output_tokens": self.output_tokens,
            "output_tokens_per_second": self.output_tokens_per_second,
            "goodput_requests_per_second": self.goodput,
            "good": self.good,
            "slo": self.slo.describe(),
            "token_sources": dict(self.token_sources),
            "multi_token_chunk_requests": self.multi_token_chunks,
            "metrics": {name: stats.as_dict() for name, stats in self.metrics.items()},
        }


# Metrics in seconds (reported in ms) and rates (tokens/s), in report order.
TIME_METRICS: tuple[str, ...] = ("ttfb", "ttft", "ttfa", "itl", "tpot", "e2e")
COUNT_METRICS: tuple[str, ...] = ("prompt_tokens", "cached_tokens")
RATIO_METRICS: tuple[str, ...] = ("draft_acceptance",)
CLIENT_METRICS: tuple[str, ...] = ("read_lag",)
RATE_METRICS: tuple[str, ...] = (
    "output_tps",
    "generation_tps",
    "server_generation_tps",
    "server_prompt_tps",
)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation between closest ranks."""
    if not sorted_values:
        raise ValueError("percentile of an empty sample")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be in 0..100, not {q}")
    position = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return sorted_values[low]
    weight = position - low
    return sorted_values[low] * (1.0 - weight) + sorted_values[high] * weight


def describe(values: Iterable[float]) -> Stats:
    """mean, p50, p90, p95, p99 and max of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return Stats(0, None, None, None, None, None, None)
    p50, p90, p95, p99 = (percentile(ordered, q) for q in PERCENTILES)
    return Stats(
        count=len(ordered),
        mean=math.fsum(ordered) / len(ordered),
        p50=p50,
        p90=p90,
        p95=p95,
        p99=p99,
        max=ordered[-1],
    )


def measure(record: RequestRecord) -> RequestMetrics:
    """One request's figures from its record (see the module docstring)."""
    chunks = sorted(record.chunks, key=lambda chunk: chunk.at)
    sent = record.sent_at
    first = chunks[0].at if chunks else None
    answers = [chunk.at for chunk in chunks if chunk.kind == "content"]
    end: float | None = None
    if chunks:
        end = chunks[-1].at
        if record.finish_at is not None:
            end = max(end, record.finish_at)
    if record.completion_tokens is not None:
        tokens, source = record.completion_tokens, "usage"
    elif chunks:
        tokens, source = len(chunks), "chunks"
    else:
        tokens, source = 0, "none"
    error_kind = record.error_kind
    if error_kind is None and not chunks:
        error_kind = "empty"
    ok = error_kind is None
    per_chunk = tokens / len(chunks) if chunks and tokens else None
    times = [chunk.at for chunk in chunks]
    token_gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    gaps = list(token_gaps)
    if end is not None and times and end > times[-1]:
        gaps.append(end - times[-1])
    itl = tuple(gap / per_chunk for gap in token_gaps) if per_chunk else tuple(token_gaps)
    ttft = first - sent if first is not None else None
    e2e = end - sent if end is not None else None
    tpot = None
    generation_tps = None
    if ok and ttft is not None and e2e is not None and tokens >= 2:
        decode = e2e - ttft
        tpot = decode / (tokens - 1)
        generation_tps = (tokens - 1) / decode if decode > 0 else None
    timings = record.timings or {}
    return RequestMetrics(
        index=record.index,
        ok=ok,
        error_kind=error_kind,
        ttfb=record.first_chunk_at - sent if record.first_chunk_at is not None else None,
        ttft=ttft,
        ttfa=answers[0] - sent if answers else None,
        e2e=e2e,
        tpot=tpot,
        itl=itl,
        gaps=tuple(gaps),
        output_tokens=tokens,
        token_source=source,  # type: ignore[arg-type]
        token_chunks=len(chunks),
        tokens_per_chunk=per_chunk,
        output_tps=tokens / e2e if ok and e2e and tokens else None,
        generation_tps=generation_tps,
        server_generation_tps=_float(timings.get("predicted_per_second")),
        server_prompt_tps=_float(timings.get("prompt_per_second")),
        prompt_tokens=record.prompt_tokens,
        cached_tokens=_cached(record),
        start=sent,
        end=end,
        draft_acceptance=_acceptance(timings),
        read_lag=record.read_lag,
    )


@dataclass(frozen=True, slots=True)
class RequestEnd:
    """What a live display needs of one finished request, as :func:`measure` defines it:
    success, TTFT, output tokens, send and end (times on the clock that stamped it)."""

    ok: bool
    ttft: float | None
    tokens: int
    start: float
    end: float | None

    def on_clock(self, shift: float) -> RequestEnd:
        """The same end with its times moved by ``shift`` (onto another clock)."""
        end = None if self.end is None else self.end + shift
        return RequestEnd(self.ok, self.ttft, self.tokens, self.start + shift, end)


def request_end(record: RequestRecord) -> RequestEnd:
    """:func:`measure`'s success, TTFT, output tokens, send and end of ``record``, without
    its per-gap work: one pass over the chunk times, nothing allocated per chunk."""
    chunks = record.chunks
    sent = record.sent_at
    if not chunks:
        return RequestEnd(False, None, record.completion_tokens or 0, sent, None)
    first = min(chunk.at for chunk in chunks)
    last = max(chunk.at for chunk in chunks)
    end = last if record.finish_at is None else max(last, record.finish_at)
    tokens = record.completion_tokens if record.completion_tokens is not None else len(chunks)
    return RequestEnd(record.error_kind is None, first - sent, tokens, sent, end)


def summarise(records: Iterable[RequestRecord], slo: Slo | None = None) -> Summary:
    """A level's aggregate over its measured (non-warm-up) requests."""
    slo = slo or Slo()
    chosen = [record for record in records if not record.warmup]
    cancelled = sum(1 for record in chosen if record.error_kind == CANCELLED)
    measured = [measure(record) for record in chosen if record.error_kind != CANCELLED]
    good = [m for m in measured if m.ok]
    errors = Counter(m.error_kind for m in measured if m.error_kind is not None)
    starts = [m.start for m in measured]
    ends = [m.end for m in measured if m.end is not None]
    duration = max(ends) - min(starts) if starts and ends else 0.0
    tokens = sum(m.output_tokens for m in good)
    within = sum(1 for m in good if slo.met_by(m))
    names = (*TIME_METRICS, *RATE_METRICS, *COUNT_METRICS, *RATIO_METRICS, *CLIENT_METRICS)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for m in good:
        samples["itl"].extend(m.itl)
        for name in names:
            if name == "itl":
                continue
            value = getattr(m, name)
            if value is not None:
                samples[name].append(value)
    return Summary(
        requests=len(measured),
        ok=len(good),
        failed=len(measured) - len(good),
        cancelled=cancelled,
        errors=dict(sorted(errors.items())),
        duration=duration,
        requests_per_second=len(good) / duration if duration > 0 else None,
        output_tokens=tokens,
        output_tokens_per_second=tokens / duration if duration > 0 else None,
        goodput=within / duration if duration > 0 else None,
        good=within,
        slo=slo,
        token_sources=dict(Counter(m.token_source for m in measured)),
        multi_token_chunks=sum(
            1 for m in good if m.tokens_per_chunk is not None and m.tokens_per_chunk > 1.0
        ),
        metrics={name: describe(values) for name, values in samples.items()},
    )


_DURATION = re.compile(r"^\s*(?P<value>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str, *, default_unit: str = "s") -> float:
    """Seconds from ``500ms``, ``60s``, ``2m``, ``1h`` or a bare number in ``default_unit``."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (try 500ms, 60s or 2m)")
    unit = match.group("unit") or default_unit
    return float(match.group("value")) * _UNITS[unit]


def parse_slo(text: str) -> Slo:
    """``ttft=500ms,tpot=50ms[,e2e=10s]`` -> :class:`Slo` (bare numbers are milliseconds)."""
    limits: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip().lower()
        if not sep or name not in ("ttft", "tpot", "e2e"):
            raise ValueError(f"bad SLO {item!r}: use ttft=500ms,tpot=50ms (and e2e=...)")
        limits[name] = parse_duration(value, default_unit="ms")
    return Slo(**limits)


def _cached(record: RequestRecord) -> int | None:
    """Prompt tokens served from the cache: usage's count, else llama.cpp's ``cache_n``."""
    if record.cached_tokens is not None:
        return record.cached_tokens
    cache_n = (record.timings or {}).get("cache_n")
    return (
        int(cache_n) if isinstance(cache_n, int | float) and not isinstance(cache_n, bool) else None
    )


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _acceptance(timings: Mapping[str, float | int | None]) -> float | None:
    drafted = timings.get("draft_n")
    accepted = timings.get("draft_n_accepted")
    if not isinstance(drafted, int | float) or not drafted or not isinstance(accepted, int | float):
        return None
    return float(accepted) / float(drafted)
