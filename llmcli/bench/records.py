"""What a benchmark run records: its levels and profiles, filled in as the run goes.

Plain data, shared by the runner that fills it (:mod:`llmcli.bench.runner`), the worker
processes (:mod:`llmcli.bench.workers`) and the reports that write and read it
(:mod:`llmcli.bench.report`); it imports no network code, so reading a results file
(``bench compare``, ``bench check``) never loads the transport.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmcli.bench.metrics import RequestRecord
from llmcli.bench.workload import Settings

if TYPE_CHECKING:
    from llmcli.bench.sweep import SweepBounds


@dataclass(slots=True)
class LevelResult:
    """One load level (a concurrency, or a request rate) against one profile."""

    concurrency: int
    rate: float | None = None
    records: list[RequestRecord] = field(default_factory=list)
    started_at: float = 0.0
    ended_at: float = 0.0
    send_offsets: list[float] = field(default_factory=list)  # open loop: actual send times
    # Why the level ended early (a lost worker): its records are what the others sent back.
    incomplete: str | None = None


def level_key(level: LevelResult) -> str:
    """A level's name in tables and results files: ``c=4``, or ``rate 2/s``."""
    return f"rate {level.rate:g}/s" if level.rate is not None else f"c={level.concurrency}"


@dataclass(slots=True)
class ProfileRun:
    """Everything measured against one profile; ``base_url`` only, never keys or headers."""

    name: str
    base_url: str
    dialect: str | None
    model: str | None
    levels: list[LevelResult] = field(default_factory=list)
    server: dict[str, Any] = field(default_factory=dict)  # see fetch_server_info
    input_tokens: dict[str, Any] | None = None  # synthetic prompt: target vs measured


@dataclass(slots=True)
class BenchRun:
    """A whole run: settings, environment, and each profile's levels, filled as it goes."""

    settings: Settings
    started: str
    environment: dict[str, Any]
    clock_origin: float
    profiles: list[ProfileRun] = field(default_factory=list)
    interrupted: bool = False
    error: str | None = None  # the error line that ended the run early, if one did
    sweep: SweepBounds | None = None  # --sweep: levels chosen by the knee search
