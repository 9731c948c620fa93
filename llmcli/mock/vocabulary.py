"""The mock model's vocabulary: deterministic output words and rough prompt token counts.

One output token is one word with a leading space, taken in turn from a short fixed list
(reasoning from its own list), so every byte of an answer is predictable: content token ``i``
is ``" " + CONTENT_WORDS[i % len(CONTENT_WORDS)]``. A prompt counts one token per
whitespace-separated word of its text.

The JSON encoding of a run of words is cached: the words cycle, so a stream of any length
needs only a handful of distinct encoded chunks, and a token costs a dictionary look-up.
"""

from __future__ import annotations

import json
from functools import lru_cache

CONTENT_WORDS: tuple[str, ...] = (
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
)
REASONING_WORDS: tuple[str, ...] = ("hmm", "let", "me", "think", "this", "through")


def make_text(words: tuple[str, ...], start: int, count: int) -> str:
    """The text of ``count`` tokens starting at token ``start``."""
    size = len(words)
    return "".join(" " + words[(start + i) % size] for i in range(count))


def content_text(start: int, count: int) -> str:
    return make_text(CONTENT_WORDS, start, count)


def reasoning_text(start: int, count: int) -> str:
    return make_text(REASONING_WORDS, start, count)


def encode_content(start: int, count: int) -> bytes:
    """``json.dumps`` of :func:`content_text`, as bytes, from a cache."""
    return _encode(False, start % len(CONTENT_WORDS), count)


def encode_reasoning(start: int, count: int) -> bytes:
    return _encode(True, start % len(REASONING_WORDS), count)


@lru_cache(maxsize=4096)
def _encode(reasoning: bool, start: int, count: int) -> bytes:
    words = REASONING_WORDS if reasoning else CONTENT_WORDS
    return json.dumps(make_text(words, start, count)).encode()


def count_words(value: object) -> int:
    """Rough token count of a message ``content``: a string or a list of text parts."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        total = 0
        for part in value:
            if isinstance(part, str):
                total += len(part.split())
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                total += len(part["text"].split())
        return total
    return 0


def count_prompt_tokens(messages: list[object]) -> int:
    """Rough prompt size of a chat request: the words of every message's content."""
    return sum(count_words(m.get("content")) for m in messages if isinstance(m, dict))
