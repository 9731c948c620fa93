"""``llmcli.net.streamhttp``: the bench's HTTP/1.1 transport, against scripted raw servers.

A transport cannot be tested through ``httpx.MockTransport``, so each test runs a
tiny asyncio server that reads one request at a time and answers with exact bytes,
split and paced as the test says: the framings, splits and faults real servers produce
only now and then. The transport's use against the real llama-server and llmcli's mock is
covered by every bench test.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import select
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from rig.profiles import make_profile

from llmcli import errors
from llmcli.net import streamhttp
from llmcli.net.streamhttp import StreamTransport
from llmcli.wire.client import Arrival, ChatRequest, Client, RetryPolicy

Reply = Callable[["Peer", bytes], Awaitable[None]]


@pytest.fixture(autouse=True, params=["kernel stamps", "loop stamps"])
def stamping(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Every test runs on both read paths: the socket read with recvmsg, and the loop's."""
    kernel = request.param == "kernel stamps"
    monkeypatch.setattr(streamhttp, "KERNEL_STAMPS", kernel)
    return kernel


@dataclass
class Peer:
    """The server side of one connection, for a scripted reply."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def send(self, *pieces: bytes, pause: float = 0.005) -> None:
        for piece in pieces:
            self.writer.write(piece)
            await self.writer.drain()
            await asyncio.sleep(pause)


@dataclass
class Server:
    url: str
    requests: list[bytes] = field(default_factory=list)  # head + body of each request
    connections: int = 0


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + await reader.readexactly(length)


@contextlib.asynccontextmanager
async def serve(reply: Reply, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = Server(url="")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.connections += 1
        peer = Peer(reader, writer)
        try:
            while (request := await _read_request(reader)) is not None:
                server.requests.append(request)
                await reply(peer, request)
                if writer.is_closing():
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    port = listener.sockets[0].getsockname()[1]
    server.url = f"{'https' if tls else 'http'}://{'localhost' if tls else '127.0.0.1'}:{port}"
    try:
        yield server
    finally:
        listener.close()


def chunked(*parts: bytes) -> list[bytes]:
    return [b"%x\r\n%b\r\n" % (len(p), p) for p in parts] + [b"0\r\n\r\n"]


HEAD_CHUNKED = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/plain\r\n\r\n"


def run(coro: Awaitable[None]) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


async def fetch(
    transport: StreamTransport, url: str, method: str = "GET", body: bytes | None = None
) -> tuple[httpx.Response, list[tuple[float | None, bytes]]]:
    client = httpx.AsyncClient(transport=transport)  # not closed: that closes the transport
    request = client.build_request(method, url, content=body)
    response = await client.send(request, stream=True)
    stamps = response.extensions["llmcli.stamps"]
    pieces = []
    try:
        async for raw in response.aiter_raw():
            pieces.append((stamps.at, raw))
    finally:
        await response.aclose()
    return response, pieces


def test_a_chunked_body_split_at_every_byte_arrives_whole_and_stamped() -> None:
    body = [b'data: {"a": 1}\n\n', b"data: [DONE]\n\n"]
    wire = HEAD_CHUNKED + b"".join(chunked(*body))

    async def reply(peer: Peer, request: bytes) -> None:
        # Head and body in one write first, then the rest a byte at a time.
        await peer.send(
            wire[: len(HEAD_CHUNKED) + 3],
            *[bytes([b]) for b in wire[len(HEAD_CHUNKED) + 3 :]],
            pause=0,
        )

    async def main() -> None:
        ticks = itertools.count(1)
        async with serve(reply) as server:
            transport = StreamTransport(clock=lambda: float(next(ticks)))
            response, pieces = await fetch(transport, server.url + "/s")
            await transport.aclose()
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain"
        assert b"".join(p for _, p in pieces) == b"".join(body)
        stamps = [at for at, _ in pieces]
        assert all(at is not None for at in stamps)
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)

    run(main())


def fetch_twice(reply: Reply, connections: int = 1) -> tuple[list[bytes], list[bytes]]:
    """The body pieces of two requests in turn, over ``connections`` connections (one: the
    first response's end left its connection clean for the second)."""

    async def main() -> tuple[list[bytes], list[bytes]]:
        async with serve(reply) as server:
            transport = StreamTransport()
            _, first = await fetch(transport, server.url)
            _, second = await fetch(transport, server.url)
            await transport.aclose()
            assert server.connections == connections
        return [p for _, p in first], [p for _, p in second]

    return asyncio.run(main())


def test_chunk_extensions_and_trailers_are_skipped() -> None:
    async def reply(peer: Peer, request: bytes) -> None:
        await peer.send(HEAD_CHUNKED + b"5;name=value\r\nhello\r\n0\r\nx-trailer: 1\r\n\r\n")

    pieces, again = fetch_twice(reply)
    assert b"".join(pieces) == b"hello" == b"".join(again)


def test_chunks_written_whole_apart_or_together_arrive_in_order() -> None:
    # Whole chunks a write (the one-pass path), two in one write, then an extension, a
    # chunk cut in two and a bare size line, which the general parser takes; then whole again.
    writes = [
        b"3\r\none\r\n",
        b"3\r\ntwo\r\n5\r\nthree\r\n",
        b"4;x=y\r\nfour\r\n",
        b"4\r\nfi",
        b"ve\r\n",
        b"3\r\n",
        b"six\r\n",
        b"5\r\nseven\r\n",
        b"0\r\n\r\n",
    ]

    async def reply(peer: Peer, request: bytes) -> None:
        await peer.send(HEAD_CHUNKED, *writes)

    body, again = fetch_twice(reply)
    # How the writes are cut into reads is the kernel's affair; the bytes and their order
    # are the transport's.
    assert b"".join(body) == b"onetwothreefourfivesixseven" == b"".join(again)


def test_whole_chunks_skip_the_general_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bytes] = []
    general = streamhttp._Connection._parse_chunks

    def spy(self: Any, at: float) -> None:
        seen.append(bytes(self._buffer))
        general(self, at)

    monkeypatch.setattr(streamhttp._Connection, "_parse_chunks", spy)

    async def reply(peer: Peer, request: bytes) -> None:
        await peer.send(HEAD_CHUNKED, b"3\r\none\r\n", b"3\r\ntwo\r\n", b"0\r\n\r\n")

    body, again = fetch_twice(reply)
    assert b"".join(body) == b"onetwo" == b"".join(again)
    # Only the last chunk (and the empty rest of a head) went the general way.
    assert set(seen) <= {b"", b"0\r\n\r\n"} and b"0\r\n\r\n" in seen


@pytest.mark.parametrize(
    "body", [b"1\r\nab\r\n", b"2\r\nab\r\nzz\r\n", b"-2\r\nab\r\n", b"2\r\nabXY"]
)
def test_a_malformed_chunk_after_the_head_is_a_protocol_error(body: bytes) -> None:
    async def reply(peer: Peer, request: bytes) -> None:
        await peer.send(HEAD_CHUNKED, body)
        await asyncio.sleep(1)

    async def main() -> None:
        async with serve(reply) as server:
            transport = StreamTransport(read_timeout=5)
            with pytest.raises(httpx.RemoteProtocolError, match="chunked"):
                await fetch(transport, server.url)
            await transport.aclose()

    run(main())


def test_keep_alive_reuses_one_connection_and_sends_the_request_as_given() -> None:
    async def reply(peer: Peer, request: bytes) -> None:
        await peer.send(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", pause=0)

    async def main() -> None:
        async with serve(reply) as server:
            transport = StreamTransport()
            for n in range(3):
                _response, pieces = await fetch(
                    transport, server.url + f"/v1/x?n={n}", "POST", b'{"k": "v"}'
                )
                assert b"".join(p for _, p in pieces) == b"ok"
            await transport.aclose()
            assert server.connections == 1
            first = server.requests[0]
        assert first.startswith(b"POST /v1/x?n=0 HTTP/1.1\r\n")
        assert b"\r\ncontent-length: 10\r\n" in first.lower()
        assert first.endswith(b'\r\n\r\n{"k": "v"}')

    run(main())


def test_a_body_read_to_the_close_ends_there_and_the_connection_is_not_reused() -> None:
    async def reply(peer: Peer, request: bytes) -> None:
        await peer.send(b"HTTP/1.1 200 OK\r\n\r\npart one, ", b"part two")
        peer.writer.close()

    first, second = fetch_twice(reply, connections=2)
    assert b"".join(first) == b"part one, part two" == b"".join(second)


def test_interim_100_and_bodyless_responses() -> None:
    async def reply(peer: Peer, request: bytes) -> None:
        if request.startswith(b"HEAD"):
            await peer.send(b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n", pause=0)
        elif b"/204" in request.split(b"\r\n")[0]:
            await peer.send(b"HTTP/1.1 204 No Content\r\n\r\n", pause=0)
        else:
            await peer.send(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 1\r\n\r\n!"
            )

    async def main() -> None:
        async with serve(reply) as server:
            transport = StreamTransport()
            response, pieces = await fetch(transport, server.url + "/c", "POST", b"x")
            assert response.status_code == 201 and pieces[0][1] == b"!"
            response, pieces = await fetch(transport, server.url, "HEAD")
            assert response.status_code == 200 and pieces == []
            response, pieces = await fetch(transport, server.url + "/204")
            assert response.status_code == 204 and pieces == []
            await transport.aclose()
            assert server.connections == 1

    run(main())


def test_a_response_closed_early_drops_its_connection() -> None:
    async def reply(peer: Peer, request: bytes) -> None:
        await peer.send(HEAD_CHUNKED, *chunked(b"a", b"b", b"c"))

    async def main() -> None:
        async with serve(reply) as server:
            transport = StreamTransport()
            async with httpx.AsyncClient(transport=transport) as client:
                async with client.stream("GET", server.url) as response:
                    async for _ in response.aiter_raw():
                        break
                async with client.stream("GET", server.url) as response:
                    assert await response.aread() == b"abc"
            assert server.connections == 2

    run(main())


def test_an_idle_connection_the_server_closed_is_not_reused() -> None:
    async def reply(peer: Peer, request: bytes) -> None:
        await peer.send(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", pause=0)
        peer.writer.close()  # keep-alive promised, then closed: llama-server does this

    async def main() -> None:
        async with serve(reply) as server:
            transport = StreamTransport()
            await fetch(transport, server.url)
            await asyncio.sleep(0.05)  # the FIN arrives while the connection is idle
            _, pieces = await fetch(transport, server.url)
            await transport.aclose()
            assert server.connections == 2
        assert pieces[0][1] == b"ok"

    run(main())


def test_an_idle_connection_is_not_reused_once_it_idled_keepalive_expiry() -> None:
    async def reply(peer: Peer, request: bytes) -> None:
        await peer.send(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", pause=0)

    async def main() -> None:
        now = [1000.0]
        async with serve(reply) as server:
            transport = StreamTransport(keepalive_expiry=5, keepalive_clock=lambda: now[0])
            await fetch(transport, server.url)
            now[0] += 4.5  # exact in binary: the comparison below is not a rounding's
            await fetch(transport, server.url)
            assert server.connections == 1  # idle 4.5 s: reused
            now[0] += 5
            _, pieces = await fetch(transport, server.url)
            assert server.connections == 2  # idle 5 s: closed, and a new one made
            assert len(transport._open) == 1
            assert b"".join(p for _, p in pieces) == b"ok"
            await transport.aclose()

            forever = StreamTransport(keepalive_expiry=None, keepalive_clock=lambda: now[0])
            await fetch(forever, server.url)
            now[0] += 3600
            await fetch(forever, server.url)
            assert server.connections == 3
            await forever.aclose()
        # The default lets go before llama-server does, at 5 s.
        assert StreamTransport().keepalive_expiry == streamhttp.KEEPALIVE_EXPIRY < 5

    run(main())


def test_a_connection_the_server_closed_is_not_reused_before_the_loop_reads_the_close() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    first_read = threading.Event()
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"

    def server() -> None:  # a thread: the client's loop is about to be held still
        listener.settimeout(5)  # no second connection comes when the test fails early
        with contextlib.suppress(TimeoutError):
            for n in range(2):
                conn, _ = listener.accept()
                with conn:
                    conn.recv(65536)
                    conn.sendall(answer)
                    if n == 0:
                        first_read.wait(5)  # closed once the response is read and pooled

    thread = threading.Thread(target=server)
    thread.start()

    async def main() -> None:
        transport = StreamTransport()
        url = f"http://127.0.0.1:{port}/"
        await fetch(transport, url)
        origin = ("http", "127.0.0.1", port)
        (connection,) = transport._idle[origin]
        first_read.set()
        # Without giving the loop a turn, wait for the server's FIN to reach the socket.
        assert connection.transport is not None
        sock = connection.transport.get_extra_info("socket")
        assert select.select([sock], [], [], 5)[0]
        assert connection.reusable()  # the loop has not read the close ...
        assert transport._take_idle(origin) is None  # ... but the pool saw it
        _, pieces = await fetch(transport, url)
        assert b"".join(p for _, p in pieces) == b"ok"
        await transport.aclose()

    try:
        run(main())
    finally:
        first_read.set()
        thread.join()
        listener.close()


def test_a_request_on_a_connection_closed_unanswered_is_a_stale_connect_error() -> None:
    async def reply(peer: Peer, request: bytes) -> None:
        if b"/second" in request and b"x-again" not in request:
            peer.writer.close()  # the race: closed as the next request arrived
        else:
            await peer.send(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}", pause=0)

    async def main() -> None:
        async with serve(reply) as server:
            profile = make_profile(server.url + "/v1")
            once = RetryPolicy(attempts=1)
            transport = StreamTransport()
            async with Client(profile, retry=once, transport=transport) as client:
                # Two connections idle in the pool, as after a level of two streams.
                await asyncio.gather(*(client.get_json(server.url + "/first") for _ in range(2)))
                assert server.connections == 2
                with pytest.raises(errors.ConnectError) as failure:
                    await client.get_json(server.url + "/second")
                assert failure.value.stale  # the bench sends such a request again
                # ... and gets a new connection, not the other one that idled as long.
                response = await httpx.AsyncClient(transport=transport).get(
                    server.url + "/second", headers={"x-again": "1"}
                )
                assert response.status_code == 200
            assert server.connections == 3

    run(main())


def test_a_reset_mid_body_and_a_cut_chunked_body_are_errors() -> None:
    async def reply(peer: Peer, request: bytes) -> None:
        await peer.send(HEAD_CHUNKED, chunked(b"partial")[0])
        if b"/reset" in request:
            peer.writer.transport.abort()  # RST
        else:
            peer.writer.close()  # FIN inside the chunked body

    async def main() -> None:
        async with serve(reply) as server:
            transport = StreamTransport()
            with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
                await fetch(transport, server.url + "/cut")
            with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
                await fetch(transport, server.url + "/reset")
            await transport.aclose()

    run(main())


def test_a_stalled_response_times_out() -> None:
    async def reply(peer: Peer, request: bytes) -> None:
        await peer.send(HEAD_CHUNKED, chunked(b"one")[0])
        await asyncio.sleep(5)

    async def main() -> None:
        async with serve(reply) as server:
            transport = StreamTransport()
            pieces: list[bytes] = []
            # httpx passes its read timeout down with each request, as to its own transport.
            client = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5, read=0.2))
            with pytest.raises(httpx.ReadTimeout):
                async with client.stream("GET", server.url) as response:
                    async for raw in response.aiter_raw():
                        pieces.append(raw)
            assert pieces == [b"one"]  # what came before the stall is kept
            await transport.aclose()

    run(main())


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"SPDY/3 200 OK\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 OK\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n", "Content-Length"),
        (HEAD_CHUNKED + b"zz\r\n", "chunked"),
        (HEAD_CHUNKED + b"1\r\nab\r\n", "chunked"),
        (HEAD_CHUNKED + b"0x2\r\nab\r\n0\r\n\r\n", "chunk-size line b'0x2'"),
        (HEAD_CHUNKED + b"1" * 17 + b"\r\n", "a chunk-size of 17 digits"),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 2\r\n\r\n",
            "both Transfer-Encoding and Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok!",
            "conflicting Content-Length",
        ),
        (b"HTTP/1.1 200 OK\r\ncontent-length: -2\r\n\r\nok", "invalid Content-Length b'-2'"),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n", "Transfer-Encoding b'gzip'"),
        (b"HTTP/1.1 200 OK\ncontent-length: 2\n\nok", "LF outside a CRLF"),
        (b"HTTP/1.1 200 OK\r\ncontent-length : 2\r\n\r\nok", "malformed header"),
    ],
)
def test_malformed_responses_are_protocol_errors(wire: bytes, message: str) -> None:
    async def reply(peer: Peer, request: bytes) -> None:
        await peer.send(wire)
        await asyncio.sleep(1)

    async def main() -> None:
        async with serve(reply) as server:
            transport = StreamTransport(read_timeout=5)
            with pytest.raises(httpx.RemoteProtocolError, match=message):
                await fetch(transport, server.url)
            await transport.aclose()

    run(main())


def test_nobody_listening_is_a_connect_error() -> None:
    async def main() -> None:
        listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        listener.close()
        await listener.wait_closed()
        transport = StreamTransport(connect_timeout=2)
        with pytest.raises(httpx.ConnectError):
            await fetch(transport, f"http://127.0.0.1:{port}/")

    run(main())


def test_client_events_carry_the_transports_arrival_stamps() -> None:
    frames = [
        b'data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n',
        b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n',
        b'data: {"choices":[{"index":0,"delta":{"content":" there"}}]}\n\n',
        b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
        b"data: [DONE]\n\n",
    ]

    async def reply(peer: Peer, request: bytes) -> None:
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        await peer.send(head, *chunked(*frames))

    async def main() -> None:
        stamps: list[float] = []

        def clock() -> float:
            stamps.append(float(len(stamps) + 1))
            return stamps[-1]

        async with serve(reply) as server:
            profile = make_profile(server.url + "/v1")
            arrival = Arrival(lambda: -1.0)  # read only if the transport gave no stamp
            seen: list[tuple[str, float | None]] = []
            transport = StreamTransport(clock=clock, kernel_stamps=False)  # stamps: clock()
            async with Client(profile, transport=transport) as client:
                request = ChatRequest(messages=[{"role": "user", "content": "hi"}])
                async for event in client.stream_chat(request, arrival=arrival):
                    seen.append((type(event).__name__, arrival.at))
        texts = [at for name, at in seen if name == "ContentDelta"]
        assert len(texts) == 2 and texts[0] is not None and texts[1] is not None
        assert texts[0] < texts[1]  # separate writes, separate stamps
        # Every stamp handed out came from the transport's data_received, not a later read.
        assert {at for _, at in seen} <= set(stamps)
        # The send is the transport's reading just before its write: the clock's first.
        assert arrival.sent_at == stamps[0] < min(at for _, at in seen if at is not None)

    run(main())


def test_a_client_on_the_transport_maps_faults_to_llmcli_errors() -> None:
    async def reply(peer: Peer, request: bytes) -> None:
        if b"/v1/chat" in request:
            head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            await peer.send(
                head, chunked(b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n')[0]
            )
            peer.writer.transport.abort()
        else:
            await peer.send(
                b'HTTP/1.1 401 Unauthorized\r\ncontent-length: 29\r\n\r\n{"error":{"message":"no key"}}'[
                    :-1
                ]
            )

    async def main() -> None:
        async with serve(reply) as server:
            profile = make_profile(server.url + "/v1")
            async with Client(profile, transport=StreamTransport()) as client:
                with pytest.raises(errors.StatusError) as status:
                    await client.get_json("models")
                assert status.value.status == 401
                received = []
                with pytest.raises(errors.StreamError, match="mid-answer"):
                    async for event in client.stream_chat(
                        ChatRequest(messages=[{"role": "user", "content": "hi"}])
                    ):
                        received.append(event)
                assert any(type(e).__name__ == "ContentDelta" for e in received)

    run(main())


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_tls_streams_and_verifies_the_certificate(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)

    async def reply(peer: Peer, request: bytes) -> None:
        await peer.send(HEAD_CHUNKED, *chunked(b"secure ", b"stream"))

    async def main() -> None:
        async with serve(reply, tls=served) as server:
            trusting = ssl.create_default_context(cafile=str(cert))
            transport = StreamTransport(ssl_context=trusting)
            _, pieces = await fetch(transport, server.url)
            _, again = await fetch(transport, server.url)
            await transport.aclose()
            assert (
                b"".join(p for _, p in pieces) == b"secure stream" == b"".join(p for _, p in again)
            )
            # TLS records the loop already read (session tickets) leave an idle one reusable.
            assert server.connections == 1
            with pytest.raises(httpx.ConnectError):  # the default trust store refuses it
                await fetch(StreamTransport(connect_timeout=5), server.url)

    run(main())


def test_kernel_stamps_keep_arrival_times_while_the_loop_is_busy(stamping: bool) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def server() -> None:  # a thread: the client's loop is about to be stuck
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(HEAD_CHUNKED + chunked(b"first")[0])
            time.sleep(0.05)
            conn.sendall(b"".join(chunked(b"second")))
            time.sleep(0.5)

    thread = threading.Thread(target=server)
    thread.start()

    async def main() -> list[float]:
        transport = StreamTransport()
        client = httpx.AsyncClient(transport=transport)
        stamps: list[float] = []
        async with client.stream("GET", f"http://127.0.0.1:{port}/") as response:
            extension = response.extensions["llmcli.stamps"]
            async for _ in response.aiter_raw():
                stamps.append(extension.at)
                if len(stamps) == 1:
                    time.sleep(0.4)  # the loop is stuck while "second" arrives
            lags.append(extension.read_lag)
        await transport.aclose()
        return stamps

    lags: list[float | None] = []
    try:
        first, second = asyncio.run(main())
    finally:
        thread.join()
        listener.close()
    if stamping:  # when the kernel received it: about 50 ms after the first
        assert second - first < 0.3
        assert lags[0] is not None and lags[0] >= 0.3  # and it says it read that late
    else:  # when the loop read it: after the stall
        assert second - first >= 0.4
        assert lags == [None]
