"""A bench run checked against the mock server's own log: what llmcli measured against what
was sent. Pure: it reads two decoded documents and computes.

``llmcli mock-server --log FILE`` writes a line a request: when its first bytes arrived and
when each frame left. A bench results file holds what the client saw of each request,
with the random prefix of its prompt (``nonce``), which the log's request body holds too.
Matched by it, durations are compared, so the two files need no common clock origin:

- TTFT error: client TTFT (first token chunk - send) - the log's (first token frame -
  arrival): the trip to the server and the first token's read;
- ITL error: each gap between the client's token chunks - the same gap in the log (where
  both have as many token chunks). Two frames the client read as one carry one arrival
  time: their gap shows here as an error of the whole gap, as it is one in the figures;
- e2e error: client e2e (the later of its last token chunk and its finish - send) - the
  log's (the finish frame, or the last token frame without one - arrival).

Errors are absolute values, in seconds. Warm-up requests and requests that failed on
either side are left out and counted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmcli.bench.metrics import Stats, describe
from llmcli.bench.workload import not_utf8, prompt_nonce
from llmcli.errors import UsageError

TOKEN_FRAMES = frozenset({"content", "reasoning", "tool"})


@dataclass(frozen=True, slots=True)
class ServerTimes:
    """One request as the mock's log has it: arrival, token frames, finish (seconds)."""

    arrived: float
    tokens: tuple[float, ...]
    finish: float | None


@dataclass(frozen=True, slots=True)
class LevelCheck:
    profile: str
    load: str
    matched: int
    unmatched: int  # measured requests the log has no (whole) answer for
    ttft: Stats
    itl: Stats
    e2e: Stats

    def as_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "load": self.load,
            "matched": self.matched,
            "unmatched": self.unmatched,
            "ttft_error": self.ttft.as_dict(),
            "itl_error": self.itl.as_dict(),
            "e2e_error": self.e2e.as_dict(),
        }


def load_mock_log(path: Path) -> dict[str, ServerTimes]:
    """The log's completed 200 streams, by the first word of their first message."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:  # a damaged or foreign file: the log is UTF-8
        raise UsageError(f"{path} is not a mock-server --log file: {not_utf8(error)}") from None
    return parse_mock_log(lines, str(path))


def parse_mock_log(lines: Iterable[str], name: str = "the log") -> dict[str, ServerTimes]:
    out: dict[str, ServerTimes] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            raise UsageError(
                f"{name}:{number}: not JSON (is it a mock-server --log file?)"
            ) from None
        try:
            parsed = _server_times(entry)
        except (AttributeError, KeyError, TypeError, ValueError):
            raise UsageError(f"{name}:{number}: not a line of a mock-server --log file") from None
        if parsed is not None:
            out[parsed[0]] = parsed[1]
    return out


def _server_times(entry: Any) -> tuple[str, ServerTimes] | None:
    """A log line's nonce and times; ``None`` for what is not a whole 200 answer."""
    body = entry.get("body")
    nonce = prompt_nonce(body.get("messages")) if isinstance(body, dict) else None
    if nonce is None or entry.get("status") != 200 or not entry.get("completed"):
        return None
    frames = [(float(at), str(kind)) for at, kind in entry["frames"]]
    finish = [at for at, kind in frames if kind == "finish"]
    return nonce, ServerTimes(
        arrived=float(entry["arrived"]),
        tokens=tuple(at for at, kind in frames if kind in TOKEN_FRAMES),
        finish=finish[0] if finish else None,
    )


def check_run(results: Mapping[str, Any], log: Mapping[str, ServerTimes]) -> list[LevelCheck]:
    """Every profile and level of a results file, checked against the log."""
    checks = []
    try:
        for profile in results.get("profiles", []):
            for level in profile.get("levels", []):
                checks.append(_check_level(str(profile.get("name", "?")), level, log))
    except (AttributeError, KeyError, TypeError, ValueError):
        raise UsageError(
            "the results file is damaged: its requests are not as llmcli writes them"
        ) from None
    return checks


def _check_level(name: str, level: Mapping[str, Any], log: Mapping[str, ServerTimes]) -> LevelCheck:
    ttft: list[float] = []
    itl: list[float] = []
    e2e: list[float] = []
    matched = unmatched = 0
    for request in level.get("requests", []):
        if request.get("warmup") or request.get("error_kind"):
            continue
        server = log.get(request.get("nonce") or "")
        client = [at for at, _ in request.get("chunks", [])]
        sent = request.get("sent")
        if server is None or not server.tokens or not client or sent is None:
            unmatched += 1
            continue
        matched += 1
        ttft.append(abs((client[0] - sent) - (server.tokens[0] - server.arrived)))
        if len(client) == len(server.tokens):
            for i in range(1, len(client)):
                gap = client[i] - client[i - 1]
                itl.append(abs(gap - (server.tokens[i] - server.tokens[i - 1])))
        finish = request.get("finish")
        client_end = max(client[-1], finish) if finish is not None else client[-1]
        server_end = server.finish if server.finish is not None else server.tokens[-1]
        e2e.append(abs((client_end - sent) - (server_end - server.arrived)))
    return LevelCheck(
        profile=name,
        load=str(level.get("load", "?")),
        matched=matched,
        unmatched=unmatched,
        ttft=describe(ttft),
        itl=describe(itl),
        e2e=describe(e2e),
    )
