"""The knee search (llmcli.bench.sweep) driven by scripted measurements, table by table."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from llmcli.bench.sweep import (
    Knee,
    SweepBounds,
    SweepStep,
    find_knee,
    knee_dict,
    next_level,
    step_dict,
)


def run_search(bounds: SweepBounds, share_at: Callable[[float], float]) -> list[SweepStep]:
    """The search as the runner drives it, with 100 requests a level, scripted shares."""
    steps: list[SweepStep] = []
    while (level := next_level(steps, bounds)) is not None:
        assert level not in [s.level for s in steps], "a level is never measured twice"
        steps.append(SweepStep(level, 100, round(100 * share_at(level))))
    return steps


def knee_at(knee: float) -> Callable[[float], float]:
    """A backend that meets the SLO up to ``knee`` and misses it beyond."""
    return lambda level: 1.0 if level <= knee else 0.5


@pytest.mark.parametrize(
    ("bounds", "knee", "levels", "expected"),
    [
        # doubling 1, 2, 4, 8, 16 then bisecting between 8 and 16: 12, 10, 11
        (SweepBounds(1, 256), 10, [1, 2, 4, 8, 16, 12, 10, 11], Knee(10, 11, "found")),
        (SweepBounds(1, 256, max_steps=16), 1, [1, 2], Knee(1, 2, "found")),
        # the limit is measured itself, not skipped over
        (SweepBounds(1, 6), 100, [1, 2, 4, 6], Knee(6, None, "limit")),
        (SweepBounds(4, 64), 2, [4], Knee(None, 4, "start")),
        # out of steps before the pair is adjacent: the bracket so far
        (SweepBounds(1, 256, max_steps=6), 10, [1, 2, 4, 8, 16, 12], Knee(8, 12, "steps")),
        (SweepBounds(1, 256, max_steps=3), 100, [1, 2, 4], Knee(4, None, "steps")),
        (SweepBounds(1, 256, max_steps=1), 0, [1], Knee(None, 1, "start")),
    ],
)
def test_search_closed_loop(
    bounds: SweepBounds, knee: float, levels: list[float], expected: Knee
) -> None:
    steps = run_search(bounds, knee_at(knee))
    assert [s.level for s in steps] == levels
    assert find_knee(steps, bounds) == expected


def test_search_open_loop_bisects_rates_to_the_resolution() -> None:
    bounds = SweepBounds(1.0, 100.0, max_steps=20, integer=False)
    steps = run_search(bounds, knee_at(5.0))
    assert [s.level for s in steps[:5]] == [1.0, 2.0, 4.0, 8.0, 6.0]
    knee = find_knee(steps, bounds)
    assert knee.reason == "found"
    assert knee.last_pass is not None and knee.first_fail is not None
    assert knee.last_pass <= 5.0 < knee.first_fail <= knee.last_pass * 1.1


def test_share_at_the_target_passes_and_just_below_fails() -> None:
    bounds = SweepBounds(1, 8, target=0.9)
    steps = [SweepStep(1, 10, 9), SweepStep(2, 10, 8)]
    assert [s.passed(0.9) for s in steps] == [True, False]
    assert find_knee(steps, bounds) == Knee(1, 2, "found")


def test_a_level_with_no_measured_request_fails() -> None:
    assert not SweepStep(1, 0, 0).passed(0.1)


def test_a_pass_above_the_first_fail_is_noise_not_a_bracket() -> None:
    # 8 failed, 16 passed (noise): the bracket is 4..8, and 16 does not move it
    bounds = SweepBounds(1, 64)
    steps = [SweepStep(1, 10, 10), SweepStep(4, 10, 10), SweepStep(8, 10, 1), SweepStep(16, 10, 10)]
    assert next_level(steps, bounds) == 6
    assert find_knee(steps, bounds) == Knee(4, 8, "steps")


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        (SweepBounds(1, 8, target=0.0), "--sweep-target 0"),
        (SweepBounds(1, 8, target=1.5), "--sweep-target 1.5"),
        (SweepBounds(0, 8), "sweep start 0"),
        (SweepBounds(1.5, 8), "sweep start 1.5"),
        (SweepBounds(4, 2), "--sweep-max 2"),
        (SweepBounds(1, 10**6), "--sweep-max 1e+06"),
        (SweepBounds(1, 8.5), "--sweep-max 8.5"),
        (SweepBounds(1, 8, max_steps=0), "--sweep-steps 0"),
        (SweepBounds(1, 8, max_steps=1000), "--sweep-steps 1000"),
    ],
)
def test_absurd_bounds_are_refused(bounds: SweepBounds, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("+", r"\+")):
        bounds.check()


def test_a_fractional_max_is_fine_for_a_rate() -> None:
    SweepBounds(0.5, 8.5, integer=False).check()


def test_the_figures_of_a_step_and_the_knee_as_data() -> None:
    assert step_dict(SweepStep(4, 10, 9), 0.9) == {
        "level": 4,
        "requests": 10,
        "within_slo": 9,
        "share": 0.9,
        "passed": True,
    }
    assert knee_dict(Knee(10, 11, "found")) == {
        "last_pass": 10,
        "first_fail": 11,
        "reason": "found",
        "summary": "between 10 (met the SLO) and 11 (missed it)",
    }
    assert Knee(None, 4, "start").describe() == "below 4: the first level already missed the SLO"
    assert Knee(6, None, "limit").describe() == "not reached: every level up to 6 met the SLO"
