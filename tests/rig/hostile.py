"""A hostile HTTP server on 127.0.0.1, scripted per scenario, for the fault matrix.

One server serves every scenario: a scenario is the first segment of the request path,
so a profile whose ``base_url`` is ``http://127.0.0.1:PORT/NAME/v1`` meets the script
registered as ``NAME``. A script maps a route (``chat``, ``text``, ``embeddings``,
``models``, ``health``, ``props``, ``slots``) to the replies given in turn; the last one
repeats. A route the script leaves out answers 404, as a server without it would.

A reply is written by hand, byte for byte, so it can be anything a broken or malicious
server sends: any status line and headers, a body in pieces with pauses between them,
chunked, with a ``content-length`` (possibly a lie) or delimited by closing, compressed
piece by piece (gzip or deflate, each piece sync-flushed so it can be decoded as it
arrives), then ended, cut (the connection closed mid-body) or stalled (nothing more until
the client goes away; bounded by ``STALL_LIMIT``).

Every connection is closed after one reply, so no state crosses requests but the
per-scenario reply counter. ``HostileServer.wait_for_stalls(name, n)`` returns once ``n``
replies of that scenario have sent everything before their stall.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Framing = Literal["chunked", "length", "close"]
Ending = Literal["end", "cut", "stall"]
Encoding = Literal["gzip", "deflate"]

STALL_LIMIT = 60.0  # seconds a stalled reply waits for its client to go away
HEAD_LIMIT = 64 * 1024
BODY_LIMIT = 16 * 1024 * 1024

ROUTES: tuple[tuple[str, str], ...] = (
    ("/chat/completions", "chat"),
    ("/completions", "text"),
    ("/embeddings", "embeddings"),
    ("/models", "models"),
    ("/health", "health"),
    ("/props", "props"),
)


@dataclass(frozen=True, slots=True)
class Pause:
    """Seconds of silence between two body pieces."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted response. ``body`` pieces are bytes or pauses, sent in order."""

    status: int = 200
    reason: str = "OK"
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
    body: tuple[bytes | Pause, ...] = ()
    framing: Framing = "chunked"
    ending: Ending = "end"
    encoding: Encoding | None = None
    # With framing "length": declare this many bytes (None: the true length).
    declared_length: int | None = None
    # Send nothing at all, not even the status line, then end as ``ending`` says.
    headless: bool = False


Script = Mapping[str, Reply | Sequence[Reply]]


# -- building replies ---------------------------------------------------------------------


def json_reply(status: int, payload: Any, *, reason: str = "", **changes: Any) -> Reply:
    """A whole JSON body with its length."""
    return Reply(
        status=status,
        reason=reason or _REASONS.get(status, "Status"),
        body=(json.dumps(payload).encode(),),
        framing="length",
        **changes,
    )


def error_reply(
    status: int, message: str, kind: str = "invalid_request_error", *, retry_after: str = ""
) -> Reply:
    """llama-server's (and OpenAI's) error: ``{"error": {"code", "message", "type"}}``."""
    payload = {"error": {"code": status, "message": message, "type": kind}}
    return json_reply(status, payload, headers=_json_headers(retry_after))


def zen_error_reply(
    status: int, message: str, kind: str = "RateLimitError", *, retry_after: str = ""
) -> Reply:
    """Zen's own error: ``{"type": "error", "error": {"type", "message"}}``."""
    payload = {"type": "error", "error": {"type": kind, "message": message}}
    return json_reply(status, payload, headers=_json_headers(retry_after))


def html_reply(status: int, page: bytes, *, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    """An HTML page (a proxy's error page, a captive portal's login page)."""
    return Reply(
        status=status,
        reason=_REASONS.get(status, "Status"),
        headers=(("content-type", "text/html; charset=utf-8"), *headers),
        body=(page,),
        framing="length",
    )


def stall_reply(*, headless: bool = True) -> Reply:
    """Nothing at all (``headless``), or a 200 stream's headers, then silence."""
    if headless:
        return Reply(headless=True, ending="stall")
    return Reply(headers=(("content-type", "text/event-stream"),), ending="stall")


def _json_headers(retry_after: str) -> tuple[tuple[str, str], ...]:
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
    if retry_after:
        headers += (("retry-after", retry_after),)
    return headers


def sse_frame(payload: Any) -> bytes:
    """One ``data:`` frame of JSON (or of the raw text, when ``payload`` is a str)."""
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


def chunk(
    content: str | None = None,
    *,
    reasoning: str | None = None,
    model: str = "m",
    finish: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An OpenAI chat.completion.chunk."""
    delta: dict[str, Any] = {}
    if content is not None:
        delta["content"] = content
    if reasoning is not None:
        delta["reasoning_content"] = reasoning
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-hostile",
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def sse_reply(
    *frames: bytes | Pause | dict[str, Any] | str,
    done: bool = True,
    ending: Ending = "end",
    encoding: Encoding | None = None,
    framing: Framing = "chunked",
) -> Reply:
    """A ``text/event-stream`` reply: dicts become JSON frames, strs raw ``data:`` frames."""
    body: list[bytes | Pause] = []
    for frame in frames:
        if isinstance(frame, bytes | Pause):
            body.append(frame)
        else:
            body.append(sse_frame(frame))
    if done:
        body.append(b"data: [DONE]\n\n")
    headers: tuple[tuple[str, str], ...] = (("content-type", "text/event-stream"),)
    if encoding is not None:
        headers += (("content-encoding", encoding),)
    return Reply(
        headers=headers, body=tuple(body), ending=ending, encoding=encoding, framing=framing
    )


def answer(text: str, *, model: str = "m", reasoning: str | None = None) -> Reply:
    """A well-formed streamed answer of ``text`` (one token per word), usage included."""
    frames: list[dict[str, Any]] = []
    if reasoning is not None:
        frames.append(chunk(reasoning=reasoning, model=model))
    words = text.split(" ")
    frames += [chunk(w if i == 0 else " " + w, model=model) for i, w in enumerate(words)]
    frames.append(chunk(model=model, finish="stop"))
    frames.append(
        {
            "id": "chatcmpl-hostile",
            "object": "chat.completion.chunk",
            "model": model,
            "choices": [],
            "usage": {
                "prompt_tokens": 3,
                "completion_tokens": len(words),
                "total_tokens": 3 + len(words),
            },
        }
    )
    return sse_reply(*frames)


_REASONS = {
    200: "OK",
    307: "Temporary Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


# -- the server ---------------------------------------------------------------------------


class _Encoder:
    """Compresses each piece and sync-flushes it, so it decodes as soon as it arrives."""

    def __init__(self, encoding: Encoding) -> None:
        # gzip: a gzip member (wbits 31). HTTP "deflate" is the zlib format (wbits 15).
        self._compressor = zlib.compressobj(wbits=31 if encoding == "gzip" else 15)

    def piece(self, data: bytes) -> bytes:
        return self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._compressor.flush(zlib.Z_FINISH)


@dataclass(slots=True)
class _Scenario:
    script: Script
    served: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    stalls: int = 0
    stalled: threading.Condition = field(default_factory=threading.Condition)


class HostileServer:
    """The scripted server on its own event loop in a daemon thread."""

    def __init__(self) -> None:
        self._scenarios: dict[str, _Scenario] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="hostile-server", daemon=True)
        self._stop: asyncio.Event | None = None
        self.port = 0
        self.errors: list[BaseException] = []

    def __enter__(self) -> HostileServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the hostile server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        stop = self._stop
        if stop is not None:
            self._loop.call_soon_threadsafe(stop.set)
        self._thread.join(10)

    def add(self, name: str, script: Script) -> str:
        """Register ``script`` as scenario ``name``; returns its base URL (ending ``/v1``)."""
        if "/" in name or not name:
            raise ValueError(f"a scenario name is one path segment, not {name!r}")
        with self._lock:
            self._scenarios[name] = _Scenario(script)
        return f"http://127.0.0.1:{self.port}/{name}/v1"

    def wait_for_stalls(self, name: str, count: int, timeout: float) -> bool:
        """Wait until ``count`` replies of scenario ``name`` stall; False at the timeout."""
        scenario = self._scenarios[name]
        with scenario.stalled:
            return scenario.stalled.wait_for(lambda: scenario.stalls >= count, timeout)

    def requests(self, name: str) -> list[tuple[str, str, dict[str, str], bytes]]:
        """(method, route, headers, body) of each request the scenario received."""
        return list(self._scenarios[name].requests)

    # -- the loop's side ---------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
            server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away: part of the game
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a fault of the rig itself: the test asserts none
            self.errors.append(error)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        if len(head) > HEAD_LIMIT:
            return
        request_line, *lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = {}
        for line in lines:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        length = min(int(headers.get("content-length", "0")), BODY_LIMIT)
        body = await asyncio.wait_for(reader.readexactly(length), 10) if length else b""
        segments = target.split("?")[0].split("/")  # "", NAME, "v1", "chat", ...
        scenario = self._scenarios.get(segments[1]) if len(segments) > 2 else None
        rest = "/" + "/".join(segments[2:])
        route = next((r for suffix, r in ROUTES if rest.endswith(suffix)), "other")
        if rest.startswith("/slots"):  # /slots, /slots/0?action=save
            route = "slots"
        if scenario is not None:
            scenario.requests.append((method, route, headers, body))
        if scenario is None or route not in scenario.script:
            missing = json_reply(404, {"error": {"message": "no such route"}})
            await self._send(writer, reader, missing, None)
            return
        replies = scenario.script[route]
        if isinstance(replies, Reply):
            reply = replies
        else:
            turn = scenario.served.get(route, 0)
            scenario.served[route] = turn + 1
            reply = replies[min(turn, len(replies) - 1)]
        await self._send(writer, reader, reply, scenario)

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        reader: asyncio.StreamReader,
        reply: Reply,
        scenario: _Scenario | None,
    ) -> None:
        encoder = _Encoder(reply.encoding) if reply.encoding else None
        pieces: list[bytes | Pause] = []
        for piece in reply.body:
            pieces.append(encoder.piece(piece) if encoder and isinstance(piece, bytes) else piece)
        if encoder is not None and reply.ending == "end":
            pieces.append(encoder.finish())
        head = [f"HTTP/1.1 {reply.status} {reply.reason}"]
        head += [f"{name}: {value}" for name, value in reply.headers]
        if reply.framing == "chunked":
            head.append("transfer-encoding: chunked")
        elif reply.framing == "length":
            true_length = sum(len(p) for p in pieces if isinstance(p, bytes))
            declared = true_length if reply.declared_length is None else reply.declared_length
            head.append(f"content-length: {declared}")
        head.append("connection: close")
        if reply.headless:
            pieces = []
        else:
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
            await writer.drain()
        for piece in pieces:
            if isinstance(piece, Pause):
                await asyncio.sleep(piece.seconds)
                continue
            if not piece:
                continue
            if reply.framing == "chunked":
                writer.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
            else:
                writer.write(piece)
            await writer.drain()
        if reply.ending == "end" and not reply.headless:
            if reply.framing == "chunked":
                writer.write(b"0\r\n\r\n")
            await writer.drain()
        elif reply.ending == "stall":
            if scenario is not None:
                with scenario.stalled:
                    scenario.stalls += 1
                    scenario.stalled.notify_all()
            # Silent until the client goes away (reads b"") or the limit.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STALL_LIMIT):
                    while await reader.read(65536):
                        pass
        # "cut": close now, mid-body.
