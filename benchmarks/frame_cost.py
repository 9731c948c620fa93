"""What a received SSE frame costs the bench client, in CPU, transport by transport.

Usage: python benchmarks/frame_cost.py [--streams 64] [--tokens 100]

Part 1 reads ``--streams`` concurrent streams of 1-token chunks (a frame every 10 ms each)
from llmcli's mock server in a child process, bytes only (no SSE or JSON), and divides the
client process's CPU time by the frames received: httpx's default transport (httpcore on
anyio, h11), llmcli's StreamTransport, and aiohttp when it is installed (it is not a
dependency), each on asyncio's loop and on uvloop.

Part 2 is the rest of a frame's path in the bench, without a network: the SSE decoder,
JSON, the chunk parser and the runner's record, fed one frame at a time through
``Client.stream_chat`` as one long stream.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import multiprocessing
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
from bench_accuracy import serve  # the mock in a child process, as there

from llmcli.bench.metrics import RequestRecord
from llmcli.bench.runner import _note
from llmcli.mock import MockConfig
from llmcli.net.streamhttp import StreamTransport
from llmcli.wire.client import Arrival, ChatRequest, Client

Reader = Callable[[str, int, int], Coroutine[Any, Any, int]]
T = TypeVar("T")


def body(index: int, tokens: int) -> bytes:
    return json.dumps(
        {
            "model": "big-pickle",
            "stream": True,
            "max_tokens": tokens,
            "messages": [{"role": "user", "content": f"{index} hello"}],
        }
    ).encode()


async def read_httpx(
    url: str, streams: int, tokens: int, transport: httpx.AsyncBaseTransport
) -> int:
    frames = 0
    async with httpx.AsyncClient(transport=transport, timeout=60) as client:

        async def one(index: int) -> None:
            nonlocal frames
            request = client.build_request(
                "POST", url + "/chat/completions", content=body(index, tokens)
            )
            response = await client.send(request, stream=True)
            try:
                async for _ in response.aiter_raw():
                    frames += 1
            finally:
                await response.aclose()

        await asyncio.gather(*(one(i) for i in range(streams)))
    return frames


async def read_default(url: str, streams: int, tokens: int) -> int:
    limits = httpx.Limits(max_connections=None)
    return await read_httpx(url, streams, tokens, httpx.AsyncHTTPTransport(limits=limits))


async def read_stream_transport(url: str, streams: int, tokens: int) -> int:
    return await read_httpx(url, streams, tokens, StreamTransport(kernel_stamps=False))


async def read_kernel_stamped(url: str, streams: int, tokens: int) -> int:
    return await read_httpx(url, streams, tokens, StreamTransport(kernel_stamps=True))


async def read_aiohttp(url: str, streams: int, tokens: int) -> int:
    import aiohttp

    frames = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(index: int) -> None:
            nonlocal frames
            async with session.post(url + "/chat/completions", data=body(index, tokens)) as r:
                async for _ in r.content.iter_any():
                    frames += 1

        await asyncio.gather(*(one(i) for i in range(streams)))
    return frames


def run_on(loop: str, coro: Coroutine[Any, Any, T]) -> T:
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def cpu_per_frame(url: str, reader: Reader, loop: str, streams: int, tokens: int) -> float:
    run_on(loop, reader(url, streams, 2))  # connections, imports, caches
    started = time.process_time()
    frames = run_on(loop, reader(url, streams, tokens))
    return (time.process_time() - started) / frames


FRAME = (
    b'data: {"id":"chatcmpl-1234567890","object":"chat.completion.chunk","created":1764100000,'
    b'"model":"big-pickle","choices":[{"index":0,"delta":{"content":" word"},'
    b'"finish_reason":null}]}\n\n'
)
END = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'


class _Frames(httpx.AsyncByteStream):
    def __init__(self, count: int) -> None:
        self.count = count

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.count):
            yield FRAME
        yield END


class _Canned(httpx.AsyncBaseTransport):
    def __init__(self, count: int) -> None:
        self.count = count

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=_Frames(self.count))


async def pipeline_per_frame(count: int) -> float:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from rig.profiles import make_profile  # type: ignore[import-not-found]  # the test rig

    client = Client(make_profile("http://127.0.0.1:9/v1", dialect="zen"), transport=_Canned(count))
    record = RequestRecord(index=0, sent_at=0.0)
    arrival = Arrival()
    started = time.process_time()
    request = ChatRequest(messages=[{"role": "user", "content": "hi"}])
    async for event in client.stream_chat(request, arrival=arrival):
        _note(record, event, arrival.at or 0.0)
    elapsed = time.process_time() - started
    assert len(record.chunks) == count
    return elapsed / count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--streams", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=100, help="frames a stream")
    args = parser.parse_args(argv)

    readers: list[tuple[str, Reader]] = [
        ("httpx default (httpcore, anyio, h11)", read_default),
        ("llmcli StreamTransport, the loop's reads", read_stream_transport),
        ("llmcli StreamTransport, recvmsg with kernel stamps", read_kernel_stamped),
    ]
    if importlib.util.find_spec("aiohttp") is not None:
        readers.append(("aiohttp", read_aiohttp))
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    config = MockConfig(ttft=0.05, itl=0.01, default_max_tokens=args.tokens)
    server = context.Process(target=serve, args=(config, child), daemon=True)
    server.start()
    url = parent.recv()
    print(f"{args.streams} streams x {args.tokens} frames of 1 token, a frame every 10 ms each")
    print()
    print("| transport | asyncio loop µs/frame | uvloop µs/frame |")
    print("|---|---:|---:|")
    try:
        for name, reader in readers:
            costs = [
                cpu_per_frame(url, reader, loop, args.streams, args.tokens) * 1e6
                for loop in ("asyncio", "uvloop")
            ]
            print(f"| {name} | {costs[0]:.0f} | {costs[1]:.0f} |")
    finally:
        parent.send("stop")
        parent.recv()  # the server's log, unused here
        server.join(timeout=10)
    print()
    for loop in ("asyncio", "uvloop"):
        cost = run_on(loop, pipeline_per_frame(20_000)) * 1e6
        print(
            f"rest of the bench's path (SSE, JSON, chunk parser, record), {loop}: {cost:.1f} µs/frame"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
