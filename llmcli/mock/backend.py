"""The dialect-free half of answering a request: faults, timing and response writing.

A dialect (:mod:`llmcli.mock.zen`, :mod:`llmcli.mock.llamacpp`) subclasses
:class:`Backend`, routes requests, validates them in its own error shapes, and hands a
:class:`~llmcli.mock.generation.Generation` plus its frame format to :meth:`Backend.stream`
or its JSON body to :meth:`Backend.send_generated`, which apply the schedule and the drawn
fault.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from abc import ABC, abstractmethod
from typing import Any

from llmcli.mock.config import FaultName, MockConfig
from llmcli.mock.generation import Generation
from llmcli.mock.http import Connection, Request, encode_head
from llmcli.mock.record import RecordedRequest, SentFrame
from llmcli.mock.schedule import Pacer, StreamRun, sleep_until
from llmcli.mock.stream import StreamFormat, plan_stream
from llmcli.mock.timing import Pace, draw_pace

Headers = tuple[tuple[str, str], ...]

LOADING_BODY: dict[str, Any] = {
    "error": {"message": "Loading model", "type": "unavailable_error", "code": 503}
}
HTML_500 = (
    b"<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n"
    b"<center><h1>500 Internal Server Error</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


class Backend(ABC):
    """Answers requests in one dialect; owns the fault draw and the request counter."""

    json_type = "application/json"
    stream_headers: Headers = (("content-type", "text/event-stream"),)
    extra_headers: Headers = ()

    def __init__(self, config: MockConfig) -> None:
        self.config = config
        self.started = 0.0  # loop.time() when the server started listening
        self._rng = random.Random(config.seed)
        self.timing_rng = random.Random(f"timing {config.seed}")  # apart from the faults'
        self._faults_given = 0
        self._sequence = 0
        self._pacer = Pacer()

    @abstractmethod
    async def handle(self, request: Request, conn: Connection, record: RecordedRequest) -> None:
        """Answer one request, recording status, fault and frames in ``record``."""

    # Dialect-specific bodies --------------------------------------------------------------

    @abstractmethod
    def rate_limit_body(self) -> dict[str, Any]: ...

    @abstractmethod
    def server_error_body(self) -> dict[str, Any]: ...

    @abstractmethod
    def error_event_body(self) -> dict[str, Any]:
        """The error a broken generation reports (mid-stream, or as a non-stream 500)."""

    # Shared machinery ---------------------------------------------------------------------

    def next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    def draw_pace(self, slots: int) -> Pace:
        """A request's TTFT and the deadlines of its ``slots`` chunks (fixed, or drawn: see
        :mod:`llmcli.mock.timing`)."""
        config = self.config
        return draw_pace(config.ttft, config.itl, slots, self.timing_rng)

    def draw_fault(self) -> FaultName | None:
        limit = self.config.faults.limit
        if limit is not None and self._faults_given >= limit:
            return None
        fault = self.config.faults.choose(self._rng)
        if fault is not None:
            self._faults_given += 1
        return fault

    async def send(
        self,
        conn: Connection,
        record: RecordedRequest,
        status: int,
        body: bytes,
        content_type: str,
        extra: Headers = (),
    ) -> None:
        headers = [
            ("content-type", content_type),
            *self.extra_headers,
            *extra,
            *conn.framing_headers(len(body)),
        ]
        record.status = status
        self._note(record, "body")
        record.completed = True
        conn.write(encode_head(status, headers) + body)
        await conn.drain()

    async def send_json(
        self,
        conn: Connection,
        record: RecordedRequest,
        status: int,
        body: dict[str, Any],
        extra: Headers = (),
    ) -> None:
        await self.send(conn, record, status, _dump(body), self.json_type, extra)

    async def send_status_fault(
        self, conn: Connection, record: RecordedRequest, fault: FaultName
    ) -> None:
        faults = self.config.faults
        if fault == "status_429":
            retry = ("retry-after", format(faults.retry_after, "g"))
            await self.send_json(conn, record, 429, self.rate_limit_body(), (retry,))
        elif fault == "status_500" and faults.html_500:
            await self.send(conn, record, 500, HTML_500, "text/html")
        elif fault == "status_500":
            await self.send_json(conn, record, 500, self.server_error_body())
        else:
            await self.send_json(conn, record, 503, LOADING_BODY)

    async def send_generated(
        self,
        conn: Connection,
        request: Request,
        record: RecordedRequest,
        fault: FaultName | None,
        slots: int,
        body: dict[str, Any],
        pace: Pace,
    ) -> None:
        """A whole (non-stream) answer, sent when its last token would have been."""
        if fault == "error_event":
            await self.send_json(conn, record, 500, self.error_event_body())
            return
        config = self.config
        data = _dump(body)
        if fault == "malformed":
            data = data[: len(data) // 2]
        headers = [
            ("content-type", self.json_type),
            *self.extra_headers,
            *conn.framing_headers(len(data)),
        ]
        head = encode_head(200, headers)
        record.status = 200
        if fault == "stall":
            self._note(record, "headers")
            conn.write(head)
            head = b""
            await conn.drain()
            await asyncio.sleep(config.faults.stall_seconds)
        last_slot = max(slots - 1, 0)
        await sleep_until(request.loop_time + pace.at(last_slot))
        record.completed = True
        if fault == "reset":
            self._note(record, "partial")
            conn.write(head + data[: len(data) // 2])
            await conn.reset()
        else:
            self._note(record, "body")
            conn.write(head + data)
            await conn.drain()

    async def stream(
        self,
        conn: Connection,
        request: Request,
        record: RecordedRequest,
        fault: FaultName | None,
        generation: Generation,
        fmt: StreamFormat,
        pace: Pace,
    ) -> None:
        config = self.config
        headers = [
            *self.stream_headers,
            *self.extra_headers,
            *conn.framing_headers(None),
        ]
        record.status = 200
        steps = plan_stream(generation, fmt, fault, config.faults, config.empty_chunks)
        run = StreamRun(
            self._pacer,
            conn,
            record,
            steps,
            head=encode_head(200, headers),
            start=request.loop_time,
            pace=pace,
            keepalive=config.keepalive_interval,
            stall_seconds=config.faults.stall_seconds,
            record_frames=config.record_frames,
        )
        await run.run()

    def _note(self, record: RecordedRequest, kind: str) -> None:
        if self.config.record_frames:
            record.frames.append(SentFrame(time.perf_counter(), kind))


def _dump(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()
