"""What a benchmark sends, and when: prompts, request bodies, load schedules, settings.

Pure apart from reading a prompt file. Synthetic prompts are built from short common
words (about one token each with a BPE or SPM vocabulary); each gets a random prefix so
a repeated run does not hit the server's prompt cache, unless ``cache`` asks for it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from llmcli.bench.metrics import Slo
from llmcli.errors import UsageError

Message = Mapping[str, Any]
Arrival = Literal["poisson", "constant"]

_WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "it",
    "that",
    "for",
    "on",
    "with",
    "as",
    "was",
    "at",
    "by",
    "be",
    "this",
    "from",
    "or",
    "have",
    "an",
    "are",
    "not",
    "but",
    "one",
    "all",
    "can",
    "had",
    "her",
    "his",
    "more",
    "out",
    "so",
    "up",
    "use",
    "we",
    "when",
    "which",
    "will",
]


# The bounds of a run's numbers (see Settings.__post_init__). Generous for any real
# benchmark; past them a number is a typo, and would cost memory without bound.
MAX_LEVELS = 100
MAX_CONCURRENCY = 10_000  # streams a level: a task and a socket each
MAX_REQUESTS = 1_000_000  # requests a level (and warm-up requests): a record each
MAX_DURATION = 7 * 24 * 3600.0  # seconds a level
MAX_RATE = 10_000.0  # open-loop requests/s
MAX_WORKERS = 64  # processes
MAX_INPUT_TOKENS = 1 << 20  # words of a synthetic prompt, built for every request
MAX_OUTPUT_TOKENS = 1 << 20


def _check_count(option: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise UsageError(f"{option} {value}: use a whole number from {low} to {high}")


def _check_amount(option: str, value: float, high: float, unit: str, note: str = "") -> None:
    """A positive, finite amount; NaN fails every comparison, so it is refused too."""
    if not 0 < value <= high:
        shown = f"{value:.0f}" if math.isfinite(value) and abs(value) >= 1e7 else f"{value:g}"
        raise UsageError(
            f"{option} {shown}{unit}: use a number above 0, at most {high:g}{unit}{note}"
        )


@dataclass(frozen=True, slots=True)
class Settings:
    """One benchmark run's workload: the same for every profile it is run against."""

    concurrency: tuple[int, ...] = (1,)
    requests: int | None = 10
    duration: float | None = None
    warmup: int = 0
    input_tokens: int = 64
    max_tokens: int = 64
    model: str | None = None
    prompts_file: str | None = None
    cache: bool = False
    rate: float | None = None
    arrival: Arrival = "poisson"
    seed: int | None = None
    slo: Slo = field(default_factory=Slo)
    workers: int = 1
    # Constrained decoding to measure (llama.cpp grammar, or a JSON schema as JSON text).
    grammar: str | None = None
    json_schema: str | None = None

    def __post_init__(self) -> None:
        # Every number is bounded: each costs the client memory or time before a request
        # is sent (a task a stream, a record a request, a prompt of input_tokens words), so
        # a typo such as --concurrency 99999999999 is refused here, not run out of memory.
        if not self.concurrency or len(self.concurrency) > MAX_LEVELS:
            raise UsageError(f"--concurrency: give 1 to {MAX_LEVELS} levels, e.g. 1,4,16")
        for level in self.concurrency:
            _check_count("--concurrency", level, 1, MAX_CONCURRENCY)
        if self.requests is None and self.duration is None:
            raise UsageError("say when to stop: --requests N or --duration 60s")
        if self.requests is not None:
            _check_count("--requests", self.requests, 1, MAX_REQUESTS)
        if self.duration is not None:
            _check_amount("--duration", self.duration, MAX_DURATION, " s", " (a week)")
        _check_count("--warmup", self.warmup, 0, MAX_REQUESTS)
        _check_count("--input-tokens", self.input_tokens, 1, MAX_INPUT_TOKENS)
        _check_count("--max-tokens", self.max_tokens, 1, MAX_OUTPUT_TOKENS)
        _check_count("--workers", self.workers, 1, MAX_WORKERS)
        if self.rate is not None:
            _check_amount("--rate", self.rate, MAX_RATE, " requests/s")
            if self.requests is None:  # the open-loop schedule is drawn whole, in advance
                assert self.duration is not None
                planned = int(self.rate * self.duration)
                if planned > MAX_REQUESTS:
                    raise UsageError(
                        f"--rate {self.rate:g} for --duration {self.duration:g}s is {planned}"
                        f" requests: at most {MAX_REQUESTS} a level"
                    )

    def as_dict(self) -> dict[str, Any]:
        return {
            "concurrency": list(self.concurrency),
            "requests": self.requests,
            "duration_s": self.duration,
            "warmup": self.warmup,
            "input_tokens": self.input_tokens,
            "max_tokens": self.max_tokens,
            "model": self.model,
            "prompts_file": self.prompts_file,
            "cache": self.cache,
            "rate": self.rate,
            "arrival": self.arrival if self.rate else None,
            "seed": self.seed,
            "slo": self.slo.describe(),
            "workers": self.workers,
        }


def synthetic_prompt(
    input_tokens: int, rng: random.Random, *, cache: bool = False, words: int | None = None
) -> str:
    """About ``input_tokens`` tokens of filler text: ``words`` words (default one a token).

    Without ``cache`` every prompt is new: random words behind a random number, so no
    prefix cache can match. With ``cache`` every prompt of a length is the same text.
    ``words`` comes from :func:`next_word_count` when a server can count the tokens.
    """
    count = input_tokens if words is None else words
    source = random.Random(input_tokens) if cache else rng
    # One choices() call: a choice() a word cost ~70 µs a 128-token prompt, inside the burst
    # of requests a closed loop sends whenever streams end together.
    chosen = source.choices(_WORDS, k=max(0, count - 1))
    chosen.insert(0, "bench" if cache else f"{rng.randrange(10**8):08d}")
    return " ".join(chosen)


# A synthetic prompt is close enough when its mean token count is this near the target.
TOKEN_TOLERANCE = 2


def next_word_count(words: int, target: int, measured: float) -> int:
    """The next guess of a prompt's word count, from ``measured`` tokens at ``words`` words.

    Scales by the measured tokens a word, and always moves at least one word towards the
    target so the search cannot stall on a rounding.
    """
    if measured <= 0:
        return words + 1
    guess = max(1, round(words * target / measured))
    if guess == words and abs(measured - target) > TOKEN_TOLERANCE:
        guess = words + 1 if measured < target else max(1, words - 1)
    return guess


def load_prompts(path: Path) -> list[list[Message]]:
    """Conversations from a prompt file: JSONL of message lists, or one prompt per line.

    A JSONL line may be a list of messages, ``{"messages": [...]}``, or a JSON string.
    The file must be UTF-8: another encoding is refused, with where its first other byte
    is, rather than decoded with replacements (a prompt with its letters replaced is not
    the prompt meant, and has another token count).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot read --prompts {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise UsageError(
            f"--prompts {path}: {not_utf8(error)}; convert it, e.g. iconv -f latin1 -t utf-8"
        ) from None
    conversations: list[list[Message]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        conversations.append(_parse_prompt_line(line, path, number))
    if not conversations:
        raise UsageError(f"--prompts {path} holds no prompts (one per line, or JSONL messages)")
    return conversations


def not_utf8(error: UnicodeDecodeError) -> str:
    """What a decoding error says, in a line: the byte and its offset in the file."""
    byte = error.object[error.start : error.start + 1].hex()
    return f"not UTF-8 (byte 0x{byte} at offset {error.start})"


def _parse_prompt_line(line: str, path: Path, number: int) -> list[Message]:
    stripped = line.strip()
    if stripped[0] not in '[{"':
        return [{"role": "user", "content": line}]
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError:
        return [{"role": "user", "content": line}]
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, Mapping):
        value = value.get("messages")
    if isinstance(value, list) and value and all(isinstance(m, Mapping) for m in value):
        return [dict(m) for m in value]
    raise UsageError(f'{path}:{number}: expected a list of messages or {{"messages": [...]}}')


def vary(messages: Sequence[Message], rng: random.Random) -> list[Message]:
    """The conversation with a random prefix on its first message (defeats prompt caches)."""
    varied: list[dict[str, Any]] = [dict(m) for m in messages]
    first = varied[0]
    if isinstance(first.get("content"), str):
        first["content"] = f"{rng.randrange(10**8):08d} {first['content']}"
    return list(varied)


def prompt_nonce(messages: Any) -> str | None:
    """The random prefix of a conversation's first message (``vary``, ``synthetic_prompt``):
    what a request is found by in a server's log. ``None`` for any other shape."""
    if not isinstance(messages, Sequence) or not messages or not isinstance(messages[0], Mapping):
        return None
    content = messages[0].get("content")
    return content.split(" ", 1)[0] if isinstance(content, str) and content else None


def request_extra(dialect: str | None) -> dict[str, Any]:
    """Body fields that make the output length the requested one, where a server has them.

    Only llama.cpp honours ``ignore_eos``; other servers may reject unknown fields.
    """
    return {"ignore_eos": True} if dialect == "llamacpp" else {}


def read_constraints(settings: Settings, grammar: Path | None, schema: Path | None) -> Settings:
    """``settings`` with the ``--grammar`` and ``--json-schema`` files read in."""
    from llmcli.wire.constraints import read_grammar, read_schema

    return dataclasses.replace(
        settings,
        grammar=None if grammar is None else read_grammar(grammar),
        json_schema=None if schema is None else json.dumps(read_schema(schema)),
    )


def request_constraints(settings: Settings, dialect: str | None) -> dict[str, object]:
    """The grammar or JSON schema every request carries, in the dialect's own fields.

    A dialect that cannot apply it is refused (``UsageError``), before any request.
    """
    from llmcli.wire.constraints import constraint_fields

    schema = None if settings.json_schema is None else json.loads(settings.json_schema)
    return constraint_fields(dialect, grammar=settings.grammar, schema=schema)


def arrival_offsets(
    rate: float, count: int, rng: random.Random, arrival: Arrival = "poisson"
) -> list[float]:
    """When each of ``count`` requests is sent (seconds from the start), computed up front.

    Poisson: exponential gaps of mean ``1 / rate``; constant: exactly ``1 / rate`` apart.
    """
    if rate <= 0:
        raise ValueError("rate must be more than 0")
    offsets: list[float] = []
    at = 0.0
    for _ in range(count):
        offsets.append(at)
        at += rng.expovariate(rate) if arrival == "poisson" else 1.0 / rate
    return offsets


def parse_levels(text: str) -> tuple[int, ...]:
    """``1,4,16`` -> (1, 4, 16)."""
    try:
        levels = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageError(
            f"--concurrency {text!r}: use integers separated by commas, e.g. 1,4,16"
        ) from None
    if not levels or any(level < 1 for level in levels):
        raise UsageError(f"--concurrency {text!r}: use positive integers, e.g. 1,4,16")
    return levels
