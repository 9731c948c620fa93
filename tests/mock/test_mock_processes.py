"""``llmcli mock-server --processes N --log FILE``: several server processes on one port,
one request log, and how they stop. Run as a user runs it: the real CLI in a child process."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import mock_server_process

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="several processes on one port: Linux only"
)

SECRET = "sk-mock-log-secret-0042"


def stream(url: str, index: int) -> None:
    """One streamed chat on a connection of its own (a new connection is what spreads)."""
    body = {
        "model": "big-pickle",
        "stream": True,
        "max_tokens": 3,
        "messages": [{"role": "user", "content": f"r{index} hello"}],
    }
    headers = {"Authorization": f"Bearer {SECRET}"}
    with httpx.Client(timeout=10) as client:
        response = client.post(url + "/chat/completions", json=body, headers=headers)
    assert response.status_code == 200 and "data: [DONE]" in response.text


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_processes_share_the_port_and_log_every_request_without_headers(tmp_path: Path) -> None:
    log = tmp_path / "mock.jsonl"
    with mock_server_process("--processes", "2", "--log", str(log), "--itl", "0.002") as (
        process,
        url,
    ):
        for index in range(16):
            stream(url, index)
        os.killpg(process.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches every process
        assert process.wait(timeout=10) == 0
        assert process.stderr is not None and "Traceback" not in process.stderr.read()
    lines = read_log(log)
    assert len(lines) == 16
    # 16 connections land on both listeners: all on one would be a 1 in 2**15 chance.
    assert {line["process"] for line in lines} == {0, 1}
    assert all(gone(pid) for pid in {line["pid"] for line in lines})
    assert SECRET not in log.read_text()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert sorted(line["body"]["messages"][0]["content"] for line in lines) == sorted(
        f"r{index} hello" for index in range(16)
    )
    for line in lines:
        assert line["status"] == 200 and line["completed"] and line["fault"] is None
        times = [at for at, _ in line["frames"]]
        kinds = [kind for _, kind in line["frames"]]
        assert kinds.count("content") == 3 and kinds[-1] == "cost"  # zen's frame after [DONE]
        assert line["arrived"] <= line["received"] <= times[0]
        assert times == sorted(times)
        content = [at for at, kind in line["frames"] if kind == "content"]
        # On the ITL schedule: a frame is never early (it may be late, and the next on time).
        assert all(at - line["received"] >= k * 0.002 - 0.001 for k, at in enumerate(content))


def test_the_children_stop_when_the_parent_is_killed(tmp_path: Path) -> None:
    log = tmp_path / "mock.jsonl"
    with mock_server_process("--processes", "3", "--log", str(log)) as (process, url):
        for index in range(40):
            stream(url, index)
        children = {line["pid"] for line in read_log(log)} - {process.pid}
        assert children  # at least one child served
        process.kill()  # no chance to tell them: their pipe to it closes
        assert all(gone(pid) for pid in children)


def test_a_port_in_use_is_one_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "llmcli", "mock-server", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_a_port_another_mock_server_holds_is_refused_even_with_processes(tmp_path: Path) -> None:
    # SO_REUSEPORT would let a second server of the same user share the port silently.
    with mock_server_process("--processes", "2") as (_, url):
        port = url.rsplit(":", 1)[1].split("/")[0]
        result = subprocess.run(
            [sys.executable, "-m", "llmcli", "mock-server", "--port", port, "--processes", "2"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "cannot listen on" in result.stderr


def test_a_log_that_cannot_be_opened_is_one_line_and_an_old_one_is_made_private(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "llmcli", "mock-server", "--port", "0", "--log", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr == f"llmcli: error: cannot open the log {tmp_path}: Is a directory\n"
    old = tmp_path / "old.jsonl"
    old.write_text("")
    old.chmod(0o644)
    with mock_server_process("--log", str(old)) as (process, url):
        stream(url, 0)
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=10) == 0
    assert stat.S_IMODE(old.stat().st_mode) == 0o600 and len(read_log(old)) == 1
