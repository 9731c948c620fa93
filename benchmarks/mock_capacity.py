"""How many frames a second ``llmcli mock-server`` sends on schedule, in one process or more.

Usage: python benchmarks/mock_capacity.py [--streams 256,512] [--itl 0.01] [--tokens 100]
       [--processes 1,2]

For each process count and stream count, the real CLI runs ``llmcli mock-server
--processes P --log FILE`` and the cheapest client there is reads ``--streams`` streams of
``--tokens`` one-token chunks at once (a uvloop protocol that counts bytes, one connection
a stream, no parsing), so the server, not the client, is what is measured. From the
server's own log (each frame's send time, on CLOCK_MONOTONIC like the schedule):

- sent frames/s: streams x each stream's (content frames - 1) / (last - first send)
- late p50 / p99 ms: each content frame's send time - its deadline (arrival of the body
  + TTFT + k x ITL), the schedule the mock promises to keep
- mock CPU µs a frame: the user + system time of every server process over the run
  (``/proc``), divided by the frames sent: what one frame costs the server, whatever
  else shares the machine; one process on one free core sends up to 1e6 / that a second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop

TTFT = 0.2


class Counter(asyncio.Protocol):
    def __init__(self, done: asyncio.Future[None]) -> None:
        self.done = done
        self.tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.tail = (self.tail + data)[-5:]
        if self.tail == b"0\r\n\r\n" and not self.done.done():
            self.done.set_result(None)
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def read_streams(port: int, streams: int, tokens: int, tag: str) -> None:
    loop = asyncio.get_running_loop()

    async def one(index: int) -> None:
        done = loop.create_future()
        transport, _ = await loop.create_connection(lambda: Counter(done), "127.0.0.1", port)
        body = json.dumps(
            {
                "model": "big-pickle",
                "stream": True,
                "max_tokens": tokens,
                "messages": [{"role": "user", "content": f"{tag}{index} hi"}],
            }
        ).encode()
        head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: mock\r\nContent-Type: "
        head += b"application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        transport.write(head + body)  # type: ignore[attr-defined]
        await done

    await asyncio.gather(*(one(i) for i in range(streams)))


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def server_pids(parent: int) -> list[int]:
    pids = [parent]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent and "resource_tracker" not in (
                entry / "cmdline"
            ).read_bytes().decode(errors="replace"):
                pids.append(int(entry.name))
    return pids


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def measure(processes: int, streams: int, itl: float, tokens: int) -> dict[str, float]:
    log = Path(tempfile.mkdtemp(prefix="mock-capacity-")) / "log.jsonl"
    args = [sys.executable, "-m", "llmcli", "mock-server", "--port", "0"]
    args += ["--processes", str(processes), "--log", str(log)]
    args += ["--ttft", str(TTFT), "--itl", str(itl), "--max-tokens", str(tokens)]
    with subprocess.Popen(args, stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline().strip().rsplit(":", 1)[1].split("/")[0])
            uvloop.run(read_streams(port, streams, 2, "warm"))  # imports, caches
            pids = server_pids(server.pid)
            before = cpu_seconds(pids)
            uvloop.run(read_streams(port, streams, tokens, "run"))
            cpu = cpu_seconds(pids) - before
        finally:
            server.terminate()
            server.wait(timeout=30)
    late: list[float] = []
    rates: list[float] = []
    frames = 0
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        if not entry["body"]["messages"][0]["content"].startswith("run"):
            continue
        frames += len(entry["frames"])
        content = [at for at, kind in entry["frames"] if kind == "content"]
        start = entry["received"] + TTFT
        late.extend(at - (start + k * itl) for k, at in enumerate(content))
        if len(content) > 1:
            rates.append((len(content) - 1) / (content[-1] - content[0]))
    return {
        "offered": streams / itl,
        "sent": sum(rates),
        "late_p50": percentile(late, 50) * 1000,
        "late_p99": percentile(late, 99) * 1000,
        "cpu_per_frame": cpu / frames * 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--streams", default="256,512")
    parser.add_argument("--itl", type=float, default=0.01)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--processes", default="1,2")
    args = parser.parse_args(argv)
    print(
        f"mock schedule: TTFT {TTFT * 1000:.0f} ms, ITL {args.itl * 1000:g} ms, {args.tokens} "
        f"tokens, 1 a chunk; {platform.machine()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print()
    print("| processes | streams | offered frames/s | sent frames/s | late p50 ms | late p99 ms "
          "| mock CPU µs/frame (all frames) |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for processes in (int(p) for p in args.processes.split(",")):
        for streams in (int(s) for s in args.streams.split(",")):
            r = measure(processes, streams, args.itl, args.tokens)
            print(
                f"| {processes} | {streams} | {r['offered']:,.0f} | {r['sent']:,.0f} | "
                f"{r['late_p50']:.3f} | {r['late_p99']:.3f} | {r['cpu_per_frame']:.1f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
