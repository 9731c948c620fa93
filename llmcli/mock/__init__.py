"""llmcli's own mock backend: zen's and llama-server's dialects, on schedule, with faults.

Zen cannot be reached from the test machines, so this server is how the test suite and the
benchmark meet zen's dialect and the protocol faults real backends produce. It is pure
asyncio with a hand-written HTTP/1.1 layer, so it can reset a connection mid-stream, stall,
or send a malformed frame, and it records when every frame left (the benchmark's ground
truth).

Modules, one job each:

- ``config``: :class:`MockConfig` and :class:`Faults` (frozen, validated).
- ``timing``: TTFT, ITL and tokens per chunk as fixed values or distributions, drawn per
  request into a :class:`~llmcli.mock.timing.Pace`.
- ``vocabulary``: the deterministic output words and prompt token counts.
- ``generation``: what to answer (lengths, tool calls, finish reason, usage).
- ``stream``: a stream's frames in order with the faults spliced in.
- ``schedule``: the pacer: every stream's frames on absolute deadlines, send times recorded.
- ``http``: the minimal HTTP/1.1 connection.
- ``backend``: the dialect-free half of answering; ``zen`` and ``llamacpp`` the dialects
  (``llamacpp_wire``: llama-server's bodies and chunk bytes).
- ``record``: :class:`RecordedRequest`; ``server``: :class:`MockServer` and friends.
- ``options``: ``llmcli mock-server``'s option text (timings, fault rates, tool script)
  to a :class:`MockConfig`; ``processes``: the command's foreground server, its log.
"""

from __future__ import annotations

from llmcli.mock.config import (
    FAULT_NAMES,
    Dialect,
    FaultName,
    Faults,
    MockConfig,
    ScriptedCall,
)
from llmcli.mock.record import RecordedRequest, SentFrame
from llmcli.mock.server import MockServer, MockServerThread, serve_forever
from llmcli.mock.timing import Distribution
from llmcli.mock.vocabulary import CONTENT_WORDS, REASONING_WORDS

__all__ = [
    "CONTENT_WORDS",
    "FAULT_NAMES",
    "REASONING_WORDS",
    "Dialect",
    "Distribution",
    "FaultName",
    "Faults",
    "MockConfig",
    "MockServer",
    "MockServerThread",
    "RecordedRequest",
    "ScriptedCall",
    "SentFrame",
    "serve_forever",
]
