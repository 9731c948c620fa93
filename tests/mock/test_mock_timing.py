"""llmcli.mock.timing: fixed values and distributions for TTFT, ITL and tokens per chunk."""

from __future__ import annotations

import itertools
import random

import pytest

from llmcli.mock.generation import plan_generation
from llmcli.mock.timing import Distribution, Pace, draw_chunk_sizes, draw_pace, parse_timing


@pytest.mark.parametrize(
    ("text", "integer", "expected"),
    [
        ("0.02", False, 0.02),
        ("0", False, 0.0),
        ("3", True, 3.0),
        ("uniform:0.1,0.3", False, Distribution("uniform", (0.1, 0.3))),
        (" Normal:0.2,0.05 ", False, Distribution("normal", (0.2, 0.05))),
        ("lognormal:0.02,0.5", False, Distribution("lognormal", (0.02, 0.5))),
        ("exponential:0.01", False, Distribution("exponential", (0.01,))),
        ("uniform:1,4", True, Distribution("uniform", (1.0, 4.0), integer=True)),
    ],
)
def test_parse_timing(text: str, integer: bool, expected: object) -> None:
    assert parse_timing(text, integer=integer) == expected


@pytest.mark.parametrize(
    ("text", "integer", "message"),
    [
        ("fast", False, "neither a number nor KIND:PARAMS"),
        ("-0.1", False, "0 or more"),
        ("nan", False, "0 or more"),
        ("0", True, "1 or more"),
        ("1.5", True, "whole number"),
        ("gauss:1,2", False, "unknown distribution 'gauss'"),
        ("uniform:1", False, "takes 2 number(s)"),
        ("uniform:a,b", False, "must be numbers"),
        ("uniform:0.3,0.1", False, "LOW <= HIGH"),
        ("uniform:0,2", True, "1 <= LOW"),
        ("uniform:1.5,2.5", True, "whole numbers"),
        ("normal:0.1,-1", False, "spread"),
        ("lognormal:0,1", False, "above 0"),
        ("exponential:inf", False, "takes 1 number(s)"),
    ],
)
def test_bad_timing_says_what_is_wrong(text: str, integer: bool, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_timing(text, integer=integer)


@pytest.mark.parametrize(
    "spec",
    ["uniform:0.01,0.03", "normal:0.02,0.005", "lognormal:0.02,0.4", "exponential:0.02"],
)
def test_draws_have_the_stated_mean_and_are_never_negative(spec: str) -> None:
    distribution = parse_timing(spec)
    assert isinstance(distribution, Distribution)
    rng = random.Random(1)
    draws = [distribution.draw(rng) for _ in range(20_000)]
    assert min(draws) >= 0.0
    assert sum(draws) / len(draws) == pytest.approx(distribution.mean, rel=0.03)
    assert len(set(draws)) > 19_000  # drawn, not a constant


def test_whole_number_draws_cover_their_range_and_never_go_below_one() -> None:
    rng = random.Random(2)
    uniform = Distribution("uniform", (1.0, 4.0), integer=True)
    assert {uniform.draw(rng) for _ in range(1000)} == {1.0, 2.0, 3.0, 4.0}
    wide = Distribution("normal", (1.0, 3.0), integer=True)
    draws = [wide.draw(rng) for _ in range(1000)]
    assert min(draws) == 1.0 and all(d.is_integer() for d in draws)


def test_a_fixed_pace_is_the_old_arithmetic_and_a_drawn_one_adds_up_its_gaps() -> None:
    fixed = draw_pace(0.2, 0.02, 10, random.Random(0))
    assert fixed == Pace(0.2, 0.02)
    assert [fixed.at(k) for k in range(3)] == [0.2, 0.2 + 0.02, 0.2 + 2 * 0.02]
    rng = random.Random(3)
    drawn = draw_pace(
        Distribution("uniform", (0.1, 0.3)), Distribution("exponential", (0.01,)), 50, rng
    )
    assert 0.1 <= drawn.ttft <= 0.3 and drawn.at(0) == drawn.ttft
    dues = [drawn.at(k) for k in range(50)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(dues)]
    assert len(gaps) == 49 and min(gaps) >= 0 and len(set(gaps)) == 49
    assert drawn.itl == pytest.approx(sum(gaps) / 49)  # the mean gap, for llama.cpp's timings


def test_drawn_chunk_sizes_cut_reasoning_and_content_exactly() -> None:
    per = Distribution("uniform", (1.0, 3.0), integer=True)
    assert draw_chunk_sizes(4, 10, random.Random(0)) == ()  # fixed: no draws
    generation = plan_generation(
        {"max_tokens": 40},
        prompt_tokens=5,
        cached_tokens=0,
        reasoning_tokens=7,
        default_tokens=40,
        tokens_per_chunk=per,
        limit_keys=("max_tokens",),
        call_prefix="call",
        rng=random.Random(4),
    )
    reasoning, content = generation.chunk_counts()
    assert sum(reasoning) == 7 and sum(content) == 33
    assert set(reasoning + content) <= {1, 2, 3} and len(set(content)) == 3
    pieces = list(generation.pieces())
    assert [count for _, _, count in pieces] == reasoning + content
    assert generation.slots == len(pieces)
    assert generation.mean_chunk_tokens == pytest.approx(40 / len(pieces))
