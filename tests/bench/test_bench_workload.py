"""Workload pieces: the synthetic prompt's word count and the search that fits it."""

from __future__ import annotations

import random

import pytest

from llmcli.bench.workload import TOKEN_TOLERANCE, next_word_count, synthetic_prompt


@pytest.mark.parametrize(
    ("words", "target", "measured", "expected"),
    [
        (64, 64, 224.0, 18),  # 3.5 tokens a word: scale down
        (64, 64, 32.0, 128),  # half a token a word: scale up
        (10, 64, 61.0, 11),  # rounding would stay put: move one word up
        (10, 30, 33.0, 9),  # ...or one word down
        (5, 64, 0.0, 6),  # nothing counted: grow
        (1, 4, 400.0, 1),  # never below one word
    ],
)
def test_next_word_count(words: int, target: int, measured: float, expected: int) -> None:
    assert next_word_count(words, target, measured) == expected


def test_word_count_search_converges_on_a_scripted_tokenizer() -> None:
    def count(text: str) -> int:  # a tokenizer of 3 tokens a word, 8 for the number
        _number, *rest = text.split()
        return 8 + 3 * len(rest)

    target, words = 100, 100
    for _ in range(8):
        measured = count(synthetic_prompt(target, random.Random(0), words=words))
        if abs(measured - target) <= TOKEN_TOLERANCE:
            break
        words = next_word_count(words, target, measured)
    assert abs(measured - target) <= TOKEN_TOLERANCE


def test_synthetic_prompt_word_count() -> None:
    rng = random.Random(1)
    assert len(synthetic_prompt(12, rng).split()) == 12
    assert len(synthetic_prompt(12, rng, words=5).split()) == 5
    assert synthetic_prompt(9, rng, cache=True) == synthetic_prompt(9, rng, cache=True)
