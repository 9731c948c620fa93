"""The knee search of ``llmcli bench --sweep``: which load level to measure next.

A level *passes* when its goodput share meets the target::

    share = requests within every SLO objective / measured requests (failures count as misses)
    pass  = share >= target          (target 0.9 by default: 90% of requests within the SLO)

The search is bounded and adaptive, never a fixed list: start at ``start`` and double
(capped at ``limit``) while levels pass; after the first failure, bisect between the
highest passing level below it and the lowest failing level, until they are adjacent
(concurrency: 1 apart; rate: within ``RATE_RESOLUTION`` of each other) or ``max_steps``
levels have been measured. The knee is reported as that pair: the last level that met the
SLO and the first that did not.

Everything here is pure: :func:`next_level` looks only at the steps measured so far, so
tests drive it with scripted figures and the runner only measures what it is told.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmcli.bench.metrics import Slo, summarise
from llmcli.bench.records import BenchRun, LevelResult
from llmcli.bench.workload import MAX_CONCURRENCY, MAX_RATE

RATE_RESOLUTION = 0.1  # bisection of rates stops when the fail/pass ratio is below 1.1
MAX_STEPS = 32


@dataclass(frozen=True, slots=True)
class SweepBounds:
    """Where the search starts, how far it may go and what passing means."""

    start: float
    limit: float
    max_steps: int = 8
    target: float = 0.9
    integer: bool = True  # closed loop: concurrency levels are whole numbers

    def check(self) -> None:
        """Refuse absurd bounds with one ValueError naming the option to fix."""
        ceiling = MAX_CONCURRENCY if self.integer else MAX_RATE
        if not 0.0 < self.target <= 1.0:
            raise ValueError(f"--sweep-target {self.target:g}: give a share in (0, 1], e.g. 0.9")
        if self.start <= 0 or (self.integer and self.start != int(self.start)):
            kind = "a whole number >= 1" if self.integer else "a rate > 0"
            raise ValueError(f"sweep start {self.start:g}: give {kind}")
        whole = not self.integer or self.limit == int(self.limit)
        if not (whole and self.start <= self.limit <= ceiling):
            raise ValueError(
                f"--sweep-max {self.limit:g}: give a level from {self.start:g} to {ceiling:g}"
            )
        if not 1 <= self.max_steps <= MAX_STEPS:
            raise ValueError(f"--sweep-steps {self.max_steps}: give 1 to {MAX_STEPS}")


@dataclass(frozen=True, slots=True)
class SweepStep:
    """One measured level: how many requests were measured and how many met the SLO."""

    level: float
    requests: int
    within: int

    @property
    def share(self) -> float:
        return self.within / self.requests if self.requests else 0.0

    def passed(self, target: float) -> bool:
        return self.requests > 0 and self.share >= target


@dataclass(frozen=True, slots=True)
class Knee:
    """The search's answer: the last level that met the target and the first that did not.

    ``reason`` says why the search stopped: ``found`` (the two are adjacent),
    ``steps`` (out of steps before they were, or before any level failed), ``limit`` (every level up to the limit
    passed: no knee within bounds) or ``start`` (even the first level failed).
    """

    last_pass: float | None
    first_fail: float | None
    reason: str

    def describe(self) -> str:
        if self.last_pass is None and self.first_fail is None:
            return "no level measured"
        if self.first_fail is None:
            assert self.last_pass is not None
            if self.reason == "steps":
                return f"not reached: {self.last_pass:g} met the SLO (step limit reached)"
            return f"not reached: every level up to {self.last_pass:g} met the SLO"
        if self.reason == "start":
            return f"below {self.first_fail:g}: the first level already missed the SLO"
        where = f"between {self.last_pass:g} (met the SLO) and {self.first_fail:g} (missed it)"
        return where if self.reason == "found" else f"{where} (step limit reached)"


def _bracket(steps: Sequence[SweepStep], target: float) -> tuple[float | None, float | None]:
    """The lowest failing level and the highest passing level below it."""
    fails = [s.level for s in steps if not s.passed(target)]
    first_fail = min(fails) if fails else None
    passes = [
        s.level for s in steps if s.passed(target) and (first_fail is None or s.level < first_fail)
    ]
    return (max(passes) if passes else None), first_fail


def _adjacent(low: float, high: float, bounds: SweepBounds) -> bool:
    if bounds.integer:
        return high - low <= 1
    return high <= low * (1 + RATE_RESOLUTION)


def next_level(steps: Sequence[SweepStep], bounds: SweepBounds) -> float | None:
    """The level to measure next given the steps so far, or ``None`` when the search is over."""
    if not steps:
        return bounds.start
    if len(steps) >= bounds.max_steps:
        return None
    last_pass, first_fail = _bracket(steps, bounds.target)
    if first_fail is None:
        assert last_pass is not None
        if last_pass >= bounds.limit:
            return None
        return min(last_pass * 2, bounds.limit)
    if last_pass is None or _adjacent(last_pass, first_fail, bounds):
        return None
    middle = (last_pass + first_fail) / 2
    return float(int(middle)) if bounds.integer else middle


def find_knee(steps: Sequence[SweepStep], bounds: SweepBounds) -> Knee:
    """What the steps measured so far say about the knee (see :class:`Knee`)."""
    last_pass, first_fail = _bracket(steps, bounds.target)
    if first_fail is None:
        done = last_pass is not None and last_pass >= bounds.limit
        return Knee(last_pass, None, "limit" if done else "steps")
    if last_pass is None:
        return Knee(None, first_fail, "start")
    if _adjacent(last_pass, first_fail, bounds):
        return Knee(last_pass, first_fail, "found")
    return Knee(last_pass, first_fail, "steps")


def knee_dict(knee: Knee) -> dict[str, float | str | None]:
    """The knee as the results file and ``--json`` give it."""
    return {
        "last_pass": knee.last_pass,
        "first_fail": knee.first_fail,
        "reason": knee.reason,
        "summary": knee.describe(),
    }


def step_dict(step: SweepStep, target: float) -> dict[str, float | int | bool]:
    """A step as the results file and ``--json`` give it."""
    return {
        "level": step.level,
        "requests": step.requests,
        "within_slo": step.within,
        "share": step.share,
        "passed": step.passed(target),
    }


def step_of(level: LevelResult, slo: Slo) -> SweepStep:
    """A measured level as a step: its load, its measured requests, those within the SLO."""
    summary = summarise(level.records, slo)
    load = level.rate if level.rate is not None else float(level.concurrency)
    return SweepStep(load, summary.requests, summary.good)


def sweep_json(run: BenchRun) -> dict[str, Any] | None:
    """Each profile's steps, in the order tried, and its knee; ``None`` without ``--sweep``."""
    bounds = run.sweep
    if bounds is None:
        return None
    profiles = []
    for profile in run.profiles:
        steps = [step_of(level, run.settings.slo) for level in profile.levels]
        profiles.append(
            {
                "name": profile.name,
                "knee": knee_dict(find_knee(steps, bounds)),
                "steps": [step_dict(step, bounds.target) for step in steps],
            }
        )
    return {
        "load": "concurrency" if bounds.integer else "requests_per_second",
        "start": bounds.start,
        "max": bounds.limit,
        "max_steps": bounds.max_steps,
        "target": bounds.target,
        "pass": "share of measured requests within every SLO objective >= target",
        "profiles": profiles,
    }
