"""What the mock backend remembers of each request: the ground truth a benchmark is checked
against.

Times are ``time.perf_counter()`` values taken as the bytes are handed to the socket
(several frames written in one call share a time); a frame is in the record before a client
can have read it. ``arrived_at`` is when the request's first bytes came off the socket;
``received_at`` is when its body had been read, and every deadline of the response is
computed from that moment.

Frame kinds: ``headers`` (a non-stream response's head sent ahead of its body), ``body``
(a whole non-stream response), ``role``, ``reasoning``, ``content``, ``tool``, ``empty``
(``choices: []``), ``finish``, ``usage``, ``done``, ``cost``, ``error``, ``malformed``,
``comment`` (SSE keep-alive), ``partial`` (the half body a non-stream reset sends). A
stream's head is always recorded as ``headers``; it is written at once, together with the
first frames when they are due at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from llmcli.mock.config import FaultName


class SentFrame(NamedTuple):
    at: float
    kind: str


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON body; None when absent or not JSON
    raw_body: bytes
    connection: int  # connections are numbered from 1 in accept order
    received_at: float
    arrived_at: float
    status: int = 0
    fault: FaultName | None = None
    frames: list[SentFrame] = field(default_factory=list)
    completed: bool = False  # the whole response (or the whole injected fault) was written

    def times(self, *kinds: str) -> list[float]:
        """When each frame of the given kinds (all frames if none given) was sent."""
        return [f.at for f in self.frames if not kinds or f.kind in kinds]

    def kinds(self) -> list[str]:
        return [f.kind for f in self.frames]
