"""The mock server itself: accepts connections, serves requests, records them.

:class:`MockServer` runs on the caller's event loop; :class:`MockServerThread` runs one on
its own loop in a daemon thread for synchronous tests; :func:`serve_forever` is what
``llmcli mock-server`` runs (through :mod:`llmcli.mock.processes`; its options are read by
:mod:`llmcli.mock.options`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from llmcli.mock.backend import Backend
from llmcli.mock.config import MockConfig
from llmcli.mock.http import (
    HEAD_LIMIT,
    Connection,
    HttpError,
    KernelReads,
    Request,
    StampedReader,
    encode_head,
)
from llmcli.mock.llamacpp import LlamaBackend
from llmcli.mock.record import RecordedRequest
from llmcli.mock.zen import ZenBackend

log = logging.getLogger(__name__)


def make_backend(config: MockConfig) -> Backend:
    if config.dialect == "llamacpp":
        return LlamaBackend(config)
    return ZenBackend(config)


def _parse_json(data: bytes) -> object:
    if not data:
        return None
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None


class MockServer:
    """An OpenAI-compatible mock backend speaking zen's or llama-server's dialect.

    ``requests`` holds a :class:`RecordedRequest` per request, in arrival order; ``errors``
    holds any exception a request handler raised (a bug in the mock: tests assert it stays
    empty).
    """

    def __init__(
        self,
        config: MockConfig | None = None,
        *,
        on_request: Callable[[RecordedRequest], None] | None = None,
        keep_requests: bool = True,
    ) -> None:
        """``on_request`` is given each request's record once its response (or fault) is
        over; ``keep_requests=False`` keeps none in ``requests`` (a long-running server)."""
        self.config = config if config is not None else MockConfig()
        self.requests: list[RecordedRequest] = []
        self._on_request = on_request
        self._keep_requests = keep_requests
        self.errors: list[BaseException] = []
        self._backend = make_backend(self.config)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._connections = 0
        self._host = ""
        self._port = 0

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, reuse_port: bool = False
    ) -> None:
        """Listen on ``host:port`` (0: any free port). ``reuse_port``: other processes may
        listen on the same port too, and the kernel spreads connections (Linux)."""
        if self._server is not None:
            raise RuntimeError("MockServer is already started")

        def protocol() -> asyncio.StreamReaderProtocol:
            return _Protocol(StampedReader(limit=HEAD_LIMIT), self._serve_connection)

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            protocol, host, port, backlog=1024, reuse_port=reuse_port or None
        )
        address = self._server.sockets[0].getsockname()
        self._host, self._port = address[0], address[1]
        self._backend.started = asyncio.get_running_loop().time()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port`` (no path)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    @property
    def base_url(self) -> str:
        """What a client is configured with: ``http://host:port/v1``."""
        return f"{self.url}/v1"

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()

    async def __aenter__(self) -> MockServer:
        if self._server is None:
            await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._connections += 1
        conn = Connection(reader, writer, self._connections)
        try:
            while conn.keep_alive:
                request = await conn.read_request()
                if request is None:
                    break
                await self._serve_request(request, conn)
        except HttpError as exc:
            conn.keep_alive = False
            body = json.dumps({"error": {"code": exc.status, "message": exc.message}}).encode()
            headers = [("content-type", "application/json"), *conn.framing_headers(len(body))]
            conn.write(encode_head(exc.status, headers) + body)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away; that is its right
        except asyncio.CancelledError:
            # Only stop() cancels these tasks, and the task ends here: finishing normally
            # keeps asyncio.streams (3.11) from logging the cancellation as an error.
            pass
        except Exception as exc:  # a bug in the mock: keep it for the tests, drop the client
            self.errors.append(exc)
            log.exception("mock server handler failed")
        finally:
            conn.close()
            self._tasks.discard(task)

    async def _serve_request(self, request: Request, conn: Connection) -> None:
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            headers=request.headers,
            body=_parse_json(request.body),
            raw_body=request.body,
            connection=conn.number,
            received_at=request.perf_time,
            arrived_at=request.arrived_at,
        )
        if self._keep_requests:
            self.requests.append(record)
        try:
            await self._backend.handle(request, conn, record)
        finally:
            if self._on_request is not None:
                self._on_request(record)


class _Protocol(asyncio.StreamReaderProtocol):
    """Attaches :class:`KernelReads` the moment a connection is made, before any handler
    runs: later, the socket could already be closed and its descriptor's number reused."""

    def __init__(self, reader: StampedReader, connected: Any) -> None:
        super().__init__(reader, connected)
        self._reader = reader

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._reader.kernel_reads = KernelReads.attach(self._reader, transport)


class MockServerThread:
    """A :class:`MockServer` on its own event loop in a daemon thread (for sync tests).

    ``with MockServerThread(MockConfig()) as mock: httpx.get(mock.base_url + "/models")``.
    Read ``mock.server.requests`` after the response you wait for has been read.
    """

    def __init__(
        self, config: MockConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.server = MockServer(config)
        self._host = host
        self._port = port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("MockServerThread is already started")
        self._thread = threading.Thread(target=self._run, name="llmcli-mock", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise RuntimeError("the mock server failed to start") from self._failure

    def stop(self) -> None:
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None or loop is None or stop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop already ended
            loop.call_soon_threadsafe(stop.set)
        thread.join()
        self._thread = None

    def __enter__(self) -> MockServerThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.server.start(self._host, self._port)
        except BaseException as exc:
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.server.stop()


async def serve_forever(
    config: MockConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    on_ready: Callable[[MockServer], None] | None = None,
    *,
    on_request: Callable[[RecordedRequest], None] | None = None,
    reuse_port: bool = False,
    until: asyncio.Event | None = None,
) -> None:
    """Run a mock server until cancelled (or ``until`` is set); ``on_ready`` is called once
    it listens. It keeps no records: ``on_request`` is given each one as it ends."""
    server = MockServer(config, on_request=on_request, keep_requests=False)
    await server.start(host, port, reuse_port=reuse_port)
    try:
        if on_ready is not None:
            on_ready(server)
        await (until or asyncio.Event()).wait()
    finally:
        await server.stop()
