"""``llmcli bench`` when things go wrong: bad numbers, bad files, signals, stalls, a busy CPU.

Every case ends the same way: one ``llmcli: error: ...`` line (or the run's own ending
line) on stderr, the conventional exit status, no traceback, and every request that
finished in the results file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import BENCH_APP, WriteProfiles, zen_mock_profile
from rig.profiles import make_profile
from test_bench_cli import interrupt_bench, invoke

from llmcli.bench.records import LevelResult, ProfileRun
from llmcli.bench.report import held_signals, load_results, write_results
from llmcli.bench.run import new_run, run_bench
from llmcli.bench.runner import BENCH_RETRY, Runner
from llmcli.bench.serverinfo import props_summary
from llmcli.bench.workers import WorkerPool
from llmcli.bench.workload import (
    MAX_CONCURRENCY,
    MAX_INPUT_TOKENS,
    MAX_LEVELS,
    MAX_REQUESTS,
    MAX_WORKERS,
    Settings,
    prompt_nonce,
)
from llmcli.errors import UsageError
from llmcli.mock import Faults, MockConfig, MockServerThread
from llmcli.mock.record import RecordedRequest
from llmcli.wire.client import Client


@pytest.fixture
def mock() -> Iterator[MockServerThread]:
    with MockServerThread(MockConfig(ttft=0.01, itl=0.002)) as server:
        yield server


@pytest.fixture
def profiles(write_profiles: WriteProfiles, mock: MockServerThread) -> Path:
    return write_profiles(
        f'[profiles.mock]\nbase_url = "{mock.base_url}"\ndialect = "zen"\nmodel = "big-pickle"\n'
    )


def chats(server: MockServerThread) -> list[RecordedRequest]:
    return [r for r in server.server.requests if r.path.endswith("/chat/completions")]


def sse_response(body: str) -> httpx.Response:
    stream = httpx.ByteStream(body.encode())
    return httpx.Response(200, stream=stream, headers={"content-type": "text/event-stream"})


def assert_one_error_line(stderr: str, *fragments: str) -> None:
    assert stderr.startswith("llmcli: error: "), stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    for fragment in fragments:
        assert fragment in stderr, stderr


# -- every number bounded, every float finite ----------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--concurrency", "99999999999", "--requests", "2"], f"from 1 to {MAX_CONCURRENCY}"),
        (["--concurrency", ",".join(["1"] * (MAX_LEVELS + 1))], f"1 to {MAX_LEVELS} levels"),
        (["--requests", "0"], "--requests 0: use a whole number from 1"),
        (["--requests", str(MAX_REQUESTS + 1)], f"to {MAX_REQUESTS}"),
        (["--warmup=-1"], "--warmup -1"),
        (["--warmup", str(MAX_REQUESTS + 1)], f"to {MAX_REQUESTS}"),
        (["--duration", "99999999999h"], "--duration 359999999996400 s: use a number above 0"),
        (["--duration", "169h"], "--duration 608400 s: use a number above 0, at most 604800 s"),
        (["--rate", "nan"], "--rate nan requests/s: use a number above 0"),
        (["--rate", "inf"], "--rate inf"),
        (["--rate=-1"], "--rate -1"),
        (["--rate", "0"], "--rate 0"),
        (["--rate", "1e400"], "--rate inf"),
        (["--rate", "5000", "--duration", "1000s"], f"is 5000000 requests: at most {MAX_REQUESTS}"),
        (["--workers", "0"], "--workers 0"),
        (["--workers", str(MAX_WORKERS + 1)], f"to {MAX_WORKERS}"),
        (["--input-tokens", "0"], "--input-tokens 0"),
        (["--input-tokens", str(MAX_INPUT_TOKENS + 1)], f"to {MAX_INPUT_TOKENS}"),
        (["--max-tokens", "99999999999"], "--max-tokens 99999999999"),
    ],
)
def test_a_bad_number_is_one_line_before_any_request(
    profiles: Path, mock: MockServerThread, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "r.json"
    result = invoke("bench", "-p", "mock", *args, "--out", str(out))
    assert result.exit_code == 2, (args, result.stdout, result.stderr)
    assert_one_error_line(result.stderr, message)
    assert not chats(mock) and not out.exists()


def test_never_more_streams_than_requests() -> None:
    """Concurrency far above the request count starts a stream a request, no more."""

    def handler(request: httpx.Request) -> httpx.Response:
        return sse_response(
            'data: {"choices":[{"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\n'
            "data: [DONE]\n\n"
        )

    profile = make_profile("http://127.0.0.1:9/v1", dialect="zen", model="big-pickle")
    client = Client(profile, transport=httpx.MockTransport(handler), retry=BENCH_RETRY)
    settings = Settings(concurrency=(MAX_CONCURRENCY,), requests=2, max_tokens=2)
    level = LevelResult(concurrency=MAX_CONCURRENCY)
    created: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def count(loop: asyncio.AbstractEventLoop, coro: Any) -> asyncio.Task[Any]:
            created.append(coro.__qualname__)
            return asyncio.Task(coro, loop=loop)

        loop.set_task_factory(count)
        await Runner(client, settings, dialect="zen").run_level(level)

    asyncio.run(main())
    assert len(level.records) == 2 and all(r.error_kind is None for r in level.records)
    lanes = [name for name in created if "worker" in name]
    assert len(lanes) == 2, created[:5]


def test_a_level_run_for_a_duration_stops_at_the_request_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A record is kept a request: a duration run against a fast server is bounded too."""
    from llmcli.bench import runner

    def handler(request: httpx.Request) -> httpx.Response:
        return sse_response(
            'data: {"choices":[{"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\n'
            "data: [DONE]\n\n"
        )

    monkeypatch.setattr(runner, "MAX_REQUESTS", 5)
    profile = make_profile("http://127.0.0.1:9/v1", dialect="zen", model="big-pickle")
    client = Client(profile, transport=httpx.MockTransport(handler), retry=BENCH_RETRY)
    settings = Settings(concurrency=(2,), requests=None, duration=30.0, max_tokens=2)
    level = LevelResult(concurrency=2)
    asyncio.run(Runner(client, settings, dialect="zen").run_level(level))
    assert len(level.records) == 5
    help_text = invoke("bench", "--help").stdout
    # rich draws the help in a box: read the words, not the box lines around them
    assert f"at most {MAX_REQUESTS} requests" in " ".join(help_text.replace("│", " ").split())


def test_a_servers_nan_is_kept_as_null_and_the_file_is_strict_json(tmp_path: Path) -> None:
    """Python's json reads a server's NaN; the results file holds null, and loads strictly."""
    body = (
        'data: {"choices":[{"delta":{"content":"hi"},"finish_reason":"stop"}],'
        '"timings":{"prompt_n":3,"predicted_per_second":NaN,"prompt_ms":Infinity}}\n\n'
        "data: [DONE]\n\n"
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return sse_response(body)

    profile = make_profile("http://127.0.0.1:9/v1", dialect="llamacpp", model=None)
    client = Client(profile, transport=httpx.MockTransport(handler), retry=BENCH_RETRY)
    record = asyncio.run(Runner(client, Settings(), dialect="llamacpp").run_one(0))
    assert record.timings is not None
    assert record.timings["prompt_n"] == 3
    assert record.timings["predicted_per_second"] is None and record.timings["prompt_ms"] is None
    props = props_summary({"default_generation_settings": {"params": {"temperature": math.nan}}})
    assert props == {"params": {"temperature": None}}

    run = new_run(Settings())
    level = LevelResult(concurrency=1, records=[record])
    run.profiles.append(
        ProfileRun("p", "http://x/v1", "llamacpp", None, levels=[level], server={"props": props})
    )
    path = tmp_path / "r.json"
    write_results(run, path)

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in the results file")

    data = json.loads(path.read_text(), parse_constant=refuse)
    assert data["profiles"][0]["levels"][0]["requests"][0]["timings"]["prompt_ms"] is None


def test_the_results_writer_refuses_nan(tmp_path: Path) -> None:
    run = new_run(Settings())
    run.environment["clock_skew"] = math.nan  # a bug: no number a run is given gets here
    path = tmp_path / "r.json"
    with pytest.raises(ValueError, match="not JSON compliant"):
        write_results(run, path)
    assert not path.exists()


def test_settings_refuse_nan_without_the_cli() -> None:
    for fields in ({"rate": math.nan}, {"duration": math.inf, "requests": None}):
        with pytest.raises(UsageError):
            Settings(**fields)


# -- files that are not UTF-8 --------------------------------------------------------------


def test_a_latin1_prompts_file_is_refused_naming_the_byte(
    profiles: Path, mock: MockServerThread, tmp_path: Path
) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_bytes(b"hello\ncaf\xe9 au lait\n")
    result = invoke("bench", "-p", "mock", "--prompts", str(prompts), "--requests", "1")
    assert result.exit_code == 2
    assert_one_error_line(result.stderr, str(prompts), "not UTF-8", "0xe9", "offset 9")
    assert not chats(mock)


def test_damaged_files_for_check_and_compare_are_one_line(profiles: Path, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    assert invoke("bench", "-p", "mock", "--requests", "1", "--out", str(out)).exit_code == 0
    log = tmp_path / "sent.jsonl"
    log.write_bytes(b'{"body": {}}\n\xff\xfe garbage\n')
    checked = invoke("bench", "check", str(out), str(log))
    assert checked.exit_code == 2
    assert_one_error_line(checked.stderr, str(log), "not UTF-8", "0xff")
    damaged = tmp_path / "damaged.json"
    damaged.write_bytes(out.read_bytes().replace(b'"mock"', b'"m\xe9ck"'))
    for args in (["compare", str(damaged)], ["check", str(damaged), str(log)]):
        result = invoke("bench", *args)
        assert result.exit_code == 2, args
        assert_one_error_line(result.stderr, str(damaged), "not UTF-8")
    with pytest.raises(UsageError, match="not UTF-8"):
        load_results(damaged)


def test_an_out_path_in_no_directory_is_refused_before_the_run(
    profiles: Path, mock: MockServerThread, tmp_path: Path
) -> None:
    for out in (tmp_path / "nowhere" / "r.json", tmp_path):
        result = invoke("bench", "-p", "mock", "--out", str(out))
        assert result.exit_code == 2
        assert_one_error_line(result.stderr, f"--out {out}: give a file in a directory")
    assert not chats(mock)


# -- a stall is a timeout --------------------------------------------------------------------


def test_a_stall_mid_stream_is_counted_as_a_timeout(
    write_profiles: WriteProfiles, tmp_path: Path
) -> None:
    faults = Faults(stall=1.0, stall_seconds=5.0, stall_after_tokens=2)
    with MockServerThread(MockConfig(ttft=0.01, itl=0.002, faults=faults)) as server:
        write_profiles(
            f'[profiles.mock]\nbase_url = "{server.base_url}"\ndialect = "zen"\n'
            'model = "big-pickle"\ntimeout = { connect = 5, read = 0.3 }\n'
        )
        out = tmp_path / "r.json"
        result = invoke("bench", "-p", "mock", "--requests", "2", "--out", str(out), "--json")
    assert result.exit_code == 1, result.stderr  # no request succeeded: still summed up
    last = result.stderr.splitlines()[-1]
    assert last.startswith("llmcli: error: no successful request from profile mock ")
    assert result.stderr.count("llmcli: error:") == 1
    assert json.loads(result.stdout)["profiles"][0]["levels"]["c=1"]["failed"] == 2
    [level] = json.loads(out.read_text())["profiles"][0]["levels"]
    kinds = [r["error_kind"] for r in level["requests"]]
    assert kinds == ["timeout", "timeout"]
    assert all(len(r["chunks"]) == 2 for r in level["requests"])  # it had begun
    assert level["summary"]["errors"] == {"timeout": 2}


class CloseDelimitedStall:
    """A server whose streams are read to the close (no length, no chunks), that stalls."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self._done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._done.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536) or b"\r\n\r\n"
            frame = b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'
            conn.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"connection: close\r\n\r\n" + frame
            )
            self._done.wait(10)

    def close(self) -> None:
        self._done.set()
        self.sock.close()


def test_a_stall_in_a_close_delimited_stream_is_a_timeout() -> None:
    server = CloseDelimitedStall()
    try:
        profile = make_profile(
            server.base_url, dialect="zen", model="m", read_timeout=0.3, connect_timeout=5.0
        )
        settings = Settings(requests=1, max_tokens=4)
        run = asyncio.run(run_bench(new_run(settings), [profile]))
    finally:
        server.close()
    [record] = run.profiles[0].levels[0].records
    assert len(record.chunks) == 1
    assert record.error_kind == "timeout", record.error


# -- SIGTERM and SIGHUP end a run as Ctrl-C does ---------------------------------------------


@pytest.mark.parametrize(
    ("signum", "code", "workers", "group"),
    [
        (signal.SIGTERM, 143, 1, False),
        (signal.SIGHUP, 129, 1, False),
        (signal.SIGTERM, 143, 2, True),  # as timeout(1) sends it: the whole process group
        (signal.SIGHUP, 129, 2, False),
    ],
)
def test_sigterm_and_sighup_write_the_results_and_exit_128_plus_the_signal(
    profiles: Path, tmp_path: Path, signum: signal.Signals, code: int, workers: int, group: bool
) -> None:
    out = tmp_path / "cut.json"
    args = ["bench", "-p", "mock", "--concurrency", "2", "--requests", "100000",
            "--workers", str(workers), "--out", str(out)]  # fmt: skip
    returncode, stdout, stderr = interrupt_bench(args, group=group, signum=signum, timeout=60)
    assert returncode == code, stderr
    assert "Traceback" not in stderr
    said = {signal.SIGTERM: "terminated", signal.SIGHUP: "hung up"}[signum]
    assert stderr.endswith(f"llmcli: {said} ({signum.name})\n"), stderr
    assert f"results written to {out} (interrupted run)" in stderr
    assert "TTFT p50 ms" in stdout
    data = json.loads(out.read_text())
    assert data["interrupted"] is True
    level = data["profiles"][0]["levels"][0]
    assert level["summary"]["ok"] > 0 and level["summary"]["failed"] == 0
    assert len(level["requests"]) == level["summary"]["requests"] + level["summary"]["cancelled"]


def test_a_signal_while_the_results_are_written_acts_after_the_write() -> None:
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with held_signals():
            signal.raise_signal(signal.SIGTERM)
            signal.raise_signal(signal.SIGTERM)
            assert seen == []
        assert seen == [signal.SIGTERM]  # once: the run ends once
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- --workers: every finished request reaches the file, however busy the CPU ---------------

BUSY_SECONDS = 20.0


@pytest.fixture
def busy_cpu() -> Iterator[None]:
    """Every core busy for the test (each busy loop ends by itself within BUSY_SECONDS)."""
    code = f"import time\nend = time.monotonic() + {BUSY_SECONDS}\nwhile time.monotonic() < end: pass\n"
    hogs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(os.cpu_count() or 2)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def nonces(requests: list[Any]) -> set[str]:
    return {n for n in (prompt_nonce(r.body.get("messages")) for r in requests) if n is not None}


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_workers_are_born_deaf_to_the_signals_that_end_a_run() -> None:
    """A Ctrl-C while a worker boots (before it can ignore it) would kill it half-imported."""
    with WorkerPool(2) as pool:
        for pid in pool._pids:
            status = Path(f"/proc/{pid}/status").read_text()
            fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
            blocked, ignored = int(fields["SigBlk"], 16), int(fields["SigIgn"], 16)
            for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                assert blocked & ignored & (1 << (number - 1)), number.name
            assert not blocked & (1 << (signal.SIGUSR1 - 1))  # the parent's stop gets through


@pytest.mark.parametrize("delay", [0.0, 0.5, 1.5])
def test_ctrl_c_with_workers_under_load_keeps_every_finished_request(
    write_profiles: WriteProfiles, tmp_path: Path, busy_cpu: None, delay: float
) -> None:
    """Ctrl-C as the workers start their shares, a little later, and later still.

    A worker that had not begun its share when the stop came (its imports are slow on a
    loaded machine) once ignored it and went on with its whole share.

    The mock's own record is the reference: every request it answered whole is in the
    results file (ok, or cancelled if the answer was still on its way), and every request
    the file counts as ok is one the mock answered whole.
    """
    out = tmp_path / "cut.json"
    with MockServerThread(MockConfig(ttft=0.01, itl=0.02, default_max_tokens=8)) as server:
        write_profiles(zen_mock_profile(server.base_url))
        args = ["bench", "-p", "mock", "--concurrency", "4", "--requests", "100000",
                "--max-tokens", "8", "--workers", "2", "--out", str(out)]  # fmt: skip
        with subprocess.Popen(
            [sys.executable, "-c", BENCH_APP, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        ) as process:
            try:
                assert process.stderr is not None
                assert "running" in process.stderr.readline()  # the level is being sent out
                time.sleep(delay)
                os.killpg(process.pid, signal.SIGINT)  # a terminal's Ctrl-C: the whole group
                _, stderr = process.communicate(timeout=60)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)  # whatever is left, workers too
        answered = [r for r in chats(server) if r.completed and r.status == 200]
        arrived = chats(server)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    [level] = json.loads(out.read_text())["profiles"][0]["levels"]
    requests = level["requests"]
    kept = {r["nonce"] for r in requests}
    ok = {r["nonce"] for r in requests if r["error_kind"] is None}
    assert nonces(answered) <= kept, "a request the server answered whole is missing"
    assert ok <= nonces(answered)
    assert len(kept & nonces(answered)) == len(answered)
    assert nonces(arrived) <= kept  # and so is every request the server saw at all
