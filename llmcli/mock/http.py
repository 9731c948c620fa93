"""A minimal HTTP/1.1 server connection: just enough to speak like zen and llama-server.

Hand-written on asyncio streams so the mock can do what web frameworks hide: write a chunk
exactly when it wants, go silent, or close a socket with RST. It reads a request line,
headers and a ``Content-Length`` (or chunked) body, answers ``Expect: 100-continue``, keeps
HTTP/1.1 connections alive unless asked to close, and frames streams with chunked transfer
encoding (close-delimited for HTTP/1.0 clients).
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import SupportsIndex

from llmcli.net import kernelstamps

MAX_BODY = 64 * 1024 * 1024
HEAD_LIMIT = 1024 * 1024


class HttpError(Exception):
    """A request that cannot be parsed; answered with ``status`` and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class Request:
    method: str
    target: str
    path: str
    version: str
    headers: dict[str, str]
    body: bytes
    loop_time: float  # loop.time() once the body was read: the response schedule's zero
    perf_time: float  # time.perf_counter() at the same moment, for the record
    arrived_at: float  # time.perf_counter() as the request's first bytes came off the socket

    @property
    def keep_alive(self) -> bool:
        if self.version == "HTTP/1.0":
            return False  # one request per connection: no HTTP/1.0 keep-alive extension
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        return "close" not in tokens

    def bearer_token(self) -> str | None:
        value = self.headers.get("authorization")
        if value is None:
            return None
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return token.strip()


def encode_head(status: int, headers: Iterable[tuple[str, str]]) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    lines = [f"HTTP/1.1 {status} {phrase}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class StampedReader(asyncio.StreamReader):
    """A StreamReader that notes when the bytes it holds began to arrive.

    A client sends its next request on a connection only after the last response, so bytes
    fed to an empty buffer start a request: ``arrived_at`` is the ground truth for when a
    request reached the server, before the server got round to parsing it.
    """

    arrived_at: float | None = None
    kernel_reads: KernelReads | None = None  # set as the connection is made (server.py)

    def feed_data(self, data: Iterable[SupportsIndex]) -> None:
        self.feed_stamped(bytes(data), time.perf_counter())

    def feed_stamped(self, data: bytes, at: float) -> None:
        """``data`` that arrived at ``at`` (the kernel's receive time, from KernelReads)."""
        if data and not self._buffer:  # type: ignore[attr-defined]  # asyncio's own buffer
            self.arrived_at = at
        super().feed_data(data)


class KernelReads:
    """Reads a connection with ``recvmsg`` so a request's arrival is the kernel's time.

    asyncio's transport reads when the mock's loop gets round to it, which under load is
    late: the mock's "request arrived" stamp, the ground truth the bench's TTFT is checked
    against, would be late by as much. So the transport's reading is paused for good and a
    second descriptor of the same socket is read here (:mod:`llmcli.net.kernelstamps`),
    feeding the same StreamReader; the transport still does all the writing. Close this
    before the transport: the socket stays open, and sends no FIN or RST, while either
    descriptor does.
    """

    def __init__(
        self, reader: StampedReader, transport: asyncio.Transport, sock: socket.socket
    ) -> None:
        self._reader = reader
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._sock = sock
        self._sock.setblocking(False)
        transport.pause_reading()
        self._loop.add_reader(self._sock.fileno(), self._read)
        self._open = True

    @classmethod
    def attach(
        cls, reader: asyncio.StreamReader, transport: asyncio.BaseTransport
    ) -> KernelReads | None:
        """Read ``transport``'s socket here where the kernel stamps (Linux, plain TCP)."""
        if not (
            kernelstamps.AVAILABLE
            and isinstance(reader, StampedReader)
            and isinstance(transport, asyncio.Transport)
            and transport.get_extra_info("socket") is not None
            and transport.get_extra_info("sslcontext") is None
        ):
            return None
        try:
            # A second descriptor a connection: near the open-files limit (1,024 by default
            # on many systems, and the bench's own sockets count too when it runs the mock
            # in-process) this fails, and that connection is read the ordinary way.
            sock = socket.socket(fileno=os.dup(transport.get_extra_info("socket").fileno()))
        except OSError:
            return None
        if not kernelstamps.enable(sock):
            sock.close()
            return None
        return cls(reader, transport, sock)

    def _read(self) -> None:
        try:
            data, at, _ = kernelstamps.read(self._sock, time.perf_counter)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.close()
            self._reader.set_exception(exc)
            self._transport.abort()
            return
        if not data:
            self.close()
            self._reader.feed_eof()
            return
        self._reader.feed_stamped(data, at)

    def close(self) -> None:
        if self._open:
            self._open = False
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()


class Connection:
    """One client connection: reads requests, writes responses and raw stream bytes."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.number = number
        self._kernel_reads = reader.kernel_reads if isinstance(reader, StampedReader) else None
        self.keep_alive = True
        self.chunked = True  # for the current stream

    async def read_request(self) -> Request | None:
        """The next request, or ``None`` when the client closed between requests."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial.strip():
                return None
            raise HttpError(400, "connection closed inside the request head") from None
        except asyncio.LimitOverrunError:
            raise HttpError(431, "request head too large") from None
        arrived_at = getattr(self.reader, "arrived_at", None)
        lines = head.lstrip(b"\r\n")[:-4].split(b"\r\n")
        parts = lines[0].decode("latin-1").split(" ")
        if len(parts) != 3:
            raise HttpError(400, "malformed request line")
        method, target, version = parts
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            raise HttpError(505, f"unsupported protocol {version}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep or not name or name != name.strip():
                raise HttpError(400, "malformed header line")
            key = name.lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        if headers.get("expect", "").lower() == "100-continue":
            self.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = await self._read_body(headers)
        loop_time = asyncio.get_running_loop().time()
        perf_time = time.perf_counter()
        path = target.split("?", 1)[0]
        request = Request(
            method,
            target,
            path,
            version,
            headers,
            body,
            loop_time,
            perf_time,
            perf_time if arrived_at is None else arrived_at,
        )
        self.keep_alive = request.keep_alive
        self.chunked = version == "HTTP/1.1"
        return request

    async def _read_body(self, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return await self._read_chunked()
        length_text = headers.get("content-length")
        if length_text is None:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            raise HttpError(400, "invalid Content-Length") from None
        if not 0 <= length <= MAX_BODY:
            raise HttpError(413, "request body too large")
        try:
            return await self.reader.readexactly(length)
        except asyncio.IncompleteReadError:
            raise HttpError(400, "connection closed inside the request body") from None

    async def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        try:
            while True:
                size_line = await self.reader.readuntil(b"\r\n")
                size = int(size_line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while (await self.reader.readuntil(b"\r\n")) != b"\r\n":
                        pass  # trailers
                    return b"".join(parts)
                total += size
                if total > MAX_BODY:
                    raise HttpError(413, "request body too large")
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            raise HttpError(400, "malformed chunked request body") from None

    def framing_headers(self, length: int | None) -> list[tuple[str, str]]:
        """Headers that frame a body of ``length`` bytes (``None``: a stream)."""
        headers: list[tuple[str, str]] = []
        if length is not None:
            headers.append(("content-length", str(length)))
        elif self.chunked:
            headers.append(("transfer-encoding", "chunked"))
        else:
            self.keep_alive = False  # close-delimited
        if not self.keep_alive:
            headers.append(("connection", "close"))
        return headers

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    def stream_bytes(self, payload: bytes, *, last: bool = False) -> bytes:
        """``payload`` framed as one piece of the current stream (``last``: and its end)."""
        if not self.chunked:
            return payload
        framed = b"%x\r\n%b\r\n" % (len(payload), payload) if payload else b""
        return framed + b"0\r\n\r\n" if last else framed

    async def drain(self) -> None:
        await self.writer.drain()

    async def reset(self) -> None:
        """Close with RST once every byte written so far has reached the kernel."""
        transport = self.writer.transport
        for _ in range(1000):
            if transport.is_closing() or not transport.get_write_buffer_size():
                break
            await asyncio.sleep(0.001)
        if self._kernel_reads is not None:
            self._kernel_reads.close()  # else this descriptor keeps the socket open
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Linger on, timeout 0: close() discards nothing already sent but answers with
            # RST instead of FIN, which is what a crashed proxy or upstream looks like.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        self.keep_alive = False

    def close(self) -> None:
        if self._kernel_reads is not None:
            self._kernel_reads.close()  # first: while it is open the socket sends no FIN
        if not self.writer.is_closing():
            self.writer.close()
