"""How long llmcli takes to start: the median wall time of whole commands.

Usage: python benchmarks/startup.py [--runs 30] [--importtime]

Each command runs as a fresh process (as a user's shell runs it), after two warm-up runs so
the OS page cache is warm; the figure is the median, with min and p90 beside it. Targets:
``llmcli --version`` under 100 ms median (issue 2); ``--help`` at most 120 ms and a piped
``complete`` against a local server at most 150 ms (issue 14). The piped ``complete``
asks llmcli's mock server (llama.cpp dialect, answering at once, in a thread of this
process) with stdin and stdout pipes, so it measures llmcli, not a model.
``--importtime`` also prints the ten costliest imports of the piped ``complete``
(``python -X importtime``, cumulative microseconds).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = (
    ["--version"],
    ["--help"],
    ["profiles", "list"],
    ["complete", "-p", "bench-local", "--no-log"],
)


def time_command(argv: list[str], runs: int, env: dict[str, str]) -> list[float]:
    exe = shutil.which("llmcli")
    base = [exe] if exe else [sys.executable, "-m", "llmcli"]
    samples = []
    for i in range(runs + 2):
        started = time.perf_counter()
        subprocess.run(base + argv, check=True, input=b"hi\n", stdout=subprocess.DEVNULL, env=env)
        elapsed = (time.perf_counter() - started) * 1000
        if i >= 2:
            samples.append(elapsed)
    return samples


def costliest_imports(argv: list[str], env: dict[str, str], count: int = 10) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "llmcli", *argv],
        input=b"hi\n",
        capture_output=True,
        env=env,
        check=True,
    )
    rows = []
    for line in done.stderr.decode().splitlines()[1:]:
        parts = line.split("|")
        rows.append((int(parts[1]), f"{int(parts[1]):>8} {parts[2].rstrip()}"))
    return [text for _, text in sorted(rows, reverse=True)[:count]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--importtime", action="store_true")
    args = parser.parse_args()
    from llmcli.mock import MockConfig, MockServerThread

    with (
        MockServerThread(MockConfig(dialect="llamacpp")) as mock,
        tempfile.TemporaryDirectory() as tmp,
    ):
        profiles = os.path.join(tmp, "profiles.toml")
        with open(profiles, "w") as file:
            file.write(f'[profiles.bench-local]\nbase_url = "{mock.base_url}"\n')
        env = {**os.environ, "NO_COLOR": "1", "LLMCLI_CONFIG": profiles}
        print(f"python {platform.python_version()}, {os.cpu_count()} cores, {args.runs} runs each")
        print(f"{'command':<44}{'median ms':>10}{'min ms':>9}{'p90 ms':>9}")
        for argv in COMMANDS:
            samples = sorted(time_command(argv, args.runs, env))
            p90 = samples[int(0.9 * (len(samples) - 1))]
            label = "llmcli " + " ".join(argv) + (" (piped)" if argv[0] == "complete" else "")
            print(f"{label:<44}{statistics.median(samples):>10.1f}{samples[0]:>9.1f}{p90:>9.1f}")
        if args.importtime:
            print("\ncostliest imports of the piped complete (cumulative us):")
            for line in costliest_imports(COMMANDS[-1], env):
                print(" ", line)


if __name__ == "__main__":
    main()
