"""``llmcli.net.streamhttp``'s response framing, against h11's and against itself.

h11 is the parser under httpx's default transport, so where the two disagree on a
response, llmcli would read it one way and every other httpx program another. Each
response of the table is delivered split in two at every byte position, and then a byte
at a time, and read by both: they must agree on the verdict (read to its end, or refused
as a protocol error) and on the body bytes that came out before it. Where they
legitimately differ, the case says which way each goes and why. These splits feed the
transport's protocol object directly (``data_received``, as the event loop would); a
real loopback socket carries a few splits of every case through ``httpx.AsyncClient``.

The transport's one-pass path for whole chunks (``_whole_chunks``) must never accept what
the general chunk parser would not, nor hand over other bytes: that is checked on the
table's chunked bodies and on bodies generated from a seeded alphabet of awkward pieces.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any, Literal, cast

import h11
import httpx
import pytest

from llmcli.net import streamhttp
from llmcli.net.streamhttp import StreamTransport

OK = b"HTTP/1.1 200 OK\r\n"
CHUNKED = OK + b"Transfer-Encoding: chunked\r\n\r\n"
LENGTH5 = OK + b"Content-Length: 5\r\n\r\n"


@dataclass(frozen=True)
class Case:
    """A response and how it must be read: ``body`` if accepted, ``None`` if refused.

    ``h11`` is h11's verdict where it differs from ours, with ``why``; ``cut`` is the body
    both hand over before refusing it.
    """

    name: str
    wire: bytes
    body: bytes | None
    method: str = "GET"
    cut: bytes = b""
    h11: bytes | Literal["same"] | None = "same"
    why: str = ""


CASES = [
    # -- read to the end -------------------------------------------------------------
    Case("content-length", LENGTH5 + b"hello", b"hello"),
    Case("content-length 0", OK + b"Content-Length: 0\r\n\r\n", b""),
    Case(
        "two identical content-lengths",
        OK + b"Content-Length: 5\r\ncontent-length: 5\r\n\r\nhello",
        b"hello",
    ),
    Case("a content-length list of one value", OK + b"Content-Length: 5, 5\r\n\r\nhello", b"hello"),
    Case("bytes past the content-length", OK + b"Content-Length: 2\r\n\r\nhello", b"he"),
    Case("connection close", OK + b"Connection: close\r\nContent-Length: 2\r\n\r\nok", b"ok"),
    Case("chunked", CHUNKED + b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
    Case(
        "chunked, upper-case hex and leading zeros",
        CHUNKED + b"00A\r\n0123456789\r\n000\r\n\r\n",
        b"0123456789",
    ),
    Case("chunked, no chunks", CHUNKED + b"0\r\n\r\n", b""),
    Case(
        "Transfer-Encoding in capitals",
        OK + b"Transfer-Encoding: Chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        b"ok",
    ),
    Case(
        "chunk extensions",
        CHUNKED + b"5;name=value\r\nhello\r\n1;a;b=c\r\n!\r\n0;last\r\n\r\n",
        b"hello!",
    ),
    Case("a quoted chunk extension", CHUNKED + b'5;q="a;b\\"c"\r\nhello\r\n0\r\n\r\n', b"hello"),
    Case("whitespace after a chunk-size", CHUNKED + b"5 \t\r\nhello\r\n0\r\n\r\n", b"hello"),
    Case(
        "whitespace before a chunk extension",
        CHUNKED + b"5 ;name=value\r\nhello\r\n0\r\n\r\n",
        b"hello",
        h11=None,
        why="RFC 9112 §7.1.1 allows BWS before ';'; h11 does not",
    ),
    Case("trailers", CHUNKED + b"5\r\nhello\r\n0\r\nX-A: 1\r\nx-b:2\r\n\r\n", b"hello"),
    Case("read to the close", OK + b"\r\nall of it", b"all of it"),
    Case(
        "HTTP/1.0, read to the close",
        b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nall of it",
        b"all of it",
    ),
    Case("no reason phrase", b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", b"ok"),
    Case("204", b"HTTP/1.1 204 No Content\r\n\r\n", b""),
    Case(
        "304 with its representation's length",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
        b"",
    ),
    Case("HEAD", OK + b"Content-Length: 99\r\n\r\n", b"", method="HEAD"),
    Case("100 Continue first", b"HTTP/1.1 100 Continue\r\n\r\n" + LENGTH5 + b"hello", b"hello"),
    Case(
        "spaces around and inside a value",
        OK + b"X-A: \t a  b \t\r\nContent-Length: 2\r\n\r\nok",
        b"ok",
    ),
    Case("an obs-fold", OK + b"X-A: one\r\n  two\r\nContent-Length: 2\r\n\r\nok", b"ok"),
    Case(
        "obs-text and a control byte in a value",
        OK + b"X-A: caf\xc3\xa9\x01\r\nContent-Length: 2\r\n\r\nok",
        b"ok",
    ),
    # -- refused: chunk sizes ----------------------------------------------------------
    Case("a chunk-size not hex", CHUNKED + b"zz\r\n", None),
    Case("a 0x chunk-size", CHUNKED + b"0x5\r\nhello\r\n0\r\n\r\n", None),
    Case("a 0X chunk-size", CHUNKED + b"0X5\r\nhello\r\n0\r\n\r\n", None),
    Case("an underscore in a chunk-size", CHUNKED + b"1_0\r\n0123456789abcdef\r\n0\r\n\r\n", None),
    Case("a signed chunk-size", CHUNKED + b"+5\r\nhello\r\n0\r\n\r\n", None),
    Case("a negative last chunk", CHUNKED + b"2\r\nok\r\n-0\r\n\r\n", None, cut=b"ok"),
    Case("a space inside a chunk-size", CHUNKED + b"1 0\r\n0123456789abcdef\r\n0\r\n\r\n", None),
    Case("a space before a chunk-size", CHUNKED + b" 5\r\nhello\r\n0\r\n\r\n", None),
    Case("an empty chunk-size", CHUNKED + b"\r\nhello\r\n0\r\n\r\n", None),
    Case(
        "a 17-digit chunk-size",
        CHUNKED + b"00000000000000005\r\nhello\r\n0\r\n\r\n",
        None,
        h11=b"hello",
        why="h11 allows 20 digits; we keep curl's 16 (a signed 64-bit size)",
    ),
    Case("a 21-digit chunk-size", CHUNKED + b"1" * 21 + b"\r\n", None),
    Case(
        "a chunk extension without a name",
        CHUNKED + b"5;=x\r\nhello\r\n0\r\n\r\n",
        None,
        h11=b"hello",
        why="h11 takes anything after ';' without reading it",
    ),
    Case(
        "a chunk extension with a space in its value",
        CHUNKED + b"5;a=b c\r\nhello\r\n0\r\n\r\n",
        None,
        h11=b"hello",
        why="h11 takes anything after ';' without reading it",
    ),
    # -- refused: chunk data and the end -----------------------------------------------
    Case("a chunk cut short", CHUNKED + b"5\r\nhel", None, cut=b"hel"),
    Case("no last chunk", CHUNKED + b"5\r\nhello\r\n", None, cut=b"hello"),
    Case(
        "no blank line after the last chunk", CHUNKED + b"5\r\nhello\r\n0\r\n", None, cut=b"hello"
    ),
    Case("no CRLF after chunk data", CHUNKED + b"5\r\nhelloXY0\r\n\r\n", None, cut=b"hello"),
    Case("an LF alone after chunk data", CHUNKED + b"5\r\nhello\n0\r\n\r\n", None, cut=b"hello"),
    Case("a chunk longer than its size", CHUNKED + b"2\r\nabc\r\n0\r\n\r\n", None, cut=b"ab"),
    Case("LF-ended chunk lines", CHUNKED + b"5\nhello\n0\n\n", None),
    Case(
        "a trailer without a colon", CHUNKED + b"2\r\nok\r\n0\r\nno colon\r\n\r\n", None, cut=b"ok"
    ),
    # -- refused: framing fields -------------------------------------------------------
    Case(
        "both Transfer-Encoding and Content-Length",
        OK + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        None,
        h11=b"hello",
        why="h11 lets Transfer-Encoding win (RFC 9112 §6.3 allows it); we refuse the ambiguity",
    ),
    Case(
        "two different content-lengths",
        OK + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        None,
    ),
    Case("a content-length list that differs", OK + b"Content-Length: 5, 6\r\n\r\nhello!", None),
    Case(
        "05 and 5 as content-lengths",
        OK + b"Content-Length: 05\r\nContent-Length: 5\r\n\r\nhello",
        None,
    ),
    Case("a negative content-length", OK + b"Content-Length: -1\r\n\r\nhello", None),
    Case("a signed content-length", OK + b"Content-Length: +5\r\n\r\nhello", None),
    Case("an empty content-length", OK + b"Content-Length:\r\n\r\nhello", None),
    Case("a content-length not a number", OK + b"Content-Length: five\r\n\r\nhello", None),
    Case(
        "a body shorter than its content-length",
        OK + b"Content-Length: 10\r\n\r\nhello",
        None,
        cut=b"hello",
    ),
    Case("Transfer-Encoding gzip", OK + b"Transfer-Encoding: gzip\r\n\r\nhello", None),
    Case(
        "Transfer-Encoding gzip, chunked",
        OK + b"Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        None,
    ),
    Case(
        "chunked twice in one field",
        OK + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        None,
    ),
    Case(
        "chunked twice in two fields",
        OK + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        None,
    ),
    Case("Transfer-Encoding identity", OK + b"Transfer-Encoding: identity\r\n\r\nhello", None),
    # -- refused: the head -------------------------------------------------------------
    Case("nothing at all", b"", None),
    Case("a head cut short", OK + b"Content-Len", None),
    Case("a header line without a colon", OK + b"no colon here\r\n\r\n", None),
    Case("whitespace before a colon", OK + b"Content-Length : 5\r\n\r\nhello", None),
    Case("a header name that is not a token", OK + b"X(A): 1\r\nContent-Length: 2\r\n\r\nok", None),
    Case(
        "an obs-fold before the first field", OK + b" X-A: 1\r\nContent-Length: 2\r\n\r\nok", None
    ),
    Case("a NUL in a value", OK + b"X-A: a\x00b\r\nContent-Length: 2\r\n\r\nok", None),
    Case("a bare CR in a value", OK + b"X-A: a\rb\r\nContent-Length: 2\r\n\r\nok", None),
    Case(
        "LF-ended head lines",
        b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
        None,
        h11=b"ok",
        why="RFC 9112 §2.2 lets a recipient take LF as a line end (h11 does); we keep CRLF",
    ),
    Case(
        "a bare LF inside a head line",
        OK + b"X-A: 1\nContent-Length: 2\r\n\r\nok",
        None,
        h11=b"ok",
        why="h11 ends the line at the LF; we refuse the bare LF",
    ),
    Case("a status code of two digits", b"HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok", None),
    Case("a status code of letters", b"HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok", None),
    Case("a status code under 100", b"HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\nok", None),
    Case("another protocol", b"SPDY/3 200 OK\r\nContent-Length: 2\r\n\r\nok", None),
    Case(
        "HTTP/2.0 in an HTTP/1 status line",
        b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        None,
        h11=b"ok",
        why="h11 takes any digit.digit version; an HTTP/1.1 client has no business reading 2.0",
    ),
]


def splits(wire: bytes) -> list[list[bytes]]:
    """``wire`` as two writes, cut at every byte position (empty writes left out), and as
    one write a byte."""
    halves = [[part for part in (wire[:cut], wire[cut:]) if part] for cut in range(len(wire) + 1)]
    return [*halves, [wire[i : i + 1] for i in range(len(wire))]]


class _Wire:
    """The transport a :class:`streamhttp._Connection` writes to, fed here by hand."""

    def __init__(self) -> None:
        self.closing = False

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


Verdict = tuple[bytes | None, bytes]  # (the body if read to its end, what came before the end)


async def read_ours(parts: list[bytes], method: str) -> Verdict:
    """What the transport makes of ``parts`` arriving, then the server's close, as the loop
    would deliver them (nothing after the transport aborts)."""
    wire = _Wire()
    connection = streamhttp._Connection(StreamTransport(), ("http", "127.0.0.1", 80))
    connection.connection_made(cast(asyncio.Transport, wire))
    connection.send(b"", method == "HEAD", None)
    for part in parts:
        if wire.closing:
            break
        connection.data_received(part)
    if not wire.closing:
        connection.eof_received()
    connection.connection_lost(None)
    received = bytearray()
    try:
        async with asyncio.timeout(1):
            await connection.read_head(False)
            while (piece := await connection.next_piece()) is not None:
                received += piece[1]
    except httpx.RemoteProtocolError:
        return None, bytes(received)
    return bytes(received), bytes(received)


def read_h11(parts: list[bytes], method: str) -> Verdict:
    connection = h11.Connection(our_role=h11.CLIENT)
    connection.send(h11.Request(method=method, target="/", headers=[("Host", "test")]))
    connection.send(h11.EndOfMessage())
    received = bytearray()
    try:
        for part in [*parts, b""]:  # b"": the server's close
            connection.receive_data(part)
            while (event := connection.next_event()) is not h11.NEED_DATA:
                if isinstance(event, h11.Data):
                    received += event.data
                elif isinstance(event, h11.EndOfMessage):
                    return bytes(received), bytes(received)
                elif isinstance(event, h11.ConnectionClosed):
                    return None, bytes(received)
    except h11.RemoteProtocolError:
        return None, bytes(received)
    raise AssertionError("h11 neither ended the response nor refused it")


def expected(case: Case) -> Verdict:
    return case.body, case.body if case.body is not None else case.cut


def expected_of_h11(case: Case) -> Verdict:
    if case.h11 == "same":
        return expected(case)
    return case.h11, case.h11 if case.h11 is not None else b""


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_every_split_of_a_response_reads_as_the_table_and_h11_say(case: Case) -> None:
    assert case.h11 == "same" or case.why, "a difference from h11 needs its reason"

    async def main() -> None:
        for parts in splits(case.wire):
            assert await read_ours(parts, case.method) == expected(case), parts
            assert read_h11(parts, case.method) == expected_of_h11(case), parts

    asyncio.run(main())


# -- the same, a few splits of each through a real loopback socket ---------------------


async def read_real(case: Case, cut: int, kernel_stamps: bool) -> Verdict:
    """What ``httpx.AsyncClient`` on the transport reads from a loopback server that
    answers with ``case.wire`` in two writes, cut at ``cut``, 5 ms apart, then closes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            for part in (case.wire[:cut], case.wire[cut:]):
                if part:
                    writer.write(part)
                    await writer.drain()
                    await asyncio.sleep(0.005)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    transport = StreamTransport(read_timeout=5, kernel_stamps=kernel_stamps)
    received = bytearray()
    try:
        client = httpx.AsyncClient(transport=transport)
        async with client, client.stream(case.method, f"http://127.0.0.1:{port}/") as response:
            async for piece in response.aiter_raw():
                received += piece
    except httpx.RemoteProtocolError:
        return None, bytes(received)
    finally:
        listener.close()
    return bytes(received), bytes(received)


@pytest.mark.parametrize("kernel_stamps", [True, False], ids=["kernel stamps", "loop stamps"])
def test_a_real_socket_reads_every_case_as_the_table_says(kernel_stamps: bool) -> None:
    async def main() -> None:
        for case in CASES:
            head_end = case.wire.find(b"\r\n\r\n") + 4
            for cut in sorted({1, max(head_end, 1), (head_end + len(case.wire)) // 2}):
                verdict = await read_real(case, cut, kernel_stamps)
                assert verdict == expected(case), (case.name, cut)

    asyncio.run(main())


# -- the one-pass path for whole chunks agrees with the general parser -----------------


def read_general(data: bytes) -> tuple[bytes, bool, bool]:
    """The payload the general chunk parser takes from ``data`` (after a head that said
    chunked), whether it refused it, and whether it ended between two chunks with nothing
    left over; the one-pass path is out of the way."""
    wire = _Wire()
    connection = streamhttp._Connection(StreamTransport(), ("http", "127.0.0.1", 80))
    connection.connection_made(cast(asyncio.Transport, wire))
    connection.send(b"", False, None)
    connection.data_received(CHUNKED)
    connection._buffer += data
    connection._parse_chunks(0.0)
    payload = b"".join(piece[1] for piece in connection._pieces if piece is not None)
    between = connection._chunk_step == "size" and not connection._buffer
    return payload, connection._failure is not None, between


def check_one_pass(data: bytes) -> bool:
    """Whether the one-pass path took ``data``; where it did, it must agree."""
    payload = streamhttp._whole_chunks(data)
    if payload is None:
        return False
    assert read_general(data) == (payload, False, True), data
    return True


CHUNKED_BODIES = [case.wire[len(CHUNKED) :] for case in CASES if case.wire.startswith(CHUNKED)]


def test_the_one_pass_path_agrees_with_the_general_parser_on_the_table() -> None:
    taken = 0
    for body in CHUNKED_BODIES:
        for end in range(len(body) + 1):
            for start in range(end):
                taken += check_one_pass(body[start:end])
    assert taken > 20  # it did take some: the comparison ran


def generated_chunks(chosen: random.Random) -> bytes:
    """A few chunks, each size line, length or ending now and then subtly wrong."""
    out = []
    for _ in range(chosen.randint(1, 4)):
        data = chosen.choice([b"a", b"hello", b"0123456789abcdef0", b"\r\n", b"x" * 300])
        size = len(data) + chosen.choice([0, 0, 0, 0, 0, -1, 1])
        digits = chosen.choice([b"%x", b"%X", b"%03x", b"%016x", b"%017x"]) % size
        line = chosen.choice(
            [digits] * 12
            + [b"0x" + digits, b"+" + digits, b"-" + digits, digits[:1] + b"_" + digits[1:]]
            + [b" " + digits, digits + b" ", digits[:1] + b" " + digits[1:], b"", b"g"]
            + [digits + b";a=b", digits + b" ;a", digits + b";", digits + b"\r"]
        )
        end = chosen.choice([b"\r\n"] * 8 + [b"\n", b"\r", b"", b"XY", b"\r\n\r\n"])
        out.append(line + b"\r\n" + data + end)
    return b"".join(out)


def test_the_one_pass_path_agrees_with_the_general_parser_on_generated_bodies() -> None:
    chosen = random.Random(11)
    taken = 0
    for _ in range(20_000):
        taken += check_one_pass(generated_chunks(chosen))
    assert taken > 500  # whole chunks often enough for the comparison to mean something


@pytest.mark.parametrize(
    "line",
    [b"0x5", b"0X5", b"+5", b"-5", b"5_0", b"5 0", b" 5", b"", b";a", b"5;", b"5;a=", b"5;=a",
     b"5;a=b c", b'5;a="b', b"\xef\xbc\x95", b"\xd9\xa5", b"1" * 17],
)  # fmt: skip
def test_a_chunk_size_line_outside_rfc_9112_is_refused(line: bytes) -> None:
    # First what int(x, 16) took: 0x, signs, underscores, spaces. "\xef\xbc\x95" is a
    # fullwidth 5 and "\xd9\xa5" an Arabic-Indic 5 in UTF-8: int() takes such digits in a
    # str, not in bytes, and the parser must not depend on which it is given.
    with pytest.raises(httpx.RemoteProtocolError, match="chunked"):
        streamhttp._chunk_size(line)


@pytest.mark.parametrize(
    ("line", "size"),
    [(b"5", 5), (b"00A", 10), (b"ffffffffffffffff", 2**64 - 1), (b"5 ", 5), (b"5\t;a", 5),
     (b'5;a="x;y" ; b = c', 5), (b"0;last", 0)],
)  # fmt: skip
def test_a_chunk_size_line_per_rfc_9112_is_read(line: bytes, size: int) -> None:
    assert streamhttp._chunk_size(line) == size
