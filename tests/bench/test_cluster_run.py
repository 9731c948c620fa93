"""``--cluster`` on real Dask clusters, every socket on 127.0.0.1: a scheduler and two
workers started as a user starts them (``dask scheduler``, ``dask worker``; one set for the
module), and ``--cluster dask``'s own local cluster. Against the mock server and the real
llama-server: merged records are the raw union of the workers' records, each worker's
clock offset and self-check are recorded, an open loop starts together, a Ctrl-C keeps
what arrived and closes the cluster, and no process of a cluster talks off loopback."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import BENCH_APP, WriteProfiles, zen_mock_profile
from rig import LlamaServer
from rig.profiles import make_profile
from test_bench_cli import invoke

from llmcli.bench import cluster as cluster_module
from llmcli.bench.cluster import ClusterPool
from llmcli.bench.metrics import RequestRecord, describe, measure, summarise
from llmcli.bench.run import new_run, run_bench
from llmcli.bench.workers import PortableRecord, plan
from llmcli.bench.workload import Settings, arrival_offsets
from llmcli.mock import MockConfig, MockServerThread

# -- a cluster started as a user starts one --------------------------------------------------


@dataclass(frozen=True)
class Scheduler:
    address: str
    processes: tuple[subprocess.Popen[bytes], ...]


def _start(args: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", *args], stdout=sink, stderr=subprocess.STDOUT, cwd=log.parent
        )


@contextlib.contextmanager
def dask_cluster(
    directory: Path,
    workers: int,
    *extra: str,
    scheduler_extra: Sequence[str] = (),
    security: Any = None,
) -> Iterator[Scheduler]:
    """``dask scheduler`` (``scheduler_extra`` options) and ``workers`` ``dask worker``
    processes (``extra`` options each), all on 127.0.0.1, stopped when the block ends;
    ``security`` is the ``distributed.Security`` this test's own client joins with."""
    file = directory / "scheduler.json"
    processes = [
        _start(
            ["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--dashboard-address", "127.0.0.1:0",
             "--scheduler-file", str(file), *scheduler_extra],
            directory / "scheduler.log",
        )
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not file.exists() or not file.read_text().strip():
            assert time.monotonic() < deadline, (directory / "scheduler.log").read_text()
            assert processes[0].poll() is None, (directory / "scheduler.log").read_text()
            time.sleep(0.05)
        address = json.loads(file.read_text())["address"]
        for number in range(workers):
            processes.append(
                _start(
                    ["distributed.cli.dask_worker", "--scheduler-file", str(file),
                     "--host", "127.0.0.1", "--nthreads", "1", "--no-dashboard",
                     # without it a worker's HTTP server (/health, /metrics) listens on
                     # every address, dashboard or not
                     "--dashboard-address", "127.0.0.1:0",
                     "--name", f"w{number}", "--local-directory", str(directory), *extra],
                    directory / f"worker{number}.log",
                )
            )  # fmt: skip
        import distributed

        with distributed.Client(address, timeout=30, security=security) as client:
            client.wait_for_workers(workers, timeout=60)
        yield Scheduler(address, tuple(processes))
    finally:
        # workers first: a worker whose scheduler is gone retries it for a while
        for process in [*processes[1:], processes[0]]:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=15)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scheduler]:
    """A scheduler and two workers, shared by this module's tests."""
    with dask_cluster(tmp_path_factory.mktemp("dask"), 2) as found:
        yield found


# -- sockets, read from /proc ----------------------------------------------------------------


def descendants(roots: Sequence[int]) -> set[int]:
    """``roots`` and every process under them, now."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found = {pid for pid in roots if pid in parents}
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        found |= more
        grew = bool(more)
    return found


def live_members(group: int, wait: float = 10.0) -> list[int]:
    """The processes of process group ``group`` still running after up to ``wait`` s
    (an exited one its parent left unreaped, a zombie, has ended: it is not counted)."""
    deadline = time.monotonic() + wait
    while True:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[2]) == group and fields[0] != "Z":
                found.append(int(entry.name))
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    host = text.split(":")[0]
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        return ipaddress.IPv4Address(raw[::-1])
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return ipaddress.IPv6Address(words)


def tcp_sockets(pids: Sequence[int] | set[int]) -> set[tuple[str, str, str]]:
    """(local address, remote address, state) of every TCP socket ``pids`` hold."""
    inodes = set()
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                found.add((str(_address(fields[1])), str(_address(fields[2])), fields[3]))
    return found


LISTEN = "0A"


def off_loopback(sockets: set[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The sockets with an end off loopback (a listener's remote end is all zeros)."""

    def loopback(text: str) -> bool:
        address = ipaddress.ip_address(text)
        mapped = getattr(address, "ipv4_mapped", None)
        return bool((mapped or address).is_loopback)

    return [
        (local, remote, state)
        for local, remote, state in sockets
        if not loopback(local) or (state != LISTEN and not loopback(remote))
    ]


def test_the_socket_reader_reads_proc_and_flags_what_is_off_loopback() -> None:
    """The check itself (without opening anything off loopback to test it)."""
    import socket

    assert str(_address("0100007F:1F90")) == "127.0.0.1"
    assert str(_address("0100A8C0:0050")) == "192.168.0.1"
    mapped = _address("0000000000000000FFFF00000100007F:1F90")
    assert mapped == ipaddress.ip_address("::ffff:127.0.0.1")
    assert str(_address("00000000000000000000000001000000:0016")) == "::1"
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert ("127.0.0.1", "0.0.0.0", LISTEN) in tcp_sockets([os.getpid()])
    assert off_loopback({("0.0.0.0", "0.0.0.0", LISTEN)})  # listening on every address
    assert off_loopback({("::", "::", LISTEN)})
    assert off_loopback({("127.0.0.1", "10.0.0.2", "01")})  # connected off the machine
    assert not off_loopback(
        {("127.0.0.1", "0.0.0.0", LISTEN), ("127.0.0.1", "127.0.0.1", "01"),
         ("::ffff:127.0.0.1", "::1", "01")}
    )  # fmt: skip


class SocketWatch:
    """Samples the TCP sockets of some processes' trees in a thread until stopped."""

    def __init__(self, roots: Sequence[int]) -> None:
        self.roots = list(roots)
        self.seen: set[tuple[str, str, str]] = set()
        self.pids: set[int] = set()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.05):
            tree = descendants(self.roots)
            self.pids |= tree
            self.seen |= tcp_sockets(tree)

    def __enter__(self) -> SocketWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


# -- runs ------------------------------------------------------------------------------------


def chats(server: MockServerThread) -> list[Any]:
    return [r for r in server.server.requests if r.path.endswith("/chat/completions")]


class MergeSpy:
    """``cluster.merge`` as it is, keeping the parts it was given (each worker's records)."""

    def __init__(self) -> None:
        self.parts: list[list[PortableRecord]] = []
        self._merge = cluster_module.merge

    def __call__(
        self, parts: Sequence[Sequence[PortableRecord]], *args: Any
    ) -> list[RequestRecord]:
        self.parts.extend(list(part) for part in parts)
        return self._merge(parts, *args)


def test_a_level_over_two_workers_is_the_raw_union_of_their_records(
    scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = MergeSpy()
    monkeypatch.setattr(cluster_module, "merge", spy)
    with MockServerThread(MockConfig(ttft=0.02, itl=0.002)) as server:
        profile = make_profile(server.base_url, dialect="zen", model="big-pickle")
        settings = Settings(concurrency=(4,), requests=30, warmup=4, max_tokens=6, workers=2)
        with SocketWatch([p.pid for p in scheduler.processes]) as watch:
            run = asyncio.run(run_bench(new_run(settings), [profile], cluster=scheduler.address))
        sent = chats(server)
    [level] = run.profiles[0].levels
    assert len(spy.parts) == 2 and all(spy.parts)  # both workers sent records back
    # merged counts are the sum of the workers' counts, and of what the server got
    assert len(level.records) == sum(len(part) for part in spy.parts) == len(sent) == 34
    assert sorted(r.index for r in level.records) == list(range(34))
    # the merged samples are the union of the workers' raw samples, not a blend of them
    raw_ttft = sorted(p.chunks[0][0] for part in spy.parts for p in part if not p.fields["warmup"])
    merged_ttft = sorted(measure(r).ttft for r in level.records if not r.warmup)  # type: ignore[type-var]
    assert merged_ttft == pytest.approx(raw_ttft, abs=1e-9)
    assert summarise(level.records).metrics["ttft"].as_dict() == pytest.approx(
        describe(raw_ttft).as_dict(), abs=1e-9
    )
    nonces = {r.nonce for r in level.records}
    assert len(nonces) == 34 and nonces == {_nonce(request) for request in sent}
    # each worker's clock offset and self-check, recorded with the level
    info = run.environment["cluster"]
    assert info["scheduler"] == scheduler.address and not info["local"]
    [entry] = info["levels"]
    assert entry["profile"] == profile.name and entry["load"] == "c=4"
    workers = entry["workers"]
    assert sorted(w["worker"] for w in workers) == sorted(w["worker"] for w in info["workers"])
    assert sorted(w["requests"] for w in workers) == sorted(len(part) for part in spy.parts)
    assert sum(w["measured"] for w in workers) == 30
    assert sum(w["token_frames"] for w in workers) == 34 * 6
    for worker in workers:
        # one machine, one clock: the reading lies inside its round trip, so the offset is
        # within the uncertainty (rounded to the µs in the record)
        assert abs(worker["clock_offset_s"]) <= worker["clock_uncertainty_s"] + 2e-6
        assert 0 < worker["clock_rtt_s"] < 1.0
        assert worker["host"] == "127.0.0.1"
    # the scheduler's and workers' processes (nannies' children too) kept to loopback
    assert len(watch.pids) >= 5 and watch.seen
    assert not off_loopback(watch.seen), off_loopback(watch.seen)


def _nonce(request: Any) -> str:
    from llmcli.bench.workload import prompt_nonce

    body = request.body
    nonce = prompt_nonce(body["messages"])
    assert nonce is not None
    return nonce


def test_an_open_loop_starts_together_on_the_clients_clock(scheduler: Scheduler) -> None:
    """One worker told to begin a second late still sends on the one schedule: the shares
    wait for each other's warm-up, then start at the client's instant (plus each offset)."""
    rate, count = 50.0, 20
    with MockServerThread(MockConfig(ttft=0.01, itl=0.002)) as server:
        profile = make_profile(server.base_url, dialect="zen", model="big-pickle")
        settings = Settings(rate=rate, arrival="constant", requests=count, warmup=2, max_tokens=3)
        schedule = arrival_offsets(rate, count, __import__("random").Random(1), "constant")
        tasks = plan(
            profile, settings, dialect="zen", prompts=None, prompt_words=None,
            concurrency=1, workers=2, start_wall=time.time() + 0.1, schedule=schedule,
        )  # fmt: skip
        tasks[1] = dataclasses.replace(tasks[1], start_wall=tasks[1].start_wall + 1.0)
        sink: list[RequestRecord] = []
        offsets: list[float] = []

        async def level() -> None:
            async with ClusterPool(scheduler.address) as pool:
                assert pool.workers == 2
                await pool.run(tasks, sink, None, offsets)

        asyncio.run(level())
    measured = sorted(r.sent_at for r in sink if not r.warmup)
    assert len(measured) == count and len(sink) == count + 2
    # every send on the one schedule from one start: 20 ms apart, not two runs a second apart
    late = [
        abs((at - measured[0]) - planned) for at, planned in zip(measured, schedule, strict=True)
    ]
    assert max(late) < 0.1, late
    assert len(offsets) == count


def test_cli_over_an_existing_scheduler_shows_each_worker(
    scheduler: Scheduler, write_profiles: WriteProfiles, tmp_path: Path
) -> None:
    out = tmp_path / "c.json"
    with MockServerThread(MockConfig(ttft=0.01, itl=0.002)) as server:
        write_profiles(zen_mock_profile(server.base_url))
        args = ["bench", "-p", "mock", "--concurrency", "1,3", "--requests", "6",
                "--max-tokens", "3", "--cluster", scheduler.address, "--out", str(out)]  # fmt: skip
        shown = invoke(*args)
        as_json = invoke(*args, "--json")
    assert shown.exit_code == 0, shown.stderr
    assert f"cluster {scheduler.address}: each worker's share" in shown.stdout
    assert "offset ms" in shown.stdout and "read together" in shown.stdout  # clock offset
    assert as_json.exit_code == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    levels = data["cluster"]["levels"]
    assert [entry["load"] for entry in levels] == ["c=1", "c=3"]
    # concurrency 1 is one share: one worker; concurrency 3 is split over both
    assert [len(entry["workers"]) for entry in levels] == [1, 2]
    assert all("clock_offset_s" in w and "clock_uncertainty_s" in w for w in levels[1]["workers"])
    for entry, key in zip(levels, ("c=1", "c=3"), strict=True):
        assert data["profiles"][0]["levels"][key]["requests"] == 6
        assert sum(w["measured"] for w in entry["workers"]) == 6
    saved = json.loads(out.read_text())
    assert saved["environment"]["cluster"]["levels"] == levels
    # settings.workers is what ran: the scheduler's two workers, though --workers was not given
    assert data["settings"]["workers"] == saved["settings"]["workers"] == 2


def test_the_real_llama_server_over_the_cluster(
    scheduler: Scheduler, llama_think: LlamaServer
) -> None:
    profile = make_profile(llama_think.base_url, dialect="llamacpp", model="tiny")
    settings = Settings(concurrency=(2,), requests=6, max_tokens=8, workers=2)
    run = asyncio.run(run_bench(new_run(settings), [profile], cluster=scheduler.address))
    [level] = run.profiles[0].levels
    summary = summarise(level.records)
    assert (summary.requests, summary.ok) == (6, 6)
    assert all(r.timings for r in level.records)  # llama.cpp's own timings came through
    [entry] = run.environment["cluster"]["levels"]
    assert [w["requests"] for w in entry["workers"]] == [3, 3]
    assert sum(w["token_frames"] for w in entry["workers"]) == sum(
        len(r.chunks) for r in level.records
    )


# -- --cluster dask: a local cluster of llmcli's own ------------------------------------------


def test_cluster_dask_runs_two_local_workers_on_loopback_and_closes_them(
    write_profiles: WriteProfiles, tmp_path: Path
) -> None:
    out = tmp_path / "local.json"
    with MockServerThread(MockConfig(ttft=0.01, itl=0.005)) as server:
        write_profiles(zen_mock_profile(server.base_url))
        with subprocess.Popen(
            [sys.executable, "-c", BENCH_APP, "bench", "-p", "mock", "--concurrency", "8",
             "--requests", "200", "--max-tokens", "20", "--cluster", "dask", "--workers", "2",
             "--json", "--out", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        ) as process, SocketWatch([process.pid]) as watch:  # fmt: skip
            stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert not off_loopback(watch.seen), off_loopback(watch.seen)
    assert len(watch.pids) >= 3  # the client and two worker processes, at least
    data = json.loads(stdout)
    [entry] = data["cluster"]["levels"]
    assert data["cluster"]["local"] is True and len(entry["workers"]) == 2
    assert sum(w["requests"] for w in entry["workers"]) == 200
    assert data["profiles"][0]["levels"]["c=8"]["ok"] == 200
    assert not live_members(process.pid)  # the cluster's processes ended with the run


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 128 + signal.SIGTERM)]
)
def test_an_ending_keeps_what_the_workers_finished_and_closes_the_cluster(
    write_profiles: WriteProfiles, tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    """The signal goes to the whole process group, as a terminal's Ctrl-C (or a
    ``timeout`` on the group) sends it: the workers must not die of it with their records."""
    out = tmp_path / "cut.json"
    with MockServerThread(MockConfig(ttft=0.01, itl=0.002)) as server:
        write_profiles(zen_mock_profile(server.base_url))
        with subprocess.Popen(
            [sys.executable, "-c", BENCH_APP, "bench", "-p", "mock", "--concurrency", "4",
             "--requests", "100000", "--cluster", "dask", "--workers", "2", "--out", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        ) as process:  # fmt: skip
            assert process.stderr is not None
            assert "running" in process.stderr.readline()  # the cluster is up, requests flow
            time.sleep(1.0)
            os.killpg(process.pid, signum)
            _stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    data = json.loads(out.read_text())
    assert data["interrupted"] is True
    level = data["profiles"][0]["levels"][0]
    summary = level["summary"]
    assert summary["ok"] > 0 and summary["failed"] == 0
    assert len(level["requests"]) == summary["requests"] + summary["cancelled"]
    [entry] = data["environment"]["cluster"]["levels"]
    assert len(entry["workers"]) == 2  # both workers sent back what they had
    assert sum(w["requests"] for w in entry["workers"]) == len(level["requests"])
    assert not live_members(process.pid)  # no worker process outlived the run


def test_request_ends_reach_the_progress_display_while_the_level_runs(
    scheduler: Scheduler,
) -> None:
    from test_bench_workers import Recorder

    from llmcli.bench.metrics import RequestEnd

    recorder = Recorder()
    with MockServerThread(MockConfig(ttft=0.02, itl=0.01)) as server:
        profile = make_profile(server.base_url, dialect="zen", model="big-pickle")
        settings = Settings(concurrency=(4,), requests=24, max_tokens=8, workers=2)
        started = time.time()
        asyncio.run(
            run_bench(new_run(settings), [profile], progress=recorder, cluster=scheduler.address)
        )
        ended = time.time()
    kinds = [kind for kind, _ in recorder.events]
    assert kinds[0] == "start" and recorder.events[-1] == ("finished", 24)
    ends = [value for kind, value in recorder.events if kind == "done"]
    # sent in batches by each worker's watcher while the level ran, the last as it ended
    assert len(ends) == 24
    assert all(isinstance(end, RequestEnd) and end.ok and end.tokens == 8 for end in ends)
    # on the client's wall clock: inside the run, not on a worker's own clock or since boot
    assert all(end.end is not None and started < end.start < end.end < ended for end in ends)


def test_a_worker_lost_mid_level_is_one_line_not_a_hang(
    write_profiles: WriteProfiles, tmp_path: Path
) -> None:
    """A worker process killed while it runs its share (its nanny restarts it under a new
    address, where Dask would keep the share waiting for ever): one line, exit 1."""
    with MockServerThread(MockConfig(ttft=0.01, itl=0.002)) as server:
        write_profiles(zen_mock_profile(server.base_url))
        with subprocess.Popen(
            [sys.executable, "-c", BENCH_APP, "bench", "-p", "mock", "--concurrency", "4",
             "--requests", "100000", "--cluster", "dask", "--workers", "2",
             "--out", str(tmp_path / "lost.json")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        ) as process:  # fmt: skip
            assert process.stderr is not None
            assert "running" in process.stderr.readline()
            time.sleep(1.0)  # the shares are running
            workers = [
                pid
                for pid in descendants([process.pid])
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
                and b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
            ]
            assert len(workers) == 2, workers
            os.kill(workers[0], signal.SIGKILL)
            _stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 1, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("llmcli: error:")]
    assert len(lines) == 1 and "left the cluster during the level" in lines[0], stderr
    assert "Traceback" not in stderr
    assert not live_members(process.pid)


def test_asking_for_more_workers_than_the_scheduler_has_is_one_line(
    scheduler: Scheduler, write_profiles: WriteProfiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster_module, "CONNECT_TIMEOUT", 1.0)
    with MockServerThread(MockConfig()) as server:
        write_profiles(zen_mock_profile(server.base_url))
        result = invoke("bench", "-p", "mock", "--cluster", scheduler.address, "--workers", "3")
    assert result.exit_code == 3
    assert result.stderr.splitlines() == [
        f"llmcli: error: --cluster {scheduler.address}: fewer than 3 workers joined within 1 s;"
        f" start them (dask worker {scheduler.address})"
    ]


# A worker preload: this process's wall clock (time.time, as llmcli reads it) 2 s behind.
# Dask's own timers keep theirs (distributed.metrics bound time.time at its import).
SKEW = -2.0
SKEWED_CLOCK = f"""
import time
if not hasattr(time, "real_time"):  # Dask may import a preload more than once
    time.real_time = time.time
    time.time = lambda: time.real_time() + {SKEW}
"""


def test_a_worker_clock_behind_is_measured_and_its_samples_moved_onto_the_clients(
    tmp_path: Path,
) -> None:
    preload = tmp_path / "skewed_clock.py"
    preload.write_text(SKEWED_CLOCK)
    with (
        dask_cluster(tmp_path, 1, "--preload", str(preload)) as skewed,
        MockServerThread(MockConfig(ttft=0.02, itl=0.002)) as server,
    ):
        profile = make_profile(server.base_url, dialect="zen", model="big-pickle")
        settings = Settings(concurrency=(2,), requests=8, max_tokens=4)
        run = asyncio.run(run_bench(new_run(settings), [profile], cluster=skewed.address))
    [entry] = run.environment["cluster"]["levels"]
    [worker] = entry["workers"]
    # measured: the reading lies inside the round trip, so the error is within its half
    assert abs(worker["clock_offset_s"] - SKEW) <= worker["clock_uncertainty_s"] + 2e-6
    [level] = run.profiles[0].levels
    assert len(level.records) == 8 and all(r.error_kind is None for r in level.records)
    # every send placed inside the level on the client's clock, not 2 s before it, and the
    # share started at the client's instant, not 2 s late (on the worker's clock). (Dask
    # itself hands back a lagging worker's result late by about the lag, so the level's
    # end is no measure here; keep cluster hosts' clocks synchronised.)
    assert all(level.started_at <= r.sent_at <= level.ended_at for r in level.records)
    first = min(r.sent_at for r in level.records)
    assert first - level.started_at < abs(SKEW) / 2


def test_a_ctrl_c_while_the_local_cluster_starts_closes_it(
    write_profiles: WriteProfiles, tmp_path: Path
) -> None:
    """Ctrl-C as the first worker process appears, before any level: exit 130, the
    results file written (no level), no process of the cluster left running, and none
    killed by the Ctrl-C as it started (Python would print a fatal error of its own)."""
    out = tmp_path / "early.json"
    with MockServerThread(MockConfig(ttft=0.01, itl=0.002)) as server:
        write_profiles(zen_mock_profile(server.base_url))
        with subprocess.Popen(
            [sys.executable, "-c", BENCH_APP, "bench", "-p", "mock", "--concurrency", "4",
             "--requests", "100000", "--cluster", "dask", "--workers", "2", "--out", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
        ) as process:  # fmt: skip
            deadline = time.monotonic() + 60
            while not any(
                b"spawn_main" in _cmdline(pid) and b"resource_tracker" not in _cmdline(pid)
                for pid in descendants([process.pid])
            ):
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.01)
            os.killpg(process.pid, signal.SIGINT)
            _stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.splitlines()[-1] == "llmcli: interrupted", stderr
    assert "Traceback" not in stderr and "Fatal Python error" not in stderr
    assert "running" not in stderr  # no level began
    data = json.loads(out.read_text())
    assert data["interrupted"] is True and not data["profiles"][0]["levels"]
    assert not live_members(process.pid)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
