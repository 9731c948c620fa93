"""Scripted timing: each of TTFT, ITL and tokens per chunk is a fixed value or a distribution.

A :class:`Distribution` is written ``KIND:PARAMS`` (``llmcli mock-server --itl
lognormal:0.02,0.3``):

- ``uniform:LOW,HIGH``: any value between the two, equally likely (for tokens per chunk,
  a whole number from LOW to HIGH, both included);
- ``normal:MEAN,SD``: a bell around MEAN;
- ``lognormal:MEDIAN,SIGMA``: MEDIAN times e to a normal of spread SIGMA (the long right
  tail of real servers' latencies);
- ``exponential:MEAN``: memoryless waits of mean MEAN.

A draw below the smallest sensible value is raised to it (0 s for a time, 1 token for a
chunk). A plain number is a fixed value, as before.

Per request a :class:`Pace` is drawn (from the server's own seeded generator, so a run is
repeatable): its TTFT once, then a gap for every chunk after the first, and the size of
every chunk. Deadlines stay absolute: chunk ``k`` is due at the request's arrival + TTFT +
the sum of the first ``k`` gaps, so a late frame never delays the next one.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from typing import Literal, get_args

Kind = Literal["uniform", "normal", "lognormal", "exponential"]
_ARITY = {"uniform": 2, "normal": 2, "lognormal": 2, "exponential": 1}


@dataclass(frozen=True, slots=True)
class Distribution:
    kind: Kind
    params: tuple[float, ...]
    integer: bool = False  # tokens per chunk: whole numbers, at least 1

    def __post_init__(self) -> None:
        if self.kind not in get_args(Kind):
            raise ValueError(f"unknown distribution {self.kind!r}: use {', '.join(_ARITY)}")
        if len(self.params) != _ARITY[self.kind] or not all(map(math.isfinite, self.params)):
            raise ValueError(f"{self.kind} takes {_ARITY[self.kind]} number(s): {self}")
        low = 1.0 if self.integer else 0.0
        first = self.params[0]
        if self.kind == "uniform" and not low <= first <= self.params[1]:
            raise ValueError(f"uniform:LOW,HIGH needs {low:g} <= LOW <= HIGH: {self}")
        if self.kind == "uniform" and self.integer and not all(p.is_integer() for p in self.params):
            raise ValueError(f"uniform:LOW,HIGH of tokens takes whole numbers: {self}")
        if self.kind in ("normal", "lognormal") and self.params[1] < 0:
            raise ValueError(f"the spread of {self} must be 0 or more")
        if self.kind in ("lognormal", "exponential") and first <= 0:
            raise ValueError(f"the first number of {self} must be above 0")

    def __str__(self) -> str:
        return f"{self.kind}:{','.join(f'{p:g}' for p in self.params)}"

    @property
    def mean(self) -> float:
        """The mean of a draw (before a draw below the floor is raised to it)."""
        a = self.params[0]
        if self.kind == "uniform":
            return (a + self.params[1]) / 2
        if self.kind == "lognormal":
            return a * math.exp(self.params[1] ** 2 / 2)
        return a  # normal, exponential

    def draw(self, rng: random.Random) -> float:
        kind, params = self.kind, self.params
        if kind == "uniform":
            if self.integer:
                return float(rng.randint(int(params[0]), int(params[1])))
            value = rng.uniform(params[0], params[1])
        elif kind == "normal":
            value = rng.gauss(params[0], params[1])
        elif kind == "lognormal":
            value = params[0] * math.exp(rng.gauss(0.0, params[1]))
        else:
            value = rng.expovariate(1.0 / params[0])
        if self.integer:
            return float(max(1, round(value)))
        return max(0.0, value)


def parse_timing(text: str, *, integer: bool = False) -> float | Distribution:
    """``"0.02"`` (fixed) or ``"KIND:P1[,P2]"``; raises ValueError with what is wrong."""
    text = text.strip()
    kind, sep, rest = text.partition(":")
    if not sep:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is neither a number nor KIND:PARAMS") from None
        if not math.isfinite(value) or value < (1 if integer else 0):
            raise ValueError(f"{text!r} must be {'1' if integer else '0'} or more")
        if integer and not value.is_integer():
            raise ValueError(f"{text!r} must be a whole number")
        return value
    try:
        params = tuple(float(part) for part in rest.split(","))
    except ValueError:
        raise ValueError(f"{text!r}: the parameters must be numbers") from None
    return Distribution(kind.strip().lower(), params, integer)  # type: ignore[arg-type]


def parse_chunk_tokens(text: str) -> int | Distribution:
    """Tokens per chunk: a whole number, or a distribution of whole numbers."""
    value = parse_timing(text, integer=True)
    return value if isinstance(value, Distribution) else int(value)


def mean_of(value: float | Distribution) -> float:
    return value.mean if isinstance(value, Distribution) else value


@dataclass(frozen=True, slots=True)
class Pace:
    """One request's schedule: offsets from its arrival, in seconds (see the module doc)."""

    ttft: float
    itl: float  # the fixed gap; the mean one when ``offsets`` holds drawn gaps
    offsets: tuple[float, ...] = ()  # drawn: chunk k is due at ttft + offsets[k]

    def at(self, slot: int) -> float:
        """When chunk ``slot`` (0 = the first) is due, after the request's arrival."""
        if not self.offsets:
            return self.ttft + slot * self.itl
        return self.ttft + self.offsets[min(slot, len(self.offsets) - 1)]


def draw_pace(
    ttft: float | Distribution, itl: float | Distribution, slots: int, rng: random.Random
) -> Pace:
    """A request's TTFT and, when ITL is a distribution, the due times of its ``slots``
    chunks (``slots - 1`` gaps drawn)."""
    first = ttft.draw(rng) if isinstance(ttft, Distribution) else ttft
    if not isinstance(itl, Distribution):
        return Pace(first, itl)
    gaps = [itl.draw(rng) for _ in range(max(0, slots - 1))]
    offsets = (0.0, *itertools.accumulate(gaps))
    mean = offsets[-1] / len(gaps) if gaps else itl.mean
    return Pace(first, mean, offsets)


def draw_chunk_sizes(per: float | Distribution, tokens: int, rng: random.Random) -> tuple[int, ...]:
    """Sizes of successive chunks covering ``tokens``; empty when the size is fixed."""
    if not isinstance(per, Distribution):
        return ()
    sizes: list[int] = []
    covered = 0
    while covered < tokens:
        size = int(per.draw(rng))
        sizes.append(size)
        covered += size
    return tuple(sizes)
