"""What the mock backend is told to be: its dialect, its speed and the faults it injects.

Both classes are frozen and validated on construction, so a bad rate or a negative delay
fails where the configuration is written, not half-way through a benchmark.

Faults are drawn once per generation request (chat, completions, embeddings) from one
``random.Random(seed)``: a single uniform draw is walked through the rates in
``FAULT_NAMES`` order, so each fault happens with exactly its own probability and a request
gets at most one. A rate of 1.0 makes a fault certain; ``Faults.limit`` caps how many
requests get one (``status_429=1.0, limit=1``: the first request is rate limited, the retry
succeeds).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal, get_args

from llmcli.mock.timing import Distribution

Dialect = Literal["zen", "llamacpp"]

FaultName = Literal[
    "status_429",
    "status_500",
    "status_503",
    "stall",
    "reset",
    "error_event",
    "no_done",
    "malformed",
]
FAULT_NAMES: tuple[FaultName, ...] = get_args(FaultName)

# Faults answered with an error status before any generation starts.
STATUS_FAULTS: frozenset[FaultName] = frozenset({"status_429", "status_500", "status_503"})


@dataclass(frozen=True, slots=True)
class Faults:
    """Per-request probabilities of each protocol fault, and the parameters they need.

    - ``status_429``: 429 with a ``retry-after`` header of ``retry_after`` seconds.
    - ``status_500``: 500 with the dialect's error JSON, or an HTML page if ``html_500``.
    - ``status_503``: 503 with llama-server's ``Loading model`` body.
    - ``stall``: headers and ``stall_after_tokens`` tokens, then ``stall_seconds`` of
      silence, then the rest of the answer at once (a read timeout shorter than the stall
      fires).
    - ``reset``: ``reset_after_tokens`` tokens, then the socket is closed with RST.
    - ``error_event``: a 200 stream carrying ``data: {"error": ...}`` after
      ``error_after_tokens`` tokens, ending without ``[DONE]`` (non-stream: a 500).
    - ``no_done``: the stream ends after the finish chunk, without usage, ``[DONE]`` or
      cost frame; with ``no_finish`` it ends after the last delta, with no finish_reason.
    - ``malformed``: a frame of invalid JSON after ``malformed_after_tokens`` tokens, then
      the stream goes on normally (non-stream: a truncated JSON body).
    """

    status_429: float = 0.0
    status_500: float = 0.0
    status_503: float = 0.0
    stall: float = 0.0
    reset: float = 0.0
    error_event: float = 0.0
    no_done: float = 0.0
    malformed: float = 0.0
    retry_after: float = 1.0
    html_500: bool = False
    stall_seconds: float = 30.0
    stall_after_tokens: int = 0
    reset_after_tokens: int = 2
    error_after_tokens: int = 2
    malformed_after_tokens: int = 2
    no_finish: bool = False
    limit: int | None = None

    def __post_init__(self) -> None:
        total = 0.0
        for name, rate in self.rates():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"Faults.{name} is a probability: 0..1, not {rate}")
            total += rate
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"fault rates add up to {total:g}: a request gets at most one fault, "
                "so they must add up to 1 or less"
            )
        for position in (
            "stall_after_tokens",
            "reset_after_tokens",
            "error_after_tokens",
            "malformed_after_tokens",
        ):
            if getattr(self, position) < 0:
                raise ValueError(f"Faults.{position} must be 0 or more")
        if self.retry_after < 0 or self.stall_seconds < 0:
            raise ValueError("Faults.retry_after and Faults.stall_seconds must be 0 or more")
        if self.limit is not None and self.limit < 0:
            raise ValueError("Faults.limit must be 0 or more (None: no limit)")

    def rates(self) -> tuple[tuple[FaultName, float], ...]:
        """Each fault's probability, in the order a draw is walked through them."""
        return (
            ("status_429", self.status_429),
            ("status_500", self.status_500),
            ("status_503", self.status_503),
            ("stall", self.stall),
            ("reset", self.reset),
            ("error_event", self.error_event),
            ("no_done", self.no_done),
            ("malformed", self.malformed),
        )

    def choose(self, rng: random.Random) -> FaultName | None:
        """Draw the fault for one request (``None``: answer normally)."""
        rates = self.rates()
        if not any(rate for _, rate in rates):
            return None
        draw = rng.random()
        for name, rate in rates:
            if draw < rate:
                return name
            draw -= rate
        return None


@dataclass(frozen=True, slots=True)
class ScriptedCall:
    """One tool call a scripted step makes; ``arguments`` is sent as given (JSON text, or
    deliberately not JSON), and ``name`` need not be among the request's tools."""

    name: str
    arguments: str = "{}"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("ScriptedCall.name must be a non-empty string")
        if not isinstance(self.arguments, str):
            raise ValueError("ScriptedCall.arguments is JSON text: a string")


ToolStep = tuple[ScriptedCall, ...]


@dataclass(frozen=True, slots=True)
class MockConfig:
    """How the mock backend behaves; see the package docstring for the wire details.

    ``api_keys``: in the zen dialect the valid real keys (``None``: any key is real);
    requests with no key or the key ``public`` may use free models only (``big-pickle`` and
    ids ending in ``-free``). In the llamacpp dialect, when set, every route but health and
    models needs one of them.

    ``ttft``, ``itl``, ``tokens_per_chunk``: each a fixed value or a
    :class:`~llmcli.mock.timing.Distribution` drawn per request (TTFT), per gap (ITL) or
    per chunk (its tokens), from a generator seeded with ``seed``.
    ``empty_chunks``: ``choices: []`` chunks sent after every token chunk (some zen models).
    ``keepalive_interval``: when above 0, an SSE comment ``: keep-alive`` is sent whenever
    the stream has been quiet that long (never during a stall fault).
    ``n_ctx``/``loading_seconds``: llamacpp only; a longer prompt gets llama-server's
    ``exceed_context_size_error``, and for ``loading_seconds`` after start every route
    answers 503 ``Loading model``.
    ``record_frames``: keep the time of every frame sent (turn off for very long runs).

    Multi-step tool conversations (both off by default, which keeps the behaviour in
    ``generation``'s docstring):
    ``tool_script``: the calls of each tool step. Step ``n`` is a request whose messages
    hold ``n`` assistant answers with ``tool_calls`` after the last user message; while
    ``n`` is within the script (and the request has tools and ``tool_choice`` is not
    ``none``) the answer makes exactly step ``n``'s calls, whatever ``tool_choice`` and
    ``parallel_tool_calls`` say. An empty step answers in text.
    ``answer_tool_results``: a request whose last message is a ``tool`` message, beyond
    the script, is answered in text, one line ``name: content`` per result it ends with,
    even under ``tool_choice: "required"``.
    """

    dialect: Dialect = "zen"
    models: tuple[str, ...] = ("big-pickle", "grok-code-fast-1-free", "claude-sonnet-4")
    api_keys: frozenset[str] | None = None
    ttft: float | Distribution = 0.0
    itl: float | Distribution = 0.0
    tokens_per_chunk: int | Distribution = 1
    default_max_tokens: int = 16
    reasoning_tokens: int = 0
    reasoning_field: str = "reasoning_content"
    cached_tokens: int = 0
    empty_chunks: int = 0
    keepalive_interval: float = 0.0
    n_ctx: int = 4096
    loading_seconds: float = 0.0
    record_frames: bool = True
    faults: Faults = field(default_factory=Faults)
    seed: int = 0
    tool_script: tuple[ToolStep, ...] = ()
    answer_tool_results: bool = False

    def __post_init__(self) -> None:
        if self.dialect not in get_args(Dialect):
            raise ValueError(f"dialect must be 'zen' or 'llamacpp', not {self.dialect!r}")
        if not self.models:
            raise ValueError("MockConfig.models needs at least one model id")
        per = self.tokens_per_chunk
        if isinstance(per, Distribution) and not per.integer:
            raise ValueError("MockConfig.tokens_per_chunk: a distribution of whole numbers")
        if not isinstance(per, Distribution) and per < 1:
            raise ValueError("MockConfig.tokens_per_chunk must be 1 or more")
        for name in ("ttft", "itl", "keepalive_interval", "loading_seconds"):
            value = getattr(self, name)
            if not isinstance(value, Distribution) and value < 0:
                raise ValueError(f"MockConfig.{name} must be 0 or more seconds")
        for name in (
            "default_max_tokens",
            "reasoning_tokens",
            "cached_tokens",
            "empty_chunks",
            "n_ctx",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"MockConfig.{name} must be 0 or more")
        for step in self.tool_script:
            if not isinstance(step, tuple) or not all(isinstance(c, ScriptedCall) for c in step):
                raise ValueError(
                    "MockConfig.tool_script holds tuples of ScriptedCall, one per step"
                )
