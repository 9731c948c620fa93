"""A lean HTTP/1.1 transport for httpx, made for hundreds of concurrent streams.

httpx's default transport (httpcore on anyio, h11 for framing) costs this project's
2-core machines some 200 µs of CPU per SSE frame received, and its pool bookkeeping grows
with the square of the connections: a benchmark client on it falls behind long before the
server does. This transport reads on :class:`asyncio.Protocol` callbacks, decodes chunked
framing in place and keeps a plain keep-alive pool per origin: a frame costs a callback, a
few slices and one task wake-up (measured in ``benchmarks/README.md``).

Each piece of body is stamped with ``clock()`` the moment its bytes came off the socket,
before any parsing, and the response's ``extensions["llmcli.stamps"]`` exposes the stamp of
the piece last yielded (:class:`StampedStream`). ``llmcli bench`` times tokens from these
stamps, so its figures do not include its own parsing.

It speaks what OpenAI-compatible servers need: any method with a bytes body, responses
framed by ``Content-Length``, chunked encoding or the connection's close, TLS, keep-alive.
It has no proxies, HTTP/2, redirects or decompression (httpx decodes ``Content-Encoding``
above the transport for non-streamed bodies; streams are read raw as before). Failures
raise httpx's own exceptions, so the client maps them exactly as with httpcore.

Framing is read as RFC 9112 writes it, because a body misframed is a body silently wrong.
A response is refused with :class:`httpx.RemoteProtocolError` when its status line is not
``HTTP/1.x`` and three digits; a head line holds a NUL, a bare CR or LF, or no ``name:``
(a field name must be a token; an obs-fold line is unfolded into one space, as §5.2 asks
of a user agent, except before the first field); it has both ``Transfer-Encoding`` and
``Content-Length`` (§6.3: a server must not send both, and the pair is the stuff of
request smuggling); its Transfer-Encoding is anything but one ``chunked``; its
Content-Length values differ or are not 1 to 18 digits; a chunk-size is not 1 to 16 hex
digits (no ``0x``, sign, ``_`` or inner space), optionally followed by ``;name[=value]``
extensions and whitespace; a chunk's data is not followed by CRLF; a trailer line is not
a field line; or its head or trailers pass 64 KiB. Whatever arrived before the fault is
still handed over.

A keep-alive connection idle for ``keepalive_expiry`` seconds (4 by default) is closed
rather than reused, and one whose socket has anything to read while idle (the server's
close, which the loop may not have handed over yet) is never reused.
"""

from __future__ import annotations

import asyncio
import collections
import re
import select
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, cast

import httpx

from llmcli.net import kernelstamps

Clock = Callable[[], float]

KERNEL_STAMPS = kernelstamps.AVAILABLE  # the default; tests run both ways
MAX_HEAD = 64 * 1024  # bytes of status line and headers (or of trailers) before refusal
MAX_CHUNK_LINE = 4096  # bytes of a chunk-size line (with extensions)
# A chunk-size of at most 16 hex digits, leading zeros counted (64 bits, curl's bound; h11
# allows 20), and a Content-Length of at most 18 decimal digits (always a signed 64-bit
# number). No real body comes near; a longer one is garbage or an attack on a parser.
MAX_CHUNK_DIGITS = 16
MAX_LENGTH_DIGITS = 18
NO_BODY_STATUS = frozenset({204, 304})
# Servers close idle connections after 5-15 s commonly; llama-server after 5.0 s (measured
# on 2026-12-07 with a bare socket: its GET /health answer, then its FIN 5.0 s later).
# A request sent as the server closes is lost, and the server's idle time starts when it
# wrote the response, before ours does: so the pool lets go a second before the shortest
# of them (httpx's own default is 5 s, racing llama-server's).
KEEPALIVE_EXPIRY = 4.0

_HEX = b"0123456789abcdefABCDEF"
_TOKEN = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
# RFC 9112 §7.1: chunk-size [ chunk-ext ] CRLF, chunk-ext = *( BWS ";" BWS name [ BWS "="
# BWS value ] ). Whitespace before the CRLF is tolerated as h11 and curl do: it makes no
# size ambiguous, where a space inside the digits ("1 a") would.
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]+)(?:[ \t]*;[ \t]*%b(?:[ \t]*=[ \t]*(?:%b|%b))?)*[ \t]*"
    % (_TOKEN, _TOKEN, _QUOTED)
)
_STATUS_LINE = re.compile(rb"HTTP/1\.([0-9]) ([0-9]{3})(?: (.*))?", re.DOTALL)
# The value is trimmed with strip(): a lazy (.*?)[ \t]* would take time quadratic in a
# run of spaces inside it, which a server could fill a 64 KiB head with.
_FIELD_LINE = re.compile(rb"(%b):(.*)" % _TOKEN, re.DOTALL)
_FORBIDDEN_IN_HEAD = re.compile(rb"[\x00\r\n]")  # RFC 9110 §5.5: dangerous in a field
_DIGITS = re.compile(rb"[0-9]+")
_BARE_LF = re.compile(rb"(?<!\r)\n")
_BARE_IN_HEAD = "a NUL, or a CR or LF outside a CRLF, in the response head"


class StaleConnection(httpx.RemoteProtocolError):
    """A reused keep-alive connection the server had closed: it answered nothing."""


class StampedStream(httpx.AsyncByteStream):
    """A response body as it arrives; ``at`` is the arrival stamp of the piece last yielded."""

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        self.at: float | None = None
        self.sent_at = connection.sent_at  # when the request was handed to the socket

    @property
    def read_lag(self) -> float | None:
        """The longest any read of this response waited after the kernel received it (s).

        ``None`` without kernel stamps. A client that falls behind shows here first: two
        frames of one stream that wait together are read as one, and their gap is lost.
        """
        return self._connection.read_lag

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        while True:
            piece = await connection.next_piece()
            if piece is None:
                return
            self.at, data = piece
            yield data

    async def aclose(self) -> None:
        self._connection.release()


class StreamTransport(httpx.AsyncBaseTransport):
    """An :class:`httpx.AsyncBaseTransport` on asyncio protocols; see the module docstring."""

    def __init__(
        self,
        *,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        clock: Clock = time.perf_counter,
        ssl_context: ssl.SSLContext | None = None,
        kernel_stamps: bool | None = None,
        keepalive_expiry: float | None = KEEPALIVE_EXPIRY,
        keepalive_clock: Clock = time.monotonic,
    ) -> None:
        """``clock`` stamps arrivals; ``keepalive_clock`` (seconds, monotonic) ages idle
        connections, which are closed once idle ``keepalive_expiry`` seconds (``None``:
        never)."""
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.clock = clock
        self.keepalive_expiry = keepalive_expiry
        self.keepalive_clock = keepalive_clock
        self.kernel_stamps = KERNEL_STAMPS if kernel_stamps is None else kernel_stamps
        self._ssl_context = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Connection]] = collections.defaultdict(list)
        self._open: set[_Connection] = set()
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("the transport is closed")
        body = await request.aread()
        origin = (request.url.scheme, request.url.host, request.url.port or _default_port(request))
        timeouts = request.extensions.get("timeout", {})
        read_timeout = timeouts.get("read", self.read_timeout)
        connection = self._take_idle(origin)
        reused = connection is not None
        if connection is None:
            connection = await self._connect(origin, timeouts.get("connect", self.connect_timeout))
        connection.send(_encode_request(request, body), request.method == "HEAD", read_timeout)
        try:
            status, reason, headers = await connection.read_head(reused)
        except StaleConnection:
            connection.abort()
            # The server closed a connection that idled too long; the others of this origin
            # idled as long and are closing too. Whoever sends again gets a fresh one.
            for idle in self._idle.pop(origin, []):
                idle.abort()
            raise
        except BaseException:
            connection.abort()
            raise
        stream = StampedStream(connection)
        return httpx.Response(
            status,
            headers=headers,
            stream=stream,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": reason,
                "llmcli.stamps": stream,
            },
        )

    async def aclose(self) -> None:
        self._closed = True
        for connection in list(self._open):
            connection.abort()
        self._idle.clear()

    def _take_idle(self, origin: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        if self.keepalive_expiry is not None:
            # Connections come back in turn, so the expired ones are at the front. They are
            # closed here, when their origin is next used, not on a timer each: the server
            # closes its end anyway, and its FIN closes ours.
            cutoff = self.keepalive_clock() - self.keepalive_expiry
            expired = 0
            while expired < len(idle) and idle[expired].idle_since <= cutoff:
                idle[expired].abort()
                expired += 1
            del idle[:expired]
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to be closing
            if connection.reusable() and not connection.has_input():
                return connection
            connection.abort()
        return None

    def _give_back(self, connection: _Connection) -> None:
        if self._closed:
            connection.abort()
        else:
            connection.idle_since = self.keepalive_clock()
            self._idle[connection.origin].append(connection)

    def _forget(self, connection: _Connection) -> None:
        self._open.discard(connection)

    async def _connect(self, origin: tuple[str, str, int], timeout: float | None) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        context = self._tls() if scheme == "https" else None
        try:
            async with asyncio.timeout(timeout):
                if context is None and self.kernel_stamps:
                    connection = _Connection(self, origin)
                    sock = await _open_socket(loop, host, port)
                    _StampedSocket(loop, sock, connection, self.clock)
                else:
                    _, connection = await loop.create_connection(
                        lambda: _Connection(self, origin),
                        host,
                        port,
                        ssl=context,
                        server_hostname=host if context is not None else None,
                    )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except (OSError, ssl.SSLError) as error:
            raise httpx.ConnectError(_os_reason(error)) from None
        self._open.add(connection)
        return connection

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            try:
                import certifi  # httpx's own trust store, as its default transport uses

                self._ssl_context = ssl.create_default_context(cafile=certifi.where())
            except ImportError:  # pragma: no cover - certifi comes with httpx
                self._ssl_context = ssl.create_default_context()
        return self._ssl_context


class _Connection(asyncio.Protocol):
    """One connection: writes a request, then parses the response as bytes arrive."""

    def __init__(self, pool: StreamTransport, origin: tuple[str, str, int]) -> None:
        self.pool = pool
        self.origin = origin
        self.clock = pool.clock
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._pieces: collections.deque[tuple[float, bytes] | None] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._failure: Exception | None = None
        self._lost = False
        self._busy = False
        self._keep_alive = True
        # Response state: "head", then "length" / "chunked" / "close", then "done".
        self._state = "idle"
        self._head_only = False
        self._head: tuple[int, bytes, list[tuple[bytes, bytes]]] | None = None
        self._left = 0  # body bytes still expected ("length"), or of the current chunk
        self._chunk_step = "size"  # "size", "data", "crlf" or "trailer"
        self._read_timeout: float | None = None
        self._last_read = 0.0
        self._watchdog: asyncio.TimerHandle | None = None
        self._trailer: list[bytes] = []  # trailer lines of the current chunked body
        self._trailer_size = 0
        self.read_lag: float | None = None  # the current response's longest (see StampedStream)
        self.sent_at = 0.0  # the current request's, just before its write
        self.idle_since = 0.0  # on the pool's keepalive_clock, when it was last given back

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self.stamped_data(data, self.clock())

    def stamped_data(self, data: bytes, at: float, lag: float | None = None) -> None:
        """``data`` that arrived at ``at``, read ``lag`` seconds later (kernel stamps only)."""
        self._last_read = time.monotonic()
        if lag is not None and (self.read_lag is None or lag > self.read_lag):
            self.read_lag = lag
        state = self._state
        if state == "length" or state == "close":
            self._body_bytes(at, data)
            return
        if state == "chunked" and self._chunk_step == "size" and not self._buffer:
            payload = _whole_chunks(data)
            if payload is not None:
                self._pieces.append((at, payload))
                self._wake()
                return
        self._buffer += data
        if state == "head":
            self._parse_head(at)
        elif state == "chunked":
            self._parse_chunks(at)
        elif state in ("idle", "done") and data:
            self._fail(httpx.RemoteProtocolError("the server sent data nobody asked for"))

    def eof_received(self) -> bool | None:
        self._end_of_input(None)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._end_of_input(exc)
        self._stop_watchdog()
        self.pool._forget(self)

    # -- used by the transport and the stream -------------------------------------------

    def reusable(self) -> bool:
        transport = self.transport
        return (
            self._keep_alive
            and self._state == "idle"
            and not self._lost
            and transport is not None
            and not transport.is_closing()
            and self._failure is None
        )

    def has_input(self) -> bool:
        """Whether the socket has bytes or an end to read. On an idle connection either
        makes it unusable: most often the server's close, still in the kernel because the
        loop has not polled since it came (httpcore checks the same before a reuse)."""
        transport = self.transport
        sock = None if transport is None else transport.get_extra_info("socket")
        if sock is None:
            return False
        try:
            if hasattr(select, "poll"):  # select() cannot watch descriptors past 1023
                poller = select.poll()
                poller.register(sock, select.POLLIN)
                return bool(poller.poll(0))
            return bool(select.select([sock], [], [], 0)[0])
        except (OSError, ValueError):  # closed under us
            return True

    def send(self, data: bytes, head_only: bool, read_timeout: float | None) -> None:
        assert self.transport is not None
        self._busy = True
        self.read_lag = None
        self._state = "head"
        self._head_only = head_only
        self._head = None
        self._pieces.clear()
        self._buffer.clear()
        self._chunk_step = "size"
        self._trailer.clear()
        self._trailer_size = 0
        self._read_timeout = read_timeout
        self._last_read = time.monotonic()
        self.sent_at = self.clock()
        self.transport.write(data)
        self._arm_watchdog()

    async def read_head(self, reused: bool) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        while self._head is None:
            if self._failure is not None:
                raise self._failure
            if self._lost or self._state == "eof":
                if reused:
                    raise StaleConnection("Server disconnected without sending a response.")
                raise httpx.RemoteProtocolError("the server closed the connection before answering")
            await self._wait()
        return self._head

    async def next_piece(self) -> tuple[float, bytes] | None:
        while not self._pieces:
            if self._failure is not None:
                raise self._failure
            await self._wait()
        piece = self._pieces.popleft()
        if piece is None:
            self._pieces.append(None)  # the end stays the end
        return piece

    def release(self) -> None:
        """The response is closed: keep the connection if its body was read to the end."""
        if not self._busy:
            return
        self._busy = False
        self._stop_watchdog()
        if self._state == "done":
            self._state = "idle"
            if self.reusable():
                self.pool._give_back(self)
                return
        self.abort()

    def abort(self) -> None:
        self._busy = False
        self._keep_alive = False
        self._stop_watchdog()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()
        self.pool._forget(self)

    # -- parsing ------------------------------------------------------------------------

    def _parse_head(self, at: float) -> None:
        buffer = self._buffer
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0 or end > MAX_HEAD:
                if len(buffer) > MAX_HEAD:
                    self._fail(httpx.RemoteProtocolError("response head too large"))
                elif _BARE_LF.search(buffer):  # else a head of LF-ended lines waits for ever
                    self._fail(httpx.RemoteProtocolError(_BARE_IN_HEAD))
                return
            try:
                head = _read_head(bytes(buffer[:end]))
            except httpx.RemoteProtocolError as error:
                self._fail(error)
                return
            del buffer[: end + 4]
            if head.status >= 200:
                break
            # An interim response (100 Continue): the real one follows.
        if not head.keep_alive:
            self._keep_alive = False
        self._head = (head.status, head.reason, head.headers)
        if self._head_only or head.status in NO_BODY_STATUS:
            self._finish_body()
        elif head.chunked:
            self._state = "chunked"
            self._parse_chunks(at)
        elif head.length == 0:
            self._finish_body()
        else:
            if head.length is not None:
                self._state = "length"
                self._left = head.length
            else:
                self._state = "close"
                self._keep_alive = False
            if buffer:  # body bytes that came with the head
                rest_bytes = bytes(buffer)
                buffer.clear()
                self._body_bytes(at, rest_bytes)
        self._wake()

    def _body_bytes(self, at: float, data: bytes) -> None:
        if self._state == "length":
            if len(data) > self._left:
                data = data[: self._left]  # bytes past the body: nothing may follow here
                self._keep_alive = False
            self._left -= len(data)
            if data:
                self._pieces.append((at, data))
            if self._left == 0:
                self._finish_body()
        elif data:
            self._pieces.append((at, data))
        self._wake()

    def _parse_chunks(self, at: float) -> None:
        buffer = self._buffer
        pos = 0
        out: list[bytes] = []
        size = len(buffer)
        try:
            while pos < size:
                step = self._chunk_step
                if step == "data":
                    take = min(self._left, size - pos)
                    out.append(bytes(buffer[pos : pos + take]))
                    pos += take
                    self._left -= take
                    if self._left:
                        break
                    self._chunk_step = "crlf"
                elif step == "crlf":
                    if size - pos < 2 and buffer[pos:] == b"\r":
                        break
                    if buffer[pos : pos + 2] != b"\r\n":
                        raise httpx.RemoteProtocolError(
                            "malformed chunked encoding: no CRLF after a chunk's data"
                        )
                    pos += 2
                    self._chunk_step = "size"
                else:
                    limit = MAX_CHUNK_LINE if step == "size" else MAX_HEAD - self._trailer_size
                    eol = buffer.find(b"\r\n", pos)
                    if (eol < 0 and size - pos > limit) or eol - pos > limit:
                        raise httpx.RemoteProtocolError(
                            f"malformed chunked encoding: a {step} line over {limit} bytes"
                        )
                    if eol < 0:
                        break
                    line = bytes(buffer[pos:eol])
                    pos = eol + 2
                    if step == "trailer":
                        if line:
                            self._trailer.append(line)
                            self._trailer_size += len(line) + 2
                            continue
                        _read_fields(self._trailer)  # checked as a head's fields, then dropped
                        del buffer[:pos]
                        self._emit(at, out)
                        self._finish_body()
                        return
                    chunk_size = _chunk_size(line)
                    if chunk_size == 0:
                        self._chunk_step = "trailer"
                    else:
                        self._left = chunk_size
                        self._chunk_step = "data"
        except httpx.RemoteProtocolError as error:
            self._emit(at, out)  # what came before the fault is still the body's
            self._fail(error)
            return
        del buffer[:pos]
        self._emit(at, out)

    def _emit(self, at: float, out: list[bytes]) -> None:
        if out:
            self._pieces.append((at, out[0] if len(out) == 1 else b"".join(out)))
            self._wake()

    def _finish_body(self) -> None:
        self._state = "done"
        self._pieces.append(None)
        self._stop_watchdog()
        if self._buffer:
            self._keep_alive = False  # bytes after the response: the connection is unusable
        self._wake()

    def _end_of_input(self, exc: Exception | None) -> None:
        if self._failure is not None:  # the close a failure caused is not the body's end
            self._wake()
            return
        state = self._state
        if state == "close" and exc is None:
            self._finish_body()
            return
        if state in ("done", "idle", "eof"):
            self._state = "eof" if state != "done" else state
            self._wake()
            return
        if state == "head" and self._head is None and not self._buffer:
            self._state = "eof"  # closed before answering: read_head says which case
            self._wake()
            return
        if exc is not None:
            self._fail(httpx.ReadError(_os_reason(exc)))
        elif state == "head":
            self._fail(httpx.RemoteProtocolError("peer closed connection inside the response head"))
        else:
            self._fail(
                httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body"
                )
            )

    def _fail(self, error: Exception) -> None:
        if self._failure is None:
            self._failure = error
        self._keep_alive = False
        self._stop_watchdog()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()
        self._wake()

    # -- waiting and the read timeout ---------------------------------------------------

    async def _wait(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _arm_watchdog(self) -> None:
        """One timer a response, not one a read: it re-arms itself from the last read."""
        timeout = self._read_timeout
        if timeout is None or self.transport is None:
            return
        loop = asyncio.get_running_loop()
        self._watchdog = loop.call_later(timeout, self._check_stall)

    def _check_stall(self) -> None:
        self._watchdog = None
        timeout = self._read_timeout
        if timeout is None or self._state in ("done", "idle", "eof"):
            return
        quiet = time.monotonic() - self._last_read
        if quiet >= timeout:
            self._fail(httpx.ReadTimeout(f"nothing received for {timeout:g} s"))
            return
        loop = asyncio.get_running_loop()
        self._watchdog = loop.call_later(timeout - quiet, self._check_stall)

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None


async def _open_socket(loop: asyncio.AbstractEventLoop, host: str, port: int) -> socket.socket:
    """A connected, non-blocking TCP socket to the first address of ``host`` that answers."""
    error: OSError | None = None
    for family, kind, proto, _, address in await loop.getaddrinfo(
        host, port, type=socket.SOCK_STREAM
    ):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise error or OSError(f"no address for {host}")


class _StampedSocket:
    """The transport of a plain TCP connection that reads its socket itself, with recvmsg.

    asyncio's and uvloop's transports read with plain ``recv``: the time a piece arrived
    is then the time the loop got round to reading it, late by whatever else the loop was
    doing. Asking the kernel (``SO_TIMESTAMPNS``) for the time it received each read's
    last packet makes the stamp independent of the loop's load: frames due at one instant
    on hundreds of streams keep their own arrival times however long the loop takes to
    read them. The kernel's stamp is on the real-time clock; it becomes a reading of
    ``clock`` as "now minus its age". Where the kernel gives no stamp, ``clock()`` is used.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol: _Connection,
        clock: Clock,
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        self._clock = clock
        self._out = bytearray()
        self._closing = False
        kernelstamps.enable(sock)  # where it cannot, reads are stamped with clock()
        loop.add_reader(self._fd, self._read)
        protocol.connection_made(cast(asyncio.Transport, self))

    def write(self, data: bytes) -> None:
        if self._closing:
            return
        if not self._out:
            try:
                sent = self._sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._lose(exc)
                return
            if sent == len(data):
                return
            self._loop.add_writer(self._fd, self._flush)
            data = data[sent:]
        self._out += data

    def _flush(self) -> None:
        try:
            sent = self._sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lose(exc)
            return
        del self._out[:sent]
        if not self._out:
            self._loop.remove_writer(self._fd)

    def _read(self) -> None:
        try:
            data, at, lag = kernelstamps.read(self._sock, self._clock)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lose(exc)
            return
        if not data:
            self._loop.remove_reader(self._fd)
            self._protocol.eof_received()
            self._lose(None)
            return
        self._protocol.stamped_data(data, at, lag)

    def is_closing(self) -> bool:
        return self._closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._sock if name == "socket" and not self._closing else default

    def get_write_buffer_size(self) -> int:
        return len(self._out)

    def abort(self) -> None:
        self._lose(None)

    def close(self) -> None:
        self._lose(None)

    def _lose(self, exc: Exception | None) -> None:
        if self._closing:
            return
        self._closing = True
        self._loop.remove_reader(self._fd)
        self._loop.remove_writer(self._fd)
        self._sock.close()
        self._loop.call_soon(self._protocol.connection_lost, exc)


def _whole_chunks(data: bytes) -> bytes | None:
    """The payload of ``data`` if it is whole chunks of a chunked body, the last chunk not
    among them; else ``None`` (the general parser then takes ``data`` as it does any bytes).

    A streaming server writes a frame as one chunk and the kernel mostly hands it over in
    one read: this takes it in one pass, without the buffer the general parser keeps.
    """
    pieces: list[bytes] = []
    position = 0
    end = len(data)
    while position < end:
        eol = data.find(b"\r\n", position, position + MAX_CHUNK_LINE)
        if eol < 0:
            return None
        line = data[position:eol]
        if not 0 < len(line) <= MAX_CHUNK_DIGITS or line.lstrip(_HEX):
            return None  # an extension, or not a size: the general parser decides
        size = int(line, 16)
        start = eol + 2
        stop = start + size
        if size <= 0 or stop + 2 > end or data[stop : stop + 2] != b"\r\n":
            return None
        pieces.append(data[start:stop])
        position = stop + 2
    if not pieces:
        return None
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


@dataclass(frozen=True, slots=True)
class _Head:
    """A response head as read, and the framing its fields give its body."""

    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    length: int | None  # Content-Length, if given
    chunked: bool
    keep_alive: bool


def _read_head(head: bytes) -> _Head:
    """The response head ``head`` (without its final blank line) read; a fault in it raises
    :class:`httpx.RemoteProtocolError`."""
    status_line, *lines = head.split(b"\r\n")
    if _FORBIDDEN_IN_HEAD.search(status_line) or any(map(_FORBIDDEN_IN_HEAD.search, lines)):
        raise httpx.RemoteProtocolError(_BARE_IN_HEAD)
    match = _STATUS_LINE.fullmatch(status_line)
    if match is None or match[2] < b"100":
        raise httpx.RemoteProtocolError(f"malformed status line {status_line[:80]!r}")
    headers = _read_fields(lines)
    length, chunked, close = _read_framing(headers)
    return _Head(
        status=int(match[2]),
        reason=match[3] or b"",
        headers=headers,
        length=length,
        chunked=chunked,
        keep_alive=not close and match[1] != b"0",  # HTTP/1.0 closes unless it says otherwise
    )


def _read_fields(lines: list[bytes]) -> list[tuple[bytes, bytes]]:
    """The ``(name, value)`` fields of a head's (or a trailer's) lines, values trimmed."""
    unfolded: list[bytes] = []
    for line in lines:
        if line[:1] in (b" ", b"\t") and unfolded:
            # obs-fold: RFC 9112 §5.2 has a user agent replace it with a space. Before the
            # first field it is refused (§2.2 allows either that or skipping the line).
            unfolded[-1] += b" " + line.lstrip(b" \t")
        else:
            unfolded.append(line)
    fields = []
    for line in unfolded:
        match = _FIELD_LINE.fullmatch(line)
        if match is None:  # no colon, space before it, or a name that is not a token
            raise httpx.RemoteProtocolError(f"malformed header line {line[:80]!r}")
        fields.append((match[1], match[2].strip(b" \t")))
    return fields


def _read_framing(headers: list[tuple[bytes, bytes]]) -> tuple[int | None, bool, bool]:
    """``(Content-Length, chunked, Connection: close)`` from a response's fields.

    Any framing that two readers could take two ways is refused (RFC 9112 §6.3): both
    Transfer-Encoding and Content-Length, and Content-Length values that differ.
    """
    lengths: set[bytes] = set()
    codings: list[bytes] = []
    close = False
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"content-length":
            lengths.update(item.strip(b" \t") for item in value.split(b","))
        elif lowered == b"transfer-encoding":
            codings.extend(item.strip(b" \t").lower() for item in value.split(b","))
        elif lowered == b"connection":
            close = close or b"close" in {item.strip(b" \t").lower() for item in value.split(b",")}
    if codings and lengths:
        raise httpx.RemoteProtocolError(
            "the response has both Transfer-Encoding and Content-Length: its length is ambiguous"
        )
    if codings:
        # §6.3 reads a response whose last coding is not chunked to the close. But no coding
        # besides chunked is decoded here, so its body would be handed over still encoded
        # as if it were the content: refused instead, as httpx's default transport (h11) does.
        if codings != [b"chunked"]:
            raise httpx.RemoteProtocolError(
                f"unsupported Transfer-Encoding {b', '.join(codings)[:80]!r} (only chunked is)"
            )
        return None, True, close
    if not lengths:
        return None, False, close
    if len(lengths) > 1:
        raise httpx.RemoteProtocolError("conflicting Content-Length values")
    (length,) = lengths
    if not _DIGITS.fullmatch(length) or len(length) > MAX_LENGTH_DIGITS:
        raise httpx.RemoteProtocolError(f"invalid Content-Length {length[:40]!r}")
    return int(length), False, close


def _chunk_size(line: bytes) -> int:
    """The size a chunk-size line (its CRLF taken off) gives; RFC 9112 §7.1."""
    match = _CHUNK_LINE.fullmatch(line)
    if match is None:
        raise httpx.RemoteProtocolError(
            f"malformed chunked encoding: chunk-size line {line[:40]!r}"
        )
    digits = match[1]
    if len(digits) > MAX_CHUNK_DIGITS:
        raise httpx.RemoteProtocolError(
            f"malformed chunked encoding: a chunk-size of {len(digits)} digits"
        )
    return int(digits, 16)


def _default_port(request: httpx.Request) -> int:
    return 443 if request.url.scheme == "https" else 80


def _encode_request(request: httpx.Request, body: bytes) -> bytes:
    target = request.url.raw_path or b"/"
    lines = [b"%s %s HTTP/1.1" % (request.method.encode("ascii"), target)]
    lines.extend(b"%s: %s" % (name, value) for name, value in request.headers.raw)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _os_reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
