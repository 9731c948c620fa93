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
"""

from __future__ import annotations

import asyncio
import collections
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from typing import cast

import httpx

from llmcli import kernelstamps

Clock = Callable[[], float]

KERNEL_STAMPS = kernelstamps.AVAILABLE  # the default; tests run both ways
MAX_HEAD = 64 * 1024  # bytes of status line and headers before the response is refused
MAX_CHUNK_LINE = 4096  # bytes of a chunk-size line (with extensions)
NO_BODY_STATUS = frozenset({204, 304})


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
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.clock = clock
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
        while idle:
            connection = idle.pop()
            if connection.reusable():
                return connection
            connection.abort()
        return None

    def _give_back(self, connection: _Connection) -> None:
        if self._closed:
            connection.abort()
        else:
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
        self.read_lag: float | None = None  # the current response's longest (see StampedStream)
        self.sent_at = 0.0  # the current request's, just before its write

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
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD:
                self._fail(httpx.RemoteProtocolError("response head too large"))
            return
        lines = bytes(buffer[:end]).split(b"\r\n")
        del buffer[: end + 4]
        try:
            version, status_text, *rest = lines[0].split(b" ", 2)
            status = int(status_text)
        except ValueError:
            self._fail(httpx.RemoteProtocolError(f"malformed status line {lines[0][:80]!r}"))
            return
        if not version.startswith(b"HTTP/1.") or not 100 <= status <= 999:
            self._fail(httpx.RemoteProtocolError(f"malformed status line {lines[0][:80]!r}"))
            return
        if 100 <= status < 200:  # an interim response (100 Continue): the real one follows
            self._parse_head(at)
            return
        headers: list[tuple[bytes, bytes]] = []
        length: int | None = None
        chunked = False
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name.strip():
                self._fail(httpx.RemoteProtocolError(f"malformed header line {line[:80]!r}"))
                return
            name, value = name.strip(), value.strip()
            headers.append((name, value))
            lowered = name.lower()
            if lowered == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    self._fail(httpx.RemoteProtocolError("invalid Content-Length"))
                    return
            elif lowered == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif lowered == b"connection" and b"close" in value.lower():
                self._keep_alive = False
        if version == b"HTTP/1.0":
            self._keep_alive = False
        self._head = (status, rest[0] if rest else b"", headers)
        if self._head_only or status in NO_BODY_STATUS:
            self._finish_body()
        elif chunked:
            self._state = "chunked"
            self._parse_chunks(at)
        elif length == 0:
            self._finish_body()
        else:
            if length is not None:
                self._state = "length"
                self._left = length
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
                if size - pos < 2:
                    break
                if buffer[pos : pos + 2] != b"\r\n":
                    self._fail(httpx.RemoteProtocolError("malformed chunked encoding"))
                    return
                pos += 2
                self._chunk_step = "size"
            else:
                eol = buffer.find(b"\r\n", pos)
                if eol < 0:
                    if size - pos > MAX_CHUNK_LINE:
                        self._fail(httpx.RemoteProtocolError("malformed chunked encoding"))
                        return
                    break
                line = bytes(buffer[pos:eol])
                pos = eol + 2
                if step == "trailer":
                    if not line:
                        del buffer[:pos]
                        self._emit(at, out)
                        self._finish_body()
                        return
                    continue
                try:
                    chunk_size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    self._fail(httpx.RemoteProtocolError("malformed chunked encoding"))
                    return
                if chunk_size < 0:
                    self._fail(httpx.RemoteProtocolError("malformed chunked encoding"))
                    return
                if chunk_size == 0:
                    self._chunk_step = "trailer"
                else:
                    self._left = chunk_size
                    self._chunk_step = "data"
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
        try:
            size = int(data[position:eol], 16)
        except ValueError:
            return None  # an extension, or not a size: the general parser decides
        start = eol + 2
        stop = start + size
        if size <= 0 or stop + 2 > end or data[stop : stop + 2] != b"\r\n":
            return None
        pieces.append(data[start:stop])
        position = stop + 2
    if not pieces:
        return None
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


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
