"""Reading results files stays light: ``bench compare`` and ``bench check`` read JSON, so
they load neither httpx nor the bench's transport (the records live apart from the I/O)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llmcli.bench.metrics import RequestRecord, TokenChunk
from llmcli.bench.records import BenchRun, LevelResult, ProfileRun
from llmcli.bench.report import write_results
from llmcli.bench.workload import Settings, prompt_nonce

NETWORK = ("httpx", "llmcli.net.streamhttp", "llmcli.wire.client", "llmcli.bench.runner")
MESSAGES = [{"role": "user", "content": "alpha beta gamma"}]

# Runs the CLI as ``python -m llmcli`` would, then names the network modules it loaded.
PROBE = (
    "import sys\n"
    "sys.argv = ['llmcli', *sys.argv[1:]]\n"
    "from llmcli.__main__ import main\n"
    "try:\n"
    "    main()\n"
    "except SystemExit as ending:\n"
    "    code = ending.code\n"
    "else:\n"
    "    code = 0\n"
    f"print('loaded:', ','.join(m for m in {NETWORK!r} if m in sys.modules), file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def results_file(path: Path) -> Path:
    """A one-request run, written as ``bench --out`` writes it."""
    record = RequestRecord(index=0, sent_at=1.0, nonce=prompt_nonce(MESSAGES))
    record.first_chunk_at = 1.1
    record.chunks = [TokenChunk(1.1, "content"), TokenChunk(1.2, "content")]
    record.finish_at = record.closed_at = 1.2
    record.finish_reason = "stop"
    level = LevelResult(concurrency=1, records=[record], started_at=1.0, ended_at=1.3)
    profile = ProfileRun("mock", "http://127.0.0.1:9/v1", "zen", "m", levels=[level])
    run = BenchRun(Settings(concurrency=(1,), requests=1), "2026-01-01T00:00:00Z", {}, 0.0)
    run.profiles.append(profile)
    write_results(run, path)
    return path


def mock_log(path: Path) -> Path:
    """The mock server's ``--log`` line for that request."""
    entry = {
        "status": 200,
        "completed": True,
        "arrived": 1.0,
        "body": {"messages": MESSAGES},
        "frames": [[1.1, "content"], [1.2, "content"], [1.2, "finish"]],
    }
    path.write_text(json.dumps(entry) + "\n")
    return path


@pytest.mark.parametrize("command", ["compare", "check"])
def test_reading_results_loads_no_network_code(command: str, tmp_path: Path) -> None:
    first = results_file(tmp_path / "a.json")
    second = (
        results_file(tmp_path / "b.json") if command == "compare" else mock_log(tmp_path / "log")
    )
    out = subprocess.run(
        [sys.executable, "-c", PROBE, "bench", command, str(first), str(second), "--json"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)  # the command did read both files
    assert out.stderr.splitlines()[-1] == "loaded: "
