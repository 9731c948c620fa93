"""How long llmcli takes to start: the median wall time of whole commands.

Usage: python benchmarks/startup.py [--runs 30]

Each command runs as a fresh process (as a user's shell runs it), after two warm-up runs so
the OS page cache is warm; the figure is the median, with min and p90 beside it. The
target (issue 2): ``llmcli --version`` under 100 ms median.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

COMMANDS = (
    ["--version"],
    ["--help"],
    ["profiles", "list"],
)


def time_command(argv: list[str], runs: int) -> list[float]:
    exe = shutil.which("llmcli")
    base = [exe] if exe else [sys.executable, "-m", "llmcli"]
    env = {**os.environ, "NO_COLOR": "1"}
    samples = []
    for i in range(runs + 2):
        started = time.perf_counter()
        subprocess.run(base + argv, check=True, stdout=subprocess.DEVNULL, env=env)
        elapsed = (time.perf_counter() - started) * 1000
        if i >= 2:
            samples.append(elapsed)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, {args.runs} runs each")
    print(f"{'command':<28}{'median ms':>10}{'min ms':>9}{'p90 ms':>9}")
    for argv in COMMANDS:
        samples = sorted(time_command(argv, args.runs))
        p90 = samples[int(0.9 * (len(samples) - 1))]
        label = "llmcli " + " ".join(argv)
        print(f"{label:<28}{statistics.median(samples):>10.1f}{samples[0]:>9.1f}{p90:>9.1f}")


if __name__ == "__main__":
    main()
