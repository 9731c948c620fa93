"""How accurately ``llmcli bench`` times streams: its figures against the mock server's log.

Usage: python benchmarks/bench_accuracy.py [--levels 1,16,64,256] [--ttft 0.2] [--itl 0.02]
       [--tokens 20] [--tokens-per-chunk 1] [--per-level 2] [--workers N]
       [--llama] [--write benchmarks/README.md]

The mock server runs in a child process (so it never competes with the client for the GIL)
on a scripted schedule and logs when each frame left, with ``time.perf_counter`` (Linux:
CLOCK_MONOTONIC, one clock for every process). The bench runner stamps what it receives
with the same clock, so each figure can be compared point by point with the server's log,
request by request (matched by the prompt's random prefix):

- first token lag: client's first token chunk - server's first content frame sent
- TTFT error: client TTFT (from its send) - server TTFT (from the request's first bytes
  coming off the server's socket); the difference is the client's own cost of sending,
  the trip to the server, and the first token lag
- ITL error: each client gap between token chunks - the same gap in the server's log
- e2e end lag: client's end (finish event) - server's finish frame sent

The issue's target: under 1 ms at p99 up to 256 streams.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import multiprocessing
import platform
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from llmcli.bench.metrics import describe, measure
from llmcli.bench.run import new_run, run_bench
from llmcli.bench.workload import Settings
from llmcli.config.profiles import load_profiles, select_profile
from llmcli.mock import MockConfig, MockServer
from llmcli.net import eventloop

ServerLog = dict[str, tuple[float, list[float], list[float]]]


def serve(config: MockConfig, conn: Connection) -> None:
    """Child process: serve until asked for the log, send it, stop."""

    async def main() -> None:
        server = MockServer(config)
        await server.start("127.0.0.1", 0)
        conn.send(server.base_url)
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        log: ServerLog = {}
        for record in server.requests:
            body = record.body if isinstance(record.body, dict) else {}
            messages = body.get("messages") or [{}]
            nonce = str(messages[0].get("content", "")).split(" ", 1)[0]
            log[nonce] = (record.arrived_at, record.times("content"), record.times("finish"))
        conn.send(log)
        await server.stop()

    asyncio.run(main())  # asyncio's loop: uvloop would defer the writes it logs


def measure_level(
    base_url: str, concurrency: int, requests: int, tokens: int, workers: int = 1
) -> list[Any]:
    shipped = load_profiles(env={"XDG_CONFIG_HOME": "/nonexistent"})
    profile = dataclasses.replace(
        select_profile(shipped, "local", env={}),
        name="mock",
        base_url=base_url,
        dialect="zen",
        model="big-pickle",
    )
    # One warm-up request per stream opens the connections before anything is measured.
    settings = Settings(
        concurrency=(concurrency,),
        requests=requests,
        warmup=concurrency,
        max_tokens=tokens,
        input_tokens=16,
        workers=workers,
    )
    run = eventloop.run(run_bench(new_run(settings), [profile]))
    return run.profiles[0].levels[0].records


def errors_against(
    records: list[Any], log: ServerLog, tokens_per_chunk: int = 1
) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {
        "first": [], "ttft": [], "itl": [], "end": [], "failed": [], "rate": [], "sent": []
    }  # fmt: skip
    for record in records:
        if record.warmup:
            continue
        m = measure(record)
        entry = log.get(record.nonce or "")
        if not m.ok or entry is None:
            out["failed"].append(1.0)
            continue
        arrived, content, finish = entry
        client = [chunk.at for chunk in record.chunks]
        if len(client) != len(content):
            out["failed"].append(1.0)
            continue
        out["first"].append(client[0] - content[0])
        assert m.ttft is not None
        out["ttft"].append(m.ttft - (content[0] - arrived))
        for i in range(1, len(client)):
            out["itl"].append((client[i] - client[i - 1]) - (content[i] - content[i - 1]))
        if len(client) > 1 and client[-1] > client[0]:  # tokens/s this stream was read at
            out["rate"].append((len(client) - 1) * tokens_per_chunk / (client[-1] - client[0]))
            out["sent"].append((len(content) - 1) * tokens_per_chunk / (content[-1] - content[0]))
        if finish and record.finish_at is not None:
            out["end"].append(record.finish_at - finish[0])
    return out


def llama_lines(requests: int, tokens: int) -> list[str]:
    """Client-side generation tokens/s against llama-server's own ``timings``."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    rig: Any = importlib.import_module("rig")  # the test rig: tiny model, server process

    workdir = Path(tempfile.mkdtemp(prefix="bench-accuracy-"))
    model = rig.write_tiny_model(workdir / "tiny.gguf", chat_template=rig.TOOLS_THINK_TEMPLATE)
    # One compute thread: with two on this project's 2-CPU machines, llama-server's own HTTP
    # thread (and the client) wait for a CPU, and a token's send lags its generation by a
    # varying few ms: the server's timings and the wire then disagree by up to 7% on a
    # request, whoever measures the wire (0.6-1.3% with one thread).
    server = rig.LlamaServer(
        model,
        log_path=workdir / "server.log",
        alias="tiny",
        binary=rig.find_llama_server(),
        threads=1,
    )
    server.start()
    try:
        shipped = load_profiles(env={"XDG_CONFIG_HOME": "/nonexistent"})
        profile = dataclasses.replace(
            select_profile(shipped, "local", env={}), base_url=server.base_url
        )
        settings = Settings(requests=requests, warmup=1, max_tokens=tokens, input_tokens=32)
        run = eventloop.run(run_bench(new_run(settings), [profile]))
    finally:
        server.stop()
    lines = [
        "",
        f"llama-server (tiny generated model), concurrency 1, {requests} requests of "
        f"{tokens} tokens (ignore_eos):",
        "",
        "| figure | p50 | min | max |",
        "|---|---:|---:|---:|",
    ]
    ratios = []
    for record in run.profiles[0].levels[0].records:
        m = measure(record)
        if record.warmup or not m.ok or not m.generation_tps or not m.server_generation_tps:
            continue
        ratios.append(m.generation_tps / m.server_generation_tps)
    stats = describe(ratios)
    if stats.p50 is not None:
        lines.append(
            f"| client gen tok/s / server predicted_per_second | {stats.p50:.3f} | "
            f"{min(ratios):.3f} | {max(ratios):.3f} |"
        )
    return lines


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--levels", default="1,16,64,256")
    parser.add_argument("--ttft", type=float, default=0.2)
    parser.add_argument("--itl", type=float, default=0.02)
    parser.add_argument("--tokens", type=int, default=20, help="output tokens a request")
    parser.add_argument("--tokens-per-chunk", type=int, default=1)
    parser.add_argument("--per-level", type=int, default=2, help="requests = this x concurrency")
    parser.add_argument("--workers", type=int, default=1, help="client processes (--workers)")
    parser.add_argument("--llama", action="store_true", help="also compare with llama-server")
    parser.add_argument("--write", type=Path, default=None, help="append the results (Markdown)")
    args = parser.parse_args(argv)

    config = MockConfig(
        ttft=args.ttft,
        itl=args.itl,
        default_max_tokens=args.tokens,
        tokens_per_chunk=args.tokens_per_chunk,
    )
    context = multiprocessing.get_context("spawn")
    rows = []
    for level in (int(part) for part in args.levels.split(",")):
        parent, child = context.Pipe()
        process = context.Process(target=serve, args=(config, child), daemon=True)
        process.start()
        base_url = parent.recv()
        requests = max(level * args.per_level, 32)
        cpu = time.process_time()
        records = measure_level(base_url, level, requests, args.tokens, args.workers)
        cpu = time.process_time() - cpu  # this process's: the client's, if no workers
        parent.send("dump")
        log: ServerLog = parent.recv()
        process.join(timeout=10)
        errors = errors_against(records, log, args.tokens_per_chunk)
        measured = sum(1 for record in records if not record.warmup)
        errors["cpu"] = [cpu / max(1, sum(len(record.chunks) for record in records))]
        errors["lag"] = [record.read_lag for record in records if record.read_lag is not None]
        rows.append((level, measured, len(errors["failed"]), errors))

    lines = [
        f"mock schedule: TTFT {args.ttft * 1000:g} ms, ITL {args.itl * 1000:g} ms, "
        f"{args.tokens} tokens, {args.tokens_per_chunk} token(s) a chunk; "
        f"client workers {args.workers}, {eventloop.loop_name()}; "
        f"{platform.machine()}, "
        f"Python {sys.version.split()[0]}, {multiprocessing.cpu_count()} CPUs",
        "",
        "| streams | requests | failed | figure | p50 ms | p99 ms | max ms |",
        "|---:|---:|---:|---|---:|---:|---:|",
    ]
    for level, count, failed, errors in rows:
        for name, label in (
            ("first", "first token lag"),
            ("ttft", "TTFT error"),
            ("itl", "ITL error"),
            ("end", "e2e end lag"),
        ):
            stats = describe(abs(value) for value in errors[name])
            lines.append(
                f"| {level} | {count} | {failed} | {label} | {ms(stats.p50)} | "
                f"{ms(stats.p99)} | {ms(stats.max)} |"
            )
    lines += [
        "",
        "Rates are streams x the mean rate of a stream (its tokens after the first over the"
        " time from its first to its last token chunk), as the mock sent them and as the"
        " client read them. The client's own view: its read lag (bytes waiting to be read"
        " after the kernel received them, a request's longest) and, in one process, its CPU"
        " over the level (warm-up, requests and every frame) a token chunk received:",
        "",
        "| streams | offered tokens/s | sent tokens/s | received tokens/s "
        "| client read lag p99 ms | client CPU µs a token chunk |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for level, _, _, errors in rows:
        offered = level * args.tokens_per_chunk / args.itl if args.itl else float("nan")
        sent, received = (
            level * sum(errors[key]) / len(errors[key]) if errors[key] else float("nan")
            for key in ("sent", "rate")
        )
        lag = describe(errors["lag"]).p99
        cpu_text = f"{errors['cpu'][0] * 1e6:.0f}" if args.workers == 1 else "-"
        lines.append(
            f"| {level} | {offered:,.0f} | {sent:,.0f} | {received:,.0f} | {ms(lag)} | {cpu_text} |"
        )
    if args.llama:
        lines += llama_lines(20, 256)
    text = "\n".join(lines)
    print(text)
    if args.write is not None:
        command = "python benchmarks/bench_accuracy.py " + " ".join(argv or sys.argv[1:])
        with args.write.open("a", encoding="utf-8") as out:
            out.write(f"\n### Timing accuracy\n\n`{command.strip()}`\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
