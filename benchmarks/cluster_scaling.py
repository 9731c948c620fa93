"""How far the bench client's throughput goes in one process, ``--workers N`` processes and
a Dask cluster's workers (``--cluster``), against the mock server.

Usage: python benchmarks/cluster_scaling.py [--streams 128,256,512] [--tokens 100]
       [--itl 0.01] [--modes 1,workers2,dask2]

``llmcli mock-server`` runs as its own process (one token a chunk, a frame every ``--itl``
a stream, TTFT 0.2 s), and for each mode and stream count the real CLI runs one level of
``--streams`` streams, two requests a stream, with ``--out``. From the results file:

- offered frames/s: streams / ITL (what the mock is asked to send);
- received frames/s: streams x each stream's (token frames - 1) / (last - first frame),
  the mean over the measured requests, on the clock of the process that read them (as
  ``mock_capacity.py`` counts what the mock sent);
- read lag p99 ms: the client's self-check (bytes waiting to be read after the kernel got
  them), pooled over every request; for Dask also each worker's own;
- frames read together: token frames stamped as the one before them in their stream (a
  read that came late, as the read lag says): their gap is lost;
- timed frames/s: received frames/s x the share not read together, the frames a second
  the client timed one by one: the figure that says how much load it really measured;
- TTFT p50 and ITL p99 ms: what a user of the figures would read.

Modes: ``1`` one process; ``workers2`` ``--workers 2``; ``dask2`` ``--cluster dask
--workers 2`` (a local cluster of two worker processes, all on 127.0.0.1). The wall time
of the command (cluster start included) is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODES: dict[str, list[str]] = {
    "1": [],
    "workers2": ["--workers", "2"],
    "dask2": ["--cluster", "dask", "--workers", "2"],
}


def start_mock(itl: float, tokens: int) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "llmcli", "mock-server", "--port", "0", "--ttft", "0.2",
         "--itl", str(itl), "--max-tokens", str(tokens)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def run_level(
    directory: Path, mode: str, streams: int, tokens: int
) -> tuple[dict[str, Any], float]:
    out = directory / f"{mode}-{streams}.json"
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "llmcli", "bench", "-p", "mock", "--concurrency", str(streams),
         "--requests", str(2 * streams), "--max-tokens", str(tokens), "--out", str(out),
         *MODES[mode]],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return json.loads(out.read_text()), time.monotonic() - started


def figures(data: dict[str, Any]) -> dict[str, Any]:
    level = data["profiles"][0]["levels"][0]
    measured = [r for r in level["requests"] if not r["warmup"] and r["chunks"]]
    frames = sum(len(r["chunks"]) for r in measured)
    rates = [
        (len(r["chunks"]) - 1) / (r["chunks"][-1][0] - r["chunks"][0][0])
        for r in measured
        if len(r["chunks"]) > 1 and r["chunks"][-1][0] > r["chunks"][0][0]
    ]
    together = sum(
        1
        for r in measured
        for a, b in zip(r["chunks"], r["chunks"][1:], strict=False)
        if b[0] == a[0]
    )
    metrics = level["summary"]["metrics"]
    workers = [
        w["read_lag_p99_s"]
        for entry in data["environment"].get("cluster", {}).get("levels", [])
        for w in entry["workers"]
    ]
    return {
        "received": sum(rates) / len(rates) * level["concurrency"] if rates else 0.0,
        "frames": frames,
        "together": together,
        "lag_p99": (metrics.get("read_lag", {}).get("p99") or 0.0) * 1000,
        "worker_lags": [round((lag or 0.0) * 1000, 1) for lag in workers],
        "ttft_p50": metrics["ttft"]["p50"] * 1000,
        "itl_p99": metrics["itl"]["p99"] * 1000,
        "ok": level["summary"]["ok"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", default="128,256,512")
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--itl", type=float, default=0.01)
    parser.add_argument("--modes", default="1,workers2,dask2")
    args = parser.parse_args()
    levels = [int(n) for n in args.streams.split(",")]
    modes = args.modes.split(",")
    mock, url = start_mock(args.itl, args.tokens)
    try:
        with tempfile.TemporaryDirectory() as name:
            directory = Path(name)
            profiles = directory / "profiles.toml"
            profiles.write_text(
                f'[profiles.mock]\nbase_url = "{url}"\ndialect = "zen"\nmodel = "big-pickle"\n'
            )
            os.environ["LLMCLI_CONFIG"] = str(profiles)
            os.environ["LLMCLI_DATA_DIR"] = str(directory / "data")
            print(
                f"mock: TTFT 200 ms, ITL {args.itl * 1000:g} ms, {args.tokens} tokens, 1 a"
                f" chunk; {platform.machine()}, Python {platform.python_version()},"
                f" {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
            )
            print(
                "| mode | streams | offered frames/s | received frames/s | frames read together"
                " | timed frames/s | read lag p99 ms (per Dask worker) | TTFT p50 ms"
                " | ITL p99 ms | ok | command s |"
            )
            print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for streams in levels:
                for mode in modes:
                    data, wall = run_level(directory, mode, streams, args.tokens)
                    f = figures(data)
                    lags = f"{f['lag_p99']:.1f}" + (
                        f" ({' / '.join(str(x) for x in f['worker_lags'])})"
                        if f["worker_lags"]
                        else ""
                    )
                    share = f["together"] / f["frames"] if f["frames"] else 0.0
                    print(
                        f"| {mode} | {streams} | {streams / args.itl:,.0f} | {f['received']:,.0f}"
                        f" | {share:.1%} | {f['received'] * (1 - share):,.0f} | {lags}"
                        f" | {f['ttft_p50']:.1f} | {f['itl_p99']:.1f} | {f['ok']} | {wall:.1f} |",
                        flush=True,
                    )
            print(f"load at the end {os.getloadavg()[0]:.2f}")
    finally:
        mock.terminate()
        mock.wait(timeout=10)


if __name__ == "__main__":
    main()
