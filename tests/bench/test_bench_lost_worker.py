"""A worker lost in the middle of a run, ``--cluster dask`` or ``--workers``: the run
ends with one error line and exit 1, and keeps what it had received: the results file
(the earlier levels whole, the cut level marked incomplete with the surviving workers'
records), the table and the ``--html`` report. Against the mock server, with real worker
processes killed by SIGKILL as a crash or the OOM killer would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import BENCH_APP, WriteProfiles, zen_mock_profile
from test_cluster_run import descendants, live_members

from llmcli.mock import MockConfig, MockServerThread


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _workers(root: int) -> list[int]:
    """The spawned worker processes under ``root`` (not multiprocessing's tracker)."""
    return [
        pid
        for pid in descendants([root])
        if b"spawn_main" in _cmdline(pid) and b"resource_tracker" not in _cmdline(pid)
    ]


def run_and_kill_a_worker(tmp_path: Path, *pool: str) -> tuple[int, str, str]:
    """``bench --concurrency 2,4`` over two workers; one killed a moment into ``c=4``.
    Exit code, stdout and stderr."""
    args = [sys.executable, "-c", BENCH_APP, "bench", "-p", "mock", "--concurrency", "2,4",
            "--duration", "4s", "--max-tokens", "8", *pool, "--workers", "2",
            "--out", str(tmp_path / "lost.json"), "--html", str(tmp_path / "lost.html")]  # fmt: skip
    with subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as process:
        assert process.stderr is not None
        seen: list[str] = []
        while not any("running at concurrency 4" in line for line in seen):
            line = process.stderr.readline()
            assert line, "".join(seen)
            seen.append(line)
        time.sleep(1.0)  # the shares are running
        workers = _workers(process.pid)
        assert len(workers) == 2, workers
        os.kill(workers[0], signal.SIGKILL)
        stdout, rest = process.communicate(timeout=90)
    assert not live_members(process.pid)  # no worker process outlived the run
    return process.returncode, stdout, "".join(seen) + rest


@pytest.mark.parametrize(
    ("pool", "environment"),
    [(("--cluster", "dask"), "cluster"), ((), "worker_processes")],
    ids=["cluster", "workers"],
)
def test_a_worker_lost_mid_level_keeps_what_was_received(
    write_profiles: WriteProfiles, tmp_path: Path, pool: tuple[str, ...], environment: str
) -> None:
    with MockServerThread(MockConfig(ttft=0.01, itl=0.005)) as server:
        write_profiles(zen_mock_profile(server.base_url))
        code, stdout, stderr = run_and_kill_a_worker(tmp_path, *pool)
    assert code == 1, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("llmcli: error:")]
    assert len(errors) == 1, stderr
    assert "during the level" in errors[0] and "results written" in stderr
    # the results file: the first level whole, the cut one marked, the run's error kept
    data = json.loads((tmp_path / "lost.json").read_text())
    first, cut = data["profiles"][0]["levels"]
    assert "incomplete" not in first and first["summary"]["ok"] > 0
    assert first["summary"]["failed"] == 0
    assert "during the level" in cut["incomplete"]
    assert data["error"] == errors[0].removeprefix("llmcli: error: ")
    assert data["interrupted"] is False
    shares = data["environment"][environment]["levels"]
    assert shares[1]["incomplete"] == cut["incomplete"]
    # the surviving worker's records, stopped and sent back, are the level's records (a
    # process pool fails every future with the one that died: they come by the queue)
    assert [len(entry["workers"]) for entry in shares] == [2, 1]
    assert cut["summary"]["ok"] > 0
    assert len(cut["requests"]) == shares[1]["workers"][0]["requests"]
    # the table and the report, with what completed
    assert "c=2" in stdout and "c=4" in stdout
    assert "incomplete" in stderr  # a note names the cut level
    page = (tmp_path / "lost.html").read_text()
    assert "incomplete" in page and "during the level" in page


@pytest.mark.parametrize("fate", ["killed", "hung"])
def test_a_worker_gone_before_its_clock_is_read_is_one_line_naming_it_in_seconds(
    tmp_path: Path, fate: str
) -> None:
    """Between two levels a worker dies (no nanny to restart it: the scheduler sees it go,
    and it is named at once) or hangs (SIGSTOP: still listed, never answers): the next
    level's clock reading names it within CLOCK_WAIT, not after Dask's 30 s connect timeout."""
    import asyncio

    from rig.profiles import make_profile
    from test_cluster_run import dask_cluster

    from llmcli.bench.cluster import CLOCK_WAIT, ClusterPool
    from llmcli.bench.metrics import RequestRecord
    from llmcli.bench.workers import LevelLost, plan
    from llmcli.bench.workload import Settings

    with (
        dask_cluster(tmp_path, 2, "--no-nanny") as cluster,
        MockServerThread(MockConfig(ttft=0.01, itl=0.002)) as server,
    ):
        profile = make_profile(server.base_url, dialect="zen", model="big-pickle")
        settings = Settings(concurrency=(2,), requests=4, max_tokens=3)
        sink: list[RequestRecord] = []
        worker = cluster.processes[2]

        async def level() -> tuple[float, str]:
            async with ClusterPool(cluster.address) as pool:
                pids = pool._client.run(os.getpid)
                victim = next(a for a, pid in pids.items() if pid == worker.pid)
                if fate == "killed":
                    worker.kill()
                    worker.wait()
                else:
                    os.kill(worker.pid, signal.SIGSTOP)
                tasks = plan(
                    profile, settings, dialect="zen", prompts=None, prompt_words=None,
                    concurrency=2, workers=2, start_wall=time.time() + 0.1,
                )  # fmt: skip
                began = time.monotonic()
                with pytest.raises(LevelLost) as caught:
                    await pool.run(tasks, sink)
                took = time.monotonic() - began
                assert victim in caught.value.reason
                return took, str(caught.value)

        try:
            took, line = asyncio.run(level())
        finally:
            worker.kill()  # a stopped process takes SIGKILL
    assert "\n" not in line and "run again" in line
    assert CLOCK_WAIT <= 5
    if fate == "killed":
        assert "left the cluster before the level" in line and took < 1.5, took
    else:
        assert f"did not answer within {CLOCK_WAIT:g} s" in line
        assert CLOCK_WAIT <= took < CLOCK_WAIT + 3, took
    assert not sink  # no share was sent


def test_a_scheduler_lost_mid_level_keeps_what_was_received_in_one_line(
    write_profiles: WriteProfiles, tmp_path: Path
) -> None:
    """``--cluster tcp://`` whose scheduler dies while a level runs: Dask cancels the
    shares (the level used to end 'complete', empty, exit 0, under Dask's own log line);
    now the earlier level is kept, the cut one marked, and one line of llmcli's says so."""
    from test_cluster_run import dask_cluster

    out = tmp_path / "gone.json"
    with (
        dask_cluster(tmp_path, 2) as cluster,
        MockServerThread(MockConfig(ttft=0.01, itl=0.01)) as server,
    ):
        write_profiles(zen_mock_profile(server.base_url))
        args = [sys.executable, "-c", BENCH_APP, "bench", "-p", "mock", "--concurrency", "2,4",
                "--duration", "4s", "--max-tokens", "8", "--cluster", cluster.address,
                "--out", str(out)]  # fmt: skip
        with subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as process:
            assert process.stderr is not None
            seen: list[str] = []
            while not any("running at concurrency 4" in line for line in seen):
                line = process.stderr.readline()
                assert line, "".join(seen)
                seen.append(line)
            time.sleep(1.0)
            cluster.processes[0].kill()  # the scheduler
            stdout, rest = process.communicate(timeout=90)
    stderr = "".join(seen) + rest
    assert process.returncode == 1, stderr
    lines = [line for line in stderr.splitlines() if not line.startswith("llmcli bench:")]
    assert lines == [
        f"llmcli: error: --cluster: the scheduler {cluster.address} went away during the"
        " level; 2 of 2 shares never came back; run again once it is back"
    ], stderr  # and no line of Dask's own
    data = json.loads(out.read_text())
    first, cut = data["profiles"][0]["levels"]
    assert first["summary"]["ok"] > 0 and "incomplete" not in first
    assert "went away during the level" in cut["incomplete"]
    assert "c=2" in stdout and "c=4" in stdout


@pytest.mark.parametrize(
    ("preload", "said"),
    [
        ('import sys\nsys.modules["llmcli"] = None\n', "cannot run llmcli ("),
        ('import llmcli\nllmcli.__version__ = "0.0.1"\n', "has llmcli 0.0.1, this is"),
    ],
    ids=["no-llmcli", "other-version"],
)
def test_a_worker_without_this_llmcli_is_refused_before_any_level(
    write_profiles: WriteProfiles, tmp_path: Path, preload: str, said: str
) -> None:
    """A Dask worker that cannot unpickle llmcli's task closes itself, which looked like a
    lost worker mid-level; one without llmcli, or with another version, is named up front."""
    from test_cluster_run import dask_cluster

    script = tmp_path / "worker_preload.py"
    script.write_text(preload)
    out = tmp_path / "never.json"
    with (
        dask_cluster(tmp_path, 1, "--preload", str(script)) as cluster,
        MockServerThread(MockConfig(ttft=0.01, itl=0.01)) as server,
    ):
        write_profiles(zen_mock_profile(server.base_url))
        result = subprocess.run(
            [sys.executable, "-c", BENCH_APP, "bench", "-p", "mock", "--requests", "3",
             "--cluster", cluster.address, "--out", str(out)],
            capture_output=True, text=True, timeout=90,
        )  # fmt: skip
        sent = [r for r in server.server.requests if r.path.endswith("/chat/completions")]
        assert not sent  # refused before any level
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"llmcli: error: --cluster {cluster.address}: worker tcp://")
    assert said in line and "install" in line
